package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/core"
)

func TestDecodeRunRequest(t *testing.T) {
	l := Deps{}.withDefaults().Limits
	tests := []struct {
		name      string
		body      string
		wantField string // "" with wantErr means an error without a field
		wantErr   bool
		check     func(*testing.T, *runRequest)
	}{
		{name: "minimal", body: `{"entrypoint_tag":"chat"}`, check: func(t *testing.T, r *runRequest) {
			if string(r.InputArgs) != "[]" || string(r.InputKwargs) != "{}" {
				t.Errorf("defaults: args %s kwargs %s", r.InputArgs, r.InputKwargs)
			}
		}},
		{name: "nulls become empty", body: `{"entrypoint_tag":"chat","input_args":null,"input_kwargs":null}`, check: func(t *testing.T, r *runRequest) {
			if string(r.InputArgs) != "[]" || string(r.InputKwargs) != "{}" {
				t.Errorf("args %s kwargs %s", r.InputArgs, r.InputKwargs)
			}
		}},
		{name: "sdk extras accepted", body: `{"entrypoint_tag":"chat","timeout_seconds":5,"async_execution":true,"user_id":"u","persistent_memory":true,"action":"start_stream","whatever":1}`, check: func(t *testing.T, r *runRequest) {
			if *r.TimeoutSeconds != 5 || *r.UserID != "u" {
				t.Errorf("got %+v", r)
			}
		}},
		{name: "input_data wrapper", body: `{"entrypoint_tag":"c","input_data":{"input_args":[1],"input_kwargs":{"a":2}}}`, check: func(t *testing.T, r *runRequest) {
			if string(r.InputArgs) != "[1]" || string(r.InputKwargs) != `{"a":2}` {
				t.Errorf("args %s kwargs %s", r.InputArgs, r.InputKwargs)
			}
		}},
		{name: "values kept verbatim", body: `{"entrypoint_tag":"c","input_args":[1.0, 1e3, "\u00e9"]}`, check: func(t *testing.T, r *runRequest) {
			if string(r.InputArgs) != `[1.0, 1e3, "\u00e9"]` {
				t.Errorf("args re-encoded: %s", r.InputArgs)
			}
		}},
		{name: "empty", body: ``, wantErr: true},
		{name: "not object", body: `"x"`, wantErr: true},
		{name: "trailing data", body: `{"entrypoint_tag":"c"} {}`, wantErr: true},
		{name: "syntax", body: `{"entrypoint_tag":`, wantErr: true},
		{name: "args string", body: `{"entrypoint_tag":"c","input_args":"x"}`, wantErr: true, wantField: "input_args"},
		{name: "kwargs array", body: `{"entrypoint_tag":"c","input_kwargs":[]}`, wantErr: true, wantField: "input_kwargs"},
		{name: "tag number", body: `{"entrypoint_tag":1}`, wantErr: true, wantField: "entrypoint_tag"},
		{name: "tag missing", body: `{}`, wantErr: true, wantField: "entrypoint_tag"},
		{name: "tag too long", body: `{"entrypoint_tag":"` + strings.Repeat("a", 200) + `"}`, wantErr: true, wantField: "entrypoint_tag"},
		{name: "timeout zero", body: `{"entrypoint_tag":"c","timeout_seconds":0}`, wantErr: true, wantField: "timeout_seconds"},
		{name: "timeout huge", body: `{"entrypoint_tag":"c","timeout_seconds":1e9}`, wantErr: true, wantField: "timeout_seconds"},
		{name: "user id control chars", body: `{"entrypoint_tag":"c","user_id":"a\nb"}`, wantErr: true, wantField: "user_id"},
		{name: "user id too long", body: `{"entrypoint_tag":"c","user_id":"` + strings.Repeat("u", 300) + `"}`, wantErr: true, wantField: "user_id"},
		{name: "too deep", body: `{"entrypoint_tag":"c","input_args":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`, wantErr: true},
		{name: "lone surrogate in a kwarg", body: `{"entrypoint_tag":"c","input_kwargs":{"message":"a\ud800b"}}`, wantErr: true, wantField: "input_kwargs.message"},
		{name: "lone low surrogate in an arg", body: `{"entrypoint_tag":"c","input_args":[1,"\udfff"]}`, wantErr: true, wantField: "input_args[1]"},
		{name: "invalid utf-8 in a kwarg", body: "{\"entrypoint_tag\":\"c\",\"input_kwargs\":{\"m\":\"\xff\xfe\"}}", wantErr: true, wantField: "input_kwargs.m"},
		{name: "invalid utf-8 in the tag", body: "{\"entrypoint_tag\":\"c\xc0\"}", wantErr: true, wantField: "entrypoint_tag"},
		{name: "lone surrogate in user_id", body: `{"entrypoint_tag":"c","user_id":"\ud800"}`, wantErr: true, wantField: "user_id"},
		{name: "invalid utf-8 in an unknown field", body: "{\"entrypoint_tag\":\"c\",\"extra\":\"\xff\"}", wantErr: true, wantField: "extra"},
		{name: "bad key", body: "{\"entrypoint_tag\":\"c\",\"input_kwargs\":{\"\xff\":1}}", wantErr: true, wantField: "input_kwargs"},
		{name: "escaped backslash then u is text", body: `{"entrypoint_tag":"c","input_args":["\\ud800"]}`},
		{name: "surrogate pair is fine", body: `{"entrypoint_tag":"c","input_args":["\ud83d\ude00"]}`},
		{name: "brackets in strings do not count", body: `{"entrypoint_tag":"c","input_args":["` + strings.Repeat("[", 100) + `\"]"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := l.decodeRunRequest([]byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decodeRunRequest(%.80q) = %+v, want error", tt.body, r)
				}
				e, ok := err.(*core.Error)
				if !ok || e.Code != core.CodeValidation {
					t.Fatalf("error %v (%T), want a VALIDATION_ERROR *core.Error", err, err)
				}
				if e.Field != tt.wantField {
					t.Errorf("field %q, want %q (%v)", e.Field, tt.wantField, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeRunRequest(%.80q): %v", tt.body, err)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// TestBadTextMessage: the refusal of bad text names the field and the
// fault, never the bad bytes themselves.
func TestBadTextMessage(t *testing.T) {
	l := Deps{}.withDefaults().Limits
	for _, body := range []string{
		"{\"entrypoint_tag\":\"c\",\"input_kwargs\":{\"m\":\"secret\xff\xfe\"}}",
		`{"entrypoint_tag":"c","input_kwargs":{"m":"secret\ud800"}}`,
	} {
		_, err := l.decodeRunRequest([]byte(body))
		b, _ := json.Marshal(errorBodyOf(err))
		if !strings.Contains(string(b), "input_kwargs.m") || !strings.Contains(string(b), "not valid Unicode") ||
			strings.Contains(string(b), "secret") || strings.Contains(string(b), "\\ud800\"") || !json.Valid(b) {
			t.Errorf("decodeRunRequest(%q): error body %s", body, b)
		}
	}
}

func TestCheckShapeElements(t *testing.T) {
	l := InputLimits{MaxDepth: 64, MaxElements: 10}
	if err := l.checkShape([]byte(`[1,2,3,4,5,6,7,8,9,10]`)); err != nil {
		t.Errorf("10 elements: %v", err)
	}
	if err := l.checkShape([]byte(`[1,2,3,4,5,6,7,8,9,10,11]`)); err == nil {
		t.Error("11 elements accepted")
	}
	if err := l.checkShape([]byte(`["a,b,c,d,e,f,g,h,i,j,k,l"]`)); err != nil {
		t.Errorf("commas inside a string counted: %v", err)
	}
}

// FuzzDecodeRunRequest: any body either decodes to a request whose args
// are an array and kwargs an object, or gives a VALIDATION_ERROR.
func FuzzDecodeRunRequest(f *testing.F) {
	f.Add([]byte(`{"entrypoint_tag":"chat","input_args":[1],"input_kwargs":{"a":"b"}}`))
	f.Add([]byte(`{"entrypoint_tag":"c","input_data":{"input_args":[]}}`))
	f.Add([]byte(`[[[[[[`))
	f.Add([]byte(`{"entrypoint_tag":"c","timeout_seconds":1e400}`))
	l := Deps{}.withDefaults().Limits
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := l.decodeRunRequest(body)
		if err != nil {
			if core.ErrorCode(err) != core.CodeValidation {
				t.Fatalf("error %v has code %s, want VALIDATION_ERROR", err, core.ErrorCode(err))
			}
			return
		}
		if r.InputArgs[0] != '[' || r.InputKwargs[0] != '{' || r.EntrypointTag == "" {
			t.Fatalf("accepted %q as %+v", body, r)
		}
	})
}

func TestCheckInput(t *testing.T) {
	ep := core.Entrypoint{Tag: "chat", Kind: core.KindPython, File: "main.py", Module: "chat",
		InputSchema: json.RawMessage(`{"kwargs":{"type":"object","required":["message"],"properties":{"message":{"type":"string","minLength":1},"n":{"type":"integer","maximum":10}},"additionalProperties":false},"args":{"maxItems":0}}`)}
	tests := []struct {
		name         string
		ep           core.Entrypoint
		args, kwargs string
		wantField    string // "" means accepted
		wantMessage  string // substring
		wantTotal    int
	}{
		{name: "no schema", ep: core.Entrypoint{Tag: "chat"}, args: `[1]`, kwargs: `{"anything":true}`},
		{name: "valid", ep: ep, args: `[]`, kwargs: `{"message":"hi","n":3}`},
		{name: "missing", ep: ep, args: `[]`, kwargs: `{}`, wantField: "input_kwargs.message",
			wantMessage: `input does not match the input_schema of entrypoint "chat": input_kwargs.message: required property 'message' missing`, wantTotal: 1},
		{name: "minLength", ep: ep, args: `[]`, kwargs: `{"message":""}`, wantField: "input_kwargs.message", wantMessage: "minLength 1 (got 0)", wantTotal: 1},
		{name: "type", ep: ep, args: `[]`, kwargs: `{"message":"topsecret","n":"topsecret"}`, wantField: "input_kwargs.n", wantMessage: "type: want integer, got string", wantTotal: 1},
		{name: "several", ep: ep, args: `["topsecret"]`, kwargs: `{"message":"topsecret","n":11,"x":1}`, wantField: "input_args",
			wantMessage: "input_args: maxItems 0 (got 1) (and 2 more; see details)", wantTotal: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &runRequest{EntrypointTag: "chat", InputArgs: json.RawMessage(tt.args), InputKwargs: json.RawMessage(tt.kwargs)}
			err := checkInput(tt.ep, body)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("checkInput(%s, %s): %v", tt.args, tt.kwargs, err)
				}
				return
			}
			e, ok := errors.AsType[*core.Error](err)
			if !ok || e.Code != core.CodeValidation {
				t.Fatalf("checkInput(%s, %s) = %v, want a VALIDATION_ERROR", tt.args, tt.kwargs, err)
			}
			if e.Field != tt.wantField || !strings.Contains(e.Message, tt.wantMessage) {
				t.Errorf("field %q message %q; want field %q, message containing %q", e.Field, e.Message, tt.wantField, tt.wantMessage)
			}
			// What the client sees names location and rule, not the value.
			b, err := json.Marshal(errorBodyOf(err))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "topsecret") {
				t.Errorf("error body repeats the input: %s", b)
			}
			var got struct {
				Field   string `json:"field"`
				Details struct {
					Violations []struct{ Field, Rule string } `json:"violations"`
					Total      int                            `json:"total"`
				} `json:"details"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.Field != tt.wantField || got.Details.Total != tt.wantTotal || len(got.Details.Violations) != tt.wantTotal {
				t.Errorf("error body %s; want field %q and %d violations", b, tt.wantField, tt.wantTotal)
			}
			if string(body.InputKwargs) != tt.kwargs || string(body.InputArgs) != tt.args {
				t.Errorf("input altered: args %s kwargs %s", body.InputArgs, body.InputKwargs)
			}
		})
	}
}

// TestCheckInputBadStoredSchema: a schema that no longer compiles (stored
// before deployments checked it) fails the call as an internal error; the
// call never runs unchecked.
func TestCheckInputBadStoredSchema(t *testing.T) {
	ep := core.Entrypoint{Tag: "chat", InputSchema: json.RawMessage(`{"type":"object"}`)}
	err := checkInput(ep, &runRequest{InputArgs: json.RawMessage(`[]`), InputKwargs: json.RawMessage(`{}`)})
	if err == nil || core.ErrorCode(err) != core.CodeInternal {
		t.Errorf("checkInput = %v (code %s), want an internal error", err, core.ErrorCode(err))
	}
}
