package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit/redistest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// hangBackend's guests never answer an invocation: it runs until it is
// cancelled or its deadline passes.
type hangBackend struct{}

func (hangBackend) Name() string { return "hang" }
func (hangBackend) Start(context.Context, sandbox.Spec) (sandbox.Sandbox, error) {
	return sandboxtest.Hang(), nil
}

// clusterNodes starts a node for each backend on one PostgreSQL store
// and one Redis, with one master key.
func clusterNodes(t *testing.T, backends ...sandbox.Backend) []*Server {
	t.Helper()
	nodes, _ := clusterNodesWith(t, func(*Config) {}, backends...)
	return nodes
}

// clusterNodesWith is clusterNodes with each node's Config changed by mod;
// it also returns the Redis address.
func clusterNodesWith(t *testing.T, mod func(*Config), backends ...sandbox.Backend) ([]*Server, string) {
	t.Helper()
	url := pgtest.Start(t).NewDatabase(t)
	redisAddr := redistest.Start(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	var nodes []*Server
	for _, b := range backends {
		cfg := Config{AgentDirs: []string{"../../examples/hello"}, Version: "test", Auth: AuthNone,
			StoreURL: url, RedisURL: "redis://" + redisAddr + "/0", Keyring: KeyringConfig{MasterKeyFile: keyFile}, Backend: b}
		mod(&cfg)
		nodes = append(nodes, serve(t, cfg))
	}
	return nodes, redisAddr
}

// call sends a request and returns its status and envelope.
func call(t *testing.T, method, url string, body any, hdr ...string) (int, map[string]json.RawMessage) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env map[string]json.RawMessage
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("%s %s: answer %q: %v", method, url, raw, err)
	}
	return resp.StatusCode, env
}

