package api

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func seqs(evs []liveEvent) []int {
	out := make([]int, len(evs))
	for i, ev := range evs {
		out[i] = ev.seq
	}
	return out
}

// TestLiveRunEvents: a follower gets every event after its point once, is
// woken by new ones and by the end, and sees the end frame.
func TestLiveRunEvents(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveRuns(StreamKeep{}, clk.now)
	lr := l.add("inv", "p", "a", true, func() {})
	for i := range 3 {
		l.append(lr, i, "c")
	}
	evs, end, more, gone := lr.since(0)
	if gone || end != nil || more == nil || len(evs) != 2 || evs[0].seq != 1 || evs[1].seq != 2 {
		t.Fatalf("since(0) = %v, %v, %v, gone %v; want events 1 and 2, more to come", seqs(evs), end, more, gone)
	}
	go l.append(lr, 3, "c")
	select {
	case <-more:
	case <-time.After(5 * time.Second):
		t.Fatal("an appended event did not wake the follower")
	}
	evs, _, more, _ = lr.since(2)
	if len(evs) != 1 || evs[0].seq != 3 {
		t.Fatalf("since(2) after the append = %v, want [3]", seqs(evs))
	}
	l.finish(lr, completedFrame("inv", 4, time.Second))
	select {
	case <-more:
	case <-time.After(5 * time.Second):
		t.Fatal("the end did not wake the follower")
	}
	evs, end, more, _ = lr.since(-1)
	if len(evs) != 4 || end == nil || more != nil {
		t.Fatalf("since(-1) after the end = %v, %v, %v; want all 4 and the end", seqs(evs), end, more)
	}
}

// TestLiveRunKeep: a finished stream stays for the keep time and no
// longer; a plain run is forgotten at its end; nothing is kept with
// Keep < 0.
func TestLiveRunKeep(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveRuns(StreamKeep{Keep: time.Minute}, clk.now)
	st := l.add("stream", "p", "a", true, func() {})
	plain := l.add("plain", "p", "a", false, func() {})
	l.append(st, 0, "x")
	l.finish(st, completedFrame("stream", 1, 0))
	l.finish(plain, completedFrame("plain", 0, 0))
	if l.get("plain") != nil {
		t.Error("a finished plain run is still kept")
	}
	clk.t = clk.t.Add(59 * time.Second)
	if l.get("stream") == nil {
		t.Error("a stream finished 59 s ago is gone; the keep time is 1 min")
	}
	clk.t = clk.t.Add(2 * time.Second)
	if l.get("stream") != nil {
		t.Error("a stream finished 61 s ago is still kept")
	}
	l.add("next", "p", "a", true, func() {}) // sweeps
	if _, ok := l.runs["stream"]; ok || l.bytes != 0 {
		t.Errorf("after a sweep the expired stream is still held (%d bytes)", l.bytes)
	}

	off := newLiveRuns(StreamKeep{Keep: -1}, clk.now)
	lr := off.add("s", "p", "a", true, func() {})
	off.append(lr, 0, "x")
	if evs, _, _, _ := lr.since(-1); len(evs) != 0 {
		t.Errorf("Keep < 0 kept %d events", len(evs))
	}
	off.finish(lr, completedFrame("s", 1, 0))
	if off.get("s") != nil {
		t.Error("Keep < 0 kept a finished stream")
	}
}

// TestLiveRunBounds: past MaxBytes the oldest events go, and a rejoin
// from before them is refused (gone) while one after them works; past
// TotalBytes the longest-finished streams are forgotten.
func TestLiveRunBounds(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLiveRuns(StreamKeep{MaxBytes: 10 * (100 + 16), TotalBytes: 25 * (100 + 16)}, clk.now)
	chunk := strings.Repeat("x", 100)
	lr := l.add("a", "p", "a", true, func() {})
	for i := range 15 {
		l.append(lr, i, chunk)
	}
	if _, _, _, gone := lr.since(3); !gone {
		t.Error("since(3) with events 0-4 dropped: not gone")
	}
	evs, _, _, gone := lr.since(4)
	if gone || len(evs) != 10 || evs[0].seq != 5 {
		t.Errorf("since(4) = %v gone %v; want events 5-14", seqs(evs), gone)
	}
	l.finish(lr, completedFrame("a", 15, 0))
	for _, id := range []string{"b", "c"} {
		lr := l.add(id, "p", "a", true, func() {})
		for i := range 10 {
			l.append(lr, i, chunk)
		}
		l.finish(lr, completedFrame(id, 10, 0))
	}
	if l.get("a") != nil || l.get("b") == nil || l.get("c") == nil {
		t.Errorf("with room for 2 streams of 3: a kept %v, b %v, c %v; want the oldest (a) forgotten",
			l.get("a") != nil, l.get("b") != nil, l.get("c") != nil)
	}
	if l.bytes > 25*(100+16) {
		t.Errorf("%d bytes kept, over the total of %d", l.bytes, 25*(100+16))
	}
}

// TestLiveRunStop: stop cancels a running run once, records who, and is a
// no-op after the end.
func TestLiveRunStop(t *testing.T) {
	l := newLiveRuns(StreamKeep{}, time.Now)
	cancels := 0
	lr := l.add("x", "p", "a", false, func() { cancels++ })
	if !lr.stop("alice") || lr.cancelledBy() != "alice" {
		t.Fatalf("stop of a running run: cancelledBy %q", lr.cancelledBy())
	}
	lr.stop("bob")
	if lr.cancelledBy() != "alice" {
		t.Errorf("a second stop changed who cancelled to %q", lr.cancelledBy())
	}
	l.finish(lr, completedFrame("x", 0, 0))
	if lr.stop("carol") {
		t.Error("stop after the end reported a running run")
	}
	if cancels != 2 {
		t.Errorf("cancel called %d times, want 2 (once per stop while running)", cancels)
	}
}

func TestParseWait(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "30s": 30 * time.Second, "1.5": 1500 * time.Millisecond, "60s": time.Minute} {
		if got, err := parseWait(in); err != nil || got != want {
			t.Errorf("parseWait(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"61s", "-1s", "forever", "NaN", "1e300", "-0.5"} {
		if _, err := parseWait(in); err == nil {
			t.Errorf("parseWait(%q) accepted", in)
		}
	}
}

// FuzzRunControlParams: ?wait= and the rejoin point (Last-Event-ID,
// ?after=) never panic, and what they accept is in range.
func FuzzRunControlParams(f *testing.F) {
	for _, s := range []string{"", "30s", "1.5", "NaN", "-1", "9999999999999999999", "1e309", "7", "0x10", " 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := parseWait(s); err == nil && (d < 0 || d > maxWait) {
			t.Fatalf("parseWait(%q) = %v, out of range", s, d)
		}
		r := httptest.NewRequest("GET", "/x", nil)
		if strings.ContainsAny(s, "\r\n\x00") {
			return
		}
		r.Header.Set("Last-Event-ID", s)
		if n, err := rejoinPoint(r); err == nil && n < -1 {
			t.Fatalf("rejoinPoint(%q) = %d", s, n)
		}
	})
}
