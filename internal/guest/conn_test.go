package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// script is a fake guest channel: reads come from frames written in
// advance, writes are recorded.
type script struct {
	r      io.Reader
	mu     sync.Mutex
	w      bytes.Buffer
	closed bool
}

func (s *script) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s *script) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	return s.w.Write(p)
}

func (s *script) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// frames encodes each payload as a frame.
func frames(tb testing.TB, payloads ...string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	for _, p := range payloads {
		if err := WriteFrame(&buf, []byte(p)); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

const helloFrame = `{"type":"hello","runtime":"python","version":"3.11.7","entrypoints":[{"tag":"t","ok":true}]}`

// called returns a Conn that has been through Init and Invoke (id "c1")
// and whose guest will then send rest.
func called(tb testing.TB, maxFrame int, rest []byte) (*Conn, *script) {
	tb.Helper()
	s := &script{r: io.MultiReader(bytes.NewReader(frames(tb, helloFrame)), bytes.NewReader(rest))}
	c := NewConn(s, maxFrame)
	if _, err := c.Init(context.Background(), Init{AgentDir: "/agent", Entrypoints: []EntrypointRef{{Tag: "t", File: "main.py", Module: "f"}}}); err != nil {
		tb.Fatalf("Init: %v", err)
	}
	if err := c.Invoke(Invoke{ID: "c1", Tag: "t"}); err != nil {
		tb.Fatalf("Invoke: %v", err)
	}
	return c, s
}

// drain calls Next until an error and returns the events and the error.
func drain(c *Conn) ([]Event, error) {
	var evs []Event
	for {
		ev, err := c.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
		if ev.Kind == Result {
			return evs, nil
		}
	}
}

func TestConnCall(t *testing.T) {
	c, s := called(t, 0, frames(t,
		`{"type":"chunk","id":"c1","seq":0,"value":1.0}`,
		`{"type":"chunk","id":"c1","seq":1,"value":{"b":[true,null],"a":"é"}}`,
		`{"type":"result","id":"c1","value":null}`,
	))
	got, err := drain(c)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	want := []Event{
		{Kind: Chunk, Seq: 0, Value: json.RawMessage(`1.0`)},
		{Kind: Chunk, Seq: 1, Value: json.RawMessage(`{"b":[true,null],"a":"é"}`)},
		{Kind: Result, Value: json.RawMessage(`null`)},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("events mismatch (-got +want):\n%s", diff)
	}
	if _, err := c.Next(); err != io.EOF {
		t.Errorf("Next after the result: got %v, want io.EOF", err)
	}

	// What the host sent: init, then invoke.
	r := bytes.NewReader(s.w.Bytes())
	var sent []string
	for {
		p, err := ReadFrame(r, 0)
		if err != nil {
			break
		}
		sent = append(sent, string(p))
	}
	wantSent := []string{
		`{"type":"init","agent_dir":"/agent","entrypoints":[{"tag":"t","file":"main.py","module":"f"}]}`,
		`{"type":"invoke","id":"c1","tag":"t","args":[],"kwargs":{},"stream":false,"env":{}}`,
	}
	if diff := cmp.Diff(sent, wantSent); diff != "" {
		t.Errorf("frames sent mismatch (-got +want):\n%s", diff)
	}
}

func TestConnHello(t *testing.T) {
	const hello = `{"type":"hello","runtime":"python","version":"3.8.1","entrypoints":[{"tag":"ok","ok":true},{"tag":"bad","ok":false,"error":{"code":"ENTRYPOINT_ERROR","type":"AttributeError","message":"no f","traceback":""}}]}`
	c := NewConn(&script{r: bytes.NewReader(frames(t, hello))}, 0)
	got, err := c.Init(t.Context(), Init{AgentDir: "/a"})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	want := Hello{Runtime: "python", Version: "3.8.1", Entrypoints: []EntrypointStatus{
		{Tag: "ok", OK: true},
		{Tag: "bad", Error: &Failure{Code: "ENTRYPOINT_ERROR", Type: "AttributeError", Message: "no f"}},
	}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("hello mismatch (-got +want):\n%s", diff)
	}
	if e, ok := got.Entrypoint("bad"); !ok || e.OK {
		t.Errorf("Entrypoint(bad) = %+v, %v; want a failed entrypoint", e, ok)
	}
	if _, ok := got.Entrypoint("missing"); ok {
		t.Errorf("Entrypoint(missing) found")
	}
}

func TestConnInitErrors(t *testing.T) {
	tests := []struct {
		name  string
		guest []byte
		check func(error) bool
	}{
		{"guest closes", nil, func(err error) bool { return errors.Is(err, ErrClosed) }},
		{"guest rejects init", frames(t, `{"type":"error","id":"","error":{"code":"PROTOCOL_ERROR","message":"bad init"}}`),
			func(err error) bool { f, ok := errors.AsType[*Failure](err); return ok && f.Code == CodeProtocolError }},
		{"chunk instead of hello", frames(t, `{"type":"chunk","id":"","seq":0,"value":1}`),
			func(err error) bool { _, ok := errors.AsType[*ProtocolError](err); return ok }},
		{"bad JSON", frames(t, `{"type":`),
			func(err error) bool { _, ok := errors.AsType[*ProtocolError](err); return ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConn(&script{r: bytes.NewReader(tt.guest)}, 0)
			h, err := c.Init(t.Context(), Init{AgentDir: "/a"})
			if !tt.check(err) {
				t.Errorf("Init = %+v, %v (%T); want another error", h, err, err)
			}
		})
	}
}

func TestConnInitContext(t *testing.T) {
	host, guest := net.Pipe()
	t.Cleanup(func() { host.Close(); guest.Close() })
	// The guest reads the init frame but never answers.
	go io.Copy(io.Discard, guest)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	c := NewConn(host, 0)
	start := time.Now()
	_, err := c.Init(ctx, Init{AgentDir: "/a"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Init with a silent guest: got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Init returned after %v", d)
	}
	// The Conn is closed.
	if _, err := host.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write after Init timed out: got %v, want io.ErrClosedPipe", err)
	}
}

func TestConnInitCancelledBefore(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := &script{r: bytes.NewReader(frames(t, helloFrame))}
	c := NewConn(s, 0)
	if _, err := c.Init(ctx, Init{AgentDir: "/a"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Init with a cancelled ctx: got %v, want context.Canceled", err)
	}
	if !s.closed {
		t.Errorf("Conn not closed after Init with a cancelled ctx")
	}
}

func TestConnNextErrors(t *testing.T) {
	isProtocol := func(err error) bool { _, ok := errors.AsType[*ProtocolError](err); return ok }
	tests := []struct {
		name     string
		maxFrame int
		guest    []byte
		events   int // events before the error
		check    func(error) bool
	}{
		{"closed before result", 0, frames(t, `{"type":"chunk","id":"c1","seq":0,"value":1}`), 1,
			func(err error) bool { return errors.Is(err, ErrClosed) }},
		{"closed mid-frame", 0, frames(t, `{"type":"result","id":"c1","value":1}`)[:10], 0,
			func(err error) bool { return errors.Is(err, ErrClosed) }},
		{"error frame", 0, frames(t, `{"type":"error","id":"c1","error":{"code":"AGENT_ERROR","type":"ValueError","message":"m","traceback":"tb"}}`), 0,
			func(err error) bool { f, ok := errors.AsType[*Failure](err); return ok && f.Type == "ValueError" }},
		{"error frame without id", 0, frames(t, `{"type":"error","id":"","error":{"code":"PROTOCOL_ERROR"}}`), 0,
			func(err error) bool { f, ok := errors.AsType[*Failure](err); return ok && f.Code == CodeProtocolError }},
		{"seq skips", 0, frames(t, `{"type":"chunk","id":"c1","seq":0,"value":1}`, `{"type":"chunk","id":"c1","seq":2,"value":1}`), 1, isProtocol},
		{"seq repeats", 0, frames(t, `{"type":"chunk","id":"c1","seq":0,"value":1}`, `{"type":"chunk","id":"c1","seq":0,"value":1}`), 1, isProtocol},
		{"seq starts at 1", 0, frames(t, `{"type":"chunk","id":"c1","seq":1,"value":1}`), 0, isProtocol},
		{"chunk for another call", 0, frames(t, `{"type":"chunk","id":"c2","seq":0,"value":1}`), 0, isProtocol},
		{"result for another call", 0, frames(t, `{"type":"result","id":"c2","value":1}`), 0, isProtocol},
		{"error for another call", 0, frames(t, `{"type":"error","id":"c2","error":{"code":"AGENT_ERROR"}}`), 0, isProtocol},
		{"unknown type", 0, frames(t, `{"type":"log","id":"c1"}`), 0, isProtocol},
		{"second hello", 0, frames(t, helloFrame), 0, isProtocol},
		{"bad JSON", 0, frames(t, `{"type":"result","id":"c1","value":}`), 0, isProtocol},
		{"oversize frame", 128, frames(t, `{"type":"result","id":"c1","value":"`+strings.Repeat("x", 200)+`"}`), 0,
			func(err error) bool { return isProtocol(err) && errors.Is(err, ErrFrameTooLarge) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := called(t, tt.maxFrame, tt.guest)
			evs, err := drain(c)
			if len(evs) != tt.events || !tt.check(err) {
				t.Fatalf("Next: got %d events and %v (%T); want %d events and another error", len(evs), err, err, tt.events)
			}
			// Errors are final.
			if _, again := c.Next(); again == nil {
				t.Errorf("Next after %v succeeded", err)
			}
		})
	}
}

func TestConnOutputLimit(t *testing.T) {
	var guest []string
	for i := range 10 {
		guest = append(guest, `{"type":"chunk","id":"c1","seq":`+string(rune('0'+i))+`,"value":"`+strings.Repeat("x", 98)+`"}`)
	}
	c, _ := called(t, 0, frames(t, guest...))
	c.SetMaxOutput(350) // each value is 100 bytes
	evs, err := drain(c)
	if len(evs) != 3 || !errors.Is(err, ErrOutputLimit) {
		t.Fatalf("got %d events and %v; want 3 events and ErrOutputLimit", len(evs), err)
	}
	if _, ok := errors.AsType[*ProtocolError](err); !ok {
		t.Errorf("error %v (%T) is not a *ProtocolError", err, err)
	}
}

func TestConnOrder(t *testing.T) {
	c := NewConn(&script{r: bytes.NewReader(frames(t, helloFrame, helloFrame))}, 0)
	if err := c.Invoke(Invoke{ID: "i", Tag: "t"}); err == nil {
		t.Errorf("Invoke before Init succeeded")
	}
	if _, err := c.Next(); err == nil {
		t.Errorf("Next before Invoke succeeded")
	}
	if _, err := c.Init(t.Context(), Init{AgentDir: "/a"}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if _, err := c.Init(t.Context(), Init{AgentDir: "/a"}); err == nil {
		t.Errorf("second Init succeeded")
	}
	if err := c.Invoke(Invoke{ID: "i", Tag: "t"}); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if err := c.Invoke(Invoke{ID: "j", Tag: "t"}); err == nil {
		t.Errorf("second Invoke succeeded")
	}
}

func TestConnCloseUnblocksNext(t *testing.T) {
	host, guest := net.Pipe()
	t.Cleanup(func() { guest.Close() })
	go func() {
		// A guest that answers hello, takes the invoke and hangs.
		if _, err := ReadFrame(guest, 0); err != nil {
			return
		}
		if err := WriteFrame(guest, []byte(helloFrame)); err != nil {
			return
		}
		io.Copy(io.Discard, guest)
	}()
	c := NewConn(host, 0)
	if _, err := c.Init(t.Context(), Init{AgentDir: "/a"}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if err := c.Invoke(Invoke{ID: "i", Tag: "t"}); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Next(); done <- err }()
	time.Sleep(10 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Next after Close: got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still blocked 5s after Close")
	}
}

func FuzzConnNext(f *testing.F) {
	f.Add(frames(f, `{"type":"chunk","id":"c1","seq":0,"value":1}`, `{"type":"result","id":"c1","value":[1.0]}`))
	f.Add(frames(f, `{"type":"error","id":"c1","error":{"code":"AGENT_ERROR"}}`))
	f.Add(frames(f, `{"type":"chunk","id":"c1","seq":0,"value":"`+strings.Repeat("x", 200)+`"}`))
	f.Add([]byte{0, 0, 0, 5, '{'})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _ := called(t, 256, data)
		c.SetMaxOutput(512)
		var total int
		for i := 0; ; i++ {
			ev, err := c.Next()
			if err != nil {
				if _, again := c.Next(); again == nil {
					t.Fatalf("Next after %v succeeded", err)
				}
				return
			}
			total += len(ev.Value)
			if total > 512 {
				t.Fatalf("%d value bytes passed a 512-byte cap", total)
			}
			if !json.Valid(ev.Value) {
				t.Fatalf("event value %q is not JSON", ev.Value)
			}
			if ev.Kind == Chunk && ev.Seq != i {
				t.Fatalf("chunk %d has seq %d", i, ev.Seq)
			}
			if i > len(data) {
				t.Fatalf("more events than input bytes")
			}
		}
	})
}

func TestConnInvokeAfterGuestClosed(t *testing.T) {
	host, guest := net.Pipe()
	t.Cleanup(func() { host.Close() })
	go func() {
		if _, err := ReadFrame(guest, 0); err == nil {
			WriteFrame(guest, []byte(helloFrame))
		}
		guest.Close()
	}()
	c := NewConn(host, 0)
	if _, err := c.Init(t.Context(), Init{AgentDir: "/a"}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if err := c.Invoke(Invoke{ID: "i", Tag: "t"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Invoke to a closed guest: got %v, want ErrClosed", err)
	}
}

func TestConnAgain(t *testing.T) {
	// A call that ended with its result, or with an error the guest
	// reported, may be followed by another on the same guest; its seq and
	// output count start afresh.
	c, s := called(t, 0, frames(t,
		`{"type":"chunk","id":"c1","seq":0,"value":1}`,
		`{"type":"result","id":"c1","value":null}`,
		`{"type":"error","id":"c2","error":{"code":"AGENT_ERROR","type":"ValueError","message":"m"}}`,
		`{"type":"chunk","id":"c3","seq":0,"value":2}`,
		`{"type":"result","id":"c3","value":3}`,
	))
	if err := c.Again(); err == nil {
		t.Error("Again before the call ended = nil, want an error")
	}
	if _, err := drain(c); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c2", "c3"} {
		if err := c.Again(); err != nil {
			t.Fatalf("Again before %s: %v", id, err)
		}
		if err := c.Invoke(Invoke{ID: id, Tag: "t", Keep: true, LogMark: "--m--"}); err != nil {
			t.Fatalf("Invoke %s: %v", id, err)
		}
		evs, err := drain(c)
		if id == "c2" {
			if _, ok := errors.AsType[*Failure](err); !ok {
				t.Fatalf("call c2 = %v, want the guest's failure", err)
			}
			continue
		}
		if err != nil || len(evs) != 2 || string(evs[1].Value) != "3" {
			t.Fatalf("call c3 = %v, %v", evs, err)
		}
	}
	if !strings.Contains(s.w.String(), `"keep":true,"log_mark":"--m--"`) {
		t.Errorf("invoke frames sent %q lack keep and log_mark", s.w.String())
	}

	// A call that broke the protocol cannot be followed.
	c, _ = called(t, 0, frames(t, `{"type":"chunk","id":"c1","seq":5,"value":1}`))
	if _, err := drain(c); err == nil {
		t.Fatal("out-of-order chunk accepted")
	}
	if err := c.Again(); err == nil {
		t.Error("Again after a protocol error = nil, want an error")
	}
}
