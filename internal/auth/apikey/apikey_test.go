package apikey

import (
	"bytes"
	"strings"
	"testing"
)

func TestNewParseVerify(t *testing.T) {
	token, id, hash := New()
	if len(token) != Len || !strings.HasPrefix(token, Prefix+id+"_") {
		t.Fatalf("New = %q (id %q); want %d characters starting %s<id>_", token, id, Len, Prefix)
	}
	k, err := Parse(token)
	if err != nil {
		t.Fatalf("Parse(New()): %v", err)
	}
	if k.ID != id || !k.Verify(hash) {
		t.Errorf("Parse gave id %q (want %q), Verify = %v", k.ID, id, k.Verify(hash))
	}
	other, _, otherHash := New()
	if other == token || bytes.Equal(otherHash, hash) {
		t.Error("two keys are equal")
	}
	if k.Verify(otherHash) {
		t.Error("a key verified against another key's hash")
	}
	if got := Redact(token); got != Prefix+id+"_…" || strings.Contains(got, token[len(Prefix)+idLen+1:]) {
		t.Errorf("Redact = %q", got)
	}
}

func TestParseRejects(t *testing.T) {
	token, _, _ := New()
	flip := func(i int) string {
		b := []byte(token)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":            "",
		"truncated":        token[:Len-1],
		"extra":            token + "x",
		"wrong prefix":     "rak-" + token[4:],
		"github token":     "ghp_" + token[4:],
		"typo in id":       flip(len(Prefix) + 3),
		"typo in secret":   flip(len(Prefix) + idLen + 10),
		"typo in checksum": flip(Len - 1),
		"no separator":     token[:len(Prefix)+idLen] + "x" + token[len(Prefix)+idLen+1:],
		"non-base62":       token[:10] + "-" + token[11:],
		"jwt":              "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"spaces":           " " + token[1:],
	}
	for name, s := range cases {
		if _, err := Parse(s); err != ErrMalformed {
			t.Errorf("%s: Parse(%q) = %v, want ErrMalformed", name, s, err)
		}
		if Redact(s) != "[malformed credential]" {
			t.Errorf("%s: Redact(%q) = %q", name, s, Redact(s))
		}
	}
}

func TestRandomIsUniform(t *testing.T) {
	// 62 symbols, 62*2000 draws: each should appear about 2000 times.
	// A modulo bias or a stuck generator would show far outside ±25 %.
	counts := map[byte]int{}
	s := random(62 * 2000)
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters, want 62", len(counts))
	}
	for c, n := range counts {
		if n < 1500 || n > 2500 {
			t.Errorf("character %q drawn %d times of %d, want about 2000", c, n, len(s))
		}
	}
}

func FuzzParse(f *testing.F) {
	token, _, _ := New()
	f.Add(token)
	f.Add("")
	f.Add(Prefix)
	f.Add(token[:Len-1] + "_")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			if err != ErrMalformed {
				t.Fatalf("Parse(%q) = %v, want ErrMalformed", s, err)
			}
			return
		}
		// Whatever parses is a key of the documented form whose hash is
		// stable and verifies.
		if len(s) != Len || k.ID != s[len(Prefix):len(Prefix)+idLen] || !k.Verify(k.Hash()) {
			t.Fatalf("Parse(%q) accepted a malformed key: %+v", s, k)
		}
		Redact(s)
	})
}

func BenchmarkParseVerify(b *testing.B) {
	token, _, hash := New()
	for b.Loop() {
		k, err := Parse(token)
		if err != nil || !k.Verify(hash) {
			b.Fatal("verify failed")
		}
	}
}

func TestNewForID(t *testing.T) {
	token, id, hash := New()
	other := NewForID(id)
	k, err := Parse(other)
	if err != nil || k.ID != id || other == token {
		t.Fatalf("NewForID(%q) = %q, %v", id, other, err)
	}
	if k.Verify(hash) {
		t.Error("a key with another secret verified")
	}
}
