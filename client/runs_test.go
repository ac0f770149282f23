package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// record is an invocation record as the server sends it.
func record(id, status string, output string) map[string]any {
	r := map[string]any{"invocation_id": id, "agent_id": "agent-1", "entrypoint_tag": "t", "status": status,
		"created_at": "2026-12-07T15:00:00Z", "total_chunks": 0}
	if output != "" {
		r["output"] = json.RawMessage(output)
	}
	return r
}

func TestRunAsync(t *testing.T) {
	var got map[string]any
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/agents/agent-1/run" {
			t.Errorf("request %s %s, want POST /api/v1/agents/agent-1/run", r.Method, r.URL.Path)
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Location", "/api/v1/invocations/inv_bg")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"success": true, "data": null, "message": "the run goes on in the background", "error": null, "request_id": "r", "invocation_id": "inv_bg"}`)
	}))
	id, err := c.RunAsync(t.Context(), "agent-1", RunRequest{Tag: "slow", Kwargs: map[string]any{"n": 1}, OnDisconnect: OnDisconnectContinue})
	if err != nil {
		t.Fatalf("RunAsync: %v", err)
	}
	if id != "inv_bg" {
		t.Errorf("id %q, want inv_bg", id)
	}
	want := map[string]any{"entrypoint_tag": "slow", "input_args": []any{}, "input_kwargs": map[string]any{"n": float64(1)},
		"async_execution": true, "on_disconnect": "continue"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("request (-want +got):\n%s", d)
	}
}

func TestRunAsyncFailures(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
		check  func(*testing.T, error)
	}{
		{"refused", 429, `{"success": false, "error": {"code": "RATE_LIMITED", "message": "you have 4 invocations running"}}`,
			func(t *testing.T, err error) {
				if !IsCode(err, "RATE_LIMITED") {
					t.Errorf("error %v, want RATE_LIMITED", err)
				}
			}},
		{"no invocation id", 202, `{"success": true, "data": null}`, wantErrorText("sent no invocation_id")},
		// A server that runs it at once: the agent's failure is the error.
		{"ran synchronously and failed", 200, `{"success": false, "error": {"code": "AGENT_ERROR", "message": "boom"}, "invocation_id": "i"}`,
			func(t *testing.T, err error) {
				if e, ok := errors.AsType[*Error](err); !ok || e.Code != CodeAgentError || e.InvocationID != "i" {
					t.Errorf("error %v, want AGENT_ERROR of invocation i", err)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			_, err := c.RunAsync(t.Context(), "agent-1", RunRequest{Tag: "t"})
			tt.check(t, err)
		})
	}
	c, _ := New("http://127.0.0.1:1")
	if _, err := c.RunAsync(t.Context(), "agent-1", RunRequest{}); err == nil || !strings.Contains(err.Error(), "tag is empty") {
		t.Errorf("RunAsync without a tag: %v, want it refused before sending", err)
	}
}

func TestWaitInvocation(t *testing.T) {
	for _, tt := range []struct {
		name      string
		wait      time.Duration
		wantQuery string
	}{
		{"thirty seconds", 30 * time.Second, "wait=30s"},
		{"fraction", 1500 * time.Millisecond, "wait=1.5s"},
		{"cut to the server's maximum", 10 * time.Minute, "wait=1m0s"},
		{"zero reads at once", 0, ""},
		{"negative reads at once", -time.Second, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var query string
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/api/v1/invocations/inv 1" {
					t.Errorf("request %s %s, want GET /api/v1/invocations/inv 1", r.Method, r.URL.Path)
				}
				query = r.URL.RawQuery
				writeEnvelope(w, 200, record("inv 1", "completed", `{"a": 1}`), nil)
			}))
			inv, err := c.WaitInvocation(t.Context(), "inv 1", tt.wait)
			if err != nil {
				t.Fatalf("WaitInvocation: %v", err)
			}
			if query != tt.wantQuery {
				t.Errorf("query %q, want %q", query, tt.wantQuery)
			}
			if !inv.Ended() || inv.Status != "completed" || compact(t, inv.Output) != `{"a":1}` {
				t.Errorf("record %+v, want completed with output {\"a\":1}", inv)
			}
		})
	}
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 200, record("i", "running", ""), nil)
	}))
	inv, err := c.WaitInvocation(t.Context(), "i", time.Second)
	if err != nil || inv.Ended() {
		t.Errorf("running record: %+v, %v; want not ended", inv, err)
	}
	if _, err := c.WaitInvocation(t.Context(), "", time.Second); err == nil {
		t.Error("WaitInvocation of an empty id succeeded")
	}
}

