package client

// These are unit tests against stand-in servers (httptest) that answer
// with the wire shapes of docs/api.md and PROTOCOL.md. The end-to-end test
// against the real `runagent serve` lives elsewhere.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/value"
)

// structured returns the structured string of the JSON value raw.
func structured(tb testing.TB, raw string) string {
	tb.Helper()
	s, err := value.Encode(json.RawMessage(raw))
	if err != nil {
		tb.Fatalf("value.Encode(%s): %v", raw, err)
	}
	return s
}

// writeEnvelope answers as the server does: the envelope, with data on
// success or the error object on failure.
func writeEnvelope(w http.ResponseWriter, status int, data any, errObj map[string]any) {
	env := map[string]any{
		"success": errObj == nil, "data": data, "message": nil, "error": nil,
		"timestamp": "2026-11-24T15:00:00.123456Z", "request_id": "req_test",
	}
	if errObj != nil {
		env["error"] = errObj
		env["message"] = errObj["message"]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-ID", "req_test")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(env)
}

func newTestClient(t *testing.T, h http.Handler, opts ...Option) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// compact returns raw in compact form, for comparing JSON.
func compact(tb testing.TB, raw []byte) string {
	tb.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		tb.Fatalf("invalid JSON %q: %v", raw, err)
	}
	return b.String()
}

func TestRunStructuredTypes(t *testing.T) {
	tests := []struct {
		name string
		data any // the envelope's data field as sent
		want string
	}{
		{"string", structured(t, `"hi"`), `"hi"`},
		{"integer", structured(t, `42`), `42`},
		{"number", structured(t, `1.5`), `1.5`},
		{"boolean", structured(t, `true`), `true`},
		{"array", structured(t, `[1, "a", null]`), `[1,"a",null]`},
		{"object", structured(t, `{"a": {"b": [1]}}`), `{"a":{"b":[1]}}`},
		{"null", structured(t, `null`), `null`},
		// Lenient fallbacks, as RunAgent clients decode.
		{"plain JSON text", `{"a": 1}`, `{"a":1}`},
		{"plain text", `hello world`, `"hello world"`},
		{"data null", nil, `null`},
		{"data not a string", map[string]any{"a": 1}, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got map[string]any
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/api/v1/agents/agent-1/run" {
					t.Errorf("request %s %s, want POST /api/v1/agents/agent-1/run", r.Method, r.URL.Path)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
				if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
					t.Errorf("decode request: %v", err)
				}
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]any{
					"success": true, "data": tt.data, "message": nil, "error": nil,
					"timestamp": "2026-11-24T15:00:00.123456Z", "request_id": "req_1", "invocation_id": "inv_1",
				})
			}))
			res, err := c.Run(t.Context(), "agent-1", RunRequest{Tag: "chat", Args: []any{1}, Kwargs: map[string]any{"m": "hi"}, TimeoutSeconds: 30, UserID: "u1"})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if g := compact(t, res.Value); g != tt.want {
				t.Errorf("Value = %s, want %s", g, tt.want)
			}
			if res.InvocationID != "inv_1" || res.RequestID != "req_1" {
				t.Errorf("ids = %q, %q, want inv_1, req_1", res.InvocationID, res.RequestID)
			}
			var dec, want any
			if err := res.Decode(&dec); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			json.Unmarshal([]byte(tt.want), &want)
			if d := cmp.Diff(want, dec); d != "" {
				t.Errorf("Decode (-want +got):\n%s", d)
			}
			wantReq := map[string]any{
				"entrypoint_tag": "chat", "input_args": []any{1.0}, "input_kwargs": map[string]any{"m": "hi"},
				"timeout_seconds": 30.0, "user_id": "u1",
			}
			if d := cmp.Diff(wantReq, got); d != "" {
				t.Errorf("request body (-want +got):\n%s", d)
			}
		})
	}
}

func TestRunDefaultsArgsAndKwargs(t *testing.T) {
	var got map[string]any
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		writeEnvelope(w, 200, structured(t, `1`), nil)
	}))
	if _, err := c.Run(t.Context(), "a", RunRequest{Tag: "t"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"entrypoint_tag": "t", "input_args": []any{}, "input_kwargs": map[string]any{}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("request body (-want +got):\n%s", d)
	}
}

func TestRunValidatesLocally(t *testing.T) {
	c, err := New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		agent, tag string
	}{{"", "t"}, {"a", ""}} {
		if _, err := c.Run(t.Context(), tt.agent, RunRequest{Tag: tt.tag}); err == nil {
			t.Errorf("Run(%q, tag %q) succeeded, want an error", tt.agent, tt.tag)
		}
	}
}

