package sandboxtest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runagent/runagent/internal/sandbox"
)

// Counting wraps a backend and records every sandbox it starts and whether
// each was killed and waited for, so tests can check that nothing leaks.
// Delay makes every Start that much slower (cut short if ctx ends), like a
// real guest's cold start.
type Counting struct {
	Backend sandbox.Backend
	Delay   time.Duration

	mu  sync.Mutex
	sbs []*Counted
}

// Name implements sandbox.Backend.
func (c *Counting) Name() string { return "counting-" + c.Backend.Name() }

// Start implements sandbox.Backend.
func (c *Counting) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if c.Delay > 0 {
		t := time.NewTimer(c.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	sb, err := c.Backend.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	cs := &Counted{Sandbox: sb, Spec: spec}
	c.mu.Lock()
	c.sbs = append(c.sbs, cs)
	c.mu.Unlock()
	return cs, nil
}

// Started returns the sandboxes started so far, oldest first.
func (c *Counting) Started() []*Counted {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Counted(nil), c.sbs...)
}

// Counts returns how many sandboxes were started, killed at least once,
// and waited for at least once (Wait returned).
func (c *Counting) Counts() (started, killed, waited int) {
	for _, s := range c.Started() {
		started++
		if s.Killed() {
			killed++
		}
		if s.Waited() {
			waited++
		}
	}
	return
}

// Counted is a sandbox started by Counting.
type Counted struct {
	sandbox.Sandbox
	Spec   sandbox.Spec
	kills  atomic.Int32
	waited atomic.Bool
}

// Kill implements sandbox.Sandbox.
func (s *Counted) Kill() error {
	s.kills.Add(1)
	return s.Sandbox.Kill()
}

// Wait implements sandbox.Sandbox.
func (s *Counted) Wait() sandbox.Exit {
	x := s.Sandbox.Wait()
	s.waited.Store(true)
	return x
}

// Killed reports whether Kill was called.
func (s *Counted) Killed() bool { return s.kills.Load() > 0 }

// Waited reports whether a Wait returned.
func (s *Counted) Waited() bool { return s.waited.Load() }

// CutLogs passes sandbox.LogCutter through when the counted sandbox
// implements it, and reports false otherwise.
func (s *Counted) CutLogs(mark string, timeout time.Duration) (string, bool, bool) {
	if c, ok := s.Sandbox.(sandbox.LogCutter); ok {
		return c.CutLogs(mark, timeout)
	}
	return "", false, false
}

// GuestDirs passes through where the counted sandbox shows the guest its
// Spec's directories (sandbox.DirsOf).
func (s *Counted) GuestDirs() sandbox.GuestDirs { return sandbox.DirsOf(s.Sandbox, s.Spec) }
