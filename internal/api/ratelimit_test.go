package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/ratelimit/redistest"
)

// limited installs a memory limiter on the world's clock with limit l.
func (w *world) limited(l ratelimit.Limit) {
	w.api.limiter = ratelimit.NewMemory(ratelimit.MemoryOptions{Now: func() time.Time { return w.clock }})
	w.api.rateLimit = l
}

// doH is do that also returns the response headers.
func (w *world) doH(cred, method, path string) (int, http.Header) {
	w.t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if tok := w.keys[cred]; tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	w.api.ServeHTTP(rec, r)
	return rec.Code, rec.Header()
}

func TestRateLimitPerPrincipal(t *testing.T) {
	w := newWorld(t)
	w.limited(ratelimit.Limit{Rate: 3, Period: time.Minute, Burst: 3})
	for i := range 3 {
		status, h := w.doH("viewer", "GET", "/api/v1/agents")
		if status != http.StatusOK || h.Get("RateLimit-Limit") != "3" || h.Get("RateLimit-Remaining") != string(rune('2'-i)) {
			t.Fatalf("request %d: %d, headers %v", i, status, h)
		}
	}
	status, h := w.doH("viewer", "GET", "/api/v1/agents")
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "20" {
		t.Errorf("4th request: %d Retry-After %q; want 429, 20", status, h.Get("Retry-After"))
	}
	// Another principal has its own budget; so do anonymous callers, per
	// address.
	if status, _ := w.doH("admin", "GET", "/api/v1/agents"); status != http.StatusOK {
		t.Errorf("another key: %d", status)
	}
	// The rate refills: one request per 20 s.
	w.clock = w.clock.Add(20 * time.Second)
	if status, _ := w.doH("viewer", "GET", "/api/v1/agents"); status != http.StatusOK {
		t.Errorf("after 20 s: %d, want 200", status)
	}
	if status, _ := w.doH("viewer", "GET", "/api/v1/agents"); status != http.StatusTooManyRequests {
		t.Errorf("second after 20 s: %d, want 429", status)
	}
	// Health is never limited.
	for range 5 {
		if status, _ := w.doH("viewer", "GET", "/api/v1/health"); status != http.StatusOK {
			t.Errorf("health: %d", status)
		}
	}
}

func TestRateLimitAnonymousPerAddress(t *testing.T) {
	w := newWorld(t)
	w.limited(ratelimit.Limit{Rate: 2, Period: time.Minute, Burst: 2})
	run := `{"entrypoint_tag":"echo","input_args":[1]}`
	for i := range 2 {
		if status, body := w.doFrom("198.51.100.1", "none", "POST", "/api/v1/agents/"+openID+"/run", run); status != http.StatusOK {
			t.Fatalf("anonymous %d: %d %s", i, status, body)
		}
	}
	if status, _ := w.doFrom("198.51.100.1", "none", "POST", "/api/v1/agents/"+openID+"/run", run); status != http.StatusTooManyRequests {
		t.Errorf("third anonymous call from one address: %d, want 429", status)
	}
	if status, _ := w.doFrom("198.51.100.2", "none", "POST", "/api/v1/agents/"+openID+"/run", run); status != http.StatusOK {
		t.Errorf("another address: %d, want 200", status)
	}
}

// TestRateLimitViolationsBlock: a principal that keeps hitting its limit
// is blocked, whatever its remaining budget, until the block ends.
func TestRateLimitViolationsBlock(t *testing.T) {
	w := newWorld(t)
	w.limited(ratelimit.Limit{Rate: 1, Period: time.Minute, Burst: 1})
	w.api.block = newBlocker(BlockPolicy{After: 3, Window: time.Minute, For: 10 * time.Minute}, func() time.Time { return w.clock })
	w.doH("user", "GET", "/api/v1/agents")
	for range 3 {
		w.doH("user", "GET", "/api/v1/agents")
	}
	w.clock = w.clock.Add(2 * time.Minute) // budget refilled; still blocked
	status, h := w.doH("user", "GET", "/api/v1/agents")
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "480" {
		t.Errorf("blocked principal: %d Retry-After %q; want 429, 480", status, h.Get("Retry-After"))
	}
	k := w.keys["user"]
	_, body := w.doFrom("203.0.113.1", "owner", "GET", "/api/v1/blocks", "")
	if !strings.Contains(string(body), `"key:`+k[4:20]+`"`) {
		t.Errorf("blocks list lacks the principal: %s", body)
	}
	if status, _ := w.doH("viewer", "GET", "/api/v1/agents"); status != http.StatusOK {
		t.Errorf("another principal from the same address: %d, want 200", status)
	}
}

// TestRateLimiterDown: a limiter that cannot decide (Redis unreachable)
// refuses requests with 503 rather than letting them through.
func TestRateLimiterDown(t *testing.T) {
	w := newWorld(t)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	w.api.limiter = ratelimit.NewRedis(c, ratelimit.RedisOptions{})
	if status, _ := w.doH("viewer", "GET", "/api/v1/agents"); status != http.StatusServiceUnavailable {
		t.Errorf("limiter down: %d, want 503", status)
	}
}

