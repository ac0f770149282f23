package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const schemaID = "7c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"

// TestSchemaValidation: an agent whose entrypoints declare input_schema
// gets only calls that match it. A malformed call is answered 400
// VALIDATION_ERROR naming the field and the rule, without the value, and
// never starts the agent or leaves an invocation record; a good call runs.
func TestSchemaValidation(t *testing.T) {
	needSandbox(t)
	s := startServer(t, "testdata/schema")
	run := func(body string) (int, *envelope) {
		t.Helper()
		return s.do(t, http.MethodPost, "/api/v1/agents/"+schemaID+"/run", "application/json", strings.NewReader(body))
	}

	bad := []struct {
		name, body  string
		field, rule string
	}{
		{"empty message", `{"entrypoint_tag":"greet","input_kwargs":{"message":""}}`, "input_kwargs.message", "minLength 1"},
		{"missing message", `{"entrypoint_tag":"greet","input_kwargs":{"times":2}}`, "input_kwargs.message", "required property 'message' missing"},
		{"wrong type", `{"entrypoint_tag":"greet","input_kwargs":{"message":"private words","times":"twice"}}`, "input_kwargs.times", "type: want integer, got string"},
		{"over maximum", `{"entrypoint_tag":"greet","input_kwargs":{"message":"private words","times":6}}`, "input_kwargs.times", "maximum 5"},
		{"unknown kwarg", `{"entrypoint_tag":"greet","input_kwargs":{"message":"private words","shell":"rm -rf /"}}`, "input_kwargs.shell", "not allowed (additionalProperties)"},
		{"positional args", `{"entrypoint_tag":"greet","input_args":["private words"],"input_kwargs":{"message":"x"}}`, "input_args", "maxItems 0"},
		{"input_data wrapper", `{"entrypoint_tag":"greet","input_data":{"input_kwargs":{"message":42}}}`, "input_kwargs.message", "type: want string, got number"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			status, env := run(tt.body)
			if status != http.StatusBadRequest || env.Success || env.Error == nil {
				t.Fatalf("status %d, envelope %+v; want 400 with an error", status, env)
			}
			e := env.Error
			if e.Code != "VALIDATION_ERROR" || e.Field == nil || *e.Field != tt.field || !strings.Contains(e.Message, tt.rule) {
				t.Errorf("error %s %v %q; want VALIDATION_ERROR at %q naming %q", e.Code, e.Field, e.Message, tt.field, tt.rule)
			}
			if strings.Contains(e.Message, "private words") || strings.Contains(string(e.Details), "private words") || strings.Contains(e.Message, "rm -rf") {
				t.Errorf("error repeats the input: %q %s", e.Message, e.Details)
			}
			if env.InvocationID != "" {
				t.Errorf("a refused call has invocation %s", env.InvocationID)
			}
		})
	}

	// A stream is checked before it starts: a plain HTTP error, no events.
	t.Run("stream", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/agents/"+schemaID+"/run-stream", strings.NewReader(`{"entrypoint_tag":"greet_stream","input_kwargs":{}}`))
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env envelope
		json.NewDecoder(resp.Body).Decode(&env)
		if resp.StatusCode != http.StatusBadRequest || env.Error == nil || env.Error.Field == nil || *env.Error.Field != "input_kwargs.message" {
			t.Errorf("status %d error %+v; want 400 at input_kwargs.message", resp.StatusCode, env.Error)
		}
	})

	status, env := run(`{"entrypoint_tag":"greet","input_kwargs":{"message":"hello","times":2}}`)
	if status != http.StatusOK || !env.Success {
		t.Fatalf("good call: status %d error %+v", status, env.Error)
	}
	var str string
	json.Unmarshal(env.Data, &str)
	if _, v := decodeStructured(t, str); v.(map[string]any)["greeting"] != "hello hello" {
		t.Errorf("good call returned %v", v)
	}

	// Only the good call reached the agent.
	status, env = s.do(t, http.MethodGet, "/api/v1/agents/"+schemaID+"/invocations?limit=100", "", nil)
	if status != http.StatusOK {
		t.Fatalf("list invocations: status %d error %+v", status, env.Error)
	}
	var list struct {
		Invocations []struct {
			EntrypointTag string          `json:"entrypoint_tag"`
			Status        string          `json:"status"`
			InputKwargs   json.RawMessage `json:"input_kwargs"`
		} `json:"invocations"`
	}
	if err := json.Unmarshal(env.Data, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Invocations) != 1 {
		t.Fatalf("%d invocations recorded, want only the good call: %+v", len(list.Invocations), list.Invocations)
	}
	inv := list.Invocations[0]
	if inv.EntrypointTag != "greet" || inv.Status != "completed" || string(inv.InputKwargs) != `{"message":"hello","times":2}` {
		t.Errorf("recorded invocation %+v, want the good call, completed, its input unchanged", inv)
	}
}
