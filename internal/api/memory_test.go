package api

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/memory"
)

// withMemory gives w's API a real memory Manager (loop-mounted, encrypted
// stores in a temporary directory).
func (w *world) withMemory(t *testing.T) *memory.Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("uid %d may not attach loop devices or mount file systems, which persistent memory needs (the server refuses it without root as well); run as root", os.Geteuid())
	}
	kr, err := keyring.Open(t.Context(), w.store, keyring.Master{Key: make([]byte, keyring.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := memory.New(memory.Options{Dir: filepath.Join(t.TempDir(), "memory"), Store: w.store, Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	clock := func() time.Time { return w.clock }
	w.api = New(Deps{Store: w.store, Registry: w.reg, Exec: w.api.runs.exec, Auth: auth.New(auth.Config{Store: w.store, Now: clock}),
		Now: clock, Audit: w.audit, AuditStore: w.store, Block: BlockPolicy{After: -1}, Memory: m})
	return m
}

// TestMemoryAdmin: an admin of the agent's project lists a user's store,
// exports it as a tar archive and deletes it; others get 403 or 404; each
// is audited.
func TestMemoryAdmin(t *testing.T) {
	w := newWorld(t)
	m := w.withMemory(t)
	l, err := m.Acquire(t.Context(), memory.Key{Project: "p1", Agent: agentP1, User: "alice"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "notes.txt"), []byte("likes tea"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	base := "/api/v1/agents/" + agentP1 + "/memory"

	status, body := w.do("admin", "GET", base, "")
	var list struct {
		Data struct {
			Memories []memoryEntry `json:"memories"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); status != http.StatusOK || err != nil || len(list.Data.Memories) != 1 {
		t.Fatalf("list = %d %s", status, body)
	}
	if e := list.Data.Memories[0]; e.UserID != "alice" || e.Files != 1 || e.UsedBytes <= 0 || e.CapBytes != memory.DefaultCapMB<<20 || e.LastUsedAt == "" {
		t.Errorf("list entry = %+v, want alice with 1 file", e)
	}
	if bytes.Contains(body, []byte("sealed")) || bytes.Contains(body, []byte("image")) {
		t.Errorf("list shows the store's key or image: %s", body)
	}
	for _, cred := range []string{"viewer", "user", "p2admin"} {
		if status, _ := w.do(cred, "GET", base, ""); status != http.StatusForbidden && status != http.StatusNotFound {
			t.Errorf("list as %s = %d, want 403 or 404", cred, status)
		}
	}

	r := httptest.NewRequest("GET", base+"/alice/export", nil)
	r.RemoteAddr = "192.0.2.1:40000"
	r.Header.Set("Authorization", "Bearer "+w.keys["admin"])
	rec := httptest.NewRecorder()
	w.api.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-tar" {
		t.Fatalf("export = %d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	tr := tar.NewReader(rec.Body)
	h, err := tr.Next()
	if err != nil || h.Name != "notes.txt" {
		t.Fatalf("export's first entry = %v, %v; want notes.txt", h, err)
	}
	if b, _ := io.ReadAll(tr); string(b) != "likes tea" {
		t.Errorf("exported notes.txt = %q", b)
	}
	if status, body := w.do("admin", "GET", base+"/bob/export", ""); status != http.StatusNotFound {
		t.Errorf("export of a user without memory = %d %s, want 404", status, body)
	}
	if status, _ := w.do("viewer", "GET", base+"/alice/export", ""); status != http.StatusForbidden {
		t.Errorf("export as a viewer = %d, want 403", status)
	}

	if status, body := w.do("admin", "DELETE", base+"/alice", ""); status != http.StatusOK {
		t.Fatalf("delete = %d %s", status, body)
	}
	if status, _ := w.do("admin", "DELETE", base+"/alice", ""); status != http.StatusNotFound {
		t.Errorf("second delete = %d, want 404", status)
	}
	if _, body := w.do("admin", "GET", base, ""); !bytes.Contains(body, []byte(`"memories":[]`)) {
		t.Errorf("list after delete = %s", body)
	}

	for _, action := range []string{"memory.list", "memory.export", "memory.delete"} {
		if recs := w.trail(audit.Filter{Action: action, Outcome: audit.OutcomeSuccess}); len(recs) == 0 {
			t.Errorf("no successful %s in the audit trail", action)
		}
	}
	exports := w.trail(audit.Filter{Action: "memory.export", Outcome: audit.OutcomeSuccess})
	if len(exports) != 1 || exports[0].Resource != "agent/"+agentP1+"/memory/alice" {
		t.Errorf("memory.export records = %+v, want one for agent/%s/memory/alice", exports, agentP1)
	}
}

// TestDeletionErasesMemory: deleting a project erases every store of its
// agents, and deleting an agent every store of that agent; other
// projects' stores stay.
func TestDeletionErasesMemory(t *testing.T) {
	w := newWorld(t)
	m := w.withMemory(t)
	keys := []memory.Key{
		{Project: "p2", Agent: agentP2, User: "alice"},
		{Project: "p2", Agent: agentP2, User: "bob"},
		{Project: "p1", Agent: agentP1, User: "alice"},
	}
	for _, k := range keys {
		l, err := m.Acquire(t.Context(), k, 0)
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
	if status, body := w.do("owner", "DELETE", "/api/v1/projects/p2?force=true", ""); status != http.StatusOK {
		t.Fatalf("delete project p2 = %d %s", status, body)
	}
	if ms, err := m.List(t.Context(), "p2", agentP2, "", 0); err != nil || len(ms) != 0 {
		t.Errorf("p2's stores after its deletion: %d, %v; want none", len(ms), err)
	}
	if ms, err := m.List(t.Context(), "p1", agentP1, "", 0); err != nil || len(ms) != 1 {
		t.Fatalf("p1's stores after p2's deletion: %d, %v; want alice's", len(ms), err)
	}
	if status, body := w.do("admin", "DELETE", "/api/v1/agents/"+agentP1, ""); status != http.StatusOK {
		t.Fatalf("delete agent = %d %s", status, body)
	}
	if ms, err := m.List(t.Context(), "p1", agentP1, "", 0); err != nil || len(ms) != 0 {
		t.Errorf("the agent's stores after its deletion: %d, %v; want none", len(ms), err)
	}
}
