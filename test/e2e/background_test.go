package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// invocationRecord is what these tests read of GET /invocations/{id}.
type invocationRecord struct {
	ID           string          `json:"invocation_id"`
	Status       string          `json:"status"`
	Output       json.RawMessage `json:"output"`
	Chunks       int             `json:"total_chunks"`
	ErrorCode    string          `json:"error_code"`
	ErrorMessage string          `json:"error_message"`
}

func (s *server) invocation(t *testing.T, id, query string) (int, invocationRecord) {
	t.Helper()
	status, env := s.do(t, "GET", "/api/v1/invocations/"+id+query, "", nil)
	var inv invocationRecord
	if status == 200 {
		if err := json.Unmarshal(env.Data, &inv); err != nil {
			t.Fatalf("invocation record %s: %v", env.Data, err)
		}
	}
	return status, inv
}

// runAsync starts a background run and returns its id, checking the 202
// and its Location.
func (s *server) runAsync(t *testing.T, body map[string]any) string {
	t.Helper()
	body["async_execution"] = true
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/agents/"+agentID+"/run", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env envelope
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	if resp.StatusCode != http.StatusAccepted || !env.Success || env.InvocationID == "" {
		t.Fatalf("async run: status %d, body %s; want 202 with an invocation_id", resp.StatusCode, raw)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/invocations/"+env.InvocationID {
		t.Errorf("Location %q, want /api/v1/invocations/%s", loc, env.InvocationID)
	}
	return env.InvocationID
}

// TestAsyncRunE2E: async_execution answers 202 at once; the run goes on
// after the client has gone; ?wait= answers when it ends.
func TestAsyncRunE2E(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	start := time.Now()
	id := s.runAsync(t, map[string]any{"entrypoint_tag": "sleeps", "input_kwargs": map[string]any{"seconds": 1.5}})
	if d := time.Since(start); d > time.Second {
		t.Errorf("the 202 took %s: it should not wait for the run", d)
	}
	if _, inv := s.invocation(t, id, ""); inv.Status != "running" {
		t.Errorf("status right after the 202: %q, want running", inv.Status)
	}
	_, inv := s.invocation(t, id, "?wait=20s")
	if inv.Status != "completed" {
		t.Fatalf("after ?wait=20s: %+v, want completed", inv)
	}
	if string(inv.Output) != `"woke"` {
		t.Errorf("output %s, want the string woke", inv.Output)
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 15*time.Second {
		t.Errorf("?wait answered %s after the start; the run sleeps 1.5 s", d)
	}
	if status, _ := s.do(t, "GET", "/api/v1/invocations/"+id+"?wait=forever", "", nil); status != 400 {
		t.Errorf("?wait=forever: %d, want 400", status)
	}
}

// TestCancelE2E: cancel ends a busy agent (a Python loop that never
// yields) within a second, queued or running, and the record says who.
func TestCancelE2E(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	id := s.runAsync(t, map[string]any{"entrypoint_tag": "spins", "input_kwargs": map[string]any{"seconds": 60}})
	time.Sleep(500 * time.Millisecond) // let it start spinning
	start := time.Now()
	status, env := s.do(t, "POST", "/api/v1/invocations/"+id+"/cancel", "", nil)
	took := time.Since(start)
	if status != 200 {
		t.Fatalf("cancel: %d %+v", status, env.Error)
	}
	var inv invocationRecord
	json.Unmarshal(env.Data, &inv)
	if inv.Status != "cancelled" || inv.ErrorCode != "CANCELLED" || !strings.Contains(inv.ErrorMessage, "cancelled by") {
		t.Errorf("record after cancel: %+v, want cancelled, CANCELLED, saying by whom", inv)
	}
	if took > time.Second {
		t.Errorf("cancel answered after %s, want within 1 s", took)
	}
	if status, env := s.do(t, "POST", "/api/v1/invocations/"+id+"/cancel", "", nil); status != 409 {
		t.Errorf("second cancel: %d %+v, want 409", status, env.Error)
	}

	// A plain run, its client waiting, is cancelled from another request.
	done := make(chan int, 1)
	go func() {
		b := `{"entrypoint_tag":"spins","input_kwargs":{"seconds":60}}`
		resp, err := http.Post(s.URL+"/api/v1/agents/"+agentID+"/run", "application/json", strings.NewReader(b))
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	var running string
	for deadline := time.Now().Add(10 * time.Second); running == "" && time.Now().Before(deadline); {
		_, env := s.do(t, "GET", "/api/v1/agents/"+agentID+"/invocations?status=running", "", nil)
		var list struct {
			Invocations []invocationRecord `json:"invocations"`
		}
		json.Unmarshal(env.Data, &list)
		if len(list.Invocations) > 0 {
			running = list.Invocations[0].ID
		}
		time.Sleep(50 * time.Millisecond)
	}
	if running == "" {
		t.Fatal("the plain run never showed as running")
	}
	if status, env := s.do(t, "POST", "/api/v1/invocations/"+running+"/cancel", "", nil); status != 200 {
		t.Fatalf("cancel the plain run: %d %+v", status, env.Error)
	}
	select {
	case code := <-done:
		if code != 499 && code != 200 {
			t.Logf("the waiting client got %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the plain run's client was not answered within 5 s of the cancel")
	}
	if _, inv := s.invocation(t, running, ""); inv.Status != "cancelled" {
		t.Errorf("plain run after cancel: %+v, want cancelled", inv)
	}
}

// sseEvent is one Server-Sent Event with its id.
type sseEvent struct {
	event, id string
	f         frame
}

// readSSE reads events from r until EOF or stop says so; each frame
// notes its event name and when it arrived.
func readSSE(t *testing.T, r io.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var evs []sseEvent
	var cur sseEvent
	var data []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) == 0 {
				continue
			}
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &cur.f); err != nil {
				t.Fatalf("event data %q is not JSON: %v", data, err)
			}
			cur.f.at, cur.f.event = time.Now(), cur.event
			evs = append(evs, cur)
			if stop != nil && stop(cur) {
				return evs
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, "event:"):
			cur.event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "id:"):
			cur.id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil && stop == nil {
		t.Fatalf("read events: %v", err)
	}
	return evs
}