// TestWaitInvocationDeadline: without a deadline of its own, a long-poll
// waits for the server's answer at the end of the wait (not the shorter
// REST default), and a context's deadline cuts it short.
func TestWaitInvocationDeadline(t *testing.T) {
	release := make(chan struct{})
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		writeEnvelope(w, 200, record("i", "running", ""), nil)
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.WaitInvocation(ctx, "i", 30*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's deadline", err)
	}
	close(release)
}

func TestCancelInvocation(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method %s, want POST", r.Method)
		}
		switch r.URL.Path {
		case "/api/v1/invocations/inv_run/cancel":
			rec := record("inv_run", "cancelled", "")
			rec["error_code"], rec["error_message"] = "CANCELLED", "cancelled by key:k1"
			writeEnvelope(w, 200, rec, nil)
		case "/api/v1/invocations/inv_done/cancel":
			writeEnvelope(w, 409, nil, map[string]any{"code": "CONFLICT", "message": "invocation inv_done has already ended (status completed); there is nothing to cancel"})
		default:
			writeEnvelope(w, 404, nil, map[string]any{"code": "NOT_FOUND", "message": "invocation not found"})
		}
	}))
	inv, err := c.CancelInvocation(t.Context(), "inv_run")
	if err != nil {
		t.Fatalf("CancelInvocation: %v", err)
	}
	if inv.Status != "cancelled" || inv.ErrorCode != CodeCancelled || !inv.Ended() {
		t.Errorf("record %+v, want cancelled", inv)
	}
	if _, err := c.CancelInvocation(t.Context(), "inv_done"); !IsCode(err, CodeConflict) {
		t.Errorf("cancel of an ended run: %v, want CONFLICT", err)
	}
	if _, err := c.CancelInvocation(t.Context(), "other"); !IsNotFound(err) {
		t.Errorf("cancel of an unknown run: %v, want NOT_FOUND", err)
	}
}

// rejoinServer serves GET /api/v1/invocations/inv_s/stream from a stream
// of n chunks numbered from 0: the events after Last-Event-ID, then the
// end. The first connection is cut after cut events when cut >= 0.
type rejoinServer struct {
	t   *testing.T
	n   int
	cut int

	mu       sync.Mutex
	requests []http.Header
}

func (rs *rejoinServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	rs.requests = append(rs.requests, r.Header.Clone())
	first := len(rs.requests) == 1
	rs.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/api/v1/invocations/inv_s/stream" {
		writeEnvelope(w, 404, nil, map[string]any{"code": "NOT_FOUND", "message": "no route"})
		return
	}
	if r.Header.Get("Accept") != "text/event-stream" {
		writeEnvelope(w, 406, nil, map[string]any{"code": "NOT_ACCEPTABLE", "message": "send Accept: text/event-stream"})
		return
	}
	after := -1
	if s := r.Header.Get("Last-Event-ID"); s != "" {
		after, _ = strconv.Atoi(s)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Invocation-ID", "inv_s")
	io.WriteString(w, "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_started\", \"invocation_id\": \"inv_s\"}\n\n")
	sent := 0
	for i := after + 1; i < rs.n; i++ {
		if first && rs.cut >= 0 && sent == rs.cut {
			w.(http.Flusher).Flush()
			return // the connection drops mid-stream
		}
		fmt.Fprintf(w, "event: data\nid: %d\ndata: %s\n\n", i, dataFrame(rs.t, strconv.Itoa(i)))
		sent++
	}
	fmt.Fprintf(w, "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_completed\", \"total_chunks\": %d, \"invocation_id\": \"inv_s\"}\n\n", rs.n)
}

