package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// TestVersionsRollbackDelete: versions are listed newest first, a
// rollback makes an older one current (and is audited), a key limited to
// another agent finds neither, a viewer may list but not roll back or
// delete, and a deleted agent is gone at once while its invocations stay.
func TestVersionsRollbackDelete(t *testing.T) {
	w := newWorld(t)
	v1 := w.current(agentP1)
	os.WriteFile(filepath.Join(w.p1Dir, "extra.py"), []byte("X = 2\n"), 0o644)
	if _, err := w.reg.DeployDir(t.Context(), w.p1Dir, "p1"); err != nil {
		t.Fatal(err)
	}
	v2 := w.current(agentP1)
	base := "/api/v1/agents/" + agentP1

	status, body := w.do("viewer", "GET", base+"/versions", "")
	var got struct {
		Data struct {
			Versions []core.VersionInfo `json:"versions"`
		} `json:"data"`
	}
	json.Unmarshal(body, &got)
	vs := got.Data.Versions
	if status != http.StatusOK || len(vs) != 2 || vs[0].Hash != v2 || !vs[0].Current || vs[1].Hash != v1 || vs[1].Current {
		t.Fatalf("versions: %d %s; want %s (current) then %s", status, body, v2, v1)
	}

	w.keys["other-agent"] = w.key("p1", core.RoleAdmin, nil, []string{openID}, nil)
	rollback := fmt.Sprintf(`{"version":%q}`, v1)
	for _, c := range []struct {
		cred, method, path, body string
		want                     int
	}{
		{"viewer", "POST", base + "/rollback", rollback, http.StatusForbidden},
		{"viewer", "DELETE", base, "", http.StatusForbidden},
		{"other-agent", "GET", base + "/versions", "", http.StatusNotFound},
		{"other-agent", "POST", base + "/rollback", rollback, http.StatusNotFound},
		{"other-agent", "DELETE", base, "", http.StatusNotFound},
		{"admin", "POST", base + "/rollback", `{"version":"v1"}`, http.StatusBadRequest},
		{"admin", "POST", base + "/rollback", `{"version":"sha256:` + fmt.Sprintf("%064d", 0) + `"}`, http.StatusNotFound},
	} {
		if status, body := w.do(c.cred, c.method, c.path, c.body); status != c.want {
			t.Errorf("%s %s %s as %s: %d %s, want %d", c.method, c.path, c.body, c.cred, status, body, c.want)
		}
	}
	if cur := w.current(agentP1); cur != v2 {
		t.Fatalf("current after refused rollbacks = %s, want %s", cur, v2)
	}

	if status, body := w.do("admin", "POST", base+"/rollback", rollback); status != http.StatusOK {
		t.Fatalf("rollback: %d %s", status, body)
	}
	if cur := w.current(agentP1); cur != v1 {
		t.Errorf("stored current after rollback = %s, want %s", cur, v1)
	}
	if d, err := w.reg.Get(t.Context(), agentP1); err != nil || d.Hash != v1 {
		t.Errorf("served version after rollback = %+v, %v; want %s", d, err, v1)
	}
	if recs := w.trail(audit.Filter{Action: "agent.rollback", Outcome: audit.OutcomeSuccess}); len(recs) != 1 || recs[0].Details["version"] != v1 || recs[0].Details["from_version"] != v2 {
		t.Errorf("agent.rollback records: %+v", recs)
	}

	if status, body := w.do("admin", "PUT", base+"/secrets/TOKEN", `{"value":"x"}`); status != http.StatusOK {
		t.Fatalf("set secret: %d %s", status, body)
	}
	if status, body := w.do("admin", "DELETE", base, ""); status != http.StatusOK {
		t.Fatalf("delete: %d %s", status, body)
	}
	for _, p := range []string{base + "/architecture", base + "/versions"} {
		if status, _ := w.do("admin", "GET", p, ""); status != http.StatusNotFound {
			t.Errorf("GET %s after delete: %d, want 404", p, status)
		}
	}
	if status, _ := w.do("user", "POST", base+"/run", `{"entrypoint_tag":"echo","input_args":[1]}`); status != http.StatusNotFound {
		t.Errorf("run after delete: %d, want 404", status)
	}
	if status, _ := w.do("admin", "DELETE", base, ""); status != http.StatusNotFound {
		t.Errorf("delete again: %d, want 404", status)
	}
	if status, _ := w.do("viewer", "GET", "/api/v1/invocations/"+w.inv, ""); status != http.StatusOK {
		t.Errorf("an invocation of the deleted agent: %d, want it kept", status)
	}
	if vals, err := w.store.SecretValues(t.Context(), agentP1); err != nil || len(vals) != 0 {
		t.Errorf("secrets of the deleted agent: %v, %v", vals, err)
	}
	if recs := w.trail(audit.Filter{Action: "agent.delete", Outcome: audit.OutcomeSuccess}); len(recs) != 1 {
		t.Errorf("agent.delete records: %+v", recs)
	}
}