func dataIDs(t *testing.T, evs []sseEvent) []int {
	t.Helper()
	var ids []int
	for _, ev := range evs {
		if ev.event != "data" {
			continue
		}
		n, err := strconv.Atoi(ev.id)
		if err != nil {
			t.Fatalf("data event without a numeric id: %+v", ev)
		}
		ids = append(ids, n)
	}
	return ids
}

// startDetachedStream starts a slow_stream of n chunks on s that goes on
// without its client, reads its events up to data event 2 and leaves;
// it returns the invocation id and the data ids seen.
func startDetachedStream(t *testing.T, ctx context.Context, s *server, n int) (string, []int) {
	t.Helper()
	body := fmt.Sprintf(`{"entrypoint_tag":"slow_stream","input_kwargs":{"n":%d,"delay":0.15},"on_disconnect":"continue"}`, n)
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/api/v1/agents/"+agentID+"/run-stream", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // the client goes after event 2
	id := resp.Header.Get("X-Invocation-ID")
	return id, dataIDs(t, readSSE(t, resp.Body, func(ev sseEvent) bool { return ev.event == "data" && ev.id == "2" }))
}

// rejoinSSE rejoins invocation id's stream on s after event last, as an
// EventSource reconnects, and returns the events to its end.
func rejoinSSE(t *testing.T, ctx context.Context, s *server, id, last string) []sseEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/v1/invocations/"+id+"/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
	req.Header.Set("Last-Event-ID", last)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("rejoin on %s: %d %s", s.URL, resp.StatusCode, b)
	}
	return readSSE(t, resp.Body, nil)
}

// upTo returns 0, 1, ..., n-1.
func upTo(n int) []int {
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	return want
}

// TestStreamResumeE2E: a stream asked to continue without its client
// finishes after the client goes; the client rejoins it with
// Last-Event-ID and gets every event it missed exactly once, then the
// end; a WebSocket rejoins it from any event; a stream whose events are
// no longer kept answers 410.
func TestStreamResumeE2E(t *testing.T) {
	needSandbox(t)
	s := startServer(t, "--stream-keep", "3s")
	const n = 12
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, seen := startDetachedStream(t, ctx, s, n)
	if !slices.Equal(seen, []int{0, 1, 2}) {
		t.Fatalf("first connection's ids %v, want [0 1 2]", seen)
	}

	// Rejoin while it runs, as an EventSource reconnects.
	rest := rejoinSSE(t, ctx, s, id, "2")
	all := append(seen, dataIDs(t, rest)...)
	want := upTo(n)
	if !slices.Equal(all, want) {
		t.Errorf("ids over both connections %v, want each of 0..%d once, in order", all, n-1)
	}
	if last := rest[len(rest)-1]; last.f.Status != "stream_completed" || last.f.TotalChunks == nil || *last.f.TotalChunks != n {
		t.Errorf("rejoined stream ended with %+v, want stream_completed with %d chunks", last.f, n)
	}
	if _, inv := s.invocation(t, id, ""); inv.Status != "completed" || inv.Chunks != n {
		t.Errorf("record: %+v, want completed with %d chunks (the run went on without its client)", inv, n)
	}

	// A WebSocket rejoins the finished stream after event 7.
	wsURL := "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/invocations/" + id + "/stream?after=7&token=" + s.OwnerKey
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	defer c.CloseNow()
	var frames []frame
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("read: %v", err)
			}
			break
		}
		var f frame
		json.Unmarshal(data, &f)
		frames = append(frames, f)
	}
	var contents []string
	for _, f := range frames {
		if f.Type == "data" {
			contents = append(contents, f.Content)
		}
	}
	if len(frames) < 2 || frames[0].Status != "stream_started" || frames[len(frames)-1].Status != "stream_completed" || len(contents) != n-8 {
		t.Errorf("WebSocket rejoin after 7: %d frames, %d data; want started, %d data, completed", len(frames), len(contents), n-8)
	}

	// Past --stream-keep the events are gone: 410, and the record stays.
	time.Sleep(3500 * time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/v1/invocations/"+id+"/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Errorf("rejoin after the keep time: %d, want 410", resp.StatusCode)
	}
}

// TestStreamCancelDefaultE2E: without on_disconnect, a stream's run still
// stops when its SSE client goes.
func TestStreamCancelDefaultE2E(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/api/v1/agents/"+agentID+"/run-stream",
		strings.NewReader(`{"entrypoint_tag":"slow_stream","input_kwargs":{"n":100,"delay":0.1}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Invocation-ID")
	readSSE(t, resp.Body, func(ev sseEvent) bool { return ev.event == "data" })
	resp.Body.Close()
	if _, inv := s.invocation(t, id, "?wait=10s"); inv.Status != "cancelled" {
		t.Errorf("record: %+v, want cancelled when the client left", inv)
	}
	status, env := s.doWith(t, "POST", "/api/v1/agents/"+agentID+"/run-stream", "application/json",
		strings.NewReader(`{"entrypoint_tag":"slow_stream","on_disconnect":"later"}`), map[string]string{"Accept": "text/event-stream"})
	if status != 400 || env.Error == nil || env.Error.Field == nil || *env.Error.Field != "on_disconnect" {
		t.Errorf("on_disconnect later: %d %+v, want 400 naming on_disconnect", status, env.Error)
	}
}
