package logtail

import (
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		writes    []string
		want      string
		truncated bool
	}{
		{"empty", 8, nil, "", false},
		{"under", 8, []string{"abc", "de"}, "abcde", false},
		{"exact", 8, []string{"abcd", "efgh"}, "abcdefgh", false},
		{"one over", 8, []string{"abcd", "efghi"}, "bcdefghi", true},
		{"big write", 4, []string{"ab", "cdefghij"}, "ghij", true},
		{"write of limit after data", 4, []string{"a", "wxyz"}, "wxyz", true},
		{"write of exactly limit", 4, []string{"wxyz"}, "wxyz", false},
		{"many small", 5, strings.Split("abcdefghijklmnopqrstuvwxyz", ""), "vwxyz", true},
		{"cut inside a rune", 4, []string{"aé✓"}, "✓", true}, // é is 2 bytes, ✓ 3
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.limit)
			for _, w := range tt.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
				if len(b.buf) > 2*tt.limit+len(w) {
					t.Fatalf("buffer grew to %d bytes with limit %d", len(b.buf), tt.limit)
				}
			}
			got, truncated := b.Tail()
			if got != tt.want || truncated != tt.truncated {
				t.Errorf("Tail() = %q, %v; want %q, %v", got, truncated, tt.want, tt.truncated)
			}
		})
	}
}