func TestRunErrorEnvelope(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		errObj   map[string]any
		want     *Error
		notFound bool
	}{
		{
			name:   "agent error",
			status: http.StatusOK,
			errObj: map[string]any{"code": "AGENT_ERROR", "message": "ValueError: boom", "details": map[string]any{"type": "ValueError", "traceback": "Traceback...", "exit_code": nil}, "field": nil},
			want:   &Error{Status: 200, Code: "AGENT_ERROR", Message: "ValueError: boom", Details: json.RawMessage(`{"exit_code":null,"traceback":"Traceback...","type":"ValueError"}`), RequestID: "req_test"},
		},
		{
			name:   "validation with field",
			status: http.StatusBadRequest,
			errObj: map[string]any{"code": "VALIDATION_ERROR", "message": "input_args must be a JSON array", "details": nil, "field": "input_args"},
			want:   &Error{Status: 400, Code: "VALIDATION_ERROR", Message: "input_args must be a JSON array", Field: "input_args", RequestID: "req_test"},
		},
		{
			name:     "not found",
			status:   http.StatusNotFound,
			errObj:   map[string]any{"code": "NOT_FOUND", "message": `agent "x" not found`, "details": nil, "field": nil},
			want:     &Error{Status: 404, Code: "NOT_FOUND", Message: `agent "x" not found`, RequestID: "req_test"},
			notFound: true,
		},
		{
			// The original RunAgent server reports agent exceptions with 200.
			name:   "success false with 200",
			status: http.StatusOK,
			errObj: map[string]any{"code": "INTERNAL_ERROR", "message": "boom", "details": nil, "field": nil},
			want:   &Error{Status: 200, Code: "INTERNAL_ERROR", Message: "boom", RequestID: "req_test"},
		},
		{
			name:   "error as a string",
			status: http.StatusInternalServerError,
			errObj: map[string]any{"message": "x"}, // replaced below
			want:   &Error{Status: 500, Message: "something broke", RequestID: "req_test"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.name == "error as a string" {
					w.WriteHeader(tt.status)
					io.WriteString(w, `{"success": false, "data": null, "message": null, "error": "something broke", "request_id": "req_test"}`)
					return
				}
				writeEnvelope(w, tt.status, nil, tt.errObj)
			}))
			_, err := c.Run(t.Context(), "x", RunRequest{Tag: "chat"})
			got, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("Run error = %v (%T), want *Error", err, err)
			}
			if d := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b json.RawMessage) bool {
				return len(a) == 0 && len(b) == 0 || len(a) > 0 && len(b) > 0 && compact(t, a) == compact(t, b)
			})); d != "" {
				t.Errorf("*Error (-want +got):\n%s", d)
			}
			if IsNotFound(err) != tt.notFound {
				t.Errorf("IsNotFound = %v, want %v", IsNotFound(err), tt.notFound)
			}
			if tt.want.Code != "" && !IsCode(err, tt.want.Code) {
				t.Errorf("IsCode(err, %q) = false", tt.want.Code)
			}
			if !strings.Contains(err.Error(), tt.want.Message) {
				t.Errorf("error text %q does not contain the message %q", err, tt.want.Message)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Status: 404, Code: "NOT_FOUND", Message: "agent not found"}, "NOT_FOUND (HTTP 404): agent not found"},
		{&Error{Status: 400, Code: "VALIDATION_ERROR", Message: "bad", Field: "input_args"}, "VALIDATION_ERROR (HTTP 400): bad (field input_args)"},
		{&Error{Code: "AGENT_ERROR", Message: "ValueError: x"}, "AGENT_ERROR: ValueError: x"},
		{&Error{Status: 200, Code: "AGENT_ERROR", Message: "ValueError: x"}, "AGENT_ERROR: ValueError: x"},
		{&Error{Status: 502, Message: "not an envelope"}, "HTTP 502 Bad Gateway: not an envelope"},
		{&Error{}, "server error"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestNonEnvelopeErrorFromProxy(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		status            int
		wantText          []string
		notFound          bool
	}{
		{"html 502", "text/html", "<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>", 502, []string{"HTTP 502", "not a RunAgent envelope", "text/html", "502 Bad Gateway</h1> <hr>nginx"}, false},
		{"empty 503", "", "", 503, []string{"HTTP 503", "empty body"}, false},
		{"plain 404", "text/plain", "404 page not found", 404, []string{"HTTP 404", "404 page not found"}, true},
		{"json but no envelope", "application/json", `{"detail": "Not Found"}`, 404, []string{"HTTP 404", `Not Found`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			_, err := c.Run(t.Context(), "a", RunRequest{Tag: "t"})
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("error = %v (%T), want *Error", err, err)
			}
			if e.Status != tt.status || e.Code != "" {
				t.Errorf("Status, Code = %d, %q; want %d, empty", e.Status, e.Code, tt.status)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if IsNotFound(err) != tt.notFound {
				t.Errorf("IsNotFound = %v, want %v", IsNotFound(err), tt.notFound)
			}
		})
	}
}

func TestRunSuccessBodyNotEnvelope(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "OK")
	}))
	_, err := c.Run(t.Context(), "a", RunRequest{Tag: "t"})
	if err == nil || !strings.Contains(err.Error(), "not a RunAgent envelope") {
		t.Fatalf("error = %v, want one saying the body is not an envelope", err)
	}
}

func TestRunTransportErrorWrapped(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(t.Context(), "a", RunRequest{Tag: "t"})
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("error = %v (%T), want a wrapped *url.Error", err, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Run(ctx, "a", RunRequest{Tag: "t"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled in its chain", err)
	}
}

// wsScript returns a handler that accepts a WebSocket, reads the run
// request into *req and then runs script.
func wsScript(t *testing.T, req *map[string]any, script func(ctx context.Context, conn *websocket.Conn)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/agents/agent-1/run-stream" {
			writeEnvelope(w, 404, nil, map[string]any{"code": "NOT_FOUND", "message": "no route"})
			return
		}
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer conn.CloseNow()
		_, msg, err := conn.Read(r.Context())
		if err != nil {
			t.Errorf("read run request: %v", err)
			return
		}
		if req != nil {
			if err := json.Unmarshal(msg, req); err != nil {
				t.Errorf("run request %q: %v", msg, err)
			}
		}
		script(conn.CloseRead(r.Context()), conn)
	}
}

func send(ctx context.Context, conn *websocket.Conn, frame string) {
	conn.Write(ctx, websocket.MessageText, []byte(frame))
}

