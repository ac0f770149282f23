package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// badBodies are run bodies holding text that is not valid Unicode, each
// with the field the refusal must name.
var badBodies = []struct {
	name, body, field string
}{
	{"lone surrogate", `{"entrypoint_tag": "%s", "input_kwargs": {"kind": "string", "note": "a\ud800b"}}`, "input_kwargs.note"},
	{"invalid utf-8", "{\"entrypoint_tag\": \"%s\", \"input_args\": [\"ok\", \"secret\xff\xfe\"]}", "input_args[1]"},
}

// TestBadTextInput: a run whose body holds text that is not valid Unicode
// is refused with 400 VALIDATION_ERROR naming the field, on every
// transport, and no invocation is recorded (no sandbox started).
func TestBadTextInput(t *testing.T) {
	s := startServer(t)
	before := invocationCount(t, s)
	for _, bb := range badBodies {
		t.Run("rest/"+bb.name, func(t *testing.T) {
			body := strings.Replace(bb.body, "%s", "value", 1)
			status, env := s.do(t, http.MethodPost, "/api/v1/agents/"+agentID+"/run", "application/json", strings.NewReader(body))
			checkBadText(t, status, env, bb.field)
		})
		t.Run("sse/"+bb.name, func(t *testing.T) {
			body := strings.Replace(bb.body, "%s", "values_stream", 1)
			req, _ := http.NewRequest("POST", s.URL+"/api/v1/agents/"+agentID+"/run-stream", strings.NewReader(body))
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var env envelope
			json.Unmarshal(b, &env)
			checkBadText(t, resp.StatusCode, &env, bb.field)
			if bytes.Contains(b, []byte("secret")) {
				t.Errorf("the refusal quotes the input: %s", b)
			}
		})
		t.Run("websocket/"+bb.name, func(t *testing.T) {
			body := strings.Replace(bb.body, "%s", "values_stream", 1)
			frames := wsStream(t, s, json.RawMessage(body))
			if len(frames) != 1 {
				t.Fatalf("frames %+v, want one VALIDATION_ERROR error frame", frames)
			}
			checkErrorFrame(t, frames[0], "VALIDATION_ERROR", "not valid Unicode")
			if f := frames[0].Field; f == nil || *f != bb.field {
				t.Errorf("field %v, want %s", f, bb.field)
			}
		})
	}
	if after := invocationCount(t, s); after != before {
		t.Errorf("%d invocations recorded for refused bodies", after-before)
	}
}

func checkBadText(t *testing.T, status int, env *envelope, field string) {
	t.Helper()
	if status != http.StatusBadRequest || env.Success || env.Error == nil || env.Error.Code != "VALIDATION_ERROR" {
		t.Fatalf("status %d envelope %+v, want 400 VALIDATION_ERROR", status, env)
	}
	if env.Error.Field == nil || *env.Error.Field != field || !strings.Contains(env.Error.Message, "not valid Unicode") {
		t.Errorf("error %+v (field %v), want field %s and a message naming the fault", env.Error, env.Error.Field, field)
	}
	if strings.Contains(env.Error.Message, "secret") || strings.ContainsRune(env.Error.Message, 0xfffd) {
		t.Errorf("message %q quotes the bad text", env.Error.Message)
	}
}

func invocationCount(t *testing.T, s *server) int {
	t.Helper()
	status, env := s.do(t, http.MethodGet, "/api/v1/agents/"+agentID+"/invocations/stats", "", nil)
	if status != http.StatusOK {
		t.Fatalf("stats: %d %+v", status, env.Error)
	}
	var st struct {
		Total int `json:"total_invocations"`
	}
	json.Unmarshal(env.Data, &st)
	return st.Total
}

// TestAgentReturnsBadText: an agent that returns, or yields, a str with a
// lone surrogate gets an AGENT_ERROR saying so, not a protocol failure,
// on every transport.
func TestAgentReturnsBadText(t *testing.T) {
	s := startServer(t)
	const want = "the agent returned text that is not valid Unicode (a lone surrogate"
	t.Run("rest", func(t *testing.T) {
		status, env := s.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "lone_surrogate"}})
		if status != http.StatusOK || env.Success || env.Error == nil || env.Error.Code != "AGENT_ERROR" || !strings.Contains(env.Error.Message, want) {
			t.Fatalf("status %d error %+v, want 200 AGENT_ERROR %q", status, env.Error, want)
		}
		// The server serves the next call.
		if status, env := s.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "string"}}); status != http.StatusOK || !env.Success {
			t.Fatalf("next call: %d %+v", status, env.Error)
		}
	})
	for _, st := range streamers {
		t.Run(st.name, func(t *testing.T) {
			frames := st.open(t, s, map[string]any{"entrypoint_tag": "surrogate_stream"})
			if len(frames) != 3 || frames[1].Type != "data" {
				t.Fatalf("frames %+v, want started, the good chunk, an error", frames)
			}
			checkErrorFrame(t, frames[2], "AGENT_ERROR", want)
		})
	}
}

// TestCLIReportsAgentFailure: an agent failure is HTTP 200 with success
// false on the wire; the CLI (through the Go client) still reports it as
// an error and exits non-zero, for a plain run and a stream.
func TestCLIReportsAgentFailure(t *testing.T) {
	s := startServer(t)
	for _, args := range [][]string{
		{"run", "--tag", "raises", "--message=cli boom"},
		{"run-stream", "--tag", "raises_stream"},
		{"run-stream", "--sse", "--tag", "raises_stream"},
	} {
		_, errOut, err := cliResult(s, append(args, "--id", agentID)...)
		if err == nil || !strings.Contains(errOut, "AGENT_ERROR") {
			t.Errorf("%v: err %v, stderr %q; want a failure with AGENT_ERROR", args, err, errOut)
		}
	}
}
