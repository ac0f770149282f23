package value

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckText(t *testing.T) {
	tests := []struct {
		name, in  string
		wantPath  string
		surrogate bool
		key       bool
		ok        bool
	}{
		{name: "clean", in: `{"input_kwargs": {"m": "héllo \ud83d\ude00 \\ud800"}}`, ok: true},
		{name: "escaped backslash before u", in: `{"a": "\\ud800"}`, ok: true},
		{name: "proper pair, upper case", in: `["\uD83D\uDE00"]`, ok: true},
		{name: "lone high", in: `{"input_kwargs": {"message": "a\ud800b"}}`, wantPath: "input_kwargs.message", surrogate: true},
		{name: "lone low", in: `{"input_args": [1, "x", "\udc00"]}`, wantPath: "input_args[2]", surrogate: true},
		{name: "high then not low", in: `{"input_args": ["\ud800\u0041"]}`, wantPath: "input_args[0]", surrogate: true},
		{name: "high at the end", in: `{"k": "\ud800"}`, wantPath: "k", surrogate: true},
		{name: "two highs", in: `{"k": "\ud800\ud800"}`, wantPath: "k", surrogate: true},
		{name: "invalid utf-8", in: "{\"input_kwargs\": {\"a\": {\"b\": [0, \"\xff\xfe\"]}}}", wantPath: "input_kwargs.a.b[1]"},
		{name: "truncated utf-8", in: "{\"entrypoint_tag\": \"chat\xe2\x82\"}", wantPath: "entrypoint_tag"},
		{name: "bad key", in: "{\"input_kwargs\": {\"\xc0\": 1}}", wantPath: "input_kwargs", key: true},
		{name: "bad key surrogate", in: `{"input_kwargs": {"ok": 1, "\udfff": 2}}`, wantPath: "input_kwargs", surrogate: true, key: true},
		{name: "after a nested value", in: `{"a": {"b": [1, {"c": "x"}]}, "d": "\ud800"}`, wantPath: "d", surrogate: true},
		{name: "top-level string", in: `"\ud800"`, wantPath: "", surrogate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckText([]byte(tt.in))
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckText(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckText(%q) = nil, want an error at %q", tt.in, tt.wantPath)
			}
			if err.Path != tt.wantPath || err.Surrogate != tt.surrogate || err.Key != tt.key {
				t.Errorf("CheckText(%q) = %+v, want path %q surrogate %v key %v", tt.in, err, tt.wantPath, tt.surrogate, tt.key)
			}
			if msg := err.Error(); !strings.Contains(msg, "not valid Unicode") || strings.ContainsAny(msg, "\xff\xfe\xc0") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

// FuzzCheckText: CheckText never panics, and passes only text that Go's
// decoder takes without replacing anything.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{
		`{"input_kwargs": {"message": "a\ud800b"}}`,
		`{"input_args": ["\udc00", "\uD83D\uDE00"]}`,
		`{"a": "\\ud800"}`,
		"{\"a\": \"\xff\"}",
		"{\"\xc0\": 1}",
		`{"a": "\ud800\u0041"}`,
		`"\ud8`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckText(b)
		if err != nil && len(err.Path) > maxPath+len("…") {
			t.Fatalf("path of %d bytes", len(err.Path))
		}
		// In valid JSON, bytes that are not UTF-8 can only be in strings.
		if err == nil && json.Valid(b) && !utf8.Valid(b) {
			t.Fatalf("CheckText(%q) passed bytes that are not UTF-8", b)
		}
	})
}
