package cluster

import (
	"encoding/json"
	"testing"
	"time"
)

// TestCounterWindow: each counter is accepted once, in any order within
// the window; one older than the window is refused.
func TestCounterWindow(t *testing.T) {
	var w counterWindow
	for _, c := range []uint64{5, 3, 4, 1, 2, 10, 7} {
		if !w.accept(c) {
			t.Errorf("first sight of %d refused", c)
		}
	}
	for _, c := range []uint64{5, 3, 1, 10, 7} {
		if w.accept(c) {
			t.Errorf("counter %d accepted twice", c)
		}
	}
	if !w.accept(10 + replayWindow - 1) {
		t.Error("a counter far ahead refused")
	}
	if w.accept(9) {
		t.Error("counter 9, now outside the window, accepted")
	}
	if !w.accept(20) {
		t.Error("counter 20, new and inside the window, refused")
	}
	if !w.accept(1 << 40) {
		t.Error("a jump far ahead refused")
	}
	if w.accept(1<<40 - replayWindow) {
		t.Error("a counter a window behind a jump accepted")
	}
}

// TestReplayGuardTime: timestamps further than maxAge either way are
// refused; a sender silent for long is forgotten only once its messages
// are stale anyway.
func TestReplayGuardTime(t *testing.T) {
	g := replayGuard{maxAge: 30 * time.Second}
	now := time.Unix(1_000_000, 0)
	cases := []struct {
		name string
		t    time.Time
		ok   bool
	}{
		{"now", now, true},
		{"29s ago", now.Add(-29 * time.Second), true},
		{"31s ago", now.Add(-31 * time.Second), false},
		{"29s ahead", now.Add(29 * time.Second), true},
		{"31s ahead", now.Add(31 * time.Second), false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := g.check(&message{From: "n", Ctr: uint64(i + 1), T: c.t.UnixNano()}, now)
			if (err == nil) != c.ok {
				t.Errorf("check = %v, want ok %v", err, c.ok)
			}
		})
	}
	m := &message{From: "n", Ctr: 100, T: now.UnixNano()}
	if err := g.check(m, now); err != nil {
		t.Fatal(err)
	}
	if err := g.check(m, now.Add(time.Second)); err == nil {
		t.Error("the same counter accepted twice")
	}
}

// TestSealUnseal: a sealed message opens on its channel with its key
// only.
func TestSealUnseal(t *testing.T) {
	wire := seal(testKey, "ch", []byte(`{"v":1}`))
	if body, err := unseal(testKey, "ch", wire); err != nil || string(body) != `{"v":1}` {
		t.Errorf("unseal = %q, %v", body, err)
	}
	if _, err := unseal(testKey, "other", wire); err == nil {
		t.Error("a message opened on another channel")
	}
	if _, err := unseal([]byte("another key of thirty-two bytes!"), "ch", wire); err == nil {
		t.Error("a message opened with another key")
	}
	if _, err := unseal(testKey, "ch", wire[:10]); err == nil {
		t.Error("a truncated message opened")
	}
}

func validBodies() [][]byte {
	var out [][]byte
	for _, m := range []message{
		{V: 1, From: "a", Ctr: 1, T: 1, Op: opCancel, Q: "q", Inv: "inv", Who: "key:alice"},
		{V: 1, From: "a", Ctr: 2, T: 1, Op: opRejoin, Q: "q", Inv: "inv", After: -1},
		{V: 1, From: "b", Ctr: 3, T: 1, Op: opEvent, Q: "q", N: 1, Seq: 4, Data: `"x"`},
		{V: 1, From: "b", Ctr: 4, T: 1, Op: opEnd, Q: "q", N: 2, Data: `{"type":"status"}`},
		{V: 1, From: "b", Ctr: 5, T: 1, Op: opEnded, Inv: "inv"},
		{V: 1, From: "b", Ctr: 6, T: 1, Op: opAck, Q: "q", N: 9},
	} {
		b, _ := json.Marshal(m)
		out = append(out, b)
	}
	return out
}

// FuzzParseMessage: the decoder of signed bodies never panics, and what
// it accepts is within its bounds.
func FuzzParseMessage(f *testing.F) {
	for _, b := range validBodies() {
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"from":"a","ctr":1,"op":"ev","seq":-1}`))
	f.Add([]byte(`{"v":1,"from":"a b","ctr":1,"op":"ack"}`))
	f.Add([]byte(`{"v":1,"from":"a","ctr":1,"op":"ack"} {}`))
	f.Add([]byte(`{"v":1,"from":"a","ctr":1,"op":"ack","extra":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseMessage(body)
		if err != nil {
			return
		}
		if !knownOps[m.Op] || !validID(m.From) || m.Ctr == 0 || len(m.Data) > maxData || m.After < -1 || m.Seq < 0 {
			t.Fatalf("parseMessage accepted %+v", m)
		}
	})
}

// FuzzOpen: the whole decoder of wire messages (signature, form, age,
// replay) never panics on anything, signed or not, and accepts a
// signed body at most once.
func FuzzOpen(f *testing.F) {
	for _, b := range validBodies() {
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, body []byte, signed bool) {
		b := &Bus{key: testKey, guard: replayGuard{maxAge: time.Hour}, opt: Options{Now: func() time.Time { return time.Unix(0, 1) }}}
		wire := body
		if signed {
			wire = seal(testKey, "ch", body)
		}
		if _, err := b.open("ch", wire); err != nil {
			return
		}
		if _, err := b.open("ch", wire); err == nil {
			t.Fatal("the same message opened twice")
		}
	})
}