// record is what these tests read of an invocation record.
type record struct {
	Status       string `json:"status"`
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

func recordOf(t *testing.T, env map[string]json.RawMessage) record {
	t.Helper()
	var r record
	if err := json.Unmarshal(env["data"], &r); err != nil {
		t.Fatalf("record %s: %v", env["data"], err)
	}
	return r
}

func errorText(env map[string]json.RawMessage) string {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	json.Unmarshal(env["error"], &e)
	return e.Code + ": " + e.Message
}

// runAsync starts a background run of hello's echo on s and returns its id.
func runAsync(t *testing.T, s *Server, timeout float64) string {
	t.Helper()
	status, env := call(t, "POST", s.URL()+"/api/v1/agents/"+helloID+"/run",
		map[string]any{"entrypoint_tag": "echo", "input_args": []any{1}, "async_execution": true, "timeout_seconds": timeout})
	var id string
	json.Unmarshal(env["invocation_id"], &id)
	if status != http.StatusAccepted || id == "" {
		t.Fatalf("background run: %d %v", status, env)
	}
	return id
}

// TestClusterCancelFromAnyNode: a background run on node A is cancelled
// through node B: the record says cancelled, by whom, as a local cancel
// leaves it, and B answers with it at once. A run recorded as running
// that no node holds gets 409 saying its node is gone.
func TestClusterCancelFromAnyNode(t *testing.T) {
	nodes := clusterNodes(t, hangBackend{}, sandboxtest.EchoBackend{})
	a, b := nodes[0], nodes[1]
	id := runAsync(t, a, 600)

	start := time.Now()
	status, env := call(t, "POST", b.URL()+"/api/v1/invocations/"+id+"/cancel", nil)
	if status != http.StatusOK {
		t.Fatalf("cancel on B of a run on A: %d %s", status, errorText(env))
	}
	rec := recordOf(t, env)
	if rec.Status != string(core.StatusCancelled) || rec.ErrorCode != core.CodeCancelled || !strings.Contains(rec.ErrorMessage, "cancelled by ") {
		t.Errorf("record after the cancel: %+v, want cancelled, by whom", rec)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the cancel took %v; the end is announced on the bus, so it should not wait for a poll", d)
	}
	if status, env := call(t, "POST", b.URL()+"/api/v1/invocations/"+id+"/cancel", nil); status != http.StatusConflict || !strings.Contains(errorText(env), "already ended") {
		t.Errorf("second cancel: %d %s, want 409 already ended", status, errorText(env))
	}

	// A run whose node died: recorded as running, held by no node.
	inv, err := b.store.Invocation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	orphan := &core.Invocation{ID: uuid.NewString(), AgentID: inv.AgentID, ProjectID: inv.ProjectID, AgentVersion: inv.AgentVersion,
		EntrypointTag: "echo", Transport: "rest", Status: core.StatusRunning, Caller: inv.Caller, CreatedAt: time.Now().UTC()}
	if err := b.store.CreateInvocation(t.Context(), orphan); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	status, env = call(t, "POST", b.URL()+"/api/v1/invocations/"+orphan.ID+"/cancel", nil)
	if status != http.StatusConflict || !strings.Contains(errorText(env), "node running it is gone") {
		t.Errorf("cancel of a run no node holds: %d %s, want 409 saying its node is gone", status, errorText(env))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("finding that no node holds it took %v; every node answers at once", d)
	}
}

// TestClusterWaitFromAnyNode: ?wait= on node B for a background run on
// node A answers as soon as the run ends (announced on the bus), not at
// the end of the wait nor at the next poll of the store.
func TestClusterWaitFromAnyNode(t *testing.T) {
	nodes := clusterNodes(t, hangBackend{}, sandboxtest.EchoBackend{})
	a, b := nodes[0], nodes[1]
	id := runAsync(t, a, 1) // ends at its deadline, 1 s from now
	start := time.Now()
	status, env := call(t, "GET", b.URL()+"/api/v1/invocations/"+id+"?wait=30s", nil)
	d := time.Since(start)
	if status != http.StatusOK {
		t.Fatalf("wait on B: %d %s", status, errorText(env))
	}
	if rec := recordOf(t, env); rec.Status != string(core.StatusTimeout) {
		t.Errorf("record after the wait: %+v, want the run's end (timeout)", rec)
	}
	if d > 4*time.Second {
		t.Errorf("the wait answered after %v; the run ended after 1 s and B polls the store only every %v", d, 5*time.Second)
	}
}

// TestClusterWithRedisDown: a wait on another node's run, begun before
// Redis went away, still answers soon after the run's end, by polling the
// store; a request that arrives while Redis is gone fails closed (503:
// neither its node's blocks nor the run's node can be checked). (Rate
// limits are off: they would refuse the same way.)
func TestClusterWithRedisDown(t *testing.T) {
	nodes, redisAddr := clusterNodesWith(t, func(c *Config) { c.NoRateLimit = true }, hangBackend{}, sandboxtest.EchoBackend{})
	a, b := nodes[0], nodes[1]
	id := runAsync(t, a, 2) // ends at its deadline, 2 s from now
	type answer struct {
		status int
		env    map[string]json.RawMessage
		at     time.Time
	}
	waited := make(chan answer, 1)
	go func() {
		status, env := call(t, "GET", b.URL()+"/api/v1/invocations/"+id+"?wait=30s", nil)
		waited <- answer{status, env, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond) // the wait is under way on B
	redistest.Client(t, redisAddr).Shutdown(t.Context())
	waitUntil(t, "B to notice Redis is gone", func() bool { return !b.cluster.Connected() })

	status, env := call(t, "POST", b.URL()+"/api/v1/invocations/"+id+"/cancel", nil)
	if status != http.StatusServiceUnavailable {
		t.Errorf("cancel on B of a run on A with Redis down: %d %s, want 503", status, errorText(env))
	}
	var w answer
	select {
	case w = <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("the wait begun before Redis went away did not answer within 10 s")
	}
	if w.status != http.StatusOK || recordOf(t, w.env).Status != string(core.StatusTimeout) {
		t.Fatalf("wait on B with Redis down: %d %s, want the run's end", w.status, w.env["data"])
	}
	rec, err := a.store.Invocation(t.Context(), id)
	if err != nil || rec.CompletedAt == nil {
		t.Fatalf("record on A: %+v, %v", rec, err)
	}
	if d := w.at.Sub(*rec.CompletedAt); d > 2500*time.Millisecond {
		t.Errorf("the wait answered %v after the run's end; B polls every second while Redis is down (every 5 s while it is up)", d)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ event, id, data string }

// sseReader reads Server-Sent Events one at a time.
type sseReader struct{ sc *bufio.Scanner }

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	return &sseReader{sc: sc}
}

// next returns the next event; ok is false at the end of the stream.
func (r *sseReader) next() (ev sseEvent, ok bool) {
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if ev.event != "" {
				return ev, true
			}
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	return sseEvent{}, false
}

// readSSE reads events from r until its end.
func readSSE(r io.Reader) []sseEvent {
	var out []sseEvent
	sr := newSSEReader(r)
	for ev, ok := sr.next(); ok; ev, ok = sr.next() {
		out = append(out, ev)
	}
	return out
}

// sse opens an event stream.
func sse(t *testing.T, method, url string, body any, hdr ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestClusterRejoinFromAnyNode: a stream running on node A is rejoined on
// node B, over SSE from a Last-Event-ID and over WebSocket from ?after=,
// while it runs and after it has ended: B sends the same frames with the
// same ids as A, from the point asked, none lost or repeated, then the
// end.
func TestClusterRejoinFromAnyNode(t *testing.T) {
	nodes := clusterNodes(t, sandboxtest.EchoBackend{ChunkDelay: 20 * time.Millisecond}, sandboxtest.EchoBackend{})
	a, b := nodes[0], nodes[1]
	const n = 60
	args := make([]any, n)
	for i := range args {
		args[i] = fmt.Sprintf("word %d", i)
	}
	resp := sse(t, "POST", a.URL()+"/api/v1/agents/"+helloID+"/run-stream",
		map[string]any{"entrypoint_tag": "generate_stream", "input_args": args})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("run-stream on A: %d", resp.StatusCode)
	}
	id := resp.Header.Get("X-Invocation-ID")
	// The direct client reads the first events, then the rejoins start
	// while the stream runs on.
	sr := newSSEReader(resp.Body)
	var all []sseEvent
	for len(all) < 8 {
		ev, ok := sr.next()
		if !ok {
			t.Fatalf("the stream on A ended after %v", all)
		}
		all = append(all, ev)
	}
	rejoined := make(chan []sseEvent, 1)
	go func() {
		r := sse(t, "GET", b.URL()+"/api/v1/invocations/"+id+"/stream", nil, "Last-Event-ID", "4")
		if r.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(r.Body)
			t.Errorf("SSE rejoin on B: %d %s", r.StatusCode, body)
			rejoined <- nil
			return
		}
		rejoined <- readSSE(r.Body)
	}()
	wsFrames := make(chan []string, 1)
	go func() { wsFrames <- readWS(t, b.URL(), id, 9) }()
	for ev, ok := sr.next(); ok; ev, ok = sr.next() {
		all = append(all, ev)
	}
	if len(all) != n+2 || !strings.Contains(all[len(all)-1].data, "stream_completed") {
		t.Fatalf("the stream on A sent %d events (want %d and the end): %v", len(all), n+2, all)
	}
	got := <-rejoined
	want := append([]sseEvent{all[0]}, all[1+5:]...) // started, then ids 5.., then the end
	checkRejoin(t, "SSE rejoin on B from Last-Event-ID 4", got, want)
	if len(got) > 2 {
		for i, ev := range got[1 : len(got)-1] {
			if ev.id != strconv.Itoa(5+i) {
				t.Errorf("rejoined event %d has id %q, want %d: ids are continuous", i, ev.id, 5+i)
				break
			}
		}
	}
	var wantWS []sseEvent
	for _, ev := range append([]sseEvent{all[0]}, all[1+10:]...) {
		wantWS = append(wantWS, sseEvent{data: ev.data})
	}
	var gotWS []sseEvent
	for _, f := range <-wsFrames {
		gotWS = append(gotWS, sseEvent{data: f})
	}
	checkRejoin(t, "WebSocket rejoin on B from ?after=9", gotWS, wantWS)

	// After its end, A keeps the stream: B relays all of it.
	r := sse(t, "GET", b.URL()+"/api/v1/invocations/"+id+"/stream", nil)
	checkRejoin(t, "rejoin on B of the ended stream from the start", readSSE(r.Body), all)

	// A stream no node keeps.
	inv, err := b.store.Invocation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	orphan := *inv
	orphan.ID, orphan.Status, orphan.CompletedAt = uuid.NewString(), core.StatusRunning, nil
	if err := b.store.CreateInvocation(t.Context(), &orphan); err != nil {
		t.Fatal(err)
	}
	r = sse(t, "GET", b.URL()+"/api/v1/invocations/"+orphan.ID+"/stream", nil)
	if body, _ := io.ReadAll(r.Body); r.StatusCode != http.StatusGone || !strings.Contains(string(body), "node running it is gone") {
		t.Errorf("rejoin of a stream no node keeps: %d %s, want 410 saying its node is gone", r.StatusCode, body)
	}
}

// readWS rejoins stream id on base over WebSocket from ?after= and returns
// its frames.
func readWS(t *testing.T, base, id string, after int) []string {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/api/v1/invocations/"+id+"/stream?after="+strconv.Itoa(after), nil)
	if err != nil {
		t.Errorf("WebSocket rejoin: %v", err)
		return nil
	}
	defer conn.CloseNow()
	var out []string
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return out
		}
		out = append(out, string(b))
	}
}

// checkRejoin compares a rejoined stream with the events the direct
// client had. The end frames agree but for execution_time, which the
// direct client's stream measures to its own last write.
func checkRejoin(t *testing.T, what string, got, want []sseEvent) {
	t.Helper()
	endOf := func(evs []sseEvent) ([]sseEvent, sseEvent, map[string]any) {
		if len(evs) == 0 {
			return nil, sseEvent{}, nil
		}
		last := evs[len(evs)-1]
		var f map[string]any
		json.Unmarshal([]byte(last.data), &f)
		delete(f, "execution_time")
		last.data = ""
		return evs[:len(evs)-1], last, f
	}
	gotBody, gotLast, gotEnd := endOf(got)
	wantBody, wantLast, wantEnd := endOf(want)
	if !slices.Equal(gotBody, wantBody) || gotLast != wantLast || fmt.Sprint(gotEnd) != fmt.Sprint(wantEnd) || gotEnd == nil {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// waitUntil polls cond (state in another process part) until it holds or
// 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
