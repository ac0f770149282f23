package value

import (
	"encoding/json"
	"testing"
)

// BenchmarkEncode is the structured-string encoding of one typical chunk
// or result (every streamed chunk pays it once).
func BenchmarkEncode(b *testing.B) {
	raw := json.RawMessage(`{"content":"The quick brown fox jumps over the lazy dog.","tokens":12,"done":false}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode is its inverse, as clients run it.
func BenchmarkDecode(b *testing.B) {
	s, err := Encode(json.RawMessage(`{"content":"The quick brown fox jumps over the lazy dog.","tokens":12,"done":false}`))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(s); err != nil {
			b.Fatal(err)
		}
	}
}