func dataFrame(tb testing.TB, raw string) string {
	b, _ := json.Marshal(map[string]any{"type": "data", "content": structured(tb, raw)})
	return string(b)
}

const (
	startedFrame = `{"type": "status", "status": "stream_started", "invocation_id": "inv_ws"}`
)

func completedFrame(n int, secs float64) string {
	return fmt.Sprintf(`{"type": "status", "status": "stream_completed", "total_chunks": %d, "execution_time": %g, "invocation_id": "inv_ws"}`, n, secs)
}

// collect reads a whole stream.
func collect(tb testing.TB, s *Stream) ([]string, error) {
	tb.Helper()
	var got []string
	for s.Next() {
		got = append(got, compact(tb, s.Value()))
	}
	return got, s.Err()
}

func TestStreamWebSocketChunksInOrder(t *testing.T) {
	const n = 50
	var req map[string]any
	c := newTestClient(t, wsScript(t, &req, func(ctx context.Context, conn *websocket.Conn) {
		send(ctx, conn, startedFrame)
		for i := range n {
			send(ctx, conn, dataFrame(t, fmt.Sprintf(`{"i": %d}`, i)))
		}
		send(ctx, conn, completedFrame(n, 0.25))
		conn.Close(websocket.StatusNormalClosure, "")
	}))
	s, err := c.Stream(t.Context(), "agent-1", RunRequest{Tag: "chat_stream", Kwargs: map[string]any{"m": "hi"}})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	defer s.Close()
	if _, ok := s.Summary(); ok {
		t.Error("Summary ok before completion")
	}
	got, err := collect(t, s)
	if err != nil {
		t.Fatalf("Err: %v", err)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf(`{"i":%d}`, i))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("chunks (-want +got):\n%s", d)
	}
	sum, ok := s.Summary()
	if !ok || sum != (Summary{TotalChunks: n, ExecutionTime: 250 * time.Millisecond}) {
		t.Errorf("Summary = %+v, %v; want {%d 250ms}, true", sum, ok, n)
	}
	if s.InvocationID() != "inv_ws" {
		t.Errorf("InvocationID = %q, want inv_ws", s.InvocationID())
	}
	wantReq := map[string]any{"action": "start_stream", "entrypoint_tag": "chat_stream", "input_args": []any{}, "input_kwargs": map[string]any{"m": "hi"}}
	if d := cmp.Diff(wantReq, req); d != "" {
		t.Errorf("run request (-want +got):\n%s", d)
	}
	if s.Next() || s.Value() != nil || s.Err() != nil {
		t.Error("Next after the end: want false, nil value, nil error")
	}
}

func TestStreamFailures(t *testing.T) {
	tests := []struct {
		name       string
		frames     []string
		abrupt     bool // drop the TCP connection instead of closing normally
		wantChunks int
		check      func(t *testing.T, err error)
	}{
		{
			name: "error frame",
			frames: []string{startedFrame, dataFrame(t, `1`),
				`{"type": "error", "error": {"code": "AGENT_ERROR", "message": "ValueError: boom", "details": {"type": "ValueError"}}}`},
			wantChunks: 1,
			check: func(t *testing.T, err error) {
				want := &Error{Code: "AGENT_ERROR", Message: "ValueError: boom", Details: json.RawMessage(`{"type": "ValueError"}`), InvocationID: "inv_ws"}
				if d := cmp.Diff(want, err); d != "" {
					t.Errorf("error (-want +got):\n%s", d)
				}
			},
		},
		{
			name: "RunAgent error frame: message string, fields beside it",
			frames: []string{startedFrame, dataFrame(t, `1`),
				`{"type": "error", "error": "ValueError: boom", "code": "AGENT_ERROR", "details": {"type": "ValueError"}, "field": null, "invocation_id": "inv_ws"}`},
			wantChunks: 1,
			check: func(t *testing.T, err error) {
				want := &Error{Code: "AGENT_ERROR", Message: "ValueError: boom", Details: json.RawMessage(`{"type": "ValueError"}`), InvocationID: "inv_ws"}
				if d := cmp.Diff(want, err); d != "" {
					t.Errorf("error (-want +got):\n%s", d)
				}
			},
		},
		{
			name:   "missing entrypoint frame with detail",
			frames: []string{`{"type": "error", "detail": "entrypoint \"x\" not found", "error": "entrypoint \"x\" not found", "code": "NOT_FOUND", "field": "entrypoint_tag"}`},
			check: func(t *testing.T, err error) {
				if !IsNotFound(err) || !strings.Contains(err.Error(), `entrypoint "x" not found (field entrypoint_tag)`) {
					t.Errorf("error %v, want NOT_FOUND naming the entrypoint", err)
				}
			},
		},
		{
			name:   "original's missing entrypoint frame: detail only",
			frames: []string{`{"type": "error", "detail": "Entrypoint x not found"}`},
			check:  wantErrorText("Entrypoint x not found"),
		},
		{
			name:   "error frame with string error",
			frames: []string{startedFrame, `{"type": "error", "error": "agent crashed"}`},
			check:  wantErrorText("agent crashed"),
		},
		{
			name:   "status naming a failure",
			frames: []string{startedFrame, `{"type": "status", "status": "stream_failed", "message": "worker died"}`},
			check:  wantErrorText("worker died"),
		},
		{
			name:   "status naming an error",
			frames: []string{startedFrame, `{"type": "status", "status": "execution_error"}`},
			check:  wantErrorText(`stream failed (status "execution_error")`),
		},
		{
			name:   "non-null error on a data frame",
			frames: []string{startedFrame, `{"type": "data", "content": "x", "error": {"code": "X", "message": "bad chunk"}}`},
			check:  wantErrorText("X: bad chunk"),
		},
		{
			name:       "normal close before completion",
			frames:     []string{startedFrame, dataFrame(t, `1`), dataFrame(t, `2`)},
			wantChunks: 2,
			check:      wantUnexpectedEOF,
		},
		{
			name:       "abrupt close before completion",
			frames:     []string{startedFrame, dataFrame(t, `1`)},
			abrupt:     true,
			wantChunks: 1,
			check:      wantUnexpectedEOF,
		},
		{
			name:   "malformed frame",
			frames: []string{startedFrame, `{"type": "data", "content": `},
			check:  wantErrorText("malformed stream frame"),
		},
		{
			name:   "data frame without content",
			frames: []string{startedFrame, `{"type": "data"}`},
			check:  wantErrorText("data without content"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, wsScript(t, nil, func(ctx context.Context, conn *websocket.Conn) {
				for _, f := range tt.frames {
					send(ctx, conn, f)
				}
				if tt.abrupt {
					conn.CloseNow()
					return
				}
				conn.Close(websocket.StatusNormalClosure, "")
			}))
			s, err := c.Stream(t.Context(), "agent-1", RunRequest{Tag: "x_stream"})
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			defer s.Close()
			got, err := collect(t, s)
			if len(got) != tt.wantChunks {
				t.Errorf("got %d chunks %v, want %d", len(got), got, tt.wantChunks)
			}
			if err == nil {
				t.Fatal("Err = nil, want an error")
			}
			tt.check(t, err)
			if _, ok := s.Summary(); ok {
				t.Error("Summary ok after a failure")
			}
		})
	}
}