func TestRejoin(t *testing.T) {
	for _, tt := range []struct {
		after      int
		wantHeader string
		want       []string
	}{
		{-1, "", []string{"0", "1", "2", "3"}},
		{-7, "", []string{"0", "1", "2", "3"}},
		{1, "1", []string{"2", "3"}},
		{3, "3", nil},
	} {
		t.Run(fmt.Sprintf("after %d", tt.after), func(t *testing.T) {
			rs := &rejoinServer{t: t, n: 4, cut: -1}
			c := newTestClient(t, rs, WithAPIKey("rk_secret"))
			s, err := c.Rejoin(t.Context(), "inv_s", tt.after)
			if err != nil {
				t.Fatalf("Rejoin: %v", err)
			}
			defer s.Close()
			if s.LastEventID() != max(tt.after, -1) {
				t.Errorf("LastEventID before any chunk = %d, want %d", s.LastEventID(), max(tt.after, -1))
			}
			var got []string
			for s.Next() {
				got = append(got, compact(t, s.Value()))
				if id, want := s.LastEventID(), got[len(got)-1]; strconv.Itoa(id) != want {
					t.Errorf("LastEventID after chunk %s = %d", want, id)
				}
			}
			if err := s.Err(); err != nil {
				t.Fatalf("Err: %v", err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("chunks (-want +got):\n%s", d)
			}
			if s.InvocationID() != "inv_s" {
				t.Errorf("InvocationID %q, want inv_s", s.InvocationID())
			}
			h := rs.requests[0]
			if h.Get("Last-Event-ID") != tt.wantHeader {
				t.Errorf("Last-Event-ID %q, want %q", h.Get("Last-Event-ID"), tt.wantHeader)
			}
			if h.Get("Authorization") != "Bearer rk_secret" {
				t.Errorf("Authorization %q, want the key as a bearer token", h.Get("Authorization"))
			}
		})
	}
}

// TestRejoinResumes: a stream whose connection drops is rejoined from its
// LastEventID and, over both connections, yields every chunk once, in
// order.
func TestRejoinResumes(t *testing.T) {
	rs := &rejoinServer{t: t, n: 6, cut: 3}
	c := newTestClient(t, rs)
	s, err := c.Rejoin(t.Context(), "inv_s", -1)
	if err != nil {
		t.Fatal(err)
	}
	first, err := collect(t, s)
	wantUnexpectedEOF(t, err)
	if s.LastEventID() != 2 {
		t.Fatalf("LastEventID after the drop = %d, want 2", s.LastEventID())
	}
	s, err = c.Rejoin(t.Context(), s.InvocationID(), s.LastEventID())
	if err != nil {
		t.Fatal(err)
	}
	rest, err := collect(t, s)
	if err != nil {
		t.Fatalf("rejoined stream: %v", err)
	}
	if d := cmp.Diff([]string{"0", "1", "2", "3", "4", "5"}, append(first, rest...)); d != "" {
		t.Errorf("chunks over both connections (-want +got):\n%s", d)
	}
	if got := rs.requests[1].Get("Last-Event-ID"); got != "2" {
		t.Errorf("second request's Last-Event-ID %q, want 2", got)
	}
}

func TestRejoinRefused(t *testing.T) {
	for _, tt := range []struct {
		status int
		code   string
	}{
		{410, CodeGone},
		{400, CodeValidation},
		{409, CodeConflict},
		{404, CodeNotFound},
	} {
		t.Run(tt.code, func(t *testing.T) {
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeEnvelope(w, tt.status, nil, map[string]any{"code": tt.code, "message": "no"})
			}))
			_, err := c.Rejoin(t.Context(), "inv_s", 4)
			if e, ok := errors.AsType[*Error](err); !ok || e.Code != tt.code || e.Status != tt.status {
				t.Errorf("error %v, want %s (HTTP %d)", err, tt.code, tt.status)
			}
		})
	}
	c, _ := New("http://127.0.0.1:1")
	if _, err := c.Rejoin(t.Context(), "", 0); err == nil {
		t.Error("Rejoin of an empty id succeeded")
	}
}

// TestLastEventIDCounts: over a WebSocket, which carries no ids, and over
// SSE events without one, LastEventID counts the chunks from -1.
func TestLastEventIDCounts(t *testing.T) {
	var req map[string]any
	c := newTestClient(t, wsScript(t, &req, func(ctx context.Context, conn *websocket.Conn) {
		send(ctx, conn, startedFrame)
		for i := range 3 {
			send(ctx, conn, dataFrame(t, strconv.Itoa(i)))
		}
		send(ctx, conn, completedFrame(3, 0))
		conn.Close(websocket.StatusNormalClosure, "")
	}))
	s, err := c.Stream(t.Context(), "agent-1", RunRequest{Tag: "t_stream", OnDisconnect: OnDisconnectContinue})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collect(t, s); err != nil {
		t.Fatal(err)
	}
	if s.LastEventID() != 2 {
		t.Errorf("WebSocket LastEventID after 3 chunks = %d, want 2", s.LastEventID())
	}
	if req["on_disconnect"] != "continue" {
		t.Errorf("run request %v lacks on_disconnect continue", req)
	}

	c = newTestClient(t, sseHandler(t, nil, nil,
		"event: data\nid: 5\ndata: "+dataFrame(t, `1`)+"\n\n",
		"event: data\ndata: "+dataFrame(t, `2`)+"\n\n", // no id of its own: counted
		"event: status\ndata: "+completedFrame(2, 0)+"\n\n"))
	s, err = c.StreamSSE(t.Context(), "agent-1", RunRequest{Tag: "t_stream"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collect(t, s); err != nil {
		t.Fatal(err)
	}
	if s.LastEventID() != 6 {
		t.Errorf("SSE LastEventID = %d, want 6 (5, then one more without an id)", s.LastEventID())
	}
}
