package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// frame is one streamed message, WebSocket message or SSE event data.
type frame struct {
	Type          string   `json:"type"`
	Status        string   `json:"status"`
	Content       string   `json:"content"`
	InvocationID  string   `json:"invocation_id"`
	TotalChunks   *int     `json:"total_chunks"`
	ExecutionTime *float64 `json:"execution_time"`
	// An error frame: error is the message as a JSON string, as RunAgent
	// sends it; the error object's other fields are beside it.
	Error   json.RawMessage `json:"error"`
	Code    string          `json:"code"`
	Details json.RawMessage `json:"details"`
	Field   *string         `json:"field"`
	Detail  *string         `json:"detail"`

	at    time.Time // when it arrived
	event string    // SSE event name
}

// pythonSDKError handles an error frame as RunAgent's Python SDK does: it
// calls string methods on error (error.lower(), "in" tests), so anything
// but a JSON string there crashes its error handling.
func pythonSDKError(t *testing.T, f frame) string {
	t.Helper()
	raw := f.Error
	if len(raw) == 0 || string(raw) == "null" {
		if f.Detail == nil {
			t.Fatalf("error frame %+v has neither error nor detail", f)
		}
		return strings.ToLower(*f.Detail)
	}
	var msg string
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("error is %s, not a string: the Python SDK's error.lower() would raise AttributeError", raw)
	}
	return strings.ToLower(msg)
}

// tsSDKError handles an error frame as RunAgent's TypeScript SDK does:
// new Error(frame.error ?? frame.detail), whose message an object would
// turn into "[object Object]".
func tsSDKError(t *testing.T, f frame) string {
	t.Helper()
	var v any
	if len(f.Error) > 0 {
		json.Unmarshal(f.Error, &v)
	}
	if v == nil && f.Detail != nil {
		v = *f.Detail
	}
	msg, ok := v.(string)
	if !ok || msg == "" {
		t.Fatalf("error frame %+v: new Error(%v) would not carry the message", f, v)
	}
	return msg
}

// checkErrorFrame checks f is an error frame with code whose message
// (read as both SDKs read it) contains want.
func checkErrorFrame(t *testing.T, f frame, code, want string) {
	t.Helper()
	if f.Type != "error" || f.Code != code {
		t.Errorf("frame %+v, want an error frame with code %s", f, code)
		return
	}
	if py := pythonSDKError(t, f); !strings.Contains(py, strings.ToLower(want)) {
		t.Errorf("Python SDK reads %q, want it to mention %q", py, want)
	}
	if ts := tsSDKError(t, f); !strings.Contains(ts, want) {
		t.Errorf("TypeScript SDK reads %q, want it to mention %q", ts, want)
	}
}

// wsStream opens the WebSocket run-stream as the RunAgent Go SDK does
// (token in the query), sends the request and collects every frame.
func wsStream(t *testing.T, s *server, body any) []frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// As RunAgent's SDKs authenticate a stream: the key in ?token=.
	url := "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/agents/" + agentID + "/run-stream"
	c, _, err := websocket.Dial(ctx, url+"?token="+s.OwnerKey, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer c.CloseNow()
	msg, _ := json.Marshal(body)
	if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatalf("send request: %v", err)
	}
	var frames []frame
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			st := websocket.CloseStatus(err)
			if st == websocket.StatusNormalClosure && (len(frames) == 0 || frames[len(frames)-1].Type != "error") {
				return frames
			}
			// After an error frame the socket closes with 1003, as RunAgent's does.
			if st == websocket.StatusUnsupportedData && len(frames) > 0 && frames[len(frames)-1].Type == "error" {
				return frames
			}
			t.Fatalf("read after %d frames: %v", len(frames), err)
		}
		if typ != websocket.MessageText {
			t.Fatalf("got a binary message")
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %q is not JSON: %v", data, err)
		}
		f.at = time.Now()
		frames = append(frames, f)
	}
}

// sseStream POSTs the run with Accept: text/event-stream and parses the
// events by hand.
func sseStream(t *testing.T, s *server, body any) []frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/api/v1/agents/"+agentID+"/run-stream", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var frames []frame
	for _, ev := range readSSE(t, resp.Body, nil) {
		frames = append(frames, ev.f)
	}
	return frames
}

var streamers = []struct {
	name string
	open func(*testing.T, *server, any) []frame
}{
	{"websocket", wsStream},
	{"sse", sseStream},
}

func TestStreamAllSevenTypes(t *testing.T) {
	s := startServer(t)
	for _, st := range streamers {
		t.Run(st.name, func(t *testing.T) {
			frames := st.open(t, s, map[string]any{"entrypoint_tag": "values_stream", "input_args": []any{}, "input_kwargs": map[string]any{}, "action": "start_stream"})
			if len(frames) != 9 {
				t.Fatalf("got %d frames, want started + 7 data + completed: %+v", len(frames), frames)
			}
			if f := frames[0]; f.Type != "status" || f.Status != "stream_started" || f.InvocationID == "" {
				t.Errorf("first frame %+v, want status stream_started with invocation_id", f)
			}
			for i, want := range wantValues {
				f := frames[i+1]
				if f.Type != "data" {
					t.Fatalf("frame %d type %q, want data", i+1, f.Type)
				}
				checkValue(t, f.Content, want.kind, want.want)
				if st.name == "sse" && f.event != "data" {
					t.Errorf("SSE event name %q, want data", f.event)
				}
			}
			last := frames[8]
			if last.Type != "status" || last.Status != "stream_completed" || last.TotalChunks == nil || *last.TotalChunks != 7 || last.ExecutionTime == nil || last.InvocationID != frames[0].InvocationID {
				t.Errorf("last frame %+v, want stream_completed with total_chunks 7", last)
			}
		})
	}
}

