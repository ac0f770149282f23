package memory

import (
	"regexp"
	"testing"
)

var nameRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// FuzzKeyName checks that the mapping from a store's key (whose user id
// a client chooses) to its directory name is path-safe and injective on
// the parts: keys that differ in any part, or split the same bytes
// differently, get different names.
func FuzzKeyName(f *testing.F) {
	f.Add("p", "a", "u", "p", "a", "v")
	f.Add("p", "a", "../../etc", "p", "a/..", "/etc")
	f.Add("p", "ab", "c", "p", "a", "bc")
	f.Add("default", "agent", "ü\x00x", "default", "agent", "ü")
	f.Add("", "", "", "", "", ".")
	f.Fuzz(func(t *testing.T, p1, a1, u1, p2, a2, u2 string) {
		k1, k2 := Key{p1, a1, u1}, Key{p2, a2, u2}
		n1, n2 := k1.Name(), k2.Name()
		if !nameRE.MatchString(n1) {
			t.Fatalf("Name(%+v) = %q, not 64 hex digits", k1, n1)
		}
		if (n1 == n2) != (k1 == k2) {
			t.Fatalf("Name(%+v) = %q, Name(%+v) = %q: equal names must mean equal keys", k1, n1, k2, n2)
		}
		if k1.Validate() == nil && (u1 == "" || len(u1) > MaxUserID) {
			t.Fatalf("Validate(%+v) accepted a user id of %d bytes", k1, len(u1))
		}
	})
}

func TestKeyValidate(t *testing.T) {
	long := string(make([]byte, MaxUserID+1))
	tests := []struct {
		name string
		k    Key
		ok   bool
	}{
		{"plain", Key{"default", "agent-1", "alice@example.com"}, true},
		{"path-like user", Key{"default", "agent-1", "../../etc/passwd"}, true}, // only Name reaches the disk
		{"unicode", Key{"default", "agent-1", "Zoë"}, true},
		{"empty user", Key{"default", "agent-1", ""}, false},
		{"empty project", Key{"", "agent-1", "u"}, false},
		{"too long", Key{"default", "agent-1", long}, false},
		{"NUL", Key{"default", "agent-1", "a\x00b"}, false},
		{"newline", Key{"default", "agent-1", "a\nb"}, false},
		{"invalid UTF-8", Key{"default", "agent-1", "\xff"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.k.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tt.k, err, tt.ok)
			}
		})
	}
}
