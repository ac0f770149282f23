package server

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/postgres"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// TestServeOnPostgres: two nodes on one PostgreSQL store (with one master
// key, as nodes of a cluster share it) both serve runs, record them in
// the one store, and append to one audit trail that verifies whole.
func TestServeOnPostgres(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	node := func() *Server {
		return serve(t, Config{AgentDirs: []string{"../../examples/hello"}, Version: "test", Auth: AuthNone,
			StoreURL: url, Keyring: KeyringConfig{MasterKeyFile: keyFile}})
	}
	a := node()
	b := node()
	if _, ok := a.store.(*postgres.DB); !ok {
		t.Fatalf("store is %T, want *postgres.DB", a.store)
	}
	for _, s := range []*Server{a, b, a} {
		postRun(t, http.DefaultClient, s.URL()+"/api/v1/agents/"+helloID+"/run", echoBody)
	}
	invs, err := b.store.Invocations(t.Context(), core.InvocationFilter{AgentID: helloID})
	if err != nil {
		t.Fatal(err)
	}
	if len(invs) != 3 {
		t.Errorf("invocations in the store = %d, want the 3 runs of both nodes", len(invs))
	}
	for _, s := range []*Server{a, b} {
		if err := s.audit.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.Verify(t.Context(), a.store, a.keyring.MACKey(AuditKeyPurpose))
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if !rep.OK || rep.Checked == 0 {
		t.Errorf("Verify = %+v, want one trail that verifies", rep)
	}
}
