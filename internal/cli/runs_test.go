package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cliAgainst runs the CLI with h as the server ($RUNAGENT_BASE_URL) and
// returns its output and exit status.
func cliAgainst(t *testing.T, h http.Handler, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Setenv("RUNAGENT_BASE_URL", srv.URL)
	t.Setenv("RUNAGENT_API_KEY", "")
	t.Setenv("RUNAGENT_API_KEY_FILE", "")
	var out, errs strings.Builder
	code = Main(t.Context(), args, strings.NewReader(""), &out, &errs)
	return out.String(), errs.String(), code
}

// answer writes the envelope with data, as the server does.
func answer(w http.ResponseWriter, status int, data any, errObj map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"success": errObj == nil, "data": data, "error": errObj, "request_id": "req_t"})
}

func TestParseRunArgsAsync(t *testing.T) {
	ra, err := parseRunArgs([]string{"--id", "A", "--tag", "t", "--async", "--n=1"})
	if err != nil {
		t.Fatal(err)
	}
	if !ra.async {
		t.Error("--async not set")
	}
	if d := cmp.Diff(map[string]any{"n": float64(1)}, ra.kwargs); d != "" {
		t.Errorf("kwargs (-want +got):\n%s", d)
	}
	if ra, err = parseRunArgs([]string{"--id", "A", "--tag", "t", "--async=false"}); err != nil || ra.async {
		t.Errorf("--async=false: %+v, %v", ra, err)
	}
}

// TestRunAsyncPrintsID: run --async sends async_execution and prints the
// invocation id alone on stdout, and on stderr how to follow it.
func TestRunAsyncPrintsID(t *testing.T) {
	var got map[string]any
	out, errOut, code := cliAgainst(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/agents/A/run" {
			t.Errorf("request %s %s, want POST /api/v1/agents/A/run", r.Method, r.URL.Path)
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Location", "/api/v1/invocations/inv_bg")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"success": true, "data": null, "invocation_id": "inv_bg"}`)
	}), "run", "--async", "--id", "A", "--tag", "slow", "--n=2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != "inv_bg\n" {
		t.Errorf("stdout %q, want the id alone", out)
	}
	for _, want := range []string{"runagent runs wait inv_bg", "runagent runs cancel inv_bg"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if got["async_execution"] != true || got["entrypoint_tag"] != "slow" || cmp.Diff(map[string]any{"n": float64(2)}, got["input_kwargs"]) != "" {
		t.Errorf("request %v, want async_execution true and input n=2", got)
	}
}

// TestRunStreamAsync: run-stream --async opens the stream over SSE with
// on_disconnect "continue", prints its id and leaves it.
func TestRunStreamAsync(t *testing.T) {
	var got map[string]any
	left := make(chan struct{})
	out, errOut, code := cliAgainst(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("request %s Accept %q, want POST with Accept: text/event-stream", r.Method, r.Header.Get("Accept"))
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Invocation-ID", "inv_s")
		io.WriteString(w, "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_started\", \"invocation_id\": \"inv_s\"}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			close(left)
		case <-time.After(10 * time.Second):
			t.Error("the CLI did not leave the stream")
		}
	}), "run-stream", "--async", "--id", "A", "--tag", "slow_stream")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != "inv_s\n" || !strings.Contains(errOut, "runagent runs stream inv_s") {
		t.Errorf("stdout %q, stderr %q; want the id, and how to follow it", out, errOut)
	}
	if got["on_disconnect"] != "continue" {
		t.Errorf("request %v, want on_disconnect continue", got)
	}
	select {
	case <-left:
	case <-time.After(10 * time.Second):
		t.Error("the server never saw the CLI leave")
	}
}

// invocationServer answers GET /api/v1/invocations/inv with the records
// in turn (the last one again once they run out), noting each ?wait=.
type invocationServer struct {
	records []map[string]any
	// hold makes a running record wait for ?wait= as the server does.
	hold  bool
	mu    sync.Mutex
	waits []string
}

func (s *invocationServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/api/v1/invocations/inv" {
		answer(w, 404, nil, map[string]any{"code": "NOT_FOUND", "message": "invocation not found"})
		return
	}
	s.mu.Lock()
	s.waits = append(s.waits, r.URL.Query().Get("wait"))
	rec := s.records[min(len(s.waits), len(s.records))-1]
	s.mu.Unlock()
	if d, _ := time.ParseDuration(r.URL.Query().Get("wait")); s.hold && rec["status"] == "running" && d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	answer(w, 200, rec, nil)
}

