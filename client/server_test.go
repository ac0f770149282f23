package client_test

// Tests of the client against the real API (internal/api on a real
// SQLite store, runs in the test sandbox backend that echoes), where the
// client_test.go stand-ins cannot tell what the server really sends.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/registry"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// realServer serves the API over loopback with the agents named in
// names (agent id → name) deployed in project p1, and returns its URL and
// an admin key of p1. Everything stops when t ends.
func realServer(t *testing.T, names map[string]string) (string, string) {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, keyring.Master{Key: make([]byte, keyring.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	st.SetSealer(kr)
	reg, err := registry.New(st, t.TempDir(), bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := executor.New(executor.Config{Backend: sandboxtest.EchoBackend{}, Interpreters: []executor.Interpreter{{Python: "python3", ShimPath: "/unused"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Shutdown(context.Background()) })
	now := time.Now().UTC()
	if err := st.CreateProject(ctx, &core.Project{ID: "p1", Name: "p1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for id, name := range names {
		if _, err := reg.DeployDir(ctx, agentDir(t, id, name), "p1"); err != nil {
			t.Fatal(err)
		}
	}
	token, keyID, hash := apikey.New()
	p := &core.Principal{ID: "pr-" + keyID, ProjectID: "p1", Name: "admin", Kind: core.PrincipalService, Role: core.RoleAdmin, CreatedAt: now}
	if err := st.CreatePrincipal(ctx, p); err != nil {
		t.Fatal(err)
	}
	exp := now.Add(time.Hour)
	if err := st.CreateAPIKey(ctx, &core.APIKey{ID: keyID, PrincipalID: p.ID, ProjectID: "p1", Name: "k", Hash: hash, CreatedAt: now, ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	a := api.New(api.Deps{Store: st, Registry: reg, Exec: ex, Auth: auth.New(auth.Config{Store: st}), Block: api.BlockPolicy{After: -1}})
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { a.WaitTeardown(context.Background()) })
	return srv.URL, token
}

// agentDir writes an agent named name with an "echo" entrypoint.
func agentDir(t *testing.T, id, name string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"agent_name": %q, "agent_id": %q,
  "agent_architecture": {"entrypoints": [{"file": "main.py", "module": "echo", "tag": "echo"}]},
  "auth_settings": {"type": "api_key"}}`, name, id)
	for f, body := range map[string]string{"runagent.config.json": cfg, "main.py": "def echo(*a): return a\n"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestInvocationAgentName: the invocations the server lists and the one
// it shows carry the name of the agent that ran them, which the client
// reads into Invocation.AgentName, each its own agent's.
func TestInvocationAgentName(t *testing.T) {
	agents := map[string]string{
		"aaaaaaaa-aaaa-4aaa-8aaa-000000000001": "trip-planner",
		"aaaaaaaa-aaaa-4aaa-8aaa-000000000002": "support-bot",
	}
	url, key := realServer(t, agents)
	c, err := client.New(url, client.WithAPIKey(key))
	if err != nil {
		t.Fatal(err)
	}
	for id, name := range agents {
		res, err := c.Run(t.Context(), id, client.RunRequest{Tag: "echo", Args: []any{"hi"}})
		if err != nil {
			t.Fatalf("run %s: %v", name, err)
		}
		list, err := c.Invocations(t.Context(), id, client.ListOptions{})
		if err != nil {
			t.Fatalf("invocations of %s: %v", name, err)
		}
		if len(list.Invocations) != 1 || list.Invocations[0].ID != res.InvocationID {
			t.Fatalf("invocations of %s: %+v, want the one run %s", name, list.Invocations, res.InvocationID)
		}
		if got := list.Invocations[0].AgentName; got != name {
			t.Errorf("the listed invocation's AgentName is %q, want %q", got, name)
		}
		inv, err := c.Invocation(t.Context(), res.InvocationID)
		if err != nil {
			t.Fatalf("invocation %s: %v", res.InvocationID, err)
		}
		if inv.AgentName != name || inv.AgentID != id {
			t.Errorf("the invocation's agent is %q (%s), want %q (%s)", inv.AgentName, inv.AgentID, name, id)
		}
	}
}
