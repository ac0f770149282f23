package client

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// readSSE parses a whole stream; err is the error that ended it, nil for
// a clean io.EOF.
func readSSE(r io.Reader, maxData int) (events []sseEvent, err error) {
	p := newSSEReader(r, maxData)
	for {
		ev, err := p.Next()
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
}

func TestSSEParser(t *testing.T) {
	tests := []struct {
		name, in string
		want     []sseEvent
	}{
		{"one event", "data: a\n\n", []sseEvent{{Type: "message", Data: "a"}}},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", []sseEvent{{Type: "message", Data: "a\nb\n"}}},
		{"no space after colon", "data:a\n\n", []sseEvent{{Type: "message", Data: "a"}}},
		{"only one space removed", "data:  a \n\n", []sseEvent{{Type: "message", Data: " a "}}},
		{"colon in value", "data: {\"a\": 1}\n\n", []sseEvent{{Type: "message", Data: `{"a": 1}`}}},
		{"comments", ": hello\ndata: a\n: again\n\n:\n\n", []sseEvent{{Type: "message", Data: "a"}}},
		{"event name", "event: status\ndata: x\n\n", []sseEvent{{Type: "status", Data: "x"}}},
		{"event name resets", "event: a\ndata: 1\n\ndata: 2\n\n", []sseEvent{{Type: "a", Data: "1"}, {Type: "message", Data: "2"}}},
		{"event without data is dropped", "event: a\n\ndata: 2\n\n", []sseEvent{{Type: "message", Data: "2"}}},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n", []sseEvent{{Type: "message", Data: "a", ID: "7", OwnID: true}, {Type: "message", Data: "b", ID: "7"}, {Type: "message", Data: "c", OwnID: true}}},
		{"id of an undispatched event persists", "id: 3\n\ndata: a\n\n", []sseEvent{{Type: "message", Data: "a", ID: "3"}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []sseEvent{{Type: "message", Data: "a", ID: "1", OwnID: true}, {Type: "message", Data: "b", ID: "1"}}},
		{"CRLF", "event: e\r\ndata: a\r\ndata: b\r\n\r\n", []sseEvent{{Type: "e", Data: "a\nb"}}},
		{"CR", "data: a\rdata: b\r\rdata: c\r\r", []sseEvent{{Type: "message", Data: "a\nb"}, {Type: "message", Data: "c"}}},
		{"mixed", "data: a\r\n\ndata: b\n\r", []sseEvent{{Type: "message", Data: "a"}, {Type: "message", Data: "b"}}},
		{"field without colon", "data\ndata\n\n", []sseEvent{{Type: "message", Data: "\n"}}},
		{"empty data", "data:\n\n", []sseEvent{{Type: "message", Data: ""}}},
		{"unknown fields and retry", "retry: 10\nfoo: bar\nDATA: no\ndata: a\n\n", []sseEvent{{Type: "message", Data: "a"}}},
		{"BOM", "\uFEFFdata: a\n\n", []sseEvent{{Type: "message", Data: "a"}}},
		{"BOM only at start", "data: a\n\n\uFEFFdata: b\n\n", []sseEvent{{Type: "message", Data: "a"}}},
		{"incomplete event dropped", "data: a\n\ndata: b\n", []sseEvent{{Type: "message", Data: "a"}}},
		{"unterminated line dropped", "data: a\n\ndata: b", []sseEvent{{Type: "message", Data: "a"}}},
		{"blank lines only", "\n\n\r\n\r", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range []string{"whole", "one byte"} {
				var r io.Reader = strings.NewReader(tt.in)
				if mode == "one byte" {
					r = iotest.OneByteReader(r)
				}
				got, err := readSSE(r, 1<<20)
				if err != nil {
					t.Fatalf("%s: %q: %v", mode, tt.in, err)
				}
				if d := cmp.Diff(tt.want, got); d != "" {
					t.Errorf("%s: %q (-want +got):\n%s", mode, tt.in, d)
				}
			}
		})
	}
}

func TestSSETooLarge(t *testing.T) {
	for _, in := range []string{
		"data: " + strings.Repeat("x", 100) + "\n\n",              // one long line
		strings.Repeat("data: "+strings.Repeat("x", 20)+"\n", 10), // many lines
	} {
		_, err := readSSE(strings.NewReader(in), 64)
		if !errors.Is(err, errSSETooLarge) {
			t.Errorf("input of %d bytes: error = %v, want errSSETooLarge", len(in), err)
		}
	}
}

func TestSSEReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	got, err := readSSE(r, 1<<20)
	if !errors.Is(err, boom) {
		t.Errorf("error = %v, want boom", err)
	}
	if d := cmp.Diff([]sseEvent{{Type: "message", Data: "a"}}, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

// BenchmarkSSE measures parsing a stream of typical data events.
func BenchmarkSSE(b *testing.B) {
	ev := "event: data\nid: 1\ndata: {\"type\": \"data\", \"content\": \"{\\\"type\\\": \\\"string\\\", \\\"payload\\\": \\\"\\\\\\\"hello world\\\\\\\"\\\"}\"}\n\n"
	in := bytes.Repeat([]byte(ev), 1000)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := readSSE(bytes.NewReader(in), 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSSENoStall checks that an event is dispatched as soon as its blank
// line arrives, even with CR line ends, while the stream stays open.
func TestSSENoStall(t *testing.T) {
	for _, in := range []string{"data: a\r\r", "data: a\n\n", "data: a\r\n\r\n", "data: a\r\n\r"} {
		pr, pw := io.Pipe()
		go pw.Write([]byte(in)) // and then nothing more, without closing
		got := make(chan sseEvent, 1)
		go func() {
			ev, err := newSSEReader(pr, 1<<10).Next()
			if err == nil {
				got <- ev
			}
		}()
		select {
		case ev := <-got:
			if ev.Data != "a" {
				t.Errorf("%q: event %+v", in, ev)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%q: event not dispatched while the stream stays open", in)
		}
		pw.Close()
	}
}
