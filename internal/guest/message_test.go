package guest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeMessage(t *testing.T) {
	seq := func(n int) *int { return &n }
	tests := []struct {
		name  string
		input string
		want  message
	}{
		{
			name:  "hello",
			input: `{"type":"hello","runtime":"python","version":"3.11.7","entrypoints":[{"tag":"a","ok":true},{"tag":"b","ok":false,"error":{"code":"ENTRYPOINT_ERROR","type":"ImportError","message":"m","traceback":"tb"}}]}`,
			want: message{Type: "hello", Runtime: "python", Version: "3.11.7", Entrypoints: []EntrypointStatus{
				{Tag: "a", OK: true},
				{Tag: "b", Error: &Failure{Code: "ENTRYPOINT_ERROR", Type: "ImportError", Message: "m", Traceback: "tb"}},
			}},
		},
		{
			name:  "chunk keeps the value verbatim",
			input: `{"type":"chunk","id":"x","seq":2,"value": 1.0 }`,
			want:  message{Type: "chunk", ID: "x", Seq: seq(2), Value: json.RawMessage(`1.0`)},
		},
		{
			name:  "chunk null value",
			input: `{"type":"chunk","id":"x","seq":0,"value":null}`,
			want:  message{Type: "chunk", ID: "x", Seq: seq(0), Value: json.RawMessage(`null`)},
		},
		{
			name:  "result with exponent",
			input: `{"type":"result","id":"x","value":{"a":1E+2,"b":[1.50,"é"]}}`,
			want:  message{Type: "result", ID: "x", Value: json.RawMessage(`{"a":1E+2,"b":[1.50,"é"]}`)},
		},
		{
			name:  "result without value is null",
			input: `{"type":"result","id":"x"}`,
			want:  message{Type: "result", ID: "x", Value: json.RawMessage(`null`)},
		},
		{
			name:  "error",
			input: `{"type":"error","id":"x","error":{"code":"AGENT_ERROR","type":"ValueError","message":"bad","traceback":"Traceback"}}`,
			want:  message{Type: "error", ID: "x", Error: &Failure{Code: "AGENT_ERROR", Type: "ValueError", Message: "bad", Traceback: "Traceback"}},
		},
		{
			name:  "unknown fields are ignored",
			input: `{"type":"result","id":"x","value":1,"extra":[1,2]}`,
			want:  message{Type: "result", ID: "x", Value: json.RawMessage(`1`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeMessage([]byte(tt.input))
			if err != nil {
				t.Fatalf("decodeMessage(%s): %v", tt.input, err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("decodeMessage(%s) mismatch (-got +want):\n%s", tt.input, diff)
			}
		})
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"empty", ``},
		{"not JSON", `hello`},
		{"array", `[1,2]`},
		{"null", `null`},
		{"truncated", `{"type":"chunk"`},
		{"trailing garbage", `{"type":"result","id":"x"} x`},
		{"no type", `{"id":"x"}`},
		{"unknown type", `{"type":"bogus"}`},
		{"type not a string", `{"type":1}`},
		{"chunk without seq", `{"type":"chunk","id":"x","value":1}`},
		{"chunk without value", `{"type":"chunk","id":"x","seq":0}`},
		{"chunk fractional seq", `{"type":"chunk","id":"x","seq":1.5,"value":1}`},
		{"chunk huge seq", `{"type":"chunk","id":"x","seq":1e40,"value":1}`},
		{"error without error", `{"type":"error","id":"x"}`},
		{"error without code", `{"type":"error","id":"x","error":{"message":"m"}}`},
		{"error not an object", `{"type":"error","id":"x","error":"boom"}`},
		{"hello entrypoint without tag", `{"type":"hello","entrypoints":[{"ok":true}]}`},
		{"hello failure without error", `{"type":"hello","entrypoints":[{"tag":"a","ok":false}]}`},
		{"invalid UTF-8 is still JSON but bad value", "{\"type\":\"chunk\",\"id\":\"x\",\"seq\":0,\"value\":\"\xff\"}\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeMessage([]byte(tt.input))
			if _, ok := errors.AsType[*ProtocolError](err); !ok {
				t.Errorf("decodeMessage(%q) = %+v, %v; want a *ProtocolError", tt.input, got, err)
			}
		})
	}
}

