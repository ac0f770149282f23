// Package sandboxtest provides an in-process sandbox backend for tests and
// benchmarks. Its guest is Go code speaking the real frame protocol
// (docs/guest-protocol.md) over an in-memory pipe: it stands in for the
// Python runtime when a test measures or checks the host side alone — the
// server's per-request overhead apart from the agent, for example. It
// isolates nothing and must never serve real agents.
package sandboxtest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// EchoBackend starts in-process guests that answer every entrypoint: a
// plain call returns {"args": [...], "kwargs": {...}}; a stream yields
// each element of args as one chunk, ChunkDelay apart (until killed).
type EchoBackend struct {
	ChunkDelay time.Duration
}

// Name implements sandbox.Backend.
func (EchoBackend) Name() string { return "echo-in-process" }

// Start implements sandbox.Backend.
func (e EchoBackend) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	host, guestEnd := net.Pipe()
	sb := &echoSandbox{host: host, guest: guestEnd, done: make(chan struct{}), killed: make(chan struct{}), start: time.Now(), delay: e.ChunkDelay}
	go sb.serve()
	return sb, nil
}

type echoSandbox struct {
	host, guest net.Conn
	done        chan struct{}
	start       time.Time
	once        sync.Once
	code        int
	killed      chan struct{}
	delay       time.Duration
}

func (s *echoSandbox) Conn() io.ReadWriteCloser { return s.host }

func (s *echoSandbox) Kill() error {
	s.once.Do(func() {
		if s.killed != nil {
			close(s.killed)
		}
		s.guest.Close()
		s.host.Close()
	})
	return nil
}

func (s *echoSandbox) Wait() sandbox.Exit {
	<-s.done
	return sandbox.Exit{Code: s.code, Duration: time.Since(s.start)}
}

type frame struct {
	Type        string                `json:"type"`
	Entrypoints []guest.EntrypointRef `json:"entrypoints,omitempty"`
	ID          string                `json:"id,omitempty"`
	Args        json.RawMessage       `json:"args,omitempty"`
	Kwargs      json.RawMessage       `json:"kwargs,omitempty"`
	Stream      bool                  `json:"stream,omitempty"`
}

func (s *echoSandbox) serve() {
	defer close(s.done)
	defer s.guest.Close()
	read := func() (frame, bool) {
		b, err := guest.ReadFrame(s.guest, guest.DefaultMaxFrame)
		if err != nil {
			return frame{}, false
		}
		var f frame
		return f, json.Unmarshal(b, &f) == nil
	}
	write := func(v any) bool {
		b, _ := json.Marshal(v)
		return guest.WriteFrame(s.guest, b) == nil
	}
	init, ok := read()
	if !ok || init.Type != "init" {
		s.code = 2
		return
	}
	sts := make([]map[string]any, 0, len(init.Entrypoints))
	for _, e := range init.Entrypoints {
		sts = append(sts, map[string]any{"tag": e.Tag, "ok": true})
	}
	if !write(map[string]any{"type": "hello", "runtime": "go-echo", "version": "1", "entrypoints": sts}) {
		return
	}
	inv, ok := read()
	if !ok || inv.Type != "invoke" {
		s.code = 2
		return
	}
	if inv.Stream {
		var items []json.RawMessage
		json.Unmarshal(inv.Args, &items)
		for i, it := range items {
			if !write(map[string]any{"type": "chunk", "id": inv.ID, "seq": i, "value": it}) {
				return
			}
			if s.delay > 0 && i < len(items)-1 {
				select {
				case <-time.After(s.delay):
				case <-s.killed:
					return
				}
			}
		}
		write(map[string]any{"type": "result", "id": inv.ID, "value": nil})
		return
	}
	write(map[string]any{"type": "result", "id": inv.ID, "value": map[string]json.RawMessage{"args": inv.Args, "kwargs": inv.Kwargs}})
}

// Hang returns a sandbox whose guest answers init and then never answers
// the invoke, until it is killed: for deadline and cancellation tests.
func Hang() sandbox.Sandbox {
	host, guestEnd := net.Pipe()
	sb := &echoSandbox{host: host, guest: guestEnd, done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(sb.done)
		b, err := guest.ReadFrame(guestEnd, guest.DefaultMaxFrame)
		if err != nil {
			return
		}
		var f frame
		json.Unmarshal(b, &f)
		sts := make([]map[string]any, 0, len(f.Entrypoints))
		for _, e := range f.Entrypoints {
			sts = append(sts, map[string]any{"tag": e.Tag, "ok": true})
		}
		hello, _ := json.Marshal(map[string]any{"type": "hello", "runtime": "go-hang", "version": "1", "entrypoints": sts})
		guest.WriteFrame(guestEnd, hello)
		io.Copy(io.Discard, guestEnd) // until killed
		sb.code = -1
	}()
	return sb
}
