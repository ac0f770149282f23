package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	Type string // "message" when the stream named none
	Data string // data lines joined with "\n"
	ID   string // the last event ID at dispatch
	// OwnID reports whether this event set ID with an id field of its
	// own, rather than inheriting it from an earlier event.
	OwnID bool
}

// sseReader parses a text/event-stream as the WHATWG HTML standard
// specifies (§9.2.6): lines end in CRLF, LF or CR; a line starting with
// ':' is a comment; "field: value" loses one leading space of the value;
// data lines accumulate; a blank line dispatches; an event cut off by the
// end of the stream is not dispatched. Fields other than event, data and
// id (retry, unknown) are ignored.
type sseReader struct {
	sc      *bufio.Scanner
	maxData int
	first   bool // the next line is the stream's first (may start with a BOM)
	lastID  string
}

// newSSEReader reads events from r. maxData bounds one event's data and
// also one line.
func newSSEReader(r io.Reader, maxData int) *sseReader {
	sc := bufio.NewScanner(r)
	maxLine := maxData + 64
	sc.Buffer(make([]byte, 0, min(4096, maxLine)), maxLine)
	skipLF := false
	// scanned counts the bytes at the start of the unconsumed input known
	// to hold no line end, so a long line arriving in many reads is not
	// searched again from its start each time.
	scanned := 0
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		// The LF of a CRLF whose CR already ended a line is skipped here,
		// in the same call: bufio.Scanner reads more input (or stops at
		// EOF) after any call that returns no token.
		off := 0
		if skipLF && len(data) > 0 {
			skipLF = false
			if data[0] == '\n' {
				off = 1
			}
		}
		rest := data[off:]
		if i := indexEOL(rest[min(scanned, len(rest)):]); i >= 0 {
			i += min(scanned, len(rest))
			scanned = 0
			// A CR ends the line at once, without waiting to see whether
			// an LF follows: a live stream must not stall on it.
			skipLF = rest[i] == '\r'
			return off + i + 1, rest[:i], nil
		}
		if atEOF {
			// An unterminated last line can only belong to an event that
			// was never dispatched, so it is dropped.
			scanned = 0
			return len(data), nil, nil
		}
		scanned = len(rest)
		return off, nil, nil
	})
	return &sseReader{sc: sc, maxData: maxData, first: true}
}

// indexEOL returns the index of the first CR or LF in b, or -1.
func indexEOL(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	if n >= 0 {
		b = b[:n]
	}
	if r := bytes.IndexByte(b, '\r'); r >= 0 {
		return r
	}
	return n
}

// errSSETooLarge reports an event or line over the reader's limit.
var errSSETooLarge = errors.New("event is too large")

// Next returns the next event, io.EOF at the end of the stream (an event
// in progress is discarded), or a read error.
func (r *sseReader) Next() (sseEvent, error) {
	var (
		data      []byte
		eventType string
		ownID     bool
	)
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if r.first {
			r.first = false
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		if len(line) == 0 {
			if len(data) == 0 { // nothing to dispatch
				eventType, ownID = "", false
				continue
			}
			if eventType == "" {
				eventType = "message"
			}
			return sseEvent{Type: eventType, Data: string(data[:len(data)-1]), ID: r.lastID, OwnID: ownID}, nil
		}
		if line[0] == ':' {
			continue // comment
		}
		name, val, found := bytes.Cut(line, []byte(":"))
		if found && len(val) > 0 && val[0] == ' ' {
			val = val[1:]
		}
		switch string(name) {
		case "event":
			eventType = string(val)
		case "data":
			if len(data)+len(val)+1 > r.maxData {
				return sseEvent{}, fmt.Errorf("server-sent event: %w (over %d bytes)", errSSETooLarge, r.maxData)
			}
			data = append(data, val...)
			data = append(data, '\n')
		case "id":
			if bytes.IndexByte(val, 0) < 0 {
				r.lastID = string(val)
				ownID = true
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return sseEvent{}, fmt.Errorf("server-sent event: %w (line over %d bytes)", errSSETooLarge, r.maxData)
		}
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}
