package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/localreg"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

// The test binary doubles as the sandbox supervisor, as runagent does.
func TestMain(m *testing.M) {
	supervisor.MaybeRun()
	if os.Getenv(holdURLEnv) != "" {
		os.Exit(holdStreams()) // the client process of BenchmarkServerMemoryStreams
	}
	// Servers register their agents in RunAgent's local registry: keep
	// the tests' rows out of the home directory's.
	cache, err := os.MkdirTemp("", "runagent-localreg-")
	if err != nil {
		panic(err)
	}
	os.Setenv(localreg.DirEnv, cache)
	code := m.Run()
	os.RemoveAll(cache)
	os.Exit(code)
}

const helloID = "6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b"

// startServer opens a server on a free loopback port serving
// examples/hello, without authentication (auth has its own tests; the
// benchmarks compare the bare request path), and stops it when tb ends.
// A nil backend is the real linux sandbox.
func startServer(tb testing.TB, backend sandbox.Backend) *Server {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{AgentDirs: []string{"../../examples/hello"}, Exe: exe, Backend: backend, Version: "test", Auth: AuthNone}
	if backend == nil {
		cfg.Sandbox = SandboxLinux
	}
	return serve(tb, cfg)
}

// serve opens cfg (by default on a free loopback port, with a fresh data
// directory and, unless cfg names a Sandbox, the in-process echo guest)
// and serves it until tb ends.
func serve(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, stop := open(tb, cfg)
	tb.Cleanup(stop)
	return s
}

// open is serve with the stop left to the caller.
func open(tb testing.TB, cfg Config) (*Server, func()) {
	tb.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	if cfg.Backend == nil && cfg.Sandbox == "" {
		cfg.Backend = sandboxtest.EchoBackend{}
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	if cfg.StoreURL != "" && cfg.Memory == (MemoryConfig{}) {
		// A node on PostgreSQL refuses persistent memory without
		// --memory-dir; tests of something else do without it.
		cfg.Memory.Mode = MemoryOff
	}
	if cfg.RateLimit == (ratelimit.Limit{}) {
		// Limiting on, as in production, but never reached by the tests
		// and benchmarks that do not test it.
		cfg.RateLimit = ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Open(ctx, cfg)
	if err != nil {
		cancel()
		tb.Fatalf("Open: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	return s, func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
		s.Close()
	}
}

// withOwnerKey makes servers opened during tb bootstrap a known owner
// key, and returns it.
func withOwnerKey(tb testing.TB) string {
	tb.Helper()
	token, _, _ := apikey.New()
	file := filepath.Join(tb.TempDir(), "owner.key")
	if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv(BootstrapKeyEnv, file)
	return token
}

func TestCheckAddr(t *testing.T) {
	for _, tt := range []struct {
		addr, auth, tls string
		ok, warn        bool
	}{
		{addr: "127.0.0.1:8450", ok: true},
		{addr: "[::1]:0", auth: AuthNone, ok: true},
		{addr: "localhost:1", ok: true},
		{addr: "127.1.2.3:80", auth: AuthNone, ok: true},
		// Reachable from other machines: only with authentication, and
		// with a warning unless TLS is on.
		{addr: "0.0.0.0:8450", ok: true, warn: true},
		{addr: "0.0.0.0:8450", tls: "cert.pem", ok: true},
		{addr: "0.0.0.0:8450", auth: AuthNone},
		{addr: ":8450", auth: AuthNone},
		{addr: "[::]:8450", auth: AuthNone},
		{addr: "192.0.2.10:80", auth: AuthNone},
		{addr: "example.com:80", auth: AuthNone},
		{addr: "no-port"},
	} {
		warn, err := CheckAddr(Config{Addr: tt.addr, Auth: tt.auth, TLSCert: tt.tls})
		if (err == nil) != tt.ok || (warn != "") != tt.warn {
			t.Errorf("CheckAddr(%q, auth %q, tls %q) = %q, %v; want ok=%v warning=%v", tt.addr, tt.auth, tt.tls, warn, err, tt.ok, tt.warn)
		}
	}
}

func TestOpenRefusesBadAgentDir(t *testing.T) {
	_, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), AgentDirs: []string{t.TempDir()}, Auth: AuthNone})
	if err == nil || !strings.Contains(err.Error(), "runagent.config.json") {
		t.Fatalf("Open with an empty agent dir: %v, want an error naming runagent.config.json", err)
	}
}

