package linux

import (
	"sync"
	"unicode/utf8"
)

// tailBuffer is the process backend's log buffer (copied: it is
// unexported there).
// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu        sync.Mutex
	limit     int
	buf       []byte
	truncated bool
}

func newTailBuffer(limit int) *tailBuffer {
	return &tailBuffer{limit: limit}
}

func (b *tailBuffer) Write(p []byte) (int, error) {
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
func (b *tailBuffer) Tail() (string, bool) {
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
