package api

import (
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/core"
)

func TestDecodeRunRequest(t *testing.T) {
	var l InputLimits
	l.setDefaults()
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
	var l InputLimits
	l.setDefaults()
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
