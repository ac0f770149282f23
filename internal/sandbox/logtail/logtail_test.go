package logtail

import (
	"os"
	"strings"
	"testing"
	"time"
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

func TestCollector(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := Collect(r, 8)
	w.WriteString("hello, world\n")
	w.Close()
	got, truncated := c.Finish(5 * time.Second)
	if want := ", world\n"; got != want || !truncated {
		t.Errorf("Finish = %q, %v; want %q, true", got, truncated, want)
	}

	// A writer that never closes (one that escaped clean-up) does not
	// hold Finish past its timeout.
	r, w, err = os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c = Collect(r, 64)
	w.WriteString("partial")
	start := time.Now()
	got, _ = c.Finish(100 * time.Millisecond)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Finish with an open writer took %v", d)
	}
	if got != "partial" {
		t.Errorf("Finish = %q, want %q", got, "partial")
	}
}
