package value

import (
	"encoding/json"
	"testing"
)

func TestEncodeTypes(t *testing.T) {
	tests := []struct {
		in       string
		wantType string
	}{
		{`"hi"`, String},
		{`42`, Integer},
		{`-7`, Integer},
		{`1.0`, Number},
		{`2.5e3`, Number},
		{`true`, Boolean},
		{`false`, Boolean},
		{`[1,"a"]`, Array},
		{`{"a": 1}`, Object},
		{`null`, Null},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := Encode(json.RawMessage(tt.in))
			if err != nil {
				t.Fatalf("Encode(%s): %v", tt.in, err)
			}
			var st structured
			if err := json.Unmarshal([]byte(s), &st); err != nil {
				t.Fatalf("Encode(%s) = %q is not JSON: %v", tt.in, s, err)
			}
			if st.Type != tt.wantType || st.Payload != tt.in {
				t.Errorf("Encode(%s) = type %q payload %q, want %q %q", tt.in, st.Type, st.Payload, tt.wantType, tt.in)
			}
			back, err := Decode(s)
			if err != nil || string(back) != tt.in {
				t.Errorf("Decode(Encode(%s)) = %s, %v", tt.in, back, err)
			}
		})
	}
}

func TestProtocolExample(t *testing.T) {
	// PROTOCOL.md: the value {"a": 1} is the string
	// {"type": "object", "payload": "{\"a\": 1}"}.
	got, err := Decode(`{"type": "object", "payload": "{\"a\": 1}"}`)
	if err != nil || string(got) != `{"a": 1}` {
		t.Fatalf("Decode = %s, %v; want {\"a\": 1}", got, err)
	}
}

func TestEncodeRejects(t *testing.T) {
	for _, in := range []string{``, `NaN`, `Infinity`, `1e999`, `{"a":`, `1 2`, `nul`} {
		if s, err := Encode(json.RawMessage(in)); err == nil {
			t.Errorf("Encode(%q) = %q, want error", in, s)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, in := range []string{
		`{"type":"object","payload":"[1]"}`,
		`{"type":"integer","payload":"1.5"}`,
		`{"type":"weird","payload":"1"}`,
		`{"type":"string","payload":"not json"}`,
		`{"type":"null","payload":"null","extra":1}`,
		`{"type":"null","payload":"null"} {}`,
		`[]`,
	} {
		if v, err := Decode(in); err == nil {
			t.Errorf("Decode(%q) = %s, want error", in, v)
		}
	}
}

func TestDecodeNumberAcceptsInteger(t *testing.T) {
	if v, err := Decode(`{"type":"number","payload":"2"}`); err != nil || string(v) != "2" {
		t.Errorf("Decode number 2 = %s, %v", v, err)
	}
}

func TestDecodeLenient(t *testing.T) {
	tests := map[string]string{
		`{"type":"integer","payload":"3"}`: `3`,
		`{"x": 1}`:                         `{"x": 1}`,
		`plain text`:                       `"plain text"`,
		``:                                 `""`,
	}
	for in, want := range tests {
		if got := DecodeLenient(in); string(got) != want {
			t.Errorf("DecodeLenient(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"type":"object","payload":"{\"a\": 1}"}`)
	f.Add(`{"type":"number","payload":"1e5"}`)
	f.Add(`{"type":"string","payload":"\"x\""}`)
	f.Add(`{"type":"string","payload":"\"\\ud800\""}`)          // a lone surrogate
	f.Add("{\"type\":\"string\",\"payload\":\"\\\"\xff\\\"\"}") // bytes that are not UTF-8
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Decode(s)
		if err != nil {
			_ = DecodeLenient(s)
			return
		}
		// Whatever decodes must re-encode and decode to the same value.
		enc, err := Encode(v)
		if err != nil {
			t.Fatalf("Decode(%q) = %s but Encode fails: %v", s, v, err)
		}
		v2, err := Decode(enc)
		if err != nil || string(v2) != string(v) {
			t.Fatalf("round trip of %s: got %s, %v", v, v2, err)
		}
	})
}

func FuzzEncode(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,"x",null,true]}`))
	f.Add([]byte(`{"a":"\ud800"}`))       // a lone surrogate
	f.Add([]byte(`["\udc00\ud800"]`))     // halves in the wrong order
	f.Add([]byte("{\"a\":\"\xff\xfe\"}")) // bytes that are not UTF-8
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Encode(b)
		if err != nil {
			return
		}
		if _, err := Decode(s); err != nil {
			t.Fatalf("Encode(%q) = %q does not decode: %v", b, s, err)
		}
	})
}
