package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/events"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/ratelimit/redistest"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// serveKeys opens and serves a server with API keys on dir, writing its
// console to console, and returns it with a stop function.
func serveKeys(t *testing.T, dir string, console *bytes.Buffer) (*Server, func()) {
	t.Helper()
	return open(t, Config{DataDir: dir, AgentDirs: []string{"../../examples/hello"}, Console: console})
}

func get(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var keyRE = regexp.MustCompile(`rak_[0-9A-Za-z_]+`)

// TestBootstrapOwnerKey: a fresh server prints one owner key, once; it
// works, no credential does not, and a restart prints nothing.
func TestBootstrapOwnerKey(t *testing.T) {
	t.Setenv(BootstrapKeyEnv, "")
	dir := t.TempDir()
	var console bytes.Buffer
	s, stop := serveKeys(t, dir, &console)
	key := keyRE.FindString(console.String())
	if _, err := apikey.Parse(key); err != nil {
		t.Fatalf("console %q holds no owner key: %v", console.String(), err)
	}
	if got := get(t, s.URL()+"/api/v1/agents", ""); got != http.StatusUnauthorized {
		t.Errorf("no credential: %d, want 401", got)
	}
	if got := get(t, s.URL()+"/api/v1/agents", key); got != http.StatusOK {
		t.Errorf("owner key: %d, want 200", got)
	}
	if got := get(t, s.URL()+"/api/v1/health", ""); got != http.StatusOK {
		t.Errorf("health without a credential: %d, want 200", got)
	}
	// examples/hello has auth_settings api_key: no anonymous use.
	if got := get(t, s.URL()+"/api/v1/agents/"+helloID+"/architecture", ""); got != http.StatusUnauthorized {
		t.Errorf("api_key agent without a credential: %d, want 401", got)
	}
	stop()
	// The database holds only a hash of it.
	db, err := os.ReadFile(filepath.Join(dir, "runagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(key[len(key)-30:])) {
		t.Error("the owner key's secret is in the database file")
	}

	console.Reset()
	s, stop = serveKeys(t, dir, &console)
	defer stop()
	if strings.Contains(console.String(), "rak_") {
		t.Errorf("a restart printed a key again: %q", console.String())
	}
	if got := get(t, s.URL()+"/api/v1/agents", key); got != http.StatusOK {
		t.Errorf("owner key after restart: %d, want 200", got)
	}
}

func TestBootstrapKeyFile(t *testing.T) {
	token := withOwnerKey(t)
	file := os.Getenv(BootstrapKeyEnv)
	var console bytes.Buffer
	s, stop := serveKeys(t, t.TempDir(), &console)
	defer stop()
	if strings.Contains(console.String(), "rak_") {
		t.Errorf("console %q: a key from a file is not printed", console.String())
	}
	if got := get(t, s.URL()+"/api/v1/agents", token); got != http.StatusOK {
		t.Errorf("key from the bootstrap file: %d, want 200", got)
	}

	if err := os.WriteFile(file, []byte("not-a-key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Backend: sandboxtest.EchoBackend{}})
	if err == nil || strings.Contains(err.Error(), "not-a-key") || !strings.Contains(err.Error(), BootstrapKeyEnv) {
		t.Errorf("Open with a malformed bootstrap key: %v; want an error naming %s and not the file's content", err, BootstrapKeyEnv)
	}
}

// bearer adds an Authorization header to every request.
// bearer adds an API key to every request (over base, or the default
// transport).
type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	if b.base != nil {
		return b.base.RoundTrip(r)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// BenchmarkRequestOverheadAuthenticated is BenchmarkRequestOverhead with
// API key authentication and authorization: compare the two for what the
// access layer costs per request.
func BenchmarkRequestOverheadAuthenticated(b *testing.B) {
	token := withOwnerKey(b)
	s := serve(b, Config{AgentDirs: []string{"../../examples/hello"}})
	url := s.URL() + "/api/v1/agents/" + helloID + "/run"
	c := &http.Client{Transport: bearer{key: token}}
	postRun(b, c, url, echoBody)
	b.ResetTimer()
	for b.Loop() {
		postRun(b, c, url, echoBody)
	}
}

// TestMetricsScrape: an owner scrapes the server's metrics, including the
// executor's and the listener's gauges.
func TestMetricsScrape(t *testing.T) {
	owner := withOwnerKey(t)
	s := serve(t, Config{AgentDirs: []string{"../../examples/hello"}})
	req, _ := http.NewRequest("GET", s.URL()+"/api/v1/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+owner)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"runagent_pool_ready_sandboxes", "runagent_pool_starting_sandboxes", "runagent_pool_target_sandboxes", "runagent_invocations_queued 0", "runagent_invocation_queue_wait_seconds_count 0", "runagent_invocations_refused_after_wait_total 0", "runagent_sandbox_forks_total 0", "runagent_sandbox_templates 0", "runagent_connections_open 1", "runagent_invocations_running 0", "process_resident_memory_bytes"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if got := get(t, s.URL()+"/api/v1/metrics", ""); got != http.StatusUnauthorized {
		t.Errorf("metrics without a key: %d, want 401", got)
	}
}

func TestParsePrefixes(t *testing.T) {
	if _, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"}); err != nil {
		t.Error(err)
	}
	if _, err := ParsePrefixes([]string{"not-an-ip"}); err == nil {
		t.Error("a bad proxy address was accepted")
	}
}

// TestRedisURLFailsClosed: a configured Redis that does not answer stops
// the server from starting, and the error does not repeat a password.
func TestRedisURLFailsClosed(t *testing.T) {
	_, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Backend: sandboxtest.EchoBackend{}, Auth: AuthNone,
		RedisURL: "redis://:hunter2secret@127.0.0.1:1/0"})
	if err == nil || !strings.Contains(err.Error(), "does not answer") || strings.Contains(err.Error(), "hunter2secret") {
		t.Errorf("Open with an unreachable Redis: %v", err)
	}
}

// TestSecurityEventsRecorded: an authentication failure reaches the
// security log file and the store (GET /api/v1/events), without the
// credential that failed.
func TestSecurityEventsRecorded(t *testing.T) {
	owner := withOwnerKey(t)
	dir := t.TempDir()
	s := serve(t, Config{DataDir: dir})
	bad := apikey.NewForID(owner[4:20])
	if got := get(t, s.URL()+"/api/v1/agents", bad); got != http.StatusUnauthorized {
		t.Fatalf("bad key: %d", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for {
		req, _ := http.NewRequest("GET", s.URL()+"/api/v1/events?type=auth_failure", nil)
		req.Header.Set("Authorization", "Bearer "+owner)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, "wrong secret") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, `"type":"auth_failure"`) || !strings.Contains(body, "wrong secret") {
		t.Fatalf("events: %s", body)
	}
	log, err := os.ReadFile(filepath.Join(dir, "security.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "auth_failure") {
		t.Errorf("security.jsonl lacks the event: %s", log)
	}
	for _, where := range []string{body, string(log)} {
		if strings.Contains(where, bad[20:]) {
			t.Error("the failed credential's secret was recorded")
		}
	}
}

// TestAlertWebhook: with --alert-webhook, ten failed authentications from
// one address within a minute send one alert to the webhook, signed with
// the secret from --alert-webhook-secret-file; more failures within the
// cool-down send no second one.
func TestAlertWebhook(t *testing.T) {
	secret := []byte("0123456789abcdef-webhook-secret")
	type delivery struct {
		body          []byte
		sig, stamp    string
		verifiedError error
	}
	got := make(chan delivery, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d := delivery{body: b, sig: r.Header.Get(events.HeaderSignature), stamp: r.Header.Get(events.HeaderTimestamp)}
		d.verifiedError = events.VerifySignature(secret, d.stamp, d.sig, b, time.Now(), time.Minute)
		got <- d
	}))
	defer recv.Close()
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, secret, 0o600)
	owner := withOwnerKey(t)
	s := serve(t, Config{AlertWebhookURL: recv.URL, AlertWebhookSecretFile: secretFile,
		Block: api.BlockPolicy{After: -1}}) // count failures, do not block
	bad := apikey.NewForID(owner[4:20])
	for range 15 {
		get(t, s.URL()+"/api/v1/agents", bad)
	}
	select {
	case d := <-got:
		if d.verifiedError != nil {
			t.Errorf("alert signature does not verify: %v", d.verifiedError)
		}
		if !strings.Contains(string(d.body), `"rule":"auth_failure"`) || strings.Contains(string(d.body), bad[20:]) {
			t.Errorf("alert body: %s", d.body)
		}
		if err := events.VerifySignature([]byte("another-secret-0123456789"), d.stamp, d.sig, d.body, time.Now(), time.Minute); err == nil {
			t.Error("the signature verifies with another secret")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no alert reached the webhook")
	}
	select {
	case d := <-got:
		t.Errorf("a second alert within the cool-down: %s", d.body)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestRedisSharesRunCaps: with --redis-url, running invocations are
// counted in Redis: a slot another node holds there fills the agent's cap
// on this one; its release (or expiry) frees it.
func TestRedisSharesRunCaps(t *testing.T) {
	addr := redistest.Start(t)
	rdb := redistest.Client(t, addr)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, Config{AgentDirs: []string{"../../examples/hello"}, Exe: exe, Auth: AuthNone,
		RedisURL: "redis://" + addr + "/0", MaxRunsPerAgent: 1, RateLimit: ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 100}})
	body := []byte(`{"entrypoint_tag":"generate","input_kwargs":{"message":"hi"}}`)
	url := s.URL() + "/api/v1/agents/" + helloID + "/run"
	run := func() int {
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if got := run(); got != http.StatusOK {
		t.Fatalf("run: %d", got)
	}
	// Another node's running invocation of the same agent.
	key := ratelimit.DefaultConcurrencyPrefix + "agent:" + helloID
	if err := rdb.ZAdd(t.Context(), key, redis.Z{Score: float64(time.Now().Add(time.Minute).UnixMicro()), Member: "othernode:1"}).Err(); err != nil {
		t.Fatal(err)
	}
	if got := run(); got != http.StatusTooManyRequests {
		t.Errorf("run while another node holds the agent's only slot: %d, want 429", got)
	}
	rdb.ZRem(t.Context(), key, "othernode:1")
	if got := run(); got != http.StatusOK {
		t.Errorf("run after the other node's release: %d, want 200", got)
	}
	// The rate limit is kept in Redis too.
	keys, err := rdb.Keys(t.Context(), ratelimit.DefaultRedisPrefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Errorf("no rate-limit state in Redis (%v, %v)", keys, err)
	}
}