func wantErrorText(s string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func wantUnexpectedEOF(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error = %v, want io.ErrUnexpectedEOF in its chain", err)
	}
}

func TestStreamHandshakeRefused(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 404, nil, map[string]any{"code": "NOT_FOUND", "message": `agent "nope" not found`, "details": nil, "field": nil})
	}))
	_, err := c.Stream(t.Context(), "nope", RunRequest{Tag: "x_stream"})
	if !IsNotFound(err) {
		t.Fatalf("error = %v, want NOT_FOUND *Error", err)
	}
	if e, _ := errors.AsType[*Error](err); e.Status != 404 || e.RequestID != "req_test" {
		t.Errorf("*Error = %+v, want status 404, request id req_test", e)
	}
}

// sseHandler answers POST run-stream with body as the event stream,
// flushing after each part.
func sseHandler(t *testing.T, req *map[string]any, hdr *http.Header, parts ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if hdr != nil {
			*hdr = r.Header.Clone()
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/agents/agent-1/run-stream" {
			t.Errorf("request %s %s, want POST /api/v1/agents/agent-1/run-stream", r.Method, r.URL.Path)
		}
		if req != nil {
			json.NewDecoder(r.Body).Decode(req)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Invocation-ID", "inv_sse")
		w.WriteHeader(200)
		for _, p := range parts {
			io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
	}
}

func TestStreamSSE(t *testing.T) {
	content := func(raw string) string {
		b, _ := json.Marshal(structured(t, raw))
		return string(b)
	}
	parts := []string{
		": a comment before anything\n",
		"retry: 1000\n",
		"event: status\ndata: {\"type\": \"status\", \"status\": \"stream_started\", \"invocation_id\": \"inv_sse\"}\n\n",
		// Multi-line data, CRLF line ends.
		"event: data\r\nid: 0\r\ndata: {\"type\": \"data\",\r\ndata:  \"content\": " + content(`{"a": 1}`) + "}\r\n\r\n",
		": keep-alive\n\n",
		// CR line ends, no space after the colon.
		"event: data\rid: 1\rdata:{\"type\":\"data\",\"content\":" + content(`"two"`) + "}\r\r",
		// No type in the JSON: the event name says what it is.
		"event: data\nid: 2\ndata: {\"content\": " + content(`[3]`) + "}\n\n",
		// An unknown event is ignored.
		"event: ping\ndata: {}\n\n",
		"event: status\ndata: {\"type\": \"status\", \"status\": \"stream_completed\", \"total_chunks\": 3, \"execution_time\": 1.5, \"invocation_id\": \"inv_sse\"}\n\n",
	}
	var req map[string]any
	var hdr http.Header
	c := newTestClient(t, sseHandler(t, &req, &hdr, parts...))
	s, err := c.StreamSSE(t.Context(), "agent-1", RunRequest{Tag: "chat_stream", Args: []any{"x"}})
	if err != nil {
		t.Fatalf("StreamSSE: %v", err)
	}
	defer s.Close()
	if s.InvocationID() != "inv_sse" {
		t.Errorf("InvocationID before the first chunk = %q, want inv_sse from the header", s.InvocationID())
	}
	got, err := collect(t, s)
	if err != nil {
		t.Fatalf("Err: %v", err)
	}
	if d := cmp.Diff([]string{`{"a":1}`, `"two"`, `[3]`}, got); d != "" {
		t.Errorf("chunks (-want +got):\n%s", d)
	}
	if sum, ok := s.Summary(); !ok || sum != (Summary{TotalChunks: 3, ExecutionTime: 1500 * time.Millisecond}) {
		t.Errorf("Summary = %+v, %v", sum, ok)
	}
	if a := hdr.Get("Accept"); a != "text/event-stream" {
		t.Errorf("Accept = %q, want text/event-stream", a)
	}
	wantReq := map[string]any{"entrypoint_tag": "chat_stream", "input_args": []any{"x"}, "input_kwargs": map[string]any{}}
	if d := cmp.Diff(wantReq, req); d != "" {
		t.Errorf("run request (-want +got):\n%s", d)
	}
}

func TestStreamSSEFailures(t *testing.T) {
	started := "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_started\", \"invocation_id\": \"inv_sse\"}\n\n"
	t.Run("error event", func(t *testing.T) {
		c := newTestClient(t, sseHandler(t, nil, nil, started,
			"event: error\ndata: {\"type\": \"error\", \"error\": {\"code\": \"AGENT_TIMEOUT\", \"message\": \"too slow\"}}\n\n"))
		s, err := c.StreamSSE(t.Context(), "agent-1", RunRequest{Tag: "x_stream"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = collect(t, s)
		if !IsCode(err, CodeAgentTimeout) {
			t.Errorf("error = %v, want AGENT_TIMEOUT", err)
		}
	})
	t.Run("ends before completion", func(t *testing.T) {
		c := newTestClient(t, sseHandler(t, nil, nil, started, "event: data\ndata: {\"type\": \"data\", \"content\": \"1\"}\n\n", "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_comp"))
		s, err := c.StreamSSE(t.Context(), "agent-1", RunRequest{Tag: "x_stream"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := collect(t, s)
		if len(got) != 1 {
			t.Errorf("chunks = %v, want 1", got)
		}
		wantUnexpectedEOF(t, err)
	})
	t.Run("HTTP error before the stream", func(t *testing.T) {
		c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeEnvelope(w, 406, nil, map[string]any{"code": "NOT_ACCEPTABLE", "message": "send Accept"})
		}))
		_, err := c.StreamSSE(t.Context(), "agent-1", RunRequest{Tag: "x_stream"})
		if !IsCode(err, CodeNotAcceptable) {
			t.Errorf("error = %v, want NOT_ACCEPTABLE", err)
		}
	})
	t.Run("JSON instead of events", func(t *testing.T) {
		c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeEnvelope(w, 200, structured(t, `1`), nil)
		}))
		_, err := c.StreamSSE(t.Context(), "agent-1", RunRequest{Tag: "x_stream"})
		if err == nil || !strings.Contains(err.Error(), "not an event stream") {
			t.Errorf("error = %v, want one saying it is not an event stream", err)
		}
	})
}

