package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/registry"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/store/sqlite"
)

const (
	agentP1 = "11111111-1111-4111-8111-111111111111"
	agentP2 = "22222222-2222-4222-8222-222222222222"
	openID  = "33333333-3333-4333-8333-333333333333" // auth_settings none, in p1
)

// writeAgentDir writes an agent project with a plain and a streaming
// echo entrypoint.
func writeAgentDir(t testing.TB, id, authType string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"agent_name": "a-%s", "agent_id": %q,
  "agent_architecture": {"entrypoints": [
    {"file": "main.py", "module": "echo", "tag": "echo"},
    {"file": "main.py", "module": "echo_stream", "tag": "echo_stream"}]},
  "auth_settings": {"type": %q}}`, id[:4], id, authType)
	if err := os.WriteFile(filepath.Join(dir, "runagent.config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.py"), []byte("def echo(*a): return a\ndef echo_stream(*a): yield from a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// world is an API with real SQLite, two projects, agents in each, an
// invocation in p1 and a key for every role.
type world struct {
	t     testing.TB
	api   *API
	store *sqlite.DB
	keys  map[string]string // credential name → token
	p1Dir string
	inv   string // an invocation of agentP1
	now   time.Time
	// clock is what the API and the authenticator take as now; tests
	// move it forward.
	clock time.Time
	audit *audit.Log
	// codeDir is where the registry unpacks agents.
	codeDir string
	reg     *registry.Registry
	doomed  int // agents deployed to be deleted
	// sessions are the console's sessions (session_test.go).
	sessions *session.Manager
}

// newWorld builds the API on a fresh store; opts may change its Deps
// before it is built (oidc_signin_test.go adds an issuer).
func newWorld(t testing.TB, opts ...func(*Deps)) *world {
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
	codeDir := t.TempDir()
	reg, err := registry.New(st, codeDir, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := executor.New(executor.Config{Backend: sandboxtest.EchoBackend{}, Interpreters: []executor.Interpreter{{Python: "python3", ShimPath: "/unused"}}, PoolSize: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Shutdown(context.Background()) })
	w := &world{t: t, store: st, keys: map[string]string{}, now: time.Now().UTC(), codeDir: codeDir, reg: reg}
	w.clock = w.now
	clock := func() time.Time { return w.clock }
	auditKey := kr.MACKey("audit")
	trail, err := audit.New(st, auditKey, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	w.audit = trail
	w.sessions = session.New(session.Config{Store: st, Now: clock})
	deps := Deps{Store: st, Registry: reg, Exec: ex, Auth: auth.New(auth.Config{Store: st, Now: clock}), Anonymous: true, Now: clock,
		Sessions: w.sessions,
		Audit:    trail, AuditStore: st, AuditKey: auditKey, Keyring: kr,
		// The matrix fails credentials by the hundred from one address;
		// TestTemporaryBlocks turns blocking on.
		Block: BlockPolicy{After: -1}}
	for _, o := range opts {
		o(&deps)
	}
	w.api = New(deps)
	t.Cleanup(func() { w.api.WaitTeardown(context.Background()) })

	for _, p := range []string{"p1", "p2"} {
		if err := st.CreateProject(ctx, &core.Project{ID: p, Name: p, CreatedAt: w.now}); err != nil {
			t.Fatal(err)
		}
	}
	w.p1Dir = writeAgentDir(t, agentP1, "api_key")
	for _, a := range []struct{ dir, project string }{
		{w.p1Dir, "p1"},
		{writeAgentDir(t, agentP2, "api_key"), "p2"},
		{writeAgentDir(t, openID, "none"), "p1"},
	} {
		if _, err := reg.DeployDir(ctx, a.dir, a.project); err != nil {
			t.Fatal(err)
		}
	}
	// One key per role in p1, an admin of p2, an owner; and keys that
	// must fail.
	for _, role := range []core.Role{core.RoleViewer, core.RoleUser, core.RoleStreamer, core.RoleAdmin} {
		w.keys[string(role)] = w.key("p1", role, nil, nil, nil)
	}
	w.keys["p2admin"] = w.key("p2", core.RoleAdmin, nil, nil, nil)
	w.keys["owner"] = w.key("", core.RoleOwner, nil, nil, nil)
	past := w.now.Add(-time.Minute)
	w.keys["expired"] = w.key("p1", core.RoleAdmin, nil, nil, &past)
	revoked := w.key("p1", core.RoleAdmin, nil, nil, nil)
	k, _ := apikey.Parse(revoked)
	if err := st.RevokeAPIKey(ctx, k.ID, past); err != nil {
		t.Fatal(err)
	}
	w.keys["revoked"] = revoked
	good := w.keys["admin"]
	w.keys["wrong-secret"] = forge(t, good)
	unknown, _, _ := apikey.New()
	w.keys["unknown"] = unknown
	w.keys["malformed"] = good[:len(good)-1]
	w.keys["jwt-garbage"] = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
	w.keys["none"] = ""

	// An invocation of agentP1, made by the p1 user.
	status, body := w.do("user", http.MethodPost, "/api/v1/agents/"+agentP1+"/run", `{"entrypoint_tag":"echo","input_args":[1]}`)
	if status != http.StatusOK {
		t.Fatalf("setup run: %d %s", status, body)
	}
	var env struct {
		InvocationID string `json:"invocation_id"`
	}
	json.Unmarshal(body, &env)
	w.inv = env.InvocationID
	return w
}

// current returns the current version of agent.
func (w *world) current(agent string) string {
	w.t.Helper()
	a, err := w.store.Agent(w.t.Context(), agent)
	if err != nil {
		w.t.Fatal(err)
	}
	return a.CurrentVersion
}

// doomedAgent deploys a new agent into p1, to be deleted, and returns its
// id.
func (w *world) doomedAgent() string {
	w.t.Helper()
	w.doomed++
	id := fmt.Sprintf("dddddddd-dddd-4ddd-8ddd-%012d", w.doomed)
	if _, err := w.reg.DeployDir(w.t.Context(), writeAgentDir(w.t, id, "api_key"), "p1"); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// build stores a build record of agent in project and returns its id.
func (w *world) build(agent, project string) string {
	w.t.Helper()
	b := &core.Build{ID: uuid.NewString(), AgentID: agent, ProjectID: project, Version: "sha256:00", Status: core.BuildSucceeded,
		Log: "Successfully installed attrs-23.1.0\n", StartedAt: w.now, FinishedAt: w.now}
	if err := w.store.PutBuild(w.t.Context(), b); err != nil {
		w.t.Fatal(err)
	}
	return b.ID
}

// key stores a key for a new principal and returns its token.
func (w *world) key(project string, role core.Role, scopes []core.Permission, agents []string, expires *time.Time) string {
	w.t.Helper()
	ctx := w.t.Context()
	token, id, hash := apikey.New()
	p := &core.Principal{ID: "pr-" + id, ProjectID: project, Name: string(role), Kind: core.PrincipalService, Role: role, CreatedAt: w.now}
	if err := w.store.CreatePrincipal(ctx, p); err != nil {
		w.t.Fatal(err)
	}
	if expires == nil {
		e := w.now.Add(24 * time.Hour)
		expires = &e
	}
	k := &core.APIKey{ID: id, PrincipalID: p.ID, ProjectID: project, Name: "k", Hash: hash, Scopes: scopes, Agents: agents, CreatedAt: w.now, ExpiresAt: expires}
	if err := w.store.CreateAPIKey(ctx, k); err != nil {
		w.t.Fatal(err)
	}
	return token
}

// principalOf returns the id of the principal of a key made by key.
func (w *world) principalOf(token string) string {
	w.t.Helper()
	k, err := apikey.Parse(token)
	if err != nil {
		w.t.Fatal(err)
	}
	return "pr-" + k.ID
}

// forge returns a well-formed key with token's id and another secret:
// it passes the format check and fails the hash.
func forge(t testing.TB, token string) string {
	t.Helper()
	k, err := apikey.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	return apikey.NewForID(k.ID)
}

func (w *world) do(cred, method, path, body string) (int, []byte) {
	w.t.Helper()
	return w.doFrom("192.0.2.1", cred, method, path, body)
}

// doFrom is do from the client address ip.
func (w *world) doFrom(ip, cred, method, path, body string) (int, []byte) {
	w.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = net.JoinHostPort(ip, "40000")
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
		if strings.HasSuffix(path, "/api/v1/agents") {
			r.Header.Set("Content-Type", "application/gzip")
		}
	}
	if strings.HasSuffix(path, "/run-stream") {
		r.Header.Set("Accept", "text/event-stream")
	}
	if tok := w.keys[cred]; tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	w.api.ServeHTTP(rec, r)
	return rec.Code, rec.Body.Bytes()
}

// dialWS opens the WebSocket stream route as cred over a real loopback
// server and returns 101 if the handshake succeeded, else its status.
func (w *world) dialWS(cred, path string) int {
	w.t.Helper()
	srv := httptest.NewServer(w.api)
	defer srv.Close()
	h := http.Header{}
	if tok := w.keys[cred]; tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+path, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp == nil {
			w.t.Fatalf("dial %s: %v", path, err)
		}
		return resp.StatusCode
	}
	c.Close(websocket.StatusNormalClosure, "")
	return http.StatusSwitchingProtocols
}

// matrixRow is how the matrix exercises one declared route.
type matrixRow struct {
	method, path string
	body         func(w *world) string
	// want maps credential classes to the expected status; classes not
	// listed expect 401 (every failing credential, and no credential).
	want map[string]int
}

const (
	ok200 = http.StatusOK
	ok201 = http.StatusCreated
	e403  = http.StatusForbidden
	e404  = http.StatusNotFound
	e406  = http.StatusNotAcceptable
	e409  = http.StatusConflict
)

// allRoles answers code for each of the p1 roles, the p2 admin and the owner.
func allRoles(p1, p2admin, owner int) map[string]int {
	return map[string]int{"viewer": p1, "user": p1, "streamer": p1, "admin": p1, "p2admin": p2admin, "owner": owner}
}

func with(m map[string]int, kv ...any) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1].(int)
	}
	return out
}

func TestRouteAccessMatrix(t *testing.T) {
	w := newWorld(t)
	pkg, _, err := bundle.Pack(w.p1Dir, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	victim := func(w *world) string { return "" }
	routes := map[string]matrixRow{
		"GET /api/v1/health": {method: "GET", path: "/api/v1/health",
			want: map[string]int{"*": ok200}},
		"GET /api/v1/whoami": {method: "GET", path: "/api/v1/whoami",
			want: allRoles(ok200, ok200, ok200)},
		"POST /api/v1/session": {method: "POST", path: "/api/v1/session",
			want: allRoles(ok201, ok201, ok201)},
		// With a key and no session, there is none to end.
		"DELETE /api/v1/session": {method: "DELETE", path: "/api/v1/session",
			want: allRoles(http.StatusBadRequest, http.StatusBadRequest, http.StatusBadRequest)},
		// Public; without an issuer configured (oidc_signin_test.go has
		// one): an empty list, and nothing to start or finish.
		"GET /api/v1/session/oidc": {method: "GET", path: "/api/v1/session/oidc",
			want: map[string]int{"*": ok200}},
		"GET /api/v1/session/oidc/{id}/start": {method: "GET", path: "/api/v1/session/oidc/x/start",
			want: map[string]int{"*": e404}},
		"GET /api/v1/session/oidc/callback": {method: "GET", path: "/api/v1/session/oidc/callback",
			want: map[string]int{"*": e404}},
		"GET /api/v1/agents": {method: "GET", path: "/api/v1/agents",
			want: allRoles(ok200, ok200, ok200)},
		"POST /api/v1/agents": {method: "POST", path: "/api/v1/agents", body: func(*world) string { return string(pkg) },
			// p2's admin deploys into p2, where p1's agent id is taken.
			want: with(allRoles(e403, http.StatusConflict, ok200), "admin", ok200)},
		"GET /api/v1/agents/{agent_id}/architecture": {method: "GET", path: "/api/v1/agents/" + agentP1 + "/architecture",
			want: allRoles(ok200, e404, ok200)},
		"GET /api/v1/agents/{agent_id}/versions": {method: "GET", path: "/api/v1/agents/" + agentP1 + "/versions",
			want: allRoles(ok200, e404, ok200)},
		"POST /api/v1/agents/{agent_id}/rollback": {method: "POST", path: "/api/v1/agents/" + agentP1 + "/rollback",
			// To the version that is current: nothing changes for the other rows.
			body: func(w *world) string { return fmt.Sprintf(`{"version":%q}`, w.current(agentP1)) },
			want: with(allRoles(e403, e404, ok200), "admin", ok200)},
		"DELETE /api/v1/agents/{agent_id}": {method: "DELETE", path: "/api/v1/agents/{agent}",
			want: with(allRoles(e403, e404, ok200), "admin", ok200)},
		"POST /api/v1/agents/{agent_id}/run": {method: "POST", path: "/api/v1/agents/" + agentP1 + "/run",
			body: func(*world) string { return `{"entrypoint_tag":"echo","input_args":[1]}` },
			want: with(allRoles(ok200, e404, ok200), "viewer", e403, "streamer", e403)},
		"GET /api/v1/agents/{agent_id}/run-stream": {method: "GET", path: "/api/v1/agents/" + agentP1 + "/run-stream",
			want: with(allRoles(http.StatusSwitchingProtocols, e404, http.StatusSwitchingProtocols), "viewer", e403)},
		"POST /api/v1/agents/{agent_id}/run-stream": {method: "POST", path: "/api/v1/agents/" + agentP1 + "/run-stream",
			body: func(*world) string { return `{"entrypoint_tag":"echo_stream","input_args":[1,2]}` },
			want: with(allRoles(ok200, e404, ok200), "viewer", e403)},
		"GET /api/v1/agents/{agent_id}/invocations": {method: "GET", path: "/api/v1/agents/" + agentP1 + "/invocations",
			want: allRoles(ok200, e404, ok200)},
		"GET /api/v1/agents/{agent_id}/invocations/stats": {method: "GET", path: "/api/v1/agents/" + agentP1 + "/invocations/stats",
			want: allRoles(ok200, e404, ok200)},
		"GET /api/v1/invocations": {method: "GET", path: "/api/v1/invocations",
			want: allRoles(ok200, ok200, ok200)},
		"GET /api/v1/invocations/{invocation_id}": {method: "GET", path: "/api/v1/invocations/" + w.inv,
			want: allRoles(ok200, e404, ok200)},
		// Past access control: the run has ended, and the matrix asks for
		// no event stream.
		"POST /api/v1/invocations/{invocation_id}/cancel": {method: "POST", path: "/api/v1/invocations/" + w.inv + "/cancel",
			want: with(allRoles(e409, e404, e409), "viewer", e403, "streamer", e403)},
		"GET /api/v1/invocations/{invocation_id}/stream": {method: "GET", path: "/api/v1/invocations/" + w.inv + "/stream",
			want: allRoles(e406, e404, e406)},
		"GET /api/v1/invocations/{invocation_id}/webhooks": {method: "GET", path: "/api/v1/invocations/" + w.inv + "/webhooks",
			want: allRoles(ok200, e404, ok200)},
		"GET /api/v1/agents/{agent_id}/builds": {method: "GET", path: "/api/v1/agents/" + agentP1 + "/builds",
			want: allRoles(ok200, e404, ok200)},
		"GET /api/v1/builds/{build_id}": {method: "GET", path: "/api/v1/builds/" + w.build(agentP1, "p1"),
			want: allRoles(ok200, e404, ok200)},
		"GET /api/v1/keys": {method: "GET", path: "/api/v1/keys",
			want: with(allRoles(e403, ok200, ok200), "admin", ok200)},
		"POST /api/v1/keys": {method: "POST", path: "/api/v1/keys",
			body: func(*world) string { return `{"name":"new","role":"viewer"}` },
			want: with(allRoles(e403, ok201, ok201), "admin", ok201)},
		"POST /api/v1/keys/{key_id}/revoke": {method: "POST", path: "/api/v1/keys/{victim}/revoke", body: victim,
			want: with(allRoles(e403, e404, ok200), "admin", ok200)},
		"POST /api/v1/keys/{key_id}/rotate": {method: "POST", path: "/api/v1/keys/{victim}/rotate", body: victim,
			want: with(allRoles(e403, e404, ok201), "admin", ok201)},
		"GET /api/v1/projects": {method: "GET", path: "/api/v1/projects",
			want: allRoles(e403, e403, ok200)},
		"GET /api/v1/blocks": {method: "GET", path: "/api/v1/blocks",
			want: allRoles(e403, e403, ok200)},
		"GET /api/v1/metrics": {method: "GET", path: "/api/v1/metrics",
			want: allRoles(e403, e403, ok200)},
		"GET /api/v1/nodes": {method: "GET", path: "/api/v1/nodes",
			want: allRoles(e403, e403, ok200)},
		"GET /api/v1/events": {method: "GET", path: "/api/v1/events",
			want: allRoles(e403, e403, ok200)},
		"GET /api/v1/events/counts": {method: "GET", path: "/api/v1/events/counts",
			want: allRoles(e403, e403, ok200)},
		"DELETE /api/v1/blocks/{client}": {method: "DELETE", path: "/api/v1/blocks/ip:198.51.100.9",
			// Only owners get past access control, to find no such block.
			want: allRoles(e403, e403, e404)},
		"POST /api/v1/projects": {method: "POST", path: "/api/v1/projects",
			body: func(*world) string { return fmt.Sprintf(`{"project_id":"x%d"}`, time.Now().UnixNano()) },
			want: allRoles(e403, e403, ok201)},
		"GET /api/v1/agents/{agent_id}/secrets": {method: "GET", path: "/api/v1/agents/" + agentP1 + "/secrets",
			want: with(allRoles(e403, e404, ok200), "admin", ok200)},
		"PUT /api/v1/agents/{agent_id}/secrets/{name}": {method: "PUT", path: "/api/v1/agents/" + agentP1 + "/secrets/API_TOKEN",
			body: func(*world) string { return `{"value":"s3cret-value"}` },
			want: with(allRoles(e403, e404, ok200), "admin", ok200)},
		"DELETE /api/v1/agents/{agent_id}/secrets/{name}": {method: "DELETE", path: "/api/v1/agents/" + agentP1 + "/secrets/NOPE",
			// Past access control, there is no such secret.
			want: with(allRoles(e403, e404, e404), "admin", e404)},
		// The world keeps no persistent memory: past access control, 404.
		"GET /api/v1/agents/{agent_id}/memory": {method: "GET", path: "/api/v1/agents/" + agentP1 + "/memory",
			want: with(allRoles(e403, e404, e404), "admin", e404)},
		"GET /api/v1/agents/{agent_id}/memory/{user_id}/export": {method: "GET", path: "/api/v1/agents/" + agentP1 + "/memory/alice/export",
			want: with(allRoles(e403, e404, e404), "admin", e404)},
		"DELETE /api/v1/agents/{agent_id}/memory/{user_id}": {method: "DELETE", path: "/api/v1/agents/" + agentP1 + "/memory/alice",
			want: with(allRoles(e403, e404, e404), "admin", e404)},
		"GET /api/v1/audit": {method: "GET", path: "/api/v1/audit?action=key.create",
			want: allRoles(e403, e403, ok200)},
		"GET /api/v1/audit/export": {method: "GET", path: "/api/v1/audit/export",
			want: allRoles(e403, e403, ok200)},
		"GET /api/v1/audit/verify": {method: "GET", path: "/api/v1/audit/verify",
			want: allRoles(e403, e403, ok200)},
		"GET /api/v1/keyring": {method: "GET", path: "/api/v1/keyring",
			want: allRoles(e403, e403, ok200)},
		"POST /api/v1/keyring/rotate": {method: "POST", path: "/api/v1/keyring/rotate",
			want: allRoles(e403, e403, ok200)},
		"PATCH /api/v1/projects/{project_id}": {method: "PATCH", path: "/api/v1/projects/p2",
			body: func(*world) string { return `{"rate_limit":null}` },
			want: allRoles(e403, e403, ok200)},
		"DELETE /api/v1/projects/{project_id}": {method: "DELETE", path: "/api/v1/projects/{project}",
			want: allRoles(e403, e403, ok200)},
		"GET /api/v1/principals": {method: "GET", path: "/api/v1/principals?project_id=p1",
			want: allRoles(e403, e403, ok200)},
		"POST /api/v1/principals/{principal_id}/disable": {method: "POST", path: "/api/v1/principals/{principal}/disable",
			want: allRoles(e403, e403, ok200)},
		"POST /api/v1/principals/{principal_id}/enable": {method: "POST", path: "/api/v1/principals/{principal}/enable",
			want: allRoles(e403, e403, ok200)},
		"DELETE /api/v1/principals/{principal_id}": {method: "DELETE", path: "/api/v1/principals/{principal}",
			want: allRoles(e403, e403, ok200)},
	}
	// Every declared route must be in the matrix.
	for _, rt := range w.api.routes {
		if _, ok := routes[rt.pattern()]; !ok {
			pattern := rt.pattern()
			t.Errorf("route %q has no row in the access matrix: add one", pattern)
		}
	}
	creds := []string{"viewer", "user", "streamer", "admin", "p2admin", "owner",
		"expired", "revoked", "wrong-secret", "unknown", "malformed", "jwt-garbage", "none"}
	for pattern, rt := range routes {
		if _, ok := w.api.routeFor(pattern); !ok {
			t.Errorf("matrix row %q is not a declared route", pattern)
			continue
		}
		for _, cred := range creds {
			want, ok := rt.want[cred]
			if !ok {
				want = rt.want["*"]
				if want == 0 {
					want = http.StatusUnauthorized
				}
			}
			path := rt.path
			if strings.Contains(path, "{victim}") {
				vk, _ := apikey.Parse(w.key("p1", core.RoleViewer, nil, nil, nil))
				path = strings.Replace(path, "{victim}", vk.ID, 1)
			}
			if strings.Contains(path, "{principal}") {
				path = strings.Replace(path, "{principal}", w.principalOf(w.key("p1", core.RoleViewer, nil, nil, nil)), 1)
			}
			if strings.Contains(path, "{agent}") {
				path = strings.Replace(path, "{agent}", w.doomedAgent(), 1)
			}
			if strings.Contains(path, "{project}") {
				p := fmt.Sprintf("doomed-%d", time.Now().UnixNano())
				if err := w.store.CreateProject(t.Context(), &core.Project{ID: p, CreatedAt: w.now}); err != nil {
					t.Fatal(err)
				}
				path = strings.Replace(path, "{project}", p, 1)
			}
			body := ""
			if rt.body != nil {
				body = rt.body(w)
			}
			var status int
			var resp []byte
			if strings.HasSuffix(pattern, "GET /api/v1/agents/{agent_id}/run-stream") {
				status = w.dialWS(cred, path)
			} else {
				status, resp = w.do(cred, rt.method, path, body)
			}
			if status != want {
				t.Errorf("%s as %s: status %d, want %d (%s)", pattern, cred, status, want, resp)
			}
		}
	}
}

// TestUnauthorizedIsUniform: every failing credential gets the same 401
// body and header.
func TestUnauthorizedIsUniform(t *testing.T) {
	w := newWorld(t)
	var first string
	for _, cred := range []string{"expired", "revoked", "wrong-secret", "unknown", "malformed", "jwt-garbage", "none"} {
		r := httptest.NewRequest("GET", "/api/v1/invocations/"+w.inv, nil)
		if tok := w.keys[cred]; tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		w.api.ServeHTTP(rec, r)
		took := time.Since(start)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: status %d, WWW-Authenticate %q", cred, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
		if took < auth.FailureFloor {
			t.Errorf("%s: answered in %v, before the failure floor %v", cred, took, auth.FailureFloor)
		}
		var env map[string]any
		json.Unmarshal(rec.Body.Bytes(), &env)
		delete(env, "request_id")
		delete(env, "timestamp")
		b, _ := json.Marshal(env)
		if first == "" {
			first = string(b)
		} else if string(b) != first {
			t.Errorf("%s: body %s differs from %s", cred, b, first)
		}
		if tok := w.keys[cred]; len(tok) > 8 && bytes.Contains(rec.Body.Bytes(), []byte(tok)) {
			t.Errorf("%s: the credential is echoed in the response", cred)
		}
	}
}

// TestKeyScopesAndAgents: a key's scopes and agent list narrow its role.
func TestKeyScopesAndAgents(t *testing.T) {
	w := newWorld(t)
	w.keys["read-only-admin"] = w.key("p1", core.RoleAdmin, []core.Permission{core.PermRead}, nil, nil)
	w.keys["p1-open-only"] = w.key("p1", core.RoleUser, nil, []string{openID}, nil)
	run := `{"entrypoint_tag":"echo","input_args":[1]}`
	for _, c := range []struct {
		cred, path string
		want       int
	}{
		{"read-only-admin", "/api/v1/agents/" + agentP1 + "/run", e403},
		{"p1-open-only", "/api/v1/agents/" + agentP1 + "/run", e404},
		{"p1-open-only", "/api/v1/agents/" + openID + "/run", ok200},
	} {
		if status, body := w.do(c.cred, "POST", c.path, run); status != c.want {
			t.Errorf("%s POST %s: %d, want %d (%s)", c.cred, c.path, status, c.want, body)
		}
	}
	if status, body := w.do("read-only-admin", "GET", "/api/v1/agents/"+agentP1+"/architecture", ""); status != ok200 {
		t.Errorf("read-only admin reading: %d %s", status, body)
	}
	// The agent listing shows only what the key may see.
	_, body := w.do("p1-open-only", "GET", "/api/v1/agents", "")
	if !bytes.Contains(body, []byte(openID)) || bytes.Contains(body, []byte(agentP1)) || bytes.Contains(body, []byte(agentP2)) {
		t.Errorf("agent list of a key limited to %s: %s", openID, body)
	}
}

// TestAnonymousLoopbackUse: without a credential, only agents with
// auth_settings none can be called, and only their agent routes.
func TestAnonymousLoopbackUse(t *testing.T) {
	w := newWorld(t)
	run := `{"entrypoint_tag":"echo","input_args":[1]}`
	if status, body := w.do("none", "POST", "/api/v1/agents/"+openID+"/run", run); status != ok200 {
		t.Errorf("anonymous run of an auth-none agent: %d %s", status, body)
	}
	for _, path := range []string{"/api/v1/agents/" + agentP1 + "/run", "/api/v1/agents/" + agentP2 + "/run", "/api/v1/agents/44444444-4444-4444-8444-444444444444/run"} {
		if status, _ := w.do("none", "POST", path, run); status != http.StatusUnauthorized {
			t.Errorf("anonymous POST %s: %d, want 401", path, status)
		}
	}
	if status, _ := w.do("none", "GET", "/api/v1/agents/"+openID+"/invocations", ""); status != http.StatusUnauthorized {
		t.Errorf("anonymous listing of invocations: %d, want 401", status)
	}
}

// TestKeyLifecycleOverAPI: create shows a key once and it works; list
// never shows secrets or hashes; rotate overlaps; revoke ends it.
func TestKeyLifecycleOverAPI(t *testing.T) {
	w := newWorld(t)
	status, body := w.do("admin", "POST", "/api/v1/keys", `{"name":"ci","role":"user","scopes":["read","write"]}`)
	if status != ok201 {
		t.Fatalf("create: %d %s", status, body)
	}
	var created struct {
		Data struct {
			Key     string `json:"key"`
			Details struct {
				ID string `json:"key_id"`
			} `json:"details"`
		} `json:"data"`
	}
	json.Unmarshal(body, &created)
	tok, id := created.Data.Key, created.Data.Details.ID
	w.keys["ci"] = tok
	if status, _ := w.do("ci", "POST", "/api/v1/agents/"+agentP1+"/run", `{"entrypoint_tag":"echo"}`); status != ok200 {
		t.Errorf("the new key cannot run: %d", status)
	}
	_, list := w.do("admin", "GET", "/api/v1/keys", "")
	if bytes.Contains(list, []byte(tok)) || bytes.Contains(list, []byte(tok[len(tok)-20:])) || !bytes.Contains(list, []byte(id)) {
		t.Errorf("key list shows a secret or lacks the key: %s", list)
	}
	// An admin cannot mint an owner key or grant what the role lacks.
	if status, _ := w.do("admin", "POST", "/api/v1/keys", `{"name":"x","role":"owner"}`); status != e403 {
		t.Errorf("admin creating an owner key: %d, want 403", status)
	}
	if status, _ := w.do("admin", "POST", "/api/v1/keys", `{"name":"x","role":"viewer","scopes":["write"]}`); status != http.StatusBadRequest {
		t.Errorf("viewer key with write scope: %d, want 400", status)
	}
	if status, _ := w.do("admin", "POST", "/api/v1/keys", `{"name":"x","kind":"robot"}`); status != http.StatusBadRequest {
		t.Errorf("unknown principal kind: %d, want 400", status)
	}
	if status, body := w.do("admin", "POST", "/api/v1/keys", `{"name":"alice","kind":"user","role":"streamer"}`); status != ok201 {
		t.Errorf("key for a user principal: %d %s", status, body)
	}
	if status, _ := w.do("admin", "POST", "/api/v1/keys", `{"name":"x","bogus":1}`); status != http.StatusBadRequest {
		t.Errorf("unknown field: %d, want 400", status)
	}

	status, body = w.do("admin", "POST", "/api/v1/keys/"+id+"/rotate", `{"overlap_hours": 1}`)
	if status != ok201 {
		t.Fatalf("rotate: %d %s", status, body)
	}
	json.Unmarshal(body, &created)
	w.keys["ci2"] = created.Data.Key
	for _, c := range []string{"ci", "ci2"} {
		if status, _ := w.do(c, "GET", "/api/v1/agents", ""); status != ok200 {
			t.Errorf("%s during the overlap: %d", c, status)
		}
	}
	// After the overlap only the successor works.
	w.clock = w.clock.Add(61 * time.Minute)
	if status, _ := w.do("ci", "GET", "/api/v1/agents", ""); status != http.StatusUnauthorized {
		t.Errorf("rotated key after the overlap: %d, want 401", status)
	}
	if status, _ := w.do("ci2", "GET", "/api/v1/agents", ""); status != ok200 {
		t.Errorf("successor after the overlap: %d", status)
	}
	// Revocation is refused on the next request.
	succID, _ := apikey.Parse(w.keys["ci2"])
	if status, body := w.do("admin", "POST", "/api/v1/keys/"+succID.ID+"/revoke", ""); status != ok200 {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if status, _ := w.do("ci2", "GET", "/api/v1/agents", ""); status != http.StatusUnauthorized {
		t.Errorf("revoked key: %d, want 401", status)
	}
	if slices.Contains([]string{"", tok}, created.Data.Key) {
		t.Error("rotation returned no new key")
	}
}

// setLimiter makes the API limit rates with l, def being the limit per
// principal or address.
func (a *API) setLimiter(l ratelimit.Limiter, def ratelimit.Limit) {
	a.gw.limiter, a.gw.rates.limiter, a.gw.rates.rateLimit, a.runs.limiter = l, l, def, l
}

// setEvents makes the API record security events in e.
func (a *API) setEvents(e core.EventEmitter) { a.gw.events = e }

// setBlocker makes the API block clients with b.
func (a *API) setBlocker(b Blocks) { a.gw.block, a.ops.block = b, b }
