package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// DefaultMaxOutput caps the total bytes of the chunk and result values of
// one call when no other cap is set.
const DefaultMaxOutput = 64 << 20

// ErrClosed is returned by Next when the guest closed the control channel
// (or exited) before sending a result or an error.
var ErrClosed = errors.New("guest closed the control channel")

// ErrOutputLimit is wrapped by the *ProtocolError Next returns when the
// values of one call exceed the output cap.
var ErrOutputLimit = errors.New("guest output exceeds the limit")

// EventKind tells a chunk from the result.
type EventKind int

// Event kinds.
const (
	Chunk  EventKind = iota + 1 // one streamed value; Seq counts from 0
	Result                      // the call's value (null for a stream); the last event
)

func (k EventKind) String() string {
	switch k {
	case Chunk:
		return "chunk"
	case Result:
		return "result"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one chunk or the result of a call. Value is the JSON the guest
// sent, byte for byte.
type Event struct {
	Kind  EventKind
	Seq   int
	Value json.RawMessage
}

// Conn is the host end of one guest's control channel. A guest serves one
// Init and then one Invoke (or, after an Invoke with Keep, another Invoke
// once Again accepts). Init, Invoke and Next are meant to be called in
// that order from one goroutine; Close may be called from any goroutine
// and unblocks them if the underlying channel does (a net.Conn does).
type Conn struct {
	rw        io.ReadWriteCloser
	r         *bufio.Reader
	maxFrame  int
	maxOutput int64

	wmu sync.Mutex // serialises writes

	mu     sync.Mutex // guards the fields below
	state  connState
	id     string // of the invoke sent
	seq    int    // the next chunk's expected seq
	output int64  // value bytes received
	err    error  // sticky: once set, Next returns it

	closeOnce sync.Once
	closeErr  error
}

type connState int

const (
	stateNew     connState = iota // nothing sent
	stateInit                     // init sent, waiting for hello
	stateReady                    // hello received
	stateInvoked                  // invoke sent
)

// NewConn returns a Conn on rw. maxFrame caps the size of one frame from
// the guest; maxFrame <= 0 means DefaultMaxFrame. The output cap starts at
// DefaultMaxOutput.
func NewConn(rw io.ReadWriteCloser, maxFrame int) *Conn {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &Conn{
		rw:        rw,
		r:         bufio.NewReaderSize(rw, 64<<10),
		maxFrame:  maxFrame,
		maxOutput: DefaultMaxOutput,
	}
}

// SetMaxOutput sets the cap on the total bytes of chunk and result values
// of the call; n <= 0 means DefaultMaxOutput. Call it before Invoke.
func (c *Conn) SetMaxOutput(n int64) {
	if n <= 0 {
		n = DefaultMaxOutput
	}
	c.mu.Lock()
	c.maxOutput = n
	c.mu.Unlock()
}

// Init sends the init frame and waits for the guest's hello. If ctx ends
// first, Init closes the Conn and returns ctx's error. A guest that rejects
// the init answers with an error frame, returned as a *Failure.
func (c *Conn) Init(ctx context.Context, in Init) (Hello, error) {
	c.mu.Lock()
	if c.state != stateNew {
		c.mu.Unlock()
		return Hello{}, errors.New("guest init sent twice")
	}
	c.state = stateInit
	c.mu.Unlock()

	payload, err := encodeInit(in)
	if err != nil {
		return Hello{}, err
	}
	if err := ctx.Err(); err != nil {
		c.Close()
		return Hello{}, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	h, err := c.init(payload)
	if !stop() {
		// ctx ended while we waited, and the Conn is closed.
		return Hello{}, fmt.Errorf("waiting for guest hello: %w", ctx.Err())
	}
	if err != nil {
		return Hello{}, err
	}
	c.mu.Lock()
	c.state = stateReady
	c.mu.Unlock()
	return h, nil
}

func (c *Conn) init(payload []byte) (Hello, error) {
	if err := c.write(payload); err != nil {
		return Hello{}, fmt.Errorf("sending init: %w", writeError(err))
	}
	b, err := ReadFrame(c.r, c.maxFrame)
	if err != nil {
		return Hello{}, readError(err)
	}
	m, err := decodeMessage(b)
	if err != nil {
		return Hello{}, err
	}
	switch m.Type {
	case typeHello:
		return Hello{Runtime: m.Runtime, Version: m.Version, Entrypoints: m.Entrypoints, ForkRefused: m.ForkRefused}, nil
	case typeError:
		return Hello{}, m.Error
	}
	return Hello{}, protocolErrorf("got a %q frame, want hello", m.Type)
}

// Invoke sends the guest its one call.
func (c *Conn) Invoke(in Invoke) error {
	payload, err := encodeInvoke(in)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.state != stateReady {
		c.mu.Unlock()
		return errors.New("guest invoke sent before hello or twice")
	}
	c.state = stateInvoked
	c.id = in.ID
	c.mu.Unlock()
	if err := c.write(payload); err != nil {
		return fmt.Errorf("sending invoke: %w", writeError(err))
	}
	return nil
}

// Next returns the next event of the call. It returns a *Failure when the
// guest reported an error, ErrClosed (possibly wrapped) when the guest
// closed the channel without a result or error, a *ProtocolError for a bad
// frame, and io.EOF once the result or a *Failure has been returned. Any
// error is final: later calls return it again.
func (c *Conn) Next() (Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return Event{}, c.err
	}
	if c.state != stateInvoked {
		return Event{}, errors.New("guest Next called before Invoke")
	}
	ev, err := c.next()
	if err != nil {
		c.err = err
		if _, ok := errors.AsType[*Failure](err); ok {
			c.err = io.EOF
		}
		return Event{}, err
	}
	if ev.Kind == Result {
		c.err = io.EOF
	}
	return ev, nil
}

// next reads one frame. Preconditions: c.mu is held.
func (c *Conn) next() (Event, error) {
	b, err := ReadFrame(c.r, c.maxFrame)
	if err != nil {
		return Event{}, readError(err)
	}
	m, err := decodeMessage(b)
	if err != nil {
		return Event{}, err
	}
	switch m.Type {
	case typeChunk, typeResult:
		if m.ID != c.id {
			return Event{}, protocolErrorf("%s for call %q, want %q", m.Type, m.ID, c.id)
		}
		c.output += int64(len(m.Value))
		if c.output > c.maxOutput {
			return Event{}, &ProtocolError{
				Msg: fmt.Sprintf("call output exceeds %d bytes", c.maxOutput),
				Err: ErrOutputLimit,
			}
		}
		if m.Type == typeResult {
			return Event{Kind: Result, Value: m.Value}, nil
		}
		if *m.Seq != c.seq {
			return Event{}, protocolErrorf("chunk seq %d, want %d", *m.Seq, c.seq)
		}
		c.seq++
		return Event{Kind: Chunk, Seq: *m.Seq, Value: m.Value}, nil
	case typeError:
		// A guest that could not read the invoke does not know its id.
		if m.ID != c.id && m.ID != "" {
			return Event{}, protocolErrorf("error for call %q, want %q", m.ID, c.id)
		}
		return Event{}, m.Error
	}
	return Event{}, protocolErrorf("unexpected %q frame during a call", m.Type)
}

// Again readies the Conn for another Invoke on the same guest, one that
// was invoked with Keep. It fails unless the last call ended cleanly —
// with its result or an error the guest reported — so a guest that broke
// the protocol, exceeded a cap or went away is never invoked again.
func (c *Conn) Again() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateInvoked || c.err != io.EOF {
		return errors.New("guest call did not end cleanly")
	}
	c.state, c.id, c.seq, c.output, c.err = stateReady, "", 0, 0, nil
	return nil
}

// Close closes the channel. It is safe to call more than once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.rw.Close() })
	return c.closeErr
}

func (c *Conn) write(payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return WriteFrame(c.rw, payload)
}

// readError maps the ways a channel ends to ErrClosed.
func readError(err error) error {
	if _, ok := errors.AsType[*ProtocolError](err); ok {
		return err
	}
	switch {
	case errors.Is(err, io.EOF):
		return ErrClosed
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w in the middle of a frame", ErrClosed)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed),
		errors.Is(err, os.ErrClosed), errors.Is(err, io.ErrClosedPipe):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("reading guest frame: %w", err)
}

// writeError marks the ways a write fails on a channel the guest closed
// with ErrClosed.
func writeError(err error) error {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}
