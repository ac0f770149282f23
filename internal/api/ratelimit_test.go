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
	w.api.setLimiter(ratelimit.NewMemory(ratelimit.MemoryOptions{Now: func() time.Time { return w.clock }}), l)
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
	w.api.setBlocker(ratelimit.NewMemoryBlocks(BlockPolicy{After: 3, Window: time.Minute, For: 10 * time.Minute}, func() time.Time { return w.clock }))
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
	w.api.setLimiter(ratelimit.NewRedis(c, ratelimit.RedisOptions{}), ratelimit.DefaultLimit)
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
		a := New(Deps{Store: w.store, Registry: w.api.agents.reg, Exec: w.api.runs.exec, Auth: auth.New(auth.Config{Store: w.store}),
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
// slots taken gets 429; so does an agent; freeing a slot serves again —
// with slots counted on this node and in Redis (shared by nodes).
func TestRunConcurrencyLimits(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			w := newWorld(t)
			if backend == "redis" {
				rc := ratelimit.NewRedisConcurrency(redistest.Client(t, redistest.Start(t)), ratelimit.RedisConcurrencyOptions{})
				t.Cleanup(func() { rc.Close() })
				w.api.runs.slots = rc
			}
			testRunConcurrency(t, w)
		})
	}
}

func testRunConcurrency(t *testing.T, w *world) {
	w.api.runs.maxRunsP, w.api.runs.maxRunsA = 1, 2
	ctx := t.Context()
	acquire := func(key string, n int) (func(), bool) {
		t.Helper()
		release, ok, err := w.api.runs.slots.Acquire(ctx, key, n)
		if err != nil {
			t.Fatal(err)
		}
		return release, ok
	}
	// free reports whether key has no slot taken.
	free := func(key string) bool {
		release, ok := acquire(key, 1)
		if ok {
			release()
		}
		return ok
	}
	run := `{"entrypoint_tag":"echo","input_args":[1]}`
	user := "key:" + w.keys["user"][4:20]
	release, ok := acquire("runs:"+user, 1) // a run in progress
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
	r1, _ := acquire("agent:"+agentP1, 2)
	r2, _ := acquire("agent:"+agentP1, 2)
	if status, _ := w.do("admin", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusTooManyRequests {
		t.Errorf("run of a full agent: %d, want 429", status)
	}
	if !free("runs:key:" + w.keys["admin"][4:20]) {
		t.Error("a refused run kept its principal slot")
	}
	r1()
	r2()
	if status, _ := w.do("admin", "POST", "/api/v1/agents/"+agentP1+"/run", run); status != http.StatusOK {
		t.Errorf("after the agent's slots were freed: %d", status)
	}
	if !free("agent:" + agentP1) {
		t.Error("finished runs left agent slots taken")
	}
}

// TestRunSlotsDown: when running invocations cannot be counted (Redis
// unreachable) a run is refused with 503, not run uncounted.
func TestRunSlotsDown(t *testing.T) {
	w := newWorld(t)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	rc := ratelimit.NewRedisConcurrency(c, ratelimit.RedisConcurrencyOptions{})
	defer rc.Close()
	w.api.runs.slots = rc
	status, body := w.do("user", "POST", "/api/v1/agents/"+agentP1+"/run", `{"entrypoint_tag":"echo","input_args":[1]}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "invocation limits are unavailable") {
		t.Errorf("run with the slot counter down: %d %s, want 503", status, body)
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
	d, err := w.api.agents.reg.Get(t.Context(), agentP1)
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

func TestRateLimitPerProject(t *testing.T) {
	w := newWorld(t)
	w.limited(ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 100})
	// Only an owner may change a project; an admin of the project may not.
	if status, body := w.do("admin", "PATCH", "/api/v1/projects/p1", `{"rate_limit":{"requests":2,"period_seconds":60}}`); status != http.StatusForbidden {
		t.Fatalf("admin PATCH project: %d %s", status, body)
	}
	status, body := w.do("owner", "PATCH", "/api/v1/projects/p1", `{"rate_limit":{"requests":2,"period_seconds":60}}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"rate_limit":{"requests":2,"period_seconds":60}`) {
		t.Fatalf("owner PATCH project: %d %s", status, body)
	}
	// A key of p1 without its own limit gets the project's.
	for i := range 2 {
		if status, _ := w.doH("viewer", "GET", "/api/v1/agents"); status != http.StatusOK {
			t.Fatalf("request %d of a key in a project limited to 2/min: %d", i, status)
		}
	}
	if status, h := w.doH("viewer", "GET", "/api/v1/agents"); status != http.StatusTooManyRequests || h.Get("RateLimit-Limit") != "2" {
		t.Errorf("third request in a project limited to 2/min: %d, RateLimit-Limit %q", status, h.Get("RateLimit-Limit"))
	}
	// A key of p1 with its own limit keeps it; a key of p2 keeps the default.
	status, body = w.do("owner", "POST", "/api/v1/keys", `{"name":"own","role":"viewer","project_id":"p1","rate_limit":{"requests":5,"period_seconds":60}}`)
	if status != http.StatusCreated {
		t.Fatalf("create key: %d %s", status, body)
	}
	w.keys["own"] = keyFrom(t, body)
	for i := range 5 {
		if status, _ := w.doH("own", "GET", "/api/v1/agents"); status != http.StatusOK {
			t.Fatalf("request %d of a key with its own 5/min: %d", i, status)
		}
	}
	if status, h := w.doH("p2admin", "GET", "/api/v1/agents"); status != http.StatusOK || h.Get("RateLimit-Limit") != "100" {
		t.Errorf("a key of another project: %d, RateLimit-Limit %q, want 200 and 100", status, h.Get("RateLimit-Limit"))
	}
	// Cleared (null): the server's default again, at once on this node
	// (past requests still count: a second later there is room again).
	if status, body := w.do("owner", "PATCH", "/api/v1/projects/p1", `{"rate_limit":null}`); status != http.StatusOK || strings.Contains(string(body), "rate_limit") {
		t.Fatalf("clear project rate limit: %d %s", status, body)
	}
	w.clock = w.clock.Add(time.Second)
	if status, h := w.doH("viewer", "GET", "/api/v1/agents"); status != http.StatusOK || h.Get("RateLimit-Limit") != "100" {
		t.Errorf("after clearing the project's limit: %d, RateLimit-Limit %q, want 200 and 100", status, h.Get("RateLimit-Limit"))
	}
	for _, tc := range []struct{ path, body string }{
		{"/api/v1/projects/p1", `{}`},
		{"/api/v1/projects/p1", `{"rate_limit":{"requests":0,"period_seconds":60}}`},
		{"/api/v1/projects/p1", `{"rate_limit":{"requests":1,"period_seconds":60,"burst":3}}`},
		{"/api/v1/projects/p1", `{"rate_limit":"10/1m"}`},
		{"/api/v1/projects/p1", `{"name":"x"}`},
	} {
		if status, body := w.do("owner", "PATCH", tc.path, tc.body); status != http.StatusBadRequest {
			t.Errorf("PATCH %s %s: %d %s, want 400", tc.path, tc.body, status, body)
		}
	}
	for _, path := range []string{"/api/v1/projects/nope", "/api/v1/projects/NOPE"} {
		if status, body := w.do("owner", "PATCH", path, `{"rate_limit":null}`); status != http.StatusNotFound {
			t.Errorf("PATCH %s: %d %s, want 404", path, status, body)
		}
	}
	// Created with a limit.
	if status, body := w.do("owner", "POST", "/api/v1/projects", `{"project_id":"p3","rate_limit":{"requests":9,"period_seconds":1}}`); status != http.StatusCreated || !strings.Contains(string(body), `"requests":9`) {
		t.Errorf("create project with a rate limit: %d %s", status, body)
	}
	if status, body := w.do("owner", "POST", "/api/v1/projects", `{"project_id":"p4","rate_limit":{"requests":9,"period_seconds":0}}`); status != http.StatusBadRequest {
		t.Errorf("create project with an invalid rate limit: %d %s", status, body)
	}
}

// TestBlocksAcrossNodes: two API instances (two server nodes) keeping
// blocks in one redis-server: authentication failures on node 1 block
// the address on node 2; an owner lifts the block on node 2 and node 1
// serves the address again.
func TestBlocksAcrossNodes(t *testing.T) {
	addr := redistest.Start(t)
	w := newWorld(t)
	pol := BlockPolicy{After: 3, Window: time.Minute, For: 10 * time.Minute}
	node := func() *API {
		return New(Deps{Store: w.store, Registry: w.api.agents.reg, Exec: w.api.runs.exec, Auth: auth.New(auth.Config{Store: w.store}),
			Block: pol, Blocks: ratelimit.NewRedisBlocks(redistest.Client(t, addr), pol, ratelimit.RedisBlocksOptions{})})
	}
	nodes := []*API{node(), node()}
	do := func(n int, ip, token, method, path string) (int, http.Header, string) {
		t.Helper()
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = ip + ":40000"
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		nodes[n].ServeHTTP(rec, r)
		return rec.Code, rec.Header(), rec.Body.String()
	}
	const client = "198.51.100.9"
	for i := range 3 {
		if status, _, _ := do(0, client, "ra_wrong", "GET", "/api/v1/agents"); status != http.StatusUnauthorized {
			t.Fatalf("bad credential %d on node 1: %d, want 401", i, status)
		}
	}
	status, h, _ := do(1, client, w.keys["viewer"], "GET", "/api/v1/agents")
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("blocked address with a good key on node 2: %d (Retry-After %q), want 429 with Retry-After", status, h.Get("Retry-After"))
	}
	if status, _, _ := do(1, "203.0.113.5", w.keys["viewer"], "GET", "/api/v1/agents"); status != http.StatusOK {
		t.Fatalf("another address on node 2: %d, want 200", status)
	}
	status, _, body := do(1, "203.0.113.5", w.keys["owner"], "GET", "/api/v1/blocks")
	if status != http.StatusOK || !strings.Contains(body, `"ip:`+client+`"`) {
		t.Fatalf("node 2's block list: %d %s; want the address", status, body)
	}
	if status, _, body := do(1, "203.0.113.5", w.keys["owner"], "DELETE", "/api/v1/blocks/ip:"+client); status != http.StatusOK {
		t.Fatalf("lift on node 2: %d %s", status, body)
	}
	if status, _, body := do(0, client, w.keys["viewer"], "GET", "/api/v1/agents"); status != http.StatusOK {
		t.Fatalf("node 1 after the lift on node 2: %d %s, want 200", status, body)
	}
	if status, _, body := do(0, "203.0.113.5", w.keys["owner"], "GET", "/api/v1/blocks"); status != http.StatusOK || strings.Contains(body, client) {
		t.Fatalf("node 1's block list after the lift: %d %s; want it empty", status, body)
	}
}

// TestBlocksDown: blocks that cannot be checked (Redis unreachable)
// refuse requests with 503, like a rate limiter that cannot decide;
// health stays open to load balancers.
func TestBlocksDown(t *testing.T) {
	w := newWorld(t)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	w.api.setBlocker(ratelimit.NewRedisBlocks(c, BlockPolicy{}, ratelimit.RedisBlocksOptions{}))
	if status, _ := w.doH("viewer", "GET", "/api/v1/agents"); status != http.StatusServiceUnavailable {
		t.Errorf("blocks down: %d, want 503", status)
	}
	if status, body := w.doFrom("203.0.113.1", "owner", "GET", "/api/v1/blocks", ""); status != http.StatusServiceUnavailable {
		t.Errorf("block list with blocks down: %d %s, want 503", status, body)
	}
	if status, _ := w.doFrom("203.0.113.1", "", "GET", "/api/v1/health", ""); status != http.StatusOK {
		t.Errorf("health with blocks down: %d, want 200", status)
	}
}
