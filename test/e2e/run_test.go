package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunReturnsAllSevenTypes(t *testing.T) {
	s := startServer(t)
	for _, tt := range wantValues {
		t.Run(tt.kind, func(t *testing.T) {
			status, env := s.run(t, map[string]any{
				"entrypoint_tag": "value", "input_args": []any{}, "input_kwargs": map[string]any{"kind": tt.kind},
			})
			if status != http.StatusOK || !env.Success || env.Error != nil {
				t.Fatalf("status %d, envelope %+v, error %+v", status, env, env.Error)
			}
			var data string
			if err := json.Unmarshal(env.Data, &data); err != nil {
				t.Fatalf("data %s is not a JSON string: %v", env.Data, err)
			}
			checkValue(t, data, tt.kind, tt.want)
			if env.RequestID == "" || env.Timestamp == "" || env.InvocationID == "" {
				t.Errorf("envelope lacks request_id/timestamp/invocation_id: %+v", env)
			}
			if _, err := time.Parse(time.RFC3339Nano, env.Timestamp); err != nil {
				t.Errorf("timestamp %q is not ISO-8601: %v", env.Timestamp, err)
			}
		})
	}
}

func TestRunPassesArgsKwargsAndEnv(t *testing.T) {
	s := startServer(t)
	status, env := s.run(t, map[string]any{
		"entrypoint_tag": "echo", "input_args": []any{1, "a", 1.5},
		"input_kwargs": map[string]any{"k": map[string]any{"deep": []any{true}}},
		// Fields RunAgent clients send must be accepted.
		"timeout_seconds": 30, "async_execution": false, "user_id": "u-1", "persistent_memory": false,
	})
	if status != http.StatusOK {
		t.Fatalf("echo: status %d, error %+v", status, env.Error)
	}
	var data string
	json.Unmarshal(env.Data, &data)
	checkValue(t, data, "object", `{"args":[1,"a",1.5],"kwargs":{"k":{"deep":[true]}}}`)

	status, env = s.run(t, map[string]any{"entrypoint_tag": "async_value", "input_kwargs": map[string]any{"x": 5}})
	if status != http.StatusOK {
		t.Fatalf("async_value: status %d, error %+v", status, env.Error)
	}
	json.Unmarshal(env.Data, &data)
	checkValue(t, data, "object", `{"x":5,"greeting":"hi"}`)
}

// TestAgentFailures: each way an agent can fail gives the documented
// envelope — HTTP 200 with success false, as RunAgent's SDKs need to read
// it — and the server serves the next call normally.
func TestAgentFailures(t *testing.T) {
	s := startServer(t)
	tests := []struct {
		tag        string
		kwargs     map[string]any
		timeout    float64
		wantStatus int
		wantCode   string
		wantType   string // details.type
		wantInMsg  string
	}{
		{tag: "raises", kwargs: map[string]any{"message": "bad input 123"}, wantStatus: 200, wantCode: "AGENT_ERROR", wantType: "ValueError", wantInMsg: "bad input 123"},
		{tag: "nan", wantStatus: 200, wantCode: "AGENT_ERROR", wantInMsg: "not JSON"},
		{tag: "unserializable", wantStatus: 200, wantCode: "AGENT_ERROR", wantInMsg: "object"},
		{tag: "sleeps", kwargs: map[string]any{"seconds": 60}, timeout: 1, wantStatus: 200, wantCode: "AGENT_TIMEOUT", wantInMsg: "did not finish"},
		{tag: "exits", wantStatus: 200, wantCode: "AGENT_ERROR", wantType: "SystemExit"},
		{tag: "hard_exit", wantStatus: 200, wantCode: "AGENT_ERROR", wantType: "ProcessExit", wantInMsg: "status 7"},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			body := map[string]any{"entrypoint_tag": tt.tag, "input_kwargs": tt.kwargs}
			if tt.timeout > 0 {
				body["timeout_seconds"] = tt.timeout
			}
			start := time.Now()
			status, env := s.run(t, body)
			if status != tt.wantStatus || env.Success || env.Error == nil {
				t.Fatalf("status %d success %v error %+v; want %d with an error", status, env.Success, env.Error, tt.wantStatus)
			}
			if env.Error.Code != tt.wantCode {
				t.Errorf("error code %q, want %q", env.Error.Code, tt.wantCode)
			}
			if !strings.Contains(env.Error.Message, tt.wantInMsg) {
				t.Errorf("error message %q does not mention %q", env.Error.Message, tt.wantInMsg)
			}
			if env.Data == nil || string(env.Data) != "null" {
				t.Errorf("data = %s, want null", env.Data)
			}
			if tt.wantType != "" {
				var d struct {
					Type      string `json:"type"`
					Traceback string `json:"traceback"`
				}
				if err := json.Unmarshal(env.Error.Details, &d); err != nil || d.Type != tt.wantType {
					t.Errorf("details %s: type %q, want %q (%v)", env.Error.Details, d.Type, tt.wantType, err)
				}
				if tt.tag == "raises" && !strings.Contains(d.Traceback, "agent.py") {
					t.Errorf("traceback does not point at the agent's file: %q", d.Traceback)
				}
			}
			if tt.timeout > 0 && time.Since(start) > 10*time.Second {
				t.Errorf("a 1 s timeout took %v to answer", time.Since(start))
			}
			// The server stays healthy for the next call.
			status, env = s.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "integer"}})
			if status != http.StatusOK || !env.Success {
				t.Fatalf("next call after %s: status %d error %+v", tt.tag, status, env.Error)
			}
		})
	}
}