func TestRunsWait(t *testing.T) {
	running := map[string]any{"invocation_id": "inv", "status": "running"}
	tb := "Traceback (most recent call last):\n  File \"agent.py\", line 3, in raises\nValueError: bad input\n"
	for _, tt := range []struct {
		name      string
		records   []map[string]any
		hold      bool
		args      []string
		code      int
		stdout    string
		stderrHas []string
		wantWaits int
		// firstWait is the most the first request may ask the server to
		// wait, and 100 ms more than the least.
		firstWait time.Duration
	}{
		{name: "result after two long-polls", records: []map[string]any{running,
			{"invocation_id": "inv", "status": "completed", "output": map[string]any{"a": 1}}},
			code: 0, stdout: "{\n  \"a\": 1\n}\n", wantWaits: 2, firstWait: time.Minute},
		{name: "text result", records: []map[string]any{{"invocation_id": "inv", "status": "completed", "output": "done"}},
			code: 0, stdout: "done\n", wantWaits: 1},
		{name: "raw", records: []map[string]any{{"invocation_id": "inv", "status": "completed", "output": map[string]any{"a": 1}}},
			args: []string{"--raw"}, code: 0, stdout: "{\"a\":1}\n", wantWaits: 1},
		{name: "stream chunks", records: []map[string]any{{"invocation_id": "inv", "status": "completed", "streaming": true, "output": []any{"Once ", "upon"}}},
			code: 0, stdout: "Once upon", stderrHas: []string{"(2 chunks, invocation inv)"}, wantWaits: 1},
		{name: "no output kept", records: []map[string]any{{"invocation_id": "inv", "status": "completed"}},
			code: 0, stdout: "", stderrHas: []string{"kept no output"}, wantWaits: 1},
		{name: "agent error", records: []map[string]any{{"invocation_id": "inv", "status": "failed", "error_code": "AGENT_ERROR",
			"error_message": "ValueError: bad input", "logs": "starting\n" + tb}},
			code: 1, stderrHas: []string{"AGENT_ERROR: ValueError: bad input", "exception: ValueError", tb, "invocation: inv"}, wantWaits: 1},
		{name: "cancelled", records: []map[string]any{{"invocation_id": "inv", "status": "cancelled", "error_code": "CANCELLED",
			"error_message": "cancelled by key:k1"}},
			code: 1, stderrHas: []string{"CANCELLED: cancelled by key:k1"}, wantWaits: 1},
		{name: "still running at the timeout", records: []map[string]any{running}, hold: true, args: []string{"--timeout", "1500ms"},
			code: 1, stderrHas: []string{"still running after 1.5s", "runagent runs cancel inv"}, wantWaits: 1, firstWait: 1500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := &invocationServer{records: tt.records, hold: tt.hold}
			out, errOut, code := cliAgainst(t, srv, append([]string{"runs", "wait", "inv"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			if out != tt.stdout {
				t.Errorf("stdout %q, want %q", out, tt.stdout)
			}
			for _, want := range tt.stderrHas {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if len(srv.waits) != tt.wantWaits {
				t.Errorf("%d requests (waits %q), want %d", len(srv.waits), srv.waits, tt.wantWaits)
			}
			if tt.firstWait > 0 {
				d, err := time.ParseDuration(srv.waits[0])
				if err != nil || d > tt.firstWait || d < tt.firstWait-100*time.Millisecond {
					t.Errorf("first wait %q, want at most %s and not much less", srv.waits[0], tt.firstWait)
				}
			}
		})
	}
	_, errOut, code := cliAgainst(t, &invocationServer{records: []map[string]any{running}}, "runs", "wait", "other")
	if code != 1 || !strings.Contains(errOut, "NOT_FOUND") {
		t.Errorf("wait for an unknown invocation: exit %d, stderr %q", code, errOut)
	}
}

func TestRunsCancel(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method %s, want POST", r.Method)
		}
		switch r.URL.Path {
		case "/api/v1/invocations/inv_run/cancel":
			answer(w, 200, map[string]any{"invocation_id": "inv_run", "status": "cancelled", "error_code": "CANCELLED", "error_message": "cancelled by key:k1"}, nil)
		case "/api/v1/invocations/inv_slow/cancel":
			answer(w, 200, map[string]any{"invocation_id": "inv_slow", "status": "running"}, nil)
		case "/api/v1/invocations/inv_done/cancel":
			answer(w, 409, nil, map[string]any{"code": "CONFLICT", "message": "invocation inv_done has already ended (status completed); there is nothing to cancel"})
		default:
			answer(w, 404, nil, map[string]any{"code": "NOT_FOUND", "message": "invocation not found"})
		}
	})
	for _, tt := range []struct {
		id        string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{"inv_run", 0, "invocation inv_run cancelled (cancelled by key:k1)", ""},
		{"inv_slow", 0, "has not stopped yet", ""},
		{"inv_done", 1, "", "CONFLICT (HTTP 409): invocation inv_done has already ended"},
		{"nope", 1, "", "NOT_FOUND"},
	} {
		t.Run(tt.id, func(t *testing.T) {
			out, errOut, code := cliAgainst(t, h, "runs", "cancel", tt.id)
			if code != tt.code || !strings.Contains(out, tt.stdoutHas) || !strings.Contains(errOut, tt.stderrHas) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", code, out, errOut, tt.code, tt.stdoutHas, tt.stderrHas)
			}
		})
	}
}

