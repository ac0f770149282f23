package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
)

// errorOf decodes the error of an envelope.
func errorOf(t *testing.T, body []byte) (code, message string, details json.RawMessage) {
	t.Helper()
	var env struct {
		Error struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	return env.Error.Code, env.Error.Message, env.Error.Details
}

func keyIDOf(t *testing.T, token string) string {
	t.Helper()
	k, err := apikey.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID
}

// TestDeleteProjectOverAPI: deleting a project with agents is refused
// with what it would remove, until forced; then its keys are refused on
// the next request, its agents are no longer served, another project is
// untouched, and both attempts are audited.
func TestDeleteProjectOverAPI(t *testing.T) {
	w := newWorld(t)
	run := `{"entrypoint_tag":"echo","input_args":[1]}`
	status, body := w.do("owner", "DELETE", "/api/v1/projects/p1", "")
	if status != http.StatusConflict {
		t.Fatalf("delete p1 without force: %d %s", status, body)
	}
	code, msg, details := errorOf(t, body)
	for _, want := range []string{"2 agents", agentP1, "--force", "force=true", "revokes the keys"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal message %q does not say %q", msg, want)
		}
	}
	var would core.ProjectContents
	if err := json.Unmarshal(details, &would); err != nil || code != core.CodeConflict {
		t.Fatalf("refusal: code %s, details %s (%v)", code, details, err)
	}
	if want := []string{agentP1, openID}; !cmp.Equal(would.Agents, want) {
		t.Errorf("would remove agents %v, want %v", would.Agents, want)
	}
	// viewer, user, streamer, admin, expired, revoked: six principals; the
	// revoked key is not counted again.
	if len(would.Principals) != 6 || len(would.Keys) != 5 || !slices.Contains(would.Keys, keyIDOf(t, w.keys["user"])) {
		t.Errorf("would remove principals %v and keys %v", would.Principals, would.Keys)
	}
	if status, body := w.do("user", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusOK {
		t.Fatalf("after a refused delete p1's user cannot run: %d %s", status, body)
	}
	if status, _ := w.do("owner", "DELETE", "/api/v1/projects/p1?force=maybe", ""); status != http.StatusBadRequest {
		t.Errorf("force=maybe: %d, want 400", status)
	}

	status, body = w.do("owner", "DELETE", "/api/v1/projects/p1?force=true", "")
	if status != http.StatusOK {
		t.Fatalf("delete p1 with force: %d %s", status, body)
	}
	var done struct {
		Data struct {
			Deleted bool                 `json:"deleted"`
			Removed core.ProjectContents `json:"removed"`
		} `json:"data"`
	}
	json.Unmarshal(body, &done)
	if !done.Data.Deleted || !cmp.Equal(done.Data.Removed, would) {
		t.Errorf("delete answered %s, want it to have removed %+v", body, would)
	}

	// At once, on this node: p1's keys and agents are gone.
	for _, cred := range []string{"viewer", "user", "admin"} {
		if status, _ := w.do(cred, "GET", "/api/v1/agents", ""); status != http.StatusUnauthorized {
			t.Errorf("%s of the deleted p1: %d, want 401", cred, status)
		}
	}
	if status, _ := w.do("owner", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusNotFound {
		t.Errorf("owner running an agent of the deleted p1: %d, want 404", status)
	}
	if status, _ := w.do("none", "POST", "/api/v1/agents/"+openID+"/run", run); status != http.StatusUnauthorized {
		t.Errorf("anonymous run of the deleted p1's open agent: %d, want 401 as for any unknown agent", status)
	}
	if _, body := w.do("owner", "GET", "/api/v1/agents", ""); strings.Contains(string(body), agentP1) || !strings.Contains(string(body), agentP2) {
		t.Errorf("agent list after deleting p1: %s", body)
	}
	// The invocation record stays, for owners.
	if status, _ := w.do("owner", "GET", "/api/v1/invocations/"+w.inv, ""); status != http.StatusOK {
		t.Errorf("owner reading an invocation of the deleted p1: %d, want 200", status)
	}
	// p2 is untouched.
	if status, body := w.do("p2admin", "POST", "/api/v1/agents/"+agentP2+"/run", run); status != http.StatusOK {
		t.Errorf("p2's admin after deleting p1: %d %s", status, body)
	}

	// Gone, and the id stays taken; the default project stays.
	if status, _ := w.do("owner", "DELETE", "/api/v1/projects/p1?force=true", ""); status != http.StatusNotFound {
		t.Errorf("deleting p1 again: %d, want 404", status)
	}
	status, body = w.do("owner", "POST", "/api/v1/projects", `{"project_id":"p1"}`)
	if _, msg, _ := errorOf(t, body); status != http.StatusConflict || !strings.Contains(msg, "deleted") {
		t.Errorf("re-creating p1: %d %s", status, body)
	}
	status, body = w.do("owner", "DELETE", "/api/v1/projects/default?force=true", "")
	if _, msg, _ := errorOf(t, body); status != http.StatusConflict || !strings.Contains(msg, "default project cannot be deleted") {
		t.Errorf("deleting the default project: %d %s", status, body)
	}

	if recs := w.trail(audit.Filter{Action: "project.delete", Outcome: "rejected"}); len(recs) != 3 {
		t.Errorf("refused project.delete records: %d, want 3 (no force, bad force, default)", len(recs))
	}
	recs := w.trail(audit.Filter{Action: "project.delete", Outcome: audit.OutcomeSuccess})
	if len(recs) != 1 || recs[0].Resource != "project/p1" || recs[0].Details["agent_ids"] != agentP1+","+openID || recs[0].Details["revoked_key_count"] != "5" {
		t.Errorf("project.delete success records: %+v", recs)
	}
}

// TestProjectDeletedElsewhere: a project deleted by another node (here:
// in the store) stops its keys and agents on this one within the 2 s its
// caches trust what they read.
func TestProjectDeletedElsewhere(t *testing.T) {
	w := newWorld(t)
	run := `{"entrypoint_tag":"echo","input_args":[1]}`
	if status, _ := w.do("user", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusOK {
		t.Fatalf("run before: %d", status)
	}
	if _, err := w.store.DeleteProject(t.Context(), "p1", true, w.clock); err != nil {
		t.Fatal(err)
	}
	w.clock = w.clock.Add(2 * time.Second)
	if status, _ := w.do("user", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusUnauthorized {
		t.Errorf("p1's user 2 s after p1 was deleted elsewhere: %d, want 401", status)
	}
	if status, _ := w.do("owner", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusNotFound {
		t.Errorf("owner running p1's agent 2 s after p1 was deleted elsewhere: %d, want 404", status)
	}
	if n := w.api.agents.reg.Count(); n != 2 {
		t.Errorf("registry holds %d agents, want 2 (p1's agentP1 dropped; p2's and p1's unused open agent loaded)", n)
	}
}

// TestPrincipalLifecycleOverAPI: owners list principals, disable one
// (its key is refused at once), enable it again, delete it (its keys
// revoked); every change is audited.
func TestPrincipalLifecycleOverAPI(t *testing.T) {
	w := newWorld(t)
	user := w.principalOf(w.keys["user"])
	status, body := w.do("owner", "GET", "/api/v1/principals?project_id=p1", "")
	if status != http.StatusOK || !strings.Contains(string(body), user) || strings.Contains(string(body), w.principalOf(w.keys["p2admin"])) {
		t.Fatalf("list p1's principals: %d %s", status, body)
	}
	status, body = w.do("owner", "GET", "/api/v1/principals?role=owner", "")
	if status != http.StatusOK || !strings.Contains(string(body), w.principalOf(w.keys["owner"])) || strings.Contains(string(body), user) {
		t.Errorf("list owners: %d %s", status, body)
	}
	if status, _ := w.do("owner", "GET", "/api/v1/principals?role=root", ""); status != http.StatusBadRequest {
		t.Errorf("list with an unknown role: %d, want 400", status)
	}

	if status, body := w.do("owner", "POST", "/api/v1/principals/"+user+"/disable", ""); status != http.StatusOK || !strings.Contains(string(body), `"disabled_at"`) {
		t.Fatalf("disable: %d %s", status, body)
	}
	if status, _ := w.do("user", "GET", "/api/v1/agents", ""); status != http.StatusUnauthorized {
		t.Errorf("key of a disabled principal: %d, want 401", status)
	}
	if status, body := w.do("owner", "POST", "/api/v1/principals/"+user+"/enable", ""); status != http.StatusOK || strings.Contains(string(body), `"disabled_at"`) {
		t.Fatalf("enable: %d %s", status, body)
	}
	if status, _ := w.do("user", "GET", "/api/v1/agents", ""); status != http.StatusOK {
		t.Errorf("key of an enabled principal: %d, want 200", status)
	}

	status, body = w.do("owner", "DELETE", "/api/v1/principals/"+user, "")
	if status != http.StatusOK || !strings.Contains(string(body), keyIDOf(t, w.keys["user"])) {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, _ := w.do("user", "GET", "/api/v1/agents", ""); status != http.StatusUnauthorized {
		t.Errorf("key of a deleted principal: %d, want 401", status)
	}
	k, err := w.store.APIKey(t.Context(), keyIDOf(t, w.keys["user"]))
	if err != nil || k.RevokedAt == nil {
		t.Errorf("key of a deleted principal: %+v, %v; want revoked", k, err)
	}
	for _, path := range []string{"/disable", "/enable"} {
		if status, _ := w.do("owner", "POST", "/api/v1/principals/"+user+path, ""); status != http.StatusConflict {
			t.Errorf("POST %s of a deleted principal: %d, want 409", path, status)
		}
	}
	for _, path := range []string{"/api/v1/principals/nobody/disable", "/api/v1/principals/bad%20id/disable"} {
		if status, _ := w.do("owner", "POST", path, ""); status != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, status)
		}
	}

	for _, action := range []string{"principal.disable", "principal.enable", "principal.delete"} {
		recs := w.trail(audit.Filter{Action: action, Outcome: audit.OutcomeSuccess})
		if len(recs) != 1 || recs[0].Resource != "principal/"+user || recs[0].PrincipalID != w.principalOf(w.keys["owner"]) {
			t.Errorf("%s records: %+v", action, recs)
		}
	}
	if recs := w.trail(audit.Filter{Action: "principal.delete", Outcome: audit.OutcomeSuccess}); len(recs) == 1 && recs[0].Details["revoked_key_ids"] != keyIDOf(t, w.keys["user"]) {
		t.Errorf("principal.delete record names revoked keys %q", recs[0].Details["revoked_key_ids"])
	}
	if recs := w.trail(audit.Filter{Action: "principal.list"}); len(recs) != 3 {
		t.Errorf("principal.list records: %d, want 3", len(recs))
	}
}

// TestLastOwnerStays: the only owner cannot disable or delete itself;
// once another owner has a key it can, and its own key stops at once.
func TestLastOwnerStays(t *testing.T) {
	w := newWorld(t)
	owner := w.principalOf(w.keys["owner"])
	for _, req := range []struct{ method, path string }{
		{"POST", "/api/v1/principals/" + owner + "/disable"},
		{"DELETE", "/api/v1/principals/" + owner},
	} {
		status, body := w.do("owner", req.method, req.path, "")
		if _, msg, _ := errorOf(t, body); status != http.StatusConflict || !strings.Contains(msg, "last enabled owner") || !strings.Contains(msg, "--role owner") {
			t.Errorf("%s %s of the only owner: %d %s", req.method, req.path, status, body)
		}
	}
	if status, _ := w.do("owner", "GET", "/api/v1/projects", ""); status != http.StatusOK {
		t.Fatalf("the owner after refused changes: %d", status)
	}
	w.keys["owner2"] = w.key("", core.RoleOwner, nil, nil, nil)
	if status, body := w.do("owner", "DELETE", "/api/v1/principals/"+owner, ""); status != http.StatusOK {
		t.Fatalf("owner deleting itself with another owner: %d %s", status, body)
	}
	if status, _ := w.do("owner", "GET", "/api/v1/projects", ""); status != http.StatusUnauthorized {
		t.Errorf("the deleted owner's key: %d, want 401", status)
	}
	if status, _ := w.do("owner2", "GET", "/api/v1/projects", ""); status != http.StatusOK {
		t.Errorf("the remaining owner: %d, want 200", status)
	}
}
