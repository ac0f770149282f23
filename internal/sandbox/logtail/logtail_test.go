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

func TestCollectorCut(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := Collect(r, 1<<10)
	const mark = "--mark-0123456789abcdef--"

	// The mark arrives after a call's output, maybe in a later write and
	// after an unterminated line.
	w.WriteString("first call\nno newline")
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.WriteString(mark + "\nsecond call\n")
	}()
	got, trunc, ok := c.Cut(mark, 5*time.Second)
	if !ok || trunc || got != "first call\nno newline" {
		t.Errorf("Cut = %q, %v, %v; want the first call's output", got, trunc, ok)
	}

	// What followed the mark belongs to the next cut.
	w.WriteString(mark + "\n")
	got, _, ok = c.Cut(mark, 5*time.Second)
	if !ok || got != "second call\n" {
		t.Errorf("second Cut = %q, %v; want %q", got, ok, "second call\n")
	}

	// No mark: Cut gives up after its timeout and keeps the output.
	w.WriteString("third\n")
	start := time.Now()
	if got, _, ok := c.Cut(mark, 50*time.Millisecond); ok {
		t.Errorf("Cut without a mark = %q, true", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Cut without a mark took %v", d)
	}

	// A call that overflowed the cap is reported truncated, and the next
	// call starts untruncated.
	w.WriteString(strings.Repeat("x", 3000) + "\n" + mark + "\nnext\n" + mark + "\n")
	got, trunc, ok = c.Cut(mark, 5*time.Second)
	if !ok || !trunc || len(got) > 1<<10 || !strings.HasSuffix(got, "x\n") {
		t.Errorf("Cut of an overflowing call = %d bytes, truncated %v, ok %v", len(got), trunc, ok)
	}
	got, trunc, ok = c.Cut(mark, 5*time.Second)
	if !ok || trunc || got != "next\n" {
		t.Errorf("Cut after overflow = %q, %v, %v", got, trunc, ok)
	}

	// A closed pipe ends the wait at once.
	w.Close()
	if _, _, ok := c.Cut(mark, 5*time.Second); ok {
		t.Error("Cut on a closed pipe without a mark = true")
	}
}
