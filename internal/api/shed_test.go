package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/runagent/runagent/internal/ratelimit"
)

// holdStream opens a WebSocket stream on srv as the p1 streamer and keeps
// it open (the server waits for its first message) until the test ends.
func holdStream(t *testing.T, w *world, srv *httptest.Server) (status int) {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + w.keys["streamer"]}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/agents/"+agentP1+"/run-stream", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp == nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	t.Cleanup(func() { c.CloseNow() })
	return http.StatusSwitchingProtocols
}

// TestStreamsPerIPCap: one address may hold MaxStreamsPerIP streams; the
// next is refused with 429 and Retry-After, and a closed one frees its
// slot.
func TestStreamsPerIPCap(t *testing.T) {
	w := newWorld(t)
	w.api.gw.shed.maxStreams = 2
	srv := httptest.NewServer(w.api)
	defer srv.Close()
	for i := range 2 {
		if got := holdStream(t, w, srv); got != http.StatusSwitchingProtocols {
			t.Fatalf("stream %d: %d", i, got)
		}
	}
	if got := holdStream(t, w, srv); got != http.StatusTooManyRequests {
		t.Errorf("third stream from one address: %d, want 429", got)
	}
	// SSE streams count too.
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/agents/"+agentP1+"/run-stream", strings.NewReader(`{"entrypoint_tag":"echo_stream","input_args":[1]}`))
	req.Header.Set("Authorization", "Bearer "+w.keys["streamer"])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("SSE stream over the cap: %d, want 429 with Retry-After", resp.StatusCode)
	}
}

// TestInFlightShedding: past MaxInFlight requests at once, the next is
// answered at once with 503 and Retry-After; when one ends, requests are
// served again.
func TestInFlightShedding(t *testing.T) {
	w := newWorld(t)
	w.api.gw.shed.maxInFlight = 1
	srv := httptest.NewServer(w.api)
	defer srv.Close()
	if got := holdStream(t, w, srv); got != http.StatusSwitchingProtocols {
		t.Fatalf("stream: %d", got)
	}
	start := time.Now()
	resp, err := http.Get(srv.URL + "/api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("request over the in-flight cap: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shedding took %v; it must answer at once", d)
	}
	w.api.gw.shed.maxInFlight = 2
	if status, _ := w.do("viewer", "GET", "/api/v1/agents", ""); status != http.StatusOK {
		t.Errorf("request under the cap: %d", status)
	}
}

// TestTemporaryBlocks: an address that keeps failing authentication is
// refused with 429 and Retry-After — even with a good key — until the
// block expires or an owner lifts it; other addresses are unaffected.
func TestTemporaryBlocks(t *testing.T) {
	w := newWorld(t)
	w.api.setBlocker(ratelimit.NewMemoryBlocks(BlockPolicy{After: 3, Window: time.Minute, For: 5 * time.Minute}, func() time.Time { return w.clock }))
	const bad, other = "198.51.100.7", "203.0.113.5"
	for range 3 {
		if status, _ := w.doFrom(bad, "wrong-secret", "GET", "/api/v1/agents", ""); status != http.StatusUnauthorized {
			t.Fatalf("failing credential: %d", status)
		}
	}
	if status, _ := w.doFrom(bad, "admin", "GET", "/api/v1/agents", ""); status != http.StatusTooManyRequests {
		t.Errorf("blocked address with a good key: %d, want 429", status)
	}
	if status, _ := w.doFrom(other, "admin", "GET", "/api/v1/agents", ""); status != http.StatusOK {
		t.Errorf("another address: %d, want 200", status)
	}
	_, body := w.doFrom(other, "owner", "GET", "/api/v1/blocks", "")
	if !strings.Contains(string(body), `"ip:`+bad+`"`) {
		t.Errorf("blocks list lacks ip:%s: %s", bad, body)
	}
	if status, body := w.doFrom(other, "owner", "DELETE", "/api/v1/blocks/ip:"+bad, ""); status != http.StatusOK {
		t.Fatalf("lift: %d %s", status, body)
	}
	if status, _ := w.doFrom(bad, "admin", "GET", "/api/v1/agents", ""); status != http.StatusOK {
		t.Errorf("after the lift: %d, want 200", status)
	}
	// Failures spread wider than the window do not block.
	for range 2 {
		w.doFrom(bad, "wrong-secret", "GET", "/api/v1/agents", "")
	}
	w.clock = w.clock.Add(2 * time.Minute)
	w.doFrom(bad, "wrong-secret", "GET", "/api/v1/agents", "")
	if status, _ := w.doFrom(bad, "admin", "GET", "/api/v1/agents", ""); status != http.StatusOK {
		t.Errorf("failures outside one window blocked: %d", status)
	}
	// A block expires by itself.
	for range 3 {
		w.doFrom(bad, "wrong-secret", "GET", "/api/v1/agents", "")
	}
	w.clock = w.clock.Add(5 * time.Minute)
	if status, _ := w.doFrom(bad, "admin", "GET", "/api/v1/agents", ""); status != http.StatusOK {
		t.Errorf("after the block's expiry: %d, want 200", status)
	}
}

// TestMetricsRoute: requests are counted by route pattern and status and
// served to owners in the Prometheus text format.
func TestMetricsRoute(t *testing.T) {
	w := newWorld(t)
	w.do("viewer", "GET", "/api/v1/agents/"+agentP1+"/architecture", "")
	w.do("viewer", "GET", "/api/v1/agents/"+agentP2+"/architecture", "")
	status, body := w.do("owner", "GET", "/api/v1/metrics", "")
	if status != http.StatusOK {
		t.Fatalf("metrics: %d", status)
	}
	for _, want := range []string{
		`runagent_http_requests_total{method="GET",route="GET /api/v1/agents/{agent_id}/architecture",status="200"} 1`,
		`runagent_http_requests_total{method="GET",route="GET /api/v1/agents/{agent_id}/architecture",status="404"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(body), `route="/api/v1/agents/`+agentP1) || strings.Contains(string(body), `route="GET /api/v1/agents/`+agentP1) {
		t.Error("a raw path leaked into a route label")
	}
	if !strings.Contains(string(body), `runagent_invocations_total{agent="`+agentP1+`",outcome="completed"} 1`) {
		t.Error("the setup invocation is not counted by agent and outcome")
	}
}