func TestAgentOutputOnStdoutIsLoggedNotReturned(t *testing.T) {
	s := startServer(t)
	status, env := s.run(t, map[string]any{"entrypoint_tag": "chatty"})
	if status != http.StatusOK {
		t.Fatalf("chatty: status %d error %+v", status, env.Error)
	}
	var data string
	json.Unmarshal(env.Data, &data)
	checkValue(t, data, "string", `"done"`)

	// The prints are in the invocation's logs, capped.
	var rec struct{ Logs string }
	rec.Logs = invocationLogs(t, s, env.InvocationID)
	if !strings.Contains(rec.Logs, "line 1999") && !strings.Contains(rec.Logs, "to stderr") {
		t.Errorf("logs do not hold the agent's output: %.200q", rec.Logs)
	}
	if len(rec.Logs) > 80<<10 {
		t.Errorf("logs are %d bytes; the cap is 64 KiB", len(rec.Logs))
	}
}

// TestMalformedRequests: bad requests get a 4xx with the envelope, never
// a 500 or a hang.
func TestMalformedRequests(t *testing.T) {
	s := startServer(t)
	runPath := "/api/v1/agents/" + agentID + "/run"
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        []byte
		wantStatus  int
		wantCode    string
		wantField   string
		header      map[string]string
	}{
		{"bad json", "POST", runPath, "application/json", []byte(`{"entrypoint_tag": "value",`), 400, "VALIDATION_ERROR", "", nil},
		{"not an object", "POST", runPath, "application/json", []byte(`[1,2]`), 400, "VALIDATION_ERROR", "", nil},
		{"empty body", "POST", runPath, "application/json", nil, 400, "VALIDATION_ERROR", "", nil},
		{"args not array", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":"value","input_args":"x"}`), 400, "VALIDATION_ERROR", "input_args", nil},
		{"kwargs not object", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":"value","input_kwargs":[1]}`), 400, "VALIDATION_ERROR", "input_kwargs", nil},
		{"tag wrong type", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":5}`), 400, "VALIDATION_ERROR", "entrypoint_tag", nil},
		{"timeout wrong type", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":"value","timeout_seconds":"soon"}`), 400, "VALIDATION_ERROR", "timeout_seconds", nil},
		{"negative timeout", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":"value","timeout_seconds":-1}`), 400, "VALIDATION_ERROR", "timeout_seconds", nil},
		{"missing tag", "POST", runPath, "application/json", []byte(`{"input_kwargs":{}}`), 400, "VALIDATION_ERROR", "entrypoint_tag", nil},
		{"unknown tag", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":"nope"}`), 404, "NOT_FOUND", "entrypoint_tag", nil},
		{"stream tag on run", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":"values_stream"}`), 400, "VALIDATION_ERROR", "entrypoint_tag", nil},
		{"unknown agent", "POST", "/api/v1/agents/11111111-2222-3333-4444-555555555555/run", "application/json", []byte(`{"entrypoint_tag":"value"}`), 404, "NOT_FOUND", "", nil},
		{"garbage agent id", "POST", "/api/v1/agents/%3Cscript%3E/run", "application/json", []byte(`{"entrypoint_tag":"value"}`), 404, "NOT_FOUND", "", nil},
		{"deep nesting", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":"value","input_args":` + deep + `}`), 400, "VALIDATION_ERROR", "", nil},
		{"too many elements", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":"value","input_args":[` + strings.Repeat("0,", 200000) + `0]}`), 400, "VALIDATION_ERROR", "", nil},
		{"50 MB body", "POST", runPath, "application/json", bytes.Repeat([]byte(" "), 50<<20), 413, "PAYLOAD_TOO_LARGE", "", nil},
		{"wrong content type", "POST", runPath, "text/html", []byte(`{"entrypoint_tag":"value"}`), 415, "UNSUPPORTED_MEDIA_TYPE", "", nil},
		// A web page may POST text/plain or untyped bodies without a CORS
		// preflight: such runs are refused.
		{"text/plain from a page", "POST", runPath, "text/plain", []byte(`{"entrypoint_tag":"value"}`), 415, "UNSUPPORTED_MEDIA_TYPE", "", nil},
		{"no content type", "POST", runPath, "", []byte(`{"entrypoint_tag":"value"}`), 415, "UNSUPPORTED_MEDIA_TYPE", "", nil},
		{"cross-origin page", "POST", runPath, "application/json", []byte(`{"entrypoint_tag":"value"}`), 403, "FORBIDDEN", "", map[string]string{"Origin": "https://evil.example"}},
		{"dns rebinding host", "GET", "/api/v1/agents", "", nil, 403, "FORBIDDEN", "", map[string]string{"Host": "evil.example:8450"}},
		{"wrong method", "DELETE", runPath, "", nil, 405, "METHOD_NOT_ALLOWED", "", nil},
		{"unknown route", "GET", "/api/v1/nothing-here", "", nil, 404, "NOT_FOUND", "", nil},
		{"sse without accept", "POST", "/api/v1/agents/" + agentID + "/run-stream", "application/json", []byte(`{"entrypoint_tag":"values_stream"}`), 406, "NOT_ACCEPTABLE", "", nil},
		{"get run-stream without upgrade", "GET", "/api/v1/agents/" + agentID + "/run-stream", "", nil, 400, "VALIDATION_ERROR", "", nil},
		{"unknown invocation", "GET", "/api/v1/invocations/does-not-exist", "", nil, 404, "NOT_FOUND", "", nil},
		{"bad list limit", "GET", "/api/v1/agents/" + agentID + "/invocations?limit=-5", "", nil, 400, "VALIDATION_ERROR", "limit", nil},
		{"bad status filter", "GET", "/api/v1/agents/" + agentID + "/invocations?status=weird", "", nil, 400, "VALIDATION_ERROR", "status", nil},
		{"deploy garbage", "POST", "/api/v1/agents", "application/gzip", []byte("not a tarball"), 400, "VALIDATION_ERROR", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body *bytes.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
			} else {
				body = bytes.NewReader(nil)
			}
			start := time.Now()
			status, env := s.doWith(t, tt.method, tt.path, tt.contentType, body, tt.header)
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d (error %+v)", status, tt.wantStatus, env.Error)
			}
			if env.Success || env.Error == nil {
				t.Fatalf("envelope success=%v error=%v, want a failure envelope", env.Success, env.Error)
			}
			if env.Error.Code != tt.wantCode {
				t.Errorf("code %q, want %q (message %q)", env.Error.Code, tt.wantCode, env.Error.Message)
			}
			if env.Error.Message == "" {
				t.Error("error message is empty")
			}
			if tt.wantField != "" && (env.Error.Field == nil || *env.Error.Field != tt.wantField) {
				t.Errorf("field %v, want %q", env.Error.Field, tt.wantField)
			}
			if strings.Contains(env.Error.Message, "<script>") {
				t.Errorf("message reflects markup: %q", env.Error.Message)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	// And the server is fine afterwards.
	if status, env := s.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "null"}}); status != 200 {
		t.Fatalf("after malformed requests: %d %+v", status, env.Error)
	}
}

func TestHealthArchitectureAndInvocations(t *testing.T) {
	s := startServer(t)
	resp, err := http.Get(s.URL + "/api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status        string  `json:"status"`
		Server        string  `json:"server"`
		Timestamp     string  `json:"timestamp"`
		UptimeSeconds float64 `json:"uptime_seconds"`
		Version       string  `json:"version"`
	}
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != 200 || health.Status != "healthy" || health.Server == "" || health.Timestamp == "" || health.Version == "" {
		t.Errorf("health = %d %+v", resp.StatusCode, health)
	}

	status, env := s.do(t, "GET", "/api/v1/agents/"+agentID+"/architecture", "", nil)
	var arch struct {
		AgentID     string `json:"agent_id"`
		Entrypoints []struct {
			Tag    string `json:"tag"`
			File   string `json:"file"`
			Module string `json:"module"`
		} `json:"entrypoints"`
	}
	json.Unmarshal(env.Data, &arch)
	if status != 200 || arch.AgentID != agentID || len(arch.Entrypoints) != 16 || arch.Entrypoints[0].Tag != "value" || arch.Entrypoints[4].Module != "Bot.echo" {
		t.Errorf("architecture = %d %+v", status, arch)
	}

	// Two runs, one failing, then list, stats and detail.
	_, ok := s.run(t, map[string]any{"entrypoint_tag": "echo", "input_args": []any{"x"}})
	s.run(t, map[string]any{"entrypoint_tag": "raises"})
	status, env = s.do(t, "GET", "/api/v1/agents/"+agentID+"/invocations?limit=10", "", nil)
	var list struct {
		Invocations []struct {
			ID     string `json:"invocation_id"`
			Tag    string `json:"entrypoint_tag"`
			Status string `json:"status"`
		} `json:"invocations"`
	}
	json.Unmarshal(env.Data, &list)
	if status != 200 || len(list.Invocations) != 2 || list.Invocations[0].Status != "failed" || list.Invocations[1].Status != "completed" {
		t.Errorf("invocations = %d %+v", status, list)
	}
	status, env = s.do(t, "GET", "/api/v1/agents/"+agentID+"/invocations/stats", "", nil)
	var stats struct {
		Total    int            `json:"total_invocations"`
		ByStatus map[string]int `json:"by_status"`
	}
	json.Unmarshal(env.Data, &stats)
	if status != 200 || stats.Total != 2 || stats.ByStatus["completed"] != 1 || stats.ByStatus["failed"] != 1 {
		t.Errorf("stats = %d %+v", status, stats)
	}
	status, env = s.do(t, "GET", "/api/v1/invocations/"+ok.InvocationID, "", nil)
	var inv struct {
		ID        string          `json:"invocation_id"`
		Status    string          `json:"status"`
		InputArgs json.RawMessage `json:"input_args"`
		Output    json.RawMessage `json:"output"`
		Transport string          `json:"transport"`
	}
	json.Unmarshal(env.Data, &inv)
	if status != 200 || inv.ID != ok.InvocationID || inv.Status != "completed" || string(inv.InputArgs) != `["x"]` || !strings.Contains(string(inv.Output), `"args"`) || inv.Transport != "rest" {
		t.Errorf("invocation = %d %+v", status, inv)
	}
}