// TestSharedLimitAcrossNodes: two API instances (two server nodes) with
// Redis limiters on one redis-server share each principal's limit.
func TestSharedLimitAcrossNodes(t *testing.T) {
	addr := redistest.Start(t)
	w := newWorld(t)
	limit := ratelimit.Limit{Rate: 10, Period: time.Hour, Burst: 10}
	node := func() *API {
		a := New(Deps{Store: w.store, Registry: w.api.reg, Exec: w.api.exec, Auth: auth.New(auth.Config{Store: w.store}),
			Limiter: ratelimit.NewRedis(redistest.Client(t, addr), ratelimit.RedisOptions{}), RateLimit: limit,
			Block: BlockPolicy{After: -1}})
		return a
	}
	nodes := []*API{node(), node()}
	allowed := 0
	for i := range 30 {
		r := httptest.NewRequest("GET", "/api/v1/agents", nil)
		r.Header.Set("Authorization", "Bearer "+w.keys["viewer"])
		rec := httptest.NewRecorder()
		nodes[i%2].ServeHTTP(rec, r)
		switch rec.Code {
		case http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if allowed != 10 {
		t.Errorf("two nodes allowed %d requests under one limit of 10", allowed)
	}
}

// TestRunConcurrencyLimits: a principal with its running-invocation
// slots taken gets 429; so does an agent; freeing a slot serves again.
func TestRunConcurrencyLimits(t *testing.T) {
	w := newWorld(t)
	w.api.maxRunsP, w.api.maxRunsA = 1, 2
	run := `{"entrypoint_tag":"echo","input_args":[1]}`
	user := "key:" + w.keys["user"][4:20]
	release, ok := w.api.runs.Acquire("runs:"+user, 1) // a run in progress
	if !ok {
		t.Fatal("acquire")
	}
	if status, _ := w.do("user", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusTooManyRequests {
		t.Errorf("second concurrent run of one principal: %d, want 429", status)
	}
	release()
	if status, body := w.do("user", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusOK {
		t.Errorf("after the slot was freed: %d %s", status, body)
	}
	// The agent's own cap, across principals.
	r1, _ := w.api.runs.Acquire("agent:"+agentP1, 2)
	r2, _ := w.api.runs.Acquire("agent:"+agentP1, 2)
	if status, _ := w.do("admin", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusTooManyRequests {
		t.Errorf("run of a full agent: %d, want 429", status)
	}
	if got := w.api.runs.InFlight("runs:key:" + w.keys["admin"][4:20]); got != 0 {
		t.Errorf("a refused run kept its principal slot: %d in flight", got)
	}
	r1()
	r2()
	if status, _ := w.do("admin", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusOK {
		t.Errorf("after the agent's slots were freed: %d", status)
	}
	if got := w.api.runs.InFlight("agent:" + agentP1); got != 0 {
		t.Errorf("finished runs left %d agent slots taken", got)
	}
}

// TestRateLimitOverrides: a key's own rate limit replaces the default for
// it; an agent's rate_limit caps its calls from all callers together.
func TestRateLimitOverrides(t *testing.T) {
	w := newWorld(t)
	w.limited(ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 100})
	status, body := w.do("admin", "POST", "/api/v1/keys", `{"name":"slow","role":"user","rate_limit":{"requests":2,"period_seconds":60}}`)
	if status != http.StatusCreated {
		t.Fatalf("create key: %d %s", status, body)
	}
	w.keys["slow"] = keyFrom(t, body)
	for i := range 2 {
		if status, _ := w.doH("slow", "GET", "/api/v1/agents"); status != http.StatusOK {
			t.Fatalf("slow key request %d: %d", i, status)
		}
	}
	if status, h := w.doH("slow", "GET", "/api/v1/agents"); status != http.StatusTooManyRequests || h.Get("RateLimit-Limit") != "2" {
		t.Errorf("third request of a key limited to 2/min: %d, RateLimit-Limit %q", status, h.Get("RateLimit-Limit"))
	}
	if status, _ := w.doH("viewer", "GET", "/api/v1/agents"); status != http.StatusOK {
		t.Errorf("a key on the default limit: %d", status)
	}
	if status, body := w.do("admin", "POST", "/api/v1/keys", `{"name":"x","rate_limit":{"requests":0,"period_seconds":60}}`); status != http.StatusBadRequest {
		t.Errorf("invalid key rate limit: %d %s", status, body)
	}

	// An agent limited to 3 calls a minute, from anyone.
	d, err := w.api.reg.Get(t.Context(), agentP1)
	if err != nil {
		t.Fatal(err)
	}
	d.Config.RateLimit = &core.RateLimit{Requests: 3, PeriodSeconds: 60}
	defer func() { d.Config.RateLimit = nil }()
	run := `{"entrypoint_tag":"echo","input_args":[1]}`
	for i, cred := range []string{"user", "admin", "owner"} {
		if status, body := w.do(cred, "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusOK {
			t.Fatalf("call %d to the limited agent: %d %s", i, status, body)
		}
	}
	r := httptest.NewRequest("POST", "/api/v1/agents/"+agentP1+"/run", strings.NewReader(run))
	r.Header.Set("Authorization", "Bearer "+w.keys["user"])
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	w.api.ServeHTTP(rec, r)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "20" {
		t.Errorf("fourth call to an agent limited to 3/min: %d, Retry-After %q; want 429, 20", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func keyFrom(t *testing.T, body []byte) string {
	t.Helper()
	var env struct {
		Data struct {
			Key string `json:"key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.Key == "" {
		t.Fatalf("no key in %s", body)
	}
	return env.Data.Key
}
