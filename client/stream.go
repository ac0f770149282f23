package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// maxFrame bounds one stream message (a WebSocket message or the data of
// one server-sent event), and so the size of one chunk.
const maxFrame = 32 << 20

// Summary is what the server reports when a stream completes.
type Summary struct {
	// TotalChunks is the number of chunks the server sent.
	TotalChunks int
	// ExecutionTime is how long the agent ran, as measured by the server.
	ExecutionTime time.Duration
}

// Stream is the output of a streaming entrypoint, read chunk by chunk in
// the style of [bufio.Scanner]:
//
//	s, err := c.Stream(ctx, agentID, req)
//	if err != nil { ... }
//	defer s.Close()
//	for s.Next() {
//		use(s.Value())
//	}
//	if err := s.Err(); err != nil { ... }
//
// or with [Stream.All]. Next returns false at the end: Err is then nil
// only if the server reported stream_completed. A failure reported by the
// server (an error frame, a status naming an error or failure) is an
// [*Error]; a connection that ends before stream_completed gives an error
// wrapping [io.ErrUnexpectedEOF]; a frame that cannot be parsed is an
// error too. Cancelling the context given to [Client.Stream] ends the
// stream promptly with an error wrapping the context's error.
//
// A Stream is not safe for concurrent use, except that Close may be called
// from another goroutine to abort a Next that is waiting.
type Stream struct {
	// recv returns the next message, its SSE event name ("" over a
	// WebSocket) and the id the event gave itself ("" when it gave none).
	recv    func() (frame []byte, event, id string, err error)
	release func() // closes the transport; safe to call concurrently
	cancel  context.CancelFunc
	ctxErr  func() error
	apiKey  string

	once     sync.Once
	userDone atomic.Bool // Close was called

	done         bool
	cur          json.RawMessage
	err          error
	invocationID string
	summary      Summary
	completed    bool
	// lastID is the id of the last chunk Next returned (-1 before any).
	lastID int
}

// Next advances to the next chunk and reports whether there is one.
func (s *Stream) Next() bool {
	if s == nil || s.done {
		return false
	}
	s.cur = nil
	for {
		if s.userDone.Load() {
			s.finish(nil)
			return false
		}
		raw, event, id, err := s.recv()
		if err != nil {
			s.finish(s.readError(err))
			return false
		}
		v, fin, err := s.handle(raw, event)
		switch {
		case err != nil:
			s.finish(err)
			return false
		case fin:
			s.finish(nil)
			return false
		case v != nil:
			s.cur = v
			s.advance(id)
			return true
		}
	}
}

// advance moves the last event id past a chunk: to the id its event gave
// when that is a whole number, else one on (the server numbers a stream's
// chunks from 0 and sends no ids over a WebSocket).
func (s *Stream) advance(id string) {
	if n, err := strconv.Atoi(id); err == nil && n >= 0 {
		s.lastID = n
		return
	}
	s.lastID++
}

// readError explains why the transport stopped before stream_completed.
func (s *Stream) readError(err error) error {
	if s.userDone.Load() {
		return nil
	}
	if cerr := s.ctxErr(); cerr != nil {
		return fmt.Errorf("read stream: %w", cerr)
	}
	return err
}

// finish ends the stream with err (nil for a clean end) and releases the
// connection.
func (s *Stream) finish(err error) {
	s.done = true
	s.cur = nil
	s.err = redact(err, s.apiKey)
	s.shutdown()
}

func (s *Stream) shutdown() {
	s.once.Do(func() {
		s.cancel()
		s.release()
	})
}

// Value returns the current chunk as JSON, decoded from its structured
// string. It is nil before the first Next and after the last. The slice
// is not reused by later calls.
func (s *Stream) Value() json.RawMessage {
	if s == nil {
		return nil
	}
	return s.cur
}

// Err returns the error that ended the stream, or nil if it completed or
// was closed with Close.
func (s *Stream) Err() error {
	if s == nil {
		return nil
	}
	return s.err
}

// Close ends the stream and releases its connection. Closing before the
// stream completes cancels the run on the server. Close may be called
// more than once, and concurrently with Next; it returns nil.
func (s *Stream) Close() error {
	if s == nil {
		return nil
	}
	s.userDone.Store(true)
	s.shutdown()
	return nil
}

// InvocationID returns the invocation's id once the server has sent it
// (for Server-Sent Events, as soon as the stream is open).
func (s *Stream) InvocationID() string {
	if s == nil {
		return ""
	}
	return s.invocationID
}

// LastEventID returns the id of the last chunk Next returned: the server
// numbers a stream's chunks from 0, so it is -1 before the first (for a
// stream from [Client.Rejoin], the after it was given until a chunk
// comes). [Client.Rejoin] with it resumes the stream after that chunk,
// losing and repeating none:
//
//	s, err = c.Rejoin(ctx, s.InvocationID(), s.LastEventID())
func (s *Stream) LastEventID() int {
	if s == nil {
		return -1
	}
	return s.lastID
}