func TestRestartKeepsAgentsAndRecords(t *testing.T) {
	dir := t.TempDir()
	open := func() *Server {
		s, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir, Backend: sandboxtest.EchoBackend{}, Auth: AuthNone})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if _, err := s.reg.DeployDir(t.Context(), "../../examples/hello", ""); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A fresh process with no agent dirs still serves the deployed agent.
	s = open()
	defer s.Close()
	d, err := s.reg.Get(t.Context(), helloID)
	if err != nil || d.Config.AgentName != "hello" {
		t.Fatalf("after restart Get = %+v, %v", d, err)
	}
}

func postRun(tb testing.TB, c *http.Client, url string, body []byte) []byte {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return b
}

var echoBody = []byte(`{"entrypoint_tag":"echo","input_args":[1,"two"],"input_kwargs":{"k":true}}`)

func TestEchoBackendRun(t *testing.T) {
	s := startServer(t, sandboxtest.EchoBackend{})
	b := postRun(t, http.DefaultClient, s.URL()+"/api/v1/agents/"+helloID+"/run", echoBody)
	var env struct {
		Data string `json:"data"`
	}
	json.Unmarshal(b, &env)
	if !strings.Contains(env.Data, `\"kwargs\":{\"k\":true}`) {
		t.Errorf("data = %s", env.Data)
	}
}

// BenchmarkInvokeEndToEnd is one invocation of a trivial Python agent
// through the whole server: HTTP request, store writes, a fresh
// supervisor + Python process, the response.
func BenchmarkInvokeEndToEnd(b *testing.B) {
	s := startServer(b, nil)
	url := s.URL() + "/api/v1/agents/" + helloID + "/run"
	c := &http.Client{}
	postRun(b, c, url, echoBody) // warm up
	b.ResetTimer()
	for b.Loop() {
		postRun(b, c, url, echoBody)
	}
}

// BenchmarkRequestOverhead is the same request with the in-process Go
// guest: what the server itself costs per invocation, apart from starting
// Python.
func BenchmarkRequestOverhead(b *testing.B) {
	s := startServer(b, sandboxtest.EchoBackend{})
	url := s.URL() + "/api/v1/agents/" + helloID + "/run"
	c := &http.Client{}
	postRun(b, c, url, echoBody)
	b.ResetTimer()
	for b.Loop() {
		postRun(b, c, url, echoBody)
	}
}

// BenchmarkBareHTTPBaseline is a bare net/http handler doing the same
// JSON round trip over loopback: the floor the two above compare with.
func BenchmarkBareHTTPBaseline(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"success": true, "data": in})
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"
	c := &http.Client{}
	b.ResetTimer()
	for b.Loop() {
		postRun(b, c, url, echoBody)
	}
}

// BenchmarkWarmDispatchLinux is POST /run of a trivial agent through the
// linux sandbox with the warm pool: request to first response byte. The
// loop pauses (untimed) between requests so the pool refills, measuring
// dispatch to a ready sandbox; p50/p99 are reported.
func BenchmarkWarmDispatchLinux(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the linux sandbox needs root on this machine")
	}
	s := startServer(b, nil)
	url := s.URL() + "/api/v1/agents/" + helloID + "/run"
	c := &http.Client{}
	postRun(b, c, url, echoBody) // creates the pool
	var ttfb []time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		time.Sleep(40 * time.Millisecond) // let the pool refill
		b.StartTimer()
		start := time.Now()
		resp, err := c.Post(url, "application/json", bytes.NewReader(echoBody))
		if err != nil {
			b.Fatal(err)
		}
		ttfb = append(ttfb, time.Since(start))
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	slices.Sort(ttfb)
	b.ReportMetric(float64(ttfb[len(ttfb)/2].Nanoseconds()), "p50-ttfb-ns")
	b.ReportMetric(float64(ttfb[len(ttfb)*99/100].Nanoseconds()), "p99-ttfb-ns")
}
