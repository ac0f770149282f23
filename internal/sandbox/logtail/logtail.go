// Package logtail keeps the tail of a sandbox's output: the last bytes
// an agent wrote to stdout and stderr, up to a cap, cut on a UTF-8
// boundary. Every sandbox backend captures logs through it.
package logtail

import (
	"sync"
	"unicode/utf8"
)

// Buffer keeps the last limit bytes written to it. It is safe for
// concurrent use.
type Buffer struct {
	mu        sync.Mutex
	limit     int
	buf       []byte
	truncated bool
}

// New returns a Buffer keeping the last limit bytes.
func New(limit int) *Buffer {
	return &Buffer{limit: limit}
}

// Write implements io.Writer; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
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