func TestEncodeInvoke(t *testing.T) {
	tests := []struct {
		name string
		in   Invoke
		want string
	}{
		{
			name: "defaults",
			in:   Invoke{ID: "i", Tag: "t"},
			want: `{"type":"invoke","id":"i","tag":"t","args":[],"kwargs":{},"stream":false,"env":{}}`,
		},
		{
			name: "values kept",
			in: Invoke{ID: "i", Tag: "t_stream", Args: json.RawMessage(` [1.0, "a"] `),
				Kwargs: json.RawMessage(`{"k":null}`), Stream: true, Env: map[string]string{"K": "V"}},
			want: `{"type":"invoke","id":"i","tag":"t_stream","args":[1.0,"a"],"kwargs":{"k":null},"stream":true,"env":{"K":"V"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeInvoke(tt.in)
			if err != nil {
				t.Fatalf("encodeInvoke: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("encodeInvoke = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestEncodeInit(t *testing.T) {
	tests := []struct {
		name string
		in   Init
		want string
	}{
		{
			name: "no entrypoints, no environment",
			in:   Init{AgentDir: "/agent"},
			want: `{"type":"init","agent_dir":"/agent","entrypoints":[]}`,
		},
		{
			name: "entrypoints and environment",
			in:   Init{AgentDir: "/agent", Entrypoints: []EntrypointRef{{Tag: "t", File: "src/main.py", Module: "a.b"}}, EnvDir: "/env"},
			want: `{"type":"init","agent_dir":"/agent","entrypoints":[{"tag":"t","file":"src/main.py","module":"a.b"}],"env_dir":"/env"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeInit(tt.in)
			if err != nil {
				t.Fatalf("encodeInit: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("encodeInit = %s, want %s", got, tt.want)
			}
		})
	}
	if got, err := encodeInit(Init{EnvDir: "/env"}); err == nil {
		t.Errorf("encodeInit without an agent directory = %s, want an error", got)
	}
}

func TestEncodeInvokeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   Invoke
	}{
		{"no id", Invoke{Tag: "t"}},
		{"no tag", Invoke{ID: "i"}},
		{"args object", Invoke{ID: "i", Tag: "t", Args: json.RawMessage(`{}`)}},
		{"args invalid", Invoke{ID: "i", Tag: "t", Args: json.RawMessage(`[1,`)}},
		{"kwargs array", Invoke{ID: "i", Tag: "t", Kwargs: json.RawMessage(`[]`)}},
		{"kwargs two values", Invoke{ID: "i", Tag: "t", Kwargs: json.RawMessage(`{} {}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := encodeInvoke(tt.in); err == nil {
				t.Errorf("encodeInvoke(%+v) = %s, want an error", tt.in, got)
			}
		})
	}
}

func TestFailureError(t *testing.T) {
	tests := []struct {
		f    Failure
		want string
	}{
		{Failure{Code: "AGENT_ERROR", Type: "ValueError", Message: "bad"}, "AGENT_ERROR: ValueError: bad"},
		{Failure{Code: "AGENT_ERROR", Type: "KeyboardInterrupt"}, "AGENT_ERROR: KeyboardInterrupt"},
		{Failure{Code: "PROTOCOL_ERROR", Message: "m"}, "PROTOCOL_ERROR: m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.f.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"type":"hello","runtime":"python","version":"3","entrypoints":[{"tag":"a","ok":true}]}`))
	f.Add([]byte(`{"type":"chunk","id":"x","seq":0,"value":[1.0,{"a":null}]}`))
	f.Add([]byte(`{"type":"result","id":"x","value":"s"}`))
	f.Add([]byte(`{"type":"error","id":"x","error":{"code":"AGENT_ERROR"}}`))
	f.Add([]byte(`{"type":"chunk","seq":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			if _, ok := errors.AsType[*ProtocolError](err); !ok {
				t.Fatalf("decodeMessage error %v (%T) is not a *ProtocolError", err, err)
			}
			return
		}
		switch m.Type {
		case typeChunk:
			if m.Seq == nil || !json.Valid(m.Value) {
				t.Fatalf("accepted chunk %+v", m)
			}
		case typeResult:
			if !json.Valid(m.Value) {
				t.Fatalf("accepted result with value %q", m.Value)
			}
		case typeError:
			if m.Error == nil || m.Error.Code == "" {
				t.Fatalf("accepted error %+v", m)
			}
		case typeHello:
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
	})
}
