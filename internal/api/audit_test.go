package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// trail returns the audit records matching f.
func (w *world) trail(f audit.Filter) []audit.Record {
	w.t.Helper()
	f.Limit = audit.MaxLimit
	recs, err := audit.Records(w.t.Context(), w.store, f)
	if err != nil {
		w.t.Fatal(err)
	}
	return recs
}

// TestAuditRecordsActions: changes are recorded before (started) and
// after (their outcome), reads and runs after, denials too; each record
// names the principal, key, resource, request and what the handler
// added; a secret's value is kept only as an HMAC; the chain verifies.
func TestAuditRecordsActions(t *testing.T) {
	w := newWorld(t)
	status, body := w.do("admin", "POST", "/api/v1/keys", `{"name":"ci","role":"viewer"}`)
	if status != http.StatusCreated {
		t.Fatalf("create key: %d %s", status, body)
	}
	newKey := keyFrom(t, body)
	recs := w.trail(audit.Filter{Action: "key.create"})
	if len(recs) != 2 || recs[0].Outcome != "started" || recs[1].Outcome != audit.OutcomeSuccess {
		t.Fatalf("key.create records: %+v", recs)
	}
	done := recs[1]
	adminKeyID := w.keys["admin"][4:20]
	if done.KeyID != adminKeyID || done.PrincipalID != "pr-"+adminKeyID || done.Resource != "keys" || done.IP != "192.0.2.1" ||
		done.RequestID == "" || done.Details["key_id"] != newKey[4:20] || done.Details["status"] != "201" || done.Details["role"] != "viewer" {
		t.Errorf("key.create record: %+v", done)
	}
	if strings.Contains(recs[0].Details["key_id"], newKey[4:20]) || recs[0].RequestID != done.RequestID {
		t.Errorf("started record: %+v", recs[0])
	}

	// A viewer may not create keys: denied, recorded once.
	if status, _ := w.do("viewer", "POST", "/api/v1/keys", `{"name":"x"}`); status != http.StatusForbidden {
		t.Fatalf("viewer create key: %d", status)
	}
	if recs := w.trail(audit.Filter{Action: "key.create", Outcome: audit.OutcomeDenied}); len(recs) != 1 || recs[0].KeyID != w.keys["viewer"][4:20] {
		t.Errorf("denied records: %+v", recs)
	}

	// A run, and a read of its record.
	status, body = w.do("user", "POST", "/api/v1/agents/"+agentP1+"/run", `{"entrypoint_tag":"echo","input_args":[1]}`)
	if status != http.StatusOK {
		t.Fatalf("run: %d %s", status, body)
	}
	var env struct {
		InvocationID string `json:"invocation_id"`
	}
	json.Unmarshal(body, &env)
	runs := w.trail(audit.Filter{Action: "invocation.run"}) // the world's setup ran one too
	if last := runs[len(runs)-1]; last.Details["invocation_id"] != env.InvocationID || last.Resource != "agent/"+agentP1 || last.Outcome != audit.OutcomeSuccess {
		t.Errorf("run record: %+v (invocation %s)", last, env.InvocationID)
	}
	if status, _ := w.do("viewer", "GET", "/api/v1/invocations/"+env.InvocationID, ""); status != http.StatusOK {
		t.Fatalf("read invocation: %d", status)
	}
	if reads := w.trail(audit.Filter{Action: "invocation.read", Resource: "invocation/" + env.InvocationID}); len(reads) != 1 {
		t.Errorf("invocation.read records: %+v", reads)
	}
	if status, _ := w.do("p2admin", "GET", "/api/v1/invocations/"+env.InvocationID, ""); status != http.StatusNotFound {
		t.Fatalf("read another project's invocation: %d", status)
	}
	if reads := w.trail(audit.Filter{Action: "invocation.read", Outcome: "not_found"}); len(reads) != 1 {
		t.Errorf("a refused read is recorded as not_found: %+v", reads)
	}

	// A secret's value: an HMAC in the trail, never the value.
	const value = "sk-live-4f3e2d1c0b"
	if status, body := w.do("admin", "PUT", "/api/v1/agents/"+agentP1+"/secrets/OPENAI_KEY", `{"value":"`+value+`"}`); status != http.StatusOK {
		t.Fatalf("set secret: %d %s", status, body)
	}
	sets := w.trail(audit.Filter{Action: "secret.set", Outcome: audit.OutcomeSuccess})
	if len(sets) != 1 || sets[0].Resource != "agent/"+agentP1+"/secret/OPENAI_KEY" || sets[0].Details["value"] != w.audit.HMAC(value) {
		t.Errorf("secret.set record: %+v", sets)
	}
	for _, r := range w.trail(audit.Filter{}) {
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), value) || strings.Contains(string(b), newKey) {
			t.Errorf("a record holds a secret: %s", b)
		}
	}

	// The owner reads, exports and verifies the trail over the API.
	status, body = w.do("owner", "GET", "/api/v1/audit?action=secret.set", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"secret.set"`) {
		t.Errorf("GET /api/v1/audit: %d %s", status, body)
	}
	status, body = w.do("owner", "GET", "/api/v1/audit/export", "")
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if status != http.StatusOK || len(lines) < 8 {
		t.Errorf("export: %d, %d lines", status, len(lines))
	}
	status, body = w.do("owner", "GET", "/api/v1/audit/verify", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"ok":true`) {
		t.Errorf("verify: %d %s", status, body)
	}
	if status, body := w.do("owner", "GET", "/api/v1/audit?bogus=1", ""); status != http.StatusBadRequest {
		t.Errorf("bad filter: %d %s", status, body)
	}
}