// TestArchitectureSchemaAndVersionPages: the architecture route carries
// each entrypoint's input_schema and the version served (what the
// console's "try it" form and agent view read), the agents list does
// not carry schemas, and the versions page by cursor, newest first.
func TestArchitectureSchemaAndVersionPages(t *testing.T) {
	w := newWorld(t)
	const schema = `{"kwargs":{"type":"object","required":["message"],"properties":{"message":{"type":"string"}}}}`
	cfg := fmt.Sprintf(`{"agent_name": "a-schema", "agent_id": %q,
  "agent_architecture": {"entrypoints": [
    {"file": "main.py", "module": "echo", "tag": "echo", "input_schema": %s},
    {"file": "main.py", "module": "echo_stream", "tag": "echo_stream"}]},
  "auth_settings": {"type": "api_key"}}`, agentP1, schema)
	if err := os.WriteFile(filepath.Join(w.p1Dir, "runagent.config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var hashes []string // oldest first
	hashes = append(hashes, w.current(agentP1))
	for i := range 3 {
		os.WriteFile(filepath.Join(w.p1Dir, "extra.py"), []byte(fmt.Sprintf("X = %d\n", i)), 0o644)
		if _, err := w.reg.DeployDir(t.Context(), w.p1Dir, "p1"); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, w.current(agentP1))
	}
	base := "/api/v1/agents/" + agentP1

	status, body := w.do("viewer", "GET", base+"/architecture", "")
	var arch struct {
		Data struct {
			CurrentVersion string `json:"current_version"`
			Entrypoints    []struct {
				Tag         string          `json:"tag"`
				InputSchema json.RawMessage `json:"input_schema"`
			} `json:"entrypoints"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &arch); err != nil || status != http.StatusOK {
		t.Fatalf("architecture: %d %s", status, body)
	}
	if arch.Data.CurrentVersion != hashes[3] {
		t.Errorf("architecture current_version = %q, want %q", arch.Data.CurrentVersion, hashes[3])
	}
	eps := arch.Data.Entrypoints
	if len(eps) != 2 || string(eps[0].InputSchema) != schema || eps[1].InputSchema != nil {
		t.Errorf("architecture entrypoints: %s; want echo with %s and echo_stream without a schema", body, schema)
	}
	if _, body := w.do("viewer", "GET", "/api/v1/agents?include=entrypoints", ""); bytes.Contains(body, []byte("input_schema")) {
		t.Errorf("the agents list carries input schemas: %s", body)
	}

	newest := []string{hashes[3], hashes[2], hashes[1], hashes[0]}
	if p := w.getPage(t, "192.0.2.1", "viewer", base+"/versions", "versions", "version"); !cmp.Equal(p.IDs, newest) || p.Limit != 100 || p.NextCursor != "" {
		t.Errorf("versions without ?limit=: %v, limit %d, next %q; want %v on one page of 100", p.IDs, p.Limit, p.NextCursor, newest)
	}
	for _, limit := range []int{1, 2, 3, 4} {
		if got := w.walk(t, "192.0.2.1", "viewer", base+"/versions?", "versions", "version", limit); !cmp.Equal(got, newest) {
			t.Errorf("versions in pages of %d: %v, want %v", limit, got, newest)
		}
	}
	w.checkBadPaging(t, "192.0.2.1", "viewer", base+"/versions?")
	// A version of another agent is no cursor of this one.
	other := w.current(agentP2)
	if status, body := w.do("owner", "GET", base+"/versions?limit=1&cursor="+url.QueryEscape(other), ""); status != http.StatusBadRequest || !bytes.Contains(body, []byte(`"cursor"`)) {
		t.Errorf("versions after another agent's version: %d %s, want 400 on cursor", status, body)
	}
}
