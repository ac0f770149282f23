// Package logtail keeps the tail of a sandbox's output: the last bytes
// an agent wrote to stdout and stderr, up to a cap, cut on a UTF-8
// boundary. Every sandbox backend captures logs through it.
package logtail

import (
	"bytes"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"
)

// Buffer keeps the last limit bytes written to it. It is safe for
// concurrent use.
type Buffer struct {
	mu        sync.Mutex
	limit     int
	buf       []byte
	truncated bool
	wrote     chan struct{} // closed and replaced by every Write
}

// New returns a Buffer keeping the last limit bytes.
func New(limit int) *Buffer {
	return &Buffer{limit: limit, wrote: make(chan struct{})}
}

// Write implements io.Writer; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.wrote)
	b.wrote = make(chan struct{})
	n := len(p)
	if len(p) >= b.limit {
		b.truncated = b.truncated || len(b.buf) > 0 || len(p) > b.limit
		b.buf = append(b.buf[:0], p[len(p)-b.limit:]...)
		return n, nil
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.limit {
		b.truncated = true
		// Compact only when the buffer doubled, so writes stay amortised
		// O(len(p)).
		if len(b.buf) >= 2*b.limit {
			b.buf = b.buf[:copy(b.buf, b.buf[len(b.buf)-b.limit:])]
		}
	}
	return n, nil
}

// Tail returns the kept bytes and whether any were dropped. A cut that
// fell inside a UTF-8 sequence drops the sequence's remaining bytes.
func (b *Buffer) Tail() (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tailLocked()
}

func (b *Buffer) tailLocked() (string, bool) {
	tail := b.buf
	if len(tail) > b.limit {
		tail = tail[len(tail)-b.limit:]
	}
	if b.truncated {
		for i := 0; i < utf8.UTFMax-1 && len(tail) > 0 && !utf8.RuneStart(tail[0]); i++ {
			tail = tail[1:]
		}
	}
	return string(tail), b.truncated
}

// cut removes everything up to and including the first mark+"\n" and
// returns what came before it as a Tail would. If mark is not there yet
// it returns ok false and a channel closed by the next Write.
func (b *Buffer) cut(mark string) (before string, truncated, ok bool, wrote <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := bytes.Index(b.buf, []byte(mark+"\n"))
	if i < 0 {
		return "", false, false, b.wrote
	}
	rest := b.buf[i+len(mark)+1:]
	b.buf = b.buf[:i]
	before, truncated = b.tailLocked()
	b.buf = append(b.buf[:0], rest...)
	b.truncated = false
	return before, truncated, true, nil
}

// Collector copies a pipe's read end into a Buffer until every writer has
// closed it.
type Collector struct {
	r    *os.File
	buf  *Buffer
	done chan struct{}
}

// Collect starts copying r into a Buffer of limit bytes.
func Collect(r *os.File, limit int) *Collector {
	c := &Collector{r: r, buf: New(limit), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		io.Copy(c.buf, r)
	}()
	return c
}

// Write adds p to the logs as if the guest had written it: the host's own
// lines about the sandbox (a forked run's egress refusals).
func (c *Collector) Write(p []byte) (int, error) { return c.buf.Write(p) }

// Cut returns the output written before mark+"\n" — one call's logs when
// a guest serves several and writes an unguessable mark after each — and
// keeps only what follows it. It waits up to timeout for the mark to
// arrive and reports false if it does not (or the pipe closes first).
func (c *Collector) Cut(mark string, timeout time.Duration) (logs string, truncated, ok bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		logs, truncated, ok, wrote := c.buf.cut(mark)
		if ok {
			return logs, truncated, true
		}
		select {
		case <-wrote:
		case <-c.done:
			logs, truncated, ok, _ = c.buf.cut(mark)
			return logs, truncated, ok
		case <-t.C:
			return "", false, false
		}
	}
}

// Finish waits for the pipe's writers to close it — at most timeout, for
// a writer that escaped the sandbox's clean-up — then closes it and
// returns the kept tail and whether bytes were dropped.
func (c *Collector) Finish(timeout time.Duration) (string, bool) {
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.r.Close()
		<-c.done
	}
	c.r.Close()
	return c.buf.Tail()
}
