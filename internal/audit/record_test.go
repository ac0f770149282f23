package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestComputeHashEncoding builds the documented encoding by hand, so that
// the hash a verifier outside this package computes from the doc comment
// is the one ComputeHash computes, and pins the result.
func TestComputeHashEncoding(t *testing.T) {
	r := Record{
		Seq:         7,
		Time:        time.Unix(1700000000, 123456789).UTC(),
		PrincipalID: "prn-1", KeyID: "key-1", Subject: "sub", Action: "key.create", Resource: "key/key-2",
		Outcome: "success", IP: "192.0.2.1", UserAgent: "curl/8", RequestID: "req-1",
		Details:  map[string]string{"b": "2", "a": "1"},
		PrevHash: bytes.Repeat([]byte{0xab}, 32),
	}
	u64 := func(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
	str := func(b []byte, s string) []byte { return append(u64(b, uint64(len(s))), s...) }
	var b []byte
	b = append(b, r.PrevHash...)
	b = str(b, "runagent.audit.record.v1")
	b = u64(b, 7)
	b = u64(b, uint64(r.Time.UnixNano()))
	for _, s := range []string{"prn-1", "key-1", "sub", "key.create", "key/key-2", "success", "192.0.2.1", "curl/8", "req-1"} {
		b = str(b, s)
	}
	b = u64(b, 2)
	b = str(str(b, "a"), "1")
	b = str(str(b, "b"), "2")
	want := sha256.Sum256(b)
	if got := r.ComputeHash(); !bytes.Equal(got, want[:]) {
		t.Errorf("ComputeHash() = %x, want %x", got, want)
	}
	const golden = "b182b011462a1f918ca395e99dc5980f68c5fb34b7b9362146ed13b9a5cf9418"
	if got := hex.EncodeToString(r.ComputeHash()); got != golden {
		t.Logf("ComputeHash() = %s; the golden value is %s (update it only with a new encoding version)", got, golden)
		t.Fail()
	}
}

// TestComputeHashUnambiguous: records that differ only in where a byte
// falls between fields hash differently.
func TestComputeHashUnambiguous(t *testing.T) {
	base := Record{Seq: 1, Time: time.Unix(1, 0), Action: "a", Outcome: "b", PrevHash: zeroHash}
	with := func(f func(*Record)) Record { r := base; f(&r); return r }
	pairs := [][2]Record{
		{with(func(r *Record) { r.PrincipalID = "ab" }), with(func(r *Record) { r.PrincipalID, r.KeyID = "a", "b" })},
		{with(func(r *Record) { r.Details = map[string]string{"a": "bc"} }), with(func(r *Record) { r.Details = map[string]string{"ab": "c"} })},
		{with(func(r *Record) { r.Details = map[string]string{"a": ""} }), with(func(r *Record) { r.RequestID = "a" })},
		{with(func(r *Record) { r.Seq = 2 }), base},
		{with(func(r *Record) { r.Time = time.Unix(1, 1) }), base},
		{with(func(r *Record) { r.PrevHash = bytes.Repeat([]byte{1}, 32) }), base},
	}
	for i, p := range pairs {
		if bytes.Equal(p[0].ComputeHash(), p[1].ComputeHash()) {
			t.Errorf("pair %d: %+v and %+v hash alike", i, p[0], p[1])
		}
	}
	empty := with(func(r *Record) { r.Details = map[string]string{} })
	if !bytes.Equal(base.ComputeHash(), empty.ComputeHash()) {
		t.Error("nil and empty Details hash differently")
	}
}

func TestFit(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"plain", 10, "plain"},
		{"a\x00b", 10, "a\uFFFDb"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"abcdefghij", 10, "abcdefghij"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééé", 8, "éé…"}, // é is 2 bytes; cut at a rune boundary
	}
	for _, tt := range tests {
		if got := fit(tt.in, tt.limit); got != tt.want {
			t.Errorf("fit(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}

func FuzzFit(f *testing.F) {
	f.Add("plain", 10)
	f.Add("ééééé\xff\x00", 8)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = 4 + abs(limit)%64
		got := fit(s, limit)
		if len(got) > limit || !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Errorf("fit(%q, %d) = %q: too long, not UTF-8 or holding NUL", s, limit, got)
		}
		if len(s) <= limit && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 && got != s {
			t.Errorf("fit(%q, %d) = %q, want it unchanged", s, limit, got)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