// streamServer serves GET /api/v1/invocations/inv/stream from a stream
// of the chunks "a", "b", … numbered from 0: the events after
// Last-Event-ID, then the end. Connection number i (from 0) is cut after
// cuts[i] events when that is >= 0.
type streamServer struct {
	t      *testing.T
	chunks []string
	cuts   []int

	mu    sync.Mutex
	after []string // each request's Last-Event-ID
}

func (s *streamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/invocations/inv/stream" {
		answer(w, 404, nil, map[string]any{"code": "NOT_FOUND", "message": "invocation not found"})
		return
	}
	s.mu.Lock()
	n := len(s.after)
	s.after = append(s.after, r.Header.Get("Last-Event-ID"))
	s.mu.Unlock()
	cut := -1
	if n < len(s.cuts) {
		cut = s.cuts[n]
	}
	after := -1
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		after, _ = strconv.Atoi(v)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Invocation-ID", "inv")
	io.WriteString(w, "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_started\", \"invocation_id\": \"inv\"}\n\n")
	sent := 0
	for i := after + 1; i < len(s.chunks); i++ {
		if sent == cut {
			w.(http.Flusher).Flush()
			return // the connection drops
		}
		content, _ := json.Marshal(structuredText(s.chunks[i]))
		fmt.Fprintf(w, "event: data\nid: %d\ndata: {\"type\": \"data\", \"content\": %s}\n\n", i, content)
		sent++
	}
	fmt.Fprintf(w, "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_completed\", \"total_chunks\": %d, \"invocation_id\": \"inv\"}\n\n", len(s.chunks))
}

// structuredText is s as RunAgent's structured string.
func structuredText(s string) string {
	payload, _ := json.Marshal(s)
	b, _ := json.Marshal(map[string]string{"type": "string", "payload": string(payload)})
	return string(b)
}

func TestRunsStream(t *testing.T) {
	chunks := []string{"a", "b", "c", "d", "e", "f"}
	for _, tt := range []struct {
		name      string
		cuts      []int
		args      []string
		code      int
		stdout    string
		after     []string
		stderrHas string
	}{
		{"whole stream", nil, nil, 0, "abcdef", []string{""}, "(6 chunks in"},
		{"after 3", nil, []string{"--after", "3"}, 0, "ef", []string{"3"}, "(2 chunks in"},
		// The connection drops after c: the CLI rejoins after chunk 2 and
		// prints each chunk once.
		{"rejoins once after a drop", []int{3}, nil, 0, "abcdef", []string{"", "2"}, "rejoining after chunk 2"},
		{"rejoins from --after", []int{1}, []string{"--after", "1"}, 0, "cdef", []string{"1", "2"}, "rejoining after chunk 2"},
		// A second drop is an error: it rejoins once only.
		{"a second drop fails", []int{2, 2}, nil, 1, "abcd\n", []string{"", "1"}, "before stream_completed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := &streamServer{t: t, chunks: chunks, cuts: tt.cuts}
			out, errOut, code := cliAgainst(t, srv, append([]string{"runs", "stream", "inv"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			if out != tt.stdout {
				t.Errorf("stdout %q, want %q", out, tt.stdout)
			}
			if d := cmp.Diff(tt.after, srv.after); d != "" {
				t.Errorf("Last-Event-ID of each request (-want +got):\n%s", d)
			}
			if !strings.Contains(errOut, tt.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderrHas, errOut)
			}
		})
	}
	gone := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(w, 410, nil, map[string]any{"code": "GONE", "message": "the events of invocation inv are no longer kept"})
	})
	if _, errOut, code := cliAgainst(t, gone, "runs", "stream", "inv"); code != 1 || !strings.Contains(errOut, "GONE (HTTP 410)") {
		t.Errorf("a stream no longer kept: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := cliAgainst(t, gone, "runs", "stream", "inv", "--after", "-2"); code != 1 || !strings.Contains(errOut, "--after -2") {
		t.Errorf("--after -2: exit %d, stderr %q", code, errOut)
	}
}

// TestRunsHelpTeaches: the group and each command explain themselves with
// examples.
func TestRunsHelpTeaches(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"runs", "--help"}, []string{"wait", "cancel", "stream", "--stream-keep", "run --async", "Examples"}},
		{[]string{"runs", "wait", "--help"}, []string{"--timeout", "exit status is 1", "Examples"}},
		{[]string{"runs", "stream", "--help"}, []string{"--after", "rejoins once", "GONE", "Examples"}},
		{[]string{"runs", "cancel", "--help"}, []string{"within a second", "Examples"}},
		{[]string{"run", "--help"}, []string{"--async", "runagent runs wait $id"}},
		{[]string{"run-stream", "--help"}, []string{"--async", "on_disconnect", "runagent runs stream $id"}},
	} {
		var out strings.Builder
		if code := Main(t.Context(), tt.args, strings.NewReader(""), &out, &out); code != 0 {
			t.Fatalf("%q exited %d: %s", tt.args, code, out.String())
		}
		for _, want := range tt.want {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%q lacks %q", tt.args, want)
			}
		}
	}
}