// blockingServer sends stream_started and one chunk, then waits until the
// client goes away, and reports that on gone.
func blockingServer(t *testing.T, sse bool, gone chan<- struct{}) http.HandlerFunc {
	if sse {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: status\ndata: "+startedFrame+"\n\nevent: data\ndata: "+dataFrame(t, `1`)+"\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			close(gone)
		}
	}
	return wsScript(t, nil, func(ctx context.Context, conn *websocket.Conn) {
		send(ctx, conn, startedFrame)
		send(ctx, conn, dataFrame(t, `1`))
		<-ctx.Done() // CloseRead's context: the client closed or vanished
		close(gone)
	})
}

func TestStreamContextCancel(t *testing.T) {
	for _, sse := range []bool{false, true} {
		t.Run(fmt.Sprintf("sse=%v", sse), func(t *testing.T) {
			gone := make(chan struct{})
			c := newTestClient(t, blockingServer(t, sse, gone))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			open := c.Stream
			if sse {
				open = c.StreamSSE
			}
			s, err := open(ctx, "agent-1", RunRequest{Tag: "x_stream"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !s.Next() {
				t.Fatalf("first Next = false, err %v", s.Err())
			}
			time.AfterFunc(50*time.Millisecond, cancel)
			start := time.Now()
			if s.Next() {
				t.Fatal("Next after cancel = true")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Next took %v to notice the cancellation", d)
			}
			if !errors.Is(s.Err(), context.Canceled) {
				t.Errorf("Err = %v, want context.Canceled", s.Err())
			}
			select {
			case <-gone:
			case <-time.After(5 * time.Second):
				t.Error("the server did not see the client go away")
			}
		})
	}
}

func TestStreamCloseFromAnotherGoroutine(t *testing.T) {
	for _, sse := range []bool{false, true} {
		t.Run(fmt.Sprintf("sse=%v", sse), func(t *testing.T) {
			gone := make(chan struct{})
			c := newTestClient(t, blockingServer(t, sse, gone))
			open := c.Stream
			if sse {
				open = c.StreamSSE
			}
			s, err := open(t.Context(), "agent-1", RunRequest{Tag: "x_stream"})
			if err != nil {
				t.Fatal(err)
			}
			if !s.Next() {
				t.Fatalf("first Next = false, err %v", s.Err())
			}
			time.AfterFunc(50*time.Millisecond, func() { s.Close() })
			if s.Next() {
				t.Fatal("Next after Close = true")
			}
			if s.Err() != nil {
				t.Errorf("Err after Close = %v, want nil", s.Err())
			}
			s.Close() // twice is fine
			select {
			case <-gone:
			case <-time.After(5 * time.Second):
				t.Error("the server did not see the client go away")
			}
		})
	}
}

func TestStreamAll(t *testing.T) {
	frames := []string{startedFrame, dataFrame(t, `1`), dataFrame(t, `2`), dataFrame(t, `3`)}
	t.Run("break closes", func(t *testing.T) {
		gone := make(chan struct{})
		c := newTestClient(t, wsScript(t, nil, func(ctx context.Context, conn *websocket.Conn) {
			for _, f := range frames {
				send(ctx, conn, f)
			}
			<-ctx.Done()
			close(gone)
		}))
		s, err := c.Stream(t.Context(), "agent-1", RunRequest{Tag: "x_stream"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for v, err := range s.All() {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(v))
			if len(got) == 2 {
				break
			}
		}
		if d := cmp.Diff([]string{"1", "2"}, got); d != "" {
			t.Errorf("chunks (-want +got):\n%s", d)
		}
		select {
		case <-gone:
		case <-time.After(5 * time.Second):
			t.Error("break did not close the stream")
		}
	})
	t.Run("error ends the sequence", func(t *testing.T) {
		c := newTestClient(t, wsScript(t, nil, func(ctx context.Context, conn *websocket.Conn) {
			for _, f := range frames {
				send(ctx, conn, f)
			}
			send(ctx, conn, `{"type": "error", "error": {"code": "AGENT_ERROR", "message": "boom"}}`)
			conn.Close(websocket.StatusNormalClosure, "")
		}))
		s, err := c.Stream(t.Context(), "agent-1", RunRequest{Tag: "x_stream"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		var last error
		for v, err := range s.All() {
			if err != nil {
				last = err
				continue
			}
			got = append(got, string(v))
		}
		if len(got) != 3 || !IsCode(last, CodeAgentError) {
			t.Errorf("got %v, last error %v; want 3 chunks then AGENT_ERROR", got, last)
		}
	})
}

// recorder notes the Authorization header and query of every request.
type recorder struct {
	mu      sync.Mutex
	auth    []string
	queries []string
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.auth = append(rec.auth, r.Header.Get("Authorization"))
		rec.queries = append(rec.queries, r.URL.RawQuery)
		rec.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// fullServer routes the run, WebSocket and SSE endpoints.
func fullServer(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/agents/agent-1/run", func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 200, structured(t, `1`), nil)
	})
	mux.Handle("GET /api/v1/agents/agent-1/run-stream", wsScript(t, nil, func(ctx context.Context, conn *websocket.Conn) {
		send(ctx, conn, startedFrame)
		send(ctx, conn, completedFrame(0, 0))
		conn.Close(websocket.StatusNormalClosure, "")
	}))
	mux.Handle("POST /api/v1/agents/agent-1/run-stream", sseHandler(t, nil, nil,
		"event: status\ndata: "+completedFrame(0, 0)+"\n\n"))
	return mux
}

func runAll(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.Run(t.Context(), "agent-1", RunRequest{Tag: "t"}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, open := range []func(context.Context, string, RunRequest) (*Stream, error){c.Stream, c.StreamSSE} {
		s, err := open(t.Context(), "agent-1", RunRequest{Tag: "t_stream"})
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if _, err := collect(t, s); err != nil {
			t.Fatalf("stream: %v", err)
		}
	}
}

func TestAPIKeyInHeaderNotURL(t *testing.T) {
	const key = "rk_live_0123456789"
	rec := &recorder{}
	c := newTestClient(t, rec.wrap(fullServer(t)), WithAPIKey(key))
	runAll(t, c)
	if len(rec.auth) != 3 {
		t.Fatalf("%d requests, want 3", len(rec.auth))
	}
	for i := range rec.auth {
		if rec.auth[i] != "Bearer "+key {
			t.Errorf("request %d: Authorization %q, want Bearer <key>", i, rec.auth[i])
		}
		if strings.Contains(rec.queries[i], key) || strings.Contains(rec.queries[i], "token") {
			t.Errorf("request %d: query %q carries the key", i, rec.queries[i])
		}
	}
}

func TestTokenInQuery(t *testing.T) {
	const key = "rk/with+odd chars&="
	rec := &recorder{}
	c := newTestClient(t, rec.wrap(fullServer(t)), WithAPIKey(key), WithTokenInQuery())
	runAll(t, c)
	// Only the WebSocket handshake (the second request) carries ?token=.
	for i, q := range rec.queries {
		vals, _ := url.ParseQuery(q)
		got := vals.Get("token")
		if want := map[bool]string{true: key}[i == 1]; got != want {
			t.Errorf("request %d: token %q, want %q", i, got, want)
		}
		if rec.auth[i] != "Bearer "+key {
			t.Errorf("request %d: Authorization %q, want Bearer <key>", i, rec.auth[i])
		}
	}
}

func TestTokenRedactedFromErrors(t *testing.T) {
	const key = "rk_secret/key+1"
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens: the dial error quotes the URL
	c, err := New(srv.URL, WithAPIKey(key), WithTokenInQuery())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stream(t.Context(), "agent-1", RunRequest{Tag: "x_stream"})
	if err == nil {
		t.Fatal("Stream to a closed server succeeded")
	}
	checkRedacted(t, err, key)
	if !strings.Contains(err.Error(), redacted) {
		t.Errorf("error %q does not show where the key was removed", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("error %v (%T) no longer wraps the *url.Error", err, err)
	}

	// A server that echoes the key in its message.
	c = newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 401, nil, map[string]any{"code": "UNAUTHORIZED", "message": "bad key " + r.Header.Get("Authorization")})
	}), WithAPIKey(key))
	_, err = c.Run(t.Context(), "a", RunRequest{Tag: "t"})
	checkRedacted(t, err, key)
	if !IsCode(err, "UNAUTHORIZED") {
		t.Errorf("error %v lost its *Error", err)
	}
}

func checkRedacted(t *testing.T, err error, key string) {
	t.Helper()
	for _, k := range []string{key, url.QueryEscape(key), url.PathEscape(key)} {
		if strings.Contains(err.Error(), k) {
			t.Errorf("error text %q contains the key as %q", err, k)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"http://127.0.0.1:8450", "http://127.0.0.1:8450/api/v1"},
		{"http://127.0.0.1:8450/", "http://127.0.0.1:8450/api/v1"},
		{"http://127.0.0.1:8450/api/v1", "http://127.0.0.1:8450/api/v1"},
		{"https://agents.example.com/api/v1/", "https://agents.example.com/api/v1"},
		{"https://example.com/runagent", "https://example.com/runagent/api/v1"},
		{" http://[::1]:8450 ", "http://[::1]:8450/api/v1"},
	}
	for _, tt := range tests {
		c, err := New(tt.in)
		if err != nil {
			t.Errorf("New(%q): %v", tt.in, err)
			continue
		}
		if c.BaseURL() != tt.want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", tt.in, c.BaseURL(), tt.want)
		}
	}
	for _, in := range []string{"", "127.0.0.1:8450", "ftp://h", "http://", "http://u:secretpw@h", "http://h/?token=secretpw", "http://h/#x", "http://h:bad port/"} {
		_, err := New(in)
		if err == nil {
			t.Errorf("New(%q) succeeded, want an error", in)
			continue
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("New(%q) error %q quotes the credential", in, err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("RUNAGENT_BASE_URL", "http://10.0.0.1:9000")
	t.Setenv("RUNAGENT_API_KEY", "k1")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != "http://10.0.0.1:9000/api/v1" || c.apiKey != "k1" {
		t.Errorf("FromEnv = %q, key %q", c.BaseURL(), c.apiKey)
	}
	c, _ = FromEnv(WithAPIKey("k2"))
	if c.apiKey != "k2" {
		t.Errorf("an option did not override the environment: key %q", c.apiKey)
	}
	t.Setenv("RUNAGENT_BASE_URL", "")
	t.Setenv("RUNAGENT_API_KEY", "")
	c, _ = FromEnv()
	if c.BaseURL() != DefaultBaseURL+"/api/v1" || c.apiKey != "" {
		t.Errorf("FromEnv with nothing set = %q, key %q", c.BaseURL(), c.apiKey)
	}
}

func TestDefaultDeadlines(t *testing.T) {
	ctx, cancel := withDefaultTimeout(t.Context(), time.Minute)
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > time.Minute {
		t.Errorf("no-deadline context: deadline %v, %v; want about a minute", dl, ok)
	}
	short, cancel2 := context.WithTimeout(t.Context(), time.Second)
	defer cancel2()
	ctx, cancel3 := withDefaultTimeout(short, time.Hour)
	defer cancel3()
	if dl, _ := ctx.Deadline(); time.Until(dl) > time.Second {
		t.Errorf("caller's deadline was replaced: %v", dl)
	}
	if got := runTimeout(DefaultRunTimeout, RunRequest{}); got != DefaultRunTimeout {
		t.Errorf("runTimeout without TimeoutSeconds = %v", got)
	}
	if got := runTimeout(DefaultRunTimeout, RunRequest{TimeoutSeconds: 1000}); got != 1000*time.Second+timeoutGrace {
		t.Errorf("runTimeout(1000 s) = %v", got)
	}
}

func TestUserAgent(t *testing.T) {
	var got string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("User-Agent")
		writeEnvelope(w, 200, map[string]any{"agents": []any{}}, nil)
	}), WithUserAgent("runagent-cli/1.2"))
	if _, err := c.Agents(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got != "runagent-cli/1.2" {
		t.Errorf("User-Agent = %q", got)
	}
}

func TestReadRoutes(t *testing.T) {
	created := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/health", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status": "healthy", "server": "runagent", "timestamp": "2026-11-24T15:00:00.000000Z", "uptime_seconds": 12, "version": "0.1.0", "agents": 2, "active_runs": 1}`)
	})
	mux.HandleFunc("GET /api/v1/agents/a1/architecture", func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 200, map[string]any{"agent_id": "a1", "agent_name": "Echo", "framework": "default", "version": "1.0",
			"entrypoints": []any{map[string]any{"tag": "chat", "file": "main.py", "module": "agent.invoke", "streaming": false, "kind": "python"}}}, nil)
	})
	var listQuery url.Values
	mux.HandleFunc("GET /api/v1/agents/a1/invocations", func(w http.ResponseWriter, r *http.Request) {
		listQuery = r.URL.Query()
		writeEnvelope(w, 200, map[string]any{"agent_id": "a1", "count": 1, "limit": 10, "offset": 5, "invocations": []any{
			map[string]any{"invocation_id": "inv_1", "agent_id": "a1", "entrypoint_tag": "chat", "status": "failed", "transport": "rest",
				"input_args": []any{}, "input_kwargs": map[string]any{}, "total_chunks": 0, "error_code": "AGENT_ERROR",
				"created_at": created, "duration_ms": 7},
		}}, nil)
	})
	mux.HandleFunc("GET /api/v1/agents/a1/invocations/stats", func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 200, map[string]any{"agent_id": "a1", "total_invocations": 3, "by_status": map[string]int{"completed": 2, "failed": 1}, "avg_duration_ms": 12.5, "last_invocation_at": created}, nil)
	})
	mux.HandleFunc("GET /api/v1/invocations/inv_1", func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 200, map[string]any{"invocation_id": "inv_1", "agent_id": "a1", "status": "completed", "output": map[string]any{"a": 1}, "created_at": created, "completed_at": created}, nil)
	})
	mux.HandleFunc("GET /api/v1/agents", func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 200, map[string]any{"agents": []any{map[string]any{"agent_id": "a1", "agent_name": "Echo", "current_version": "sha256:ab", "created_at": created, "updated_at": created}}}, nil)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 404, nil, map[string]any{"code": "NOT_FOUND", "message": "no route " + r.URL.Path})
	})
	c := newTestClient(t, mux)
	ctx := t.Context()

	h, err := c.Health(ctx)
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	if d := cmp.Diff(&Health{Status: "healthy", Server: "runagent", Timestamp: "2026-11-24T15:00:00.000000Z", UptimeSeconds: 12, Version: "0.1.0", Agents: 2, ActiveRuns: 1}, h); d != "" {
		t.Errorf("Health (-want +got):\n%s", d)
	}

	a, err := c.Architecture(ctx, "a1")
	if err != nil {
		t.Fatalf("Architecture: %v", err)
	}
	wantArch := &Architecture{AgentID: "a1", AgentName: "Echo", Framework: "default", Version: "1.0",
		Entrypoints: []Entrypoint{{Tag: "chat", Kind: "python", File: "main.py", Module: "agent.invoke"}}}
	if d := cmp.Diff(wantArch, a); d != "" {
		t.Errorf("Architecture (-want +got):\n%s", d)
	}

	l, err := c.Invocations(ctx, "a1", ListOptions{Limit: 10, Offset: 5, Status: "failed"})
	if err != nil {
		t.Fatalf("Invocations: %v", err)
	}
	if d := cmp.Diff(url.Values{"limit": {"10"}, "offset": {"5"}, "status": {"failed"}}, listQuery); d != "" {
		t.Errorf("query (-want +got):\n%s", d)
	}
	if l.Count != 1 || len(l.Invocations) != 1 || l.Invocations[0].ID != "inv_1" || l.Invocations[0].ErrorCode != "AGENT_ERROR" ||
		!l.Invocations[0].CreatedAt.Equal(created) || l.Invocations[0].DurationMS != 7 || l.Limit != 10 || l.Offset != 5 {
		t.Errorf("Invocations = %+v", l)
	}

	st, err := c.InvocationStats(ctx, "a1")
	if err != nil {
		t.Fatalf("InvocationStats: %v", err)
	}
	if st.TotalInvocations != 3 || st.ByStatus["failed"] != 1 || st.AvgDurationMS != 12.5 || st.LastInvocationAt == nil || !st.LastInvocationAt.Equal(created) {
		t.Errorf("InvocationStats = %+v", st)
	}

	inv, err := c.Invocation(ctx, "inv_1")
	if err != nil {
		t.Fatalf("Invocation: %v", err)
	}
	if inv.ID != "inv_1" || inv.Status != "completed" || compact(t, inv.Output) != `{"a":1}` || inv.CompletedAt == nil {
		t.Errorf("Invocation = %+v", inv)
	}

	agents, err := c.Agents(ctx)
	if err != nil {
		t.Fatalf("Agents: %v", err)
	}
	if d := cmp.Diff([]Agent{{ID: "a1", Name: "Echo", CurrentVersion: "sha256:ab", CreatedAt: created, UpdatedAt: created}}, agents); d != "" {
		t.Errorf("Agents (-want +got):\n%s", d)
	}

	if _, err := c.Invocation(ctx, "missing"); !IsNotFound(err) {
		t.Errorf("Invocation(missing) error = %v, want NOT_FOUND", err)
	}
	if _, err := c.Architecture(ctx, ""); err == nil {
		t.Error("Architecture with an empty id succeeded")
	}
}

func TestHealthUnhealthy(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		io.WriteString(w, `{"status": "draining", "server": "runagent"}`)
	}))
	h, err := c.Health(t.Context())
	if h == nil || h.Status != "draining" {
		t.Errorf("Health = %+v, want the decoded body", h)
	}
	if e, ok := errors.AsType[*Error](err); !ok || e.Status != 503 || !strings.Contains(e.Message, "draining") {
		t.Errorf("error = %v, want a 503 *Error naming the status", err)
	}
}

func TestDeploy(t *testing.T) {
	pkg := []byte("\x1f\x8b fake gzip package")
	var gotBody []byte
	var gotType string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/agents" {
			t.Errorf("request %s %s, want POST /api/v1/agents", r.Method, r.URL.Path)
		}
		gotType = r.Header.Get("Content-Type")
		gotBody, _ = io.ReadAll(r.Body)
		writeEnvelope(w, 201, map[string]any{"agent_id": "a1", "agent_name": "Echo", "version": "sha256:abc", "created": true,
			"entrypoints": []any{map[string]any{"tag": "chat_stream", "kind": "python", "streaming": true}}, "warnings": []string{"w1"}}, nil)
	}))
	res, err := c.Deploy(t.Context(), bytes.NewReader(pkg))
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	want := &DeployResult{AgentID: "a1", AgentName: "Echo", Version: "sha256:abc", Created: true,
		Entrypoints: []Entrypoint{{Tag: "chat_stream", Kind: "python", Streaming: true}}, Warnings: []string{"w1"}}
	if d := cmp.Diff(want, res); d != "" {
		t.Errorf("DeployResult (-want +got):\n%s", d)
	}
	if gotType != "application/gzip" || !bytes.Equal(gotBody, pkg) {
		t.Errorf("sent Content-Type %q, body %q; want application/gzip and the package", gotType, gotBody)
	}
}