// Summary returns what the server reported at stream_completed; ok is
// false until then.
func (s *Stream) Summary() (sum Summary, ok bool) {
	if s == nil {
		return Summary{}, false
	}
	return s.summary, s.completed
}

// All returns an iterator over the chunks. An error ends the sequence as
// one final (nil, err) pair. The stream is closed when the loop ends,
// including by break.
func (s *Stream) All() iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		defer s.Close()
		for s.Next() {
			if !yield(s.Value(), nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// frame is any message of a stream, WebSocket or SSE.
type frame struct {
	Type          string          `json:"type"`
	Status        string          `json:"status"`
	Content       json.RawMessage `json:"content"`
	Error         json.RawMessage `json:"error"` // a string (RunAgent), or the error object (runagent before 15)
	Code          string          `json:"code"`
	Details       json.RawMessage `json:"details"`
	Field         *string         `json:"field"`
	Detail        string          `json:"detail"` // RunAgent's missing-entrypoint frame
	Message       string          `json:"message"`
	InvocationID  string          `json:"invocation_id"`
	TotalChunks   *int            `json:"total_chunks"`
	ExecutionTime *float64        `json:"execution_time"`
}

// handle interprets one frame: it returns a chunk, or fin for
// stream_completed, or an error; all zero means "nothing for the caller".
// event is the SSE event name, used when the frame has no type.
func (s *Stream) handle(raw []byte, event string) (chunk json.RawMessage, fin bool, err error) {
	f, err := parseFrame(raw, event)
	if err != nil {
		return nil, false, err
	}
	if f.InvocationID != "" {
		s.invocationID = f.InvocationID
	}
	if err := frameError(f); err != nil {
		if err.InvocationID == "" {
			err.InvocationID = s.invocationID
		}
		return nil, false, err
	}
	switch {
	case f.Type == "data":
		return decodeValue(f.Content), false, nil
	case f.Type == "status" && f.Status == "stream_completed":
		s.completed = true
		if f.TotalChunks != nil {
			s.summary.TotalChunks = *f.TotalChunks
		}
		if t := f.ExecutionTime; t != nil && *t >= 0 && *t < 1e9 {
			s.summary.ExecutionTime = time.Duration(*t * float64(time.Second))
		}
		return nil, true, nil
	}
	// stream_started, other statuses and unknown frame types (pings,
	// future additions) carry nothing for the caller.
	return nil, false, nil
}

// parseFrame decodes one message. A frame without a type takes the SSE
// event name.
func parseFrame(raw []byte, event string) (*frame, error) {
	var f frame
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("malformed stream frame %s: %w", snippet(raw), err)
	}
	if f.Type == "" && event != "message" {
		f.Type = event
	}
	if f.Type == "data" && len(bytes.TrimSpace(f.Content)) == 0 {
		return nil, fmt.Errorf("malformed stream frame %s: data without content", snippet(raw))
	}
	return &f, nil
}

// frameError returns the failure a frame reports, if it does: any
// non-null error, an error frame, or a status that contains "error" or
// "fail" (as RunAgent's SDKs decide). The error is RunAgent's message
// string with code, details and field beside it, or (older servers) the
// error object itself.
func frameError(f *frame) *Error {
	hasErr := len(bytes.TrimSpace(f.Error)) > 0 && string(bytes.TrimSpace(f.Error)) != "null"
	status := strings.ToLower(f.Status)
	if !hasErr && f.Type != "error" && !strings.Contains(status, "error") && !strings.Contains(status, "fail") {
		return nil
	}
	e := errorFromJSON(f.Error)
	if e.Code == "" {
		e.Code = f.Code
	}
	if e.Field == "" && f.Field != nil {
		e.Field = *f.Field
	}
	if d := bytes.TrimSpace(f.Details); e.Details == nil && len(d) > 0 && string(d) != "null" {
		e.Details = append(json.RawMessage(nil), d...)
	}
	if e.Message == "" {
		e.Message = f.Detail
	}
	if e.Message == "" {
		e.Message = f.Message
	}
	if e.Message == "" && e.Code == "" {
		e.Message = "stream failed"
		if f.Status != "" {
			e.Message += " (status " + strconv.Quote(f.Status) + ")"
		}
	}
	e.InvocationID = f.InvocationID
	return e
}

// Stream runs a streaming entrypoint over a WebSocket and returns its
// chunks as they come. Without a deadline on ctx the stream may last
// [DefaultStreamTimeout]; ctx governs the whole stream, not only its
// start. A failure before the stream starts (unknown agent, refused
// handshake) is returned here as an [*Error] when the server explained it.
func (c *Client) Stream(ctx context.Context, agentID string, req RunRequest) (*Stream, error) {
	op := "stream agent " + strconv.Quote(agentID)
	if err := checkRun(agentID, req); err != nil {
		return nil, c.fail(op, err)
	}
	msg, err := json.Marshal(req.wire("start_stream"))
	if err != nil {
		return nil, c.fail(op, fmt.Errorf("encode request: %w", err))
	}
	u, err := url.Parse(c.endpoint("agents", agentID, "run-stream"))
	if err != nil {
		return nil, c.fail(op, err)
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	if c.tokenInQuery && c.apiKey != "" {
		u.RawQuery = url.Values{"token": {c.apiKey}}.Encode()
	}
	h := http.Header{}
	c.setHeaders(h)

	ctx, cancel := withDefaultTimeout(ctx, runTimeout(DefaultStreamTimeout, req))
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.httpClient, HTTPHeader: h})
	if err != nil {
		cancel()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, c.fail(op, handshakeError(resp))
		}
		return nil, c.fail(op, err)
	}
	conn.SetReadLimit(maxFrame)
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		conn.CloseNow()
		cancel()
		return nil, c.fail(op, fmt.Errorf("send run request: %w", err))
	}
	s := &Stream{
		cancel:  cancel,
		ctxErr:  ctx.Err,
		apiKey:  c.apiKey,
		release: func() { conn.CloseNow() },
		lastID:  -1,
	}
	s.recv = func() ([]byte, string, string, error) {
		_, b, err := conn.Read(ctx)
		if err == nil {
			return b, "", "", nil
		}
		if st := websocket.CloseStatus(err); st != -1 {
			return nil, "", "", fmt.Errorf("server closed the stream (%v) before stream_completed: %w", st, io.ErrUnexpectedEOF)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, "", "", fmt.Errorf("connection ended before stream_completed: %w", io.ErrUnexpectedEOF)
		}
		return nil, "", "", fmt.Errorf("read stream: %w", err)
	}
	return s, nil
}

