package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
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
	w.api.shed.maxStreams = 2
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
	w.api.shed.maxInFlight = 1
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
	w.api.shed.maxInFlight = 2
	if status, _ := w.do("viewer", "GET", "/api/v1/agents", ""); status != http.StatusOK {
		t.Errorf("request under the cap: %d", status)
	}
}