// TestStreamIsNotBuffered: each chunk reaches the client as the agent
// yields it, not when the agent finishes.
func TestStreamIsNotBuffered(t *testing.T) {
	s := startServer(t)
	for _, st := range streamers {
		t.Run(st.name, func(t *testing.T) {
			frames := st.open(t, s, map[string]any{"entrypoint_tag": "slow_stream", "input_kwargs": map[string]any{"n": 3, "delay": 0.6}})
			if len(frames) != 5 {
				t.Fatalf("got %d frames: %+v", len(frames), frames)
			}
			first, done := frames[1].at, frames[4].at
			// The agent sleeps 0.6 s after each of 3 chunks: the first chunk
			// must arrive at least ~1.2 s before the end.
			if gap := done.Sub(first); gap < time.Second {
				t.Errorf("first chunk arrived only %v before completion: the stream was buffered", gap)
			}
			if gap := frames[2].at.Sub(frames[1].at); gap < 400*time.Millisecond {
				t.Errorf("chunks 0 and 1 arrived %v apart, want about 0.6 s", gap)
			}
		})
	}
}

func TestStreamErrors(t *testing.T) {
	s := startServer(t)
	for _, st := range streamers {
		t.Run(st.name+"/raises midway", func(t *testing.T) {
			frames := st.open(t, s, map[string]any{"entrypoint_tag": "raises_stream"})
			if len(frames) != 3 {
				t.Fatalf("got %d frames, want started, data, error: %+v", len(frames), frames)
			}
			if frames[1].Type != "data" {
				t.Errorf("frame 1 %+v, want the chunk yielded before the error", frames[1])
			}
			checkErrorFrame(t, frames[2], "AGENT_ERROR", "stream broke")
			var d struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(frames[2].Details, &d); d.Type == "" || frames[2].InvocationID == "" {
				t.Errorf("error frame details %s, invocation %q: want the exception type and the invocation", frames[2].Details, frames[2].InvocationID)
			}
		})
	}
	t.Run("websocket/unknown tag", func(t *testing.T) {
		frames := wsStream(t, s, map[string]any{"entrypoint_tag": "nope_stream"})
		if len(frames) != 1 {
			t.Fatalf("frames %+v, want one NOT_FOUND error frame", frames)
		}
		checkErrorFrame(t, frames[0], "NOT_FOUND", "nope_stream")
		if d := frames[0].Detail; d == nil || !strings.Contains(*d, "nope_stream") {
			t.Errorf("detail %v, want the message (RunAgent's missing-entrypoint frame)", d)
		}
	})
	t.Run("websocket/plain tag", func(t *testing.T) {
		frames := wsStream(t, s, map[string]any{"entrypoint_tag": "value"})
		if len(frames) != 1 {
			t.Fatalf("frames %+v, want one VALIDATION_ERROR error frame", frames)
		}
		checkErrorFrame(t, frames[0], "VALIDATION_ERROR", "")
	})
	t.Run("websocket/bad json", func(t *testing.T) {
		frames := wsStream(t, s, json.RawMessage(`{"entrypoint_tag":`))
		if len(frames) != 1 {
			t.Fatalf("frames %+v, want one VALIDATION_ERROR error frame", frames)
		}
		checkErrorFrame(t, frames[0], "VALIDATION_ERROR", "")
	})
	t.Run("sse/unknown tag is a plain HTTP error", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/agents/"+agentID+"/run-stream", strings.NewReader(`{"entrypoint_tag":"nope_stream"}`))
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
}

// TestClientDisconnectStopsRun: closing the socket mid-stream stops the
// agent and records the invocation as cancelled.
func TestClientDisconnectStopsRun(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/api/v1/agents/"+agentID+"/run-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(ctx, websocket.MessageText, []byte(`{"entrypoint_tag":"slow_stream","input_kwargs":{"n":100,"delay":0.2}}`))
	var started frame
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var f frame
		json.Unmarshal(data, &f)
		if f.Status == "stream_started" {
			started = f
		}
		if f.Type == "data" {
			break
		}
	}
	c.Close(websocket.StatusNormalClosure, "bye")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, env := s.do(t, "GET", "/api/v1/invocations/"+started.InvocationID, "", nil)
		var inv struct {
			Status string `json:"status"`
		}
		json.Unmarshal(env.Data, &inv)
		if inv.Status == "cancelled" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invocation status %q 10 s after the client left, want cancelled", inv.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