// handshakeError explains a refused WebSocket handshake from the start
// of its response body (all the WebSocket library keeps).
func handshakeError(resp *http.Response) error {
	var b []byte
	if resp.Body != nil {
		b, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	}
	_, err := decodeEnvelope(resp.StatusCode, resp.Header, b)
	if err == nil { // a 2xx envelope instead of an upgrade
		err = &Error{Status: resp.StatusCode, Message: "server did not upgrade to a WebSocket"}
	}
	return err
}

// StreamSSE runs a streaming entrypoint like [Client.Stream], but as
// Server-Sent Events over a POST, for networks that do not pass
// WebSockets.
func (c *Client) StreamSSE(ctx context.Context, agentID string, req RunRequest) (*Stream, error) {
	op := "stream agent " + strconv.Quote(agentID)
	if err := checkRun(agentID, req); err != nil {
		return nil, c.fail(op, err)
	}
	body, err := json.Marshal(req.wire(""))
	if err != nil {
		return nil, c.fail(op, fmt.Errorf("encode request: %w", err))
	}
	ctx, cancel := withDefaultTimeout(ctx, runTimeout(DefaultStreamTimeout, req))
	return c.openSSE(ctx, cancel, op, http.MethodPost, c.endpoint("agents", agentID, "run-stream"), bytes.NewReader(body), nil, -1)
}

// openSSE sends a request answered with an event stream and returns the
// stream; after is the id of the last chunk the caller already has. The
// stream takes over cancel, which ends ctx.
func (c *Client) openSSE(ctx context.Context, cancel context.CancelFunc, op, method, u string, body io.Reader, h http.Header, after int) (*Stream, error) {
	hreq, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		cancel()
		return nil, c.fail(op, err)
	}
	for k, v := range h {
		hreq.Header[k] = v
	}
	c.setHeaders(hreq.Header)
	hreq.Header.Set("Accept", "text/event-stream")
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient.Do(hreq)
	if err != nil {
		cancel()
		return nil, c.fail(op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		cancel()
		_, err := decodeEnvelope(resp.StatusCode, resp.Header, b)
		return nil, c.fail(op, err)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		cancel()
		if _, err := decodeEnvelope(resp.StatusCode, resp.Header, b); err != nil {
			return nil, c.fail(op, err)
		}
		return nil, c.fail(op, fmt.Errorf("server answered with %s, not an event stream", describeBody(resp.Header, b)))
	}
	r := newSSEReader(resp.Body, maxFrame)
	s := &Stream{
		cancel:       cancel,
		ctxErr:       ctx.Err,
		apiKey:       c.apiKey,
		release:      func() { resp.Body.Close() },
		invocationID: resp.Header.Get("X-Invocation-ID"),
		lastID:       after,
	}
	s.recv = func() ([]byte, string, string, error) {
		ev, err := r.Next()
		switch {
		case err == nil:
			id := ""
			if ev.OwnID {
				id = ev.ID
			}
			return []byte(ev.Data), ev.Type, id, nil
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, "", "", fmt.Errorf("event stream ended before stream_completed: %w", io.ErrUnexpectedEOF)
		}
		return nil, "", "", fmt.Errorf("read stream: %w", err)
	}
	return s, nil
}