// TestAuditFailClosed: when the trail cannot be written, a change does
// not happen, and a run's or a read's result is withheld: 503.
func TestAuditFailClosed(t *testing.T) {
	w := newWorld(t)
	before, err := w.store.APIKeys(t.Context(), core.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	w.audit.Close() // Append now fails, as with a full or broken disk
	status, body := w.do("admin", "POST", "/api/v1/keys", `{"name":"ci","role":"viewer"}`)
	if status != http.StatusServiceUnavailable || strings.Contains(string(body), "rak_") {
		t.Errorf("create key without a trail: %d %s", status, body)
	}
	after, _ := w.store.APIKeys(t.Context(), core.KeyFilter{})
	if len(after) != len(before) {
		t.Errorf("a key was created without an audit record: %d keys, were %d", len(after), len(before))
	}
	status, body = w.do("user", "POST", "/api/v1/agents/"+agentP1+"/run", `{"entrypoint_tag":"echo","input_args":["result-7a"]}`)
	if status != http.StatusServiceUnavailable || strings.Contains(string(body), "result-7a") {
		t.Errorf("run without a trail: %d %s", status, body)
	}
	if status, _ := w.do("viewer", "GET", "/api/v1/agents", ""); status != http.StatusOK {
		t.Errorf("an unaudited read still works: %d", status)
	}
}

// TestAuditedRoutes: every route that changes something, runs an agent
// or reads invocation data, secrets, keys, principals, events or the
// trail is audited; the routes that are not are exactly these, each with
// its reason in the route table.
func TestAuditedRoutes(t *testing.T) {
	w := newWorld(t)
	unaudited := []string{"GET /api/v1/health", "GET /api/v1/agents", "GET /api/v1/agents/{agent_id}/architecture",
		"GET /api/v1/agents/{agent_id}/invocations/stats", "GET /api/v1/projects", "GET /api/v1/blocks", "GET /api/v1/metrics", "GET /api/v1/nodes", "GET /api/v1/keyring",
		"GET /api/v1/whoami",
		// The console's OIDC sign-in: the list and the start hold nothing
		// protected; the callback audits itself (oidc_signin_test.go).
		"GET /api/v1/session/oidc", "GET /api/v1/session/oidc/{id}/start", "GET /api/v1/session/oidc/callback"}
	for _, rt := range w.api.routes {
		if rt.audit.action == "" && !slices.Contains(unaudited, rt.pattern()) {
			t.Errorf("route %s is not audited (%s): audit it, or add it to this test's list of routes that need not be", rt.pattern(), rt.audit.why)
		}
		if rt.audit.action != "" && slices.Contains(unaudited, rt.pattern()) {
			t.Errorf("route %s is audited as %s but listed here as not", rt.pattern(), rt.audit.action)
		}
		if rt.audit.action != "" && (rt.audit.kind == 0 || rt.audit.resource == nil) {
			t.Errorf("route %s: audit action %s without a kind or resource", rt.pattern(), rt.audit.action)
		}
	}
}

// TestRouteDeclarations: a route declared without an access rule or an
// audit decision, twice, or agent-scoped without {agent_id}, stops the
// API from being built.
func TestRouteDeclarations(t *testing.T) {
	ok := func(http.ResponseWriter, *http.Request) error { return nil }
	for name, rt := range map[string]route{
		"no access rule":      {method: "GET", path: "/x", audit: notAudited("test"), serve: ok},
		"no audit decision":   {method: "GET", path: "/x", access: readRule, serve: ok},
		"agent without param": {method: "GET", path: "/x", access: readRule, agent: true, audit: notAudited("test"), serve: ok},
	} {
		t.Run(name, func(t *testing.T) {
			g := &gateway{mux: http.NewServeMux()}
			defer func() {
				if recover() == nil {
					t.Errorf("registered %+v", rt)
				}
			}()
			g.register([]route{rt})
		})
	}
	t.Run("twice", func(t *testing.T) {
		g := &gateway{mux: http.NewServeMux()}
		rt := route{method: "GET", path: "/x", access: readRule, audit: notAudited("test"), serve: ok}
		defer func() {
			if recover() == nil {
				t.Error("registered a route twice")
			}
		}()
		g.register([]route{rt, rt})
	})
}

// TestRotateDataKey: the owner rotates the data key; values sealed
// before stay readable, new ones use the new key; the rotation is
// audited.
func TestRotateDataKey(t *testing.T) {
	w := newWorld(t)
	put := func(name, value string) {
		t.Helper()
		if status, body := w.do("admin", "PUT", "/api/v1/agents/"+agentP1+"/secrets/"+name, `{"value":"`+value+`"}`); status != http.StatusOK {
			t.Fatalf("set secret: %d %s", status, body)
		}
	}
	put("BEFORE", "value-before")
	status, body := w.do("owner", "GET", "/api/v1/keyring", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"active_data_key_id":1`) {
		t.Fatalf("keyring status: %d %s", status, body)
	}
	status, body = w.do("owner", "POST", "/api/v1/keyring/rotate", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"active_data_key_id":2`) {
		t.Fatalf("rotate: %d %s", status, body)
	}
	put("AFTER", "value-after")
	got, err := w.store.SecretValues(t.Context(), agentP1)
	if err != nil || got["BEFORE"] != "value-before" || got["AFTER"] != "value-after" {
		t.Errorf("secrets after rotation: %v, %v", got, err)
	}
	if recs := w.trail(audit.Filter{Action: "keyring.rotate_data_key", Outcome: audit.OutcomeSuccess}); len(recs) != 1 || recs[0].Details["active_data_key_id"] != "2" {
		t.Errorf("rotation records: %+v", recs)
	}
}

// TestNoSecretsCache: an agent without secrets is remembered as such for
// a moment; a secret set through this node is seen at once, one set
// elsewhere (straight in the store) once the moment has passed.
func TestNoSecretsCache(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	if v, err := w.api.runs.secretValues(ctx, agentP1); err != nil || len(v) != 0 {
		t.Fatalf("secretValues = %v, %v", v, err)
	}
	if status, body := w.do("admin", "PUT", "/api/v1/agents/"+agentP1+"/secrets/VIA_API", `{"value":"one"}`); status != http.StatusOK {
		t.Fatalf("set secret: %d %s", status, body)
	}
	if v, _ := w.api.runs.secretValues(ctx, agentP1); v["VIA_API"] != "one" {
		t.Errorf("a secret set through this node is not seen at once: %v", v)
	}
	if status, _ := w.do("admin", "DELETE", "/api/v1/agents/"+agentP1+"/secrets/VIA_API", ""); status != http.StatusOK {
		t.Fatal("delete")
	}
	if v, _ := w.api.runs.secretValues(ctx, agentP1); len(v) != 0 {
		t.Fatalf("after delete: %v", v)
	}
	// Another node sets one.
	if err := w.store.PutSecret(ctx, &core.Secret{AgentID: agentP1, Name: "ELSEWHERE", UpdatedBy: "node-b"}, "two"); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.api.runs.secretValues(ctx, agentP1); len(v) != 0 {
		t.Errorf("within the cache's moment the other node's secret is not expected yet: %v", v)
	}
	w.clock = w.clock.Add(cacheTTL)
	if v, _ := w.api.runs.secretValues(ctx, agentP1); v["ELSEWHERE"] != "two" {
		t.Errorf("after %v the other node's secret is still not seen: %v", cacheTTL, v)
	}
}

// TestSecretInputRefused: names the sandbox sets itself or that are not
// environment variable names, NUL in a value, a value that is not a
// string, and unknown fields are refused with 400 and store nothing.
func TestSecretInputRefused(t *testing.T) {
	w := newWorld(t)
	base := "/api/v1/agents/" + agentP1 + "/secrets/"
	for _, tc := range []struct{ name, body string }{
		{"PATH", `{"value":"x"}`},
		{"LD_PRELOAD", `{"value":"/tmp/evil.so"}`},
		{"RUNAGENT_X", `{"value":"x"}`},
		{"1BAD", `{"value":"x"}`},
		{"A%20B", `{"value":"x"}`},
		{"OK", `{"value":"a\u0000b"}`},
		{"OK", `{"value":123}`},
		{"OK", `{}`},
		{"OK", `{"value":"x","extra":1}`},
	} {
		if status, body := w.do("admin", "PUT", base+tc.name, tc.body); status != http.StatusBadRequest {
			t.Errorf("PUT %s %s: %d %s, want 400", tc.name, tc.body, status, body)
		}
	}
	if v, err := w.store.SecretValues(t.Context(), agentP1); err != nil || len(v) != 0 {
		t.Errorf("refused puts stored %v, %v", v, err)
	}
}

// TestAgentFailureIsHTTP200ButAuditedAsError: a failure inside the agent
// answers 200 with success false (the SDKs read no 5xx body), and its
// audit record still says it failed.
func TestAgentFailureIsHTTP200ButAuditedAsError(t *testing.T) {
	w := newWorld(t)
	for _, code := range []string{core.CodeAgentError, core.CodeAgentTimeout} {
		t.Run(code, func(t *testing.T) {
			spec := audited("test.agent_failure."+strings.ToLower(code), auditRun, fixedRes("test"))
			h := w.api.gw.auditRecords(spec, func(http.ResponseWriter, *http.Request) error {
				return &core.Error{Code: code, Message: "ValueError: boom", Details: map[string]string{"type": "ValueError"}}
			})
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/api/v1/agents/x/run", nil)
			if err := h(rec, req); err != nil {
				t.Fatal(err)
			}
			var env struct {
				Success bool `json:"success"`
				Error   struct {
					Code    string          `json:"code"`
					Message string          `json:"message"`
					Details json.RawMessage `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
				t.Fatal(err)
			}
			if rec.Code != http.StatusOK || env.Success || env.Error.Code != code || env.Error.Message != "ValueError: boom" || string(env.Error.Details) != `{"type":"ValueError"}` {
				t.Errorf("answer %d %s, want 200 with success false and the error", rec.Code, rec.Body)
			}
			recs := w.trail(audit.Filter{Action: spec.action})
			if len(recs) != 1 || recs[0].Outcome != audit.OutcomeError {
				t.Errorf("audit records %+v, want one with outcome %q", recs, audit.OutcomeError)
			}
		})
	}
}

func TestWireStatus(t *testing.T) {
	for code, want := range map[string]int{
		core.CodeAgentError: 200, core.CodeAgentTimeout: 200, core.CodeValidation: 400, core.CodeForbidden: 403,
		core.CodeNotFound: 404, core.CodeTooLarge: 413, core.CodeRateLimited: 429, core.CodeUnavailable: 503, core.CodeInternal: 500,
	} {
		if got := wireStatus(code); got != want {
			t.Errorf("wireStatus(%s) = %d, want %d", code, got, want)
		}
	}
}
