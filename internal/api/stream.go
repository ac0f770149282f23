package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
)

// writeTimeout bounds each write to a streaming client, so a client that
// stops reading cannot hold a run open forever.
const writeTimeout = 30 * time.Second

// firstMessageTimeout bounds the wait for a WebSocket client's request
// after the upgrade: a client that connects and says nothing holds a
// stream slot this long at most.
const firstMessageTimeout = 15 * time.Second

// Stream frames, shared by WebSocket messages and SSE events.
type statusFrame struct {
	Type          string   `json:"type"`
	Status        string   `json:"status"`
	InvocationID  string   `json:"invocation_id"`
	TotalChunks   *int     `json:"total_chunks,omitempty"`
	ExecutionTime *float64 `json:"execution_time,omitempty"`
}

type dataFrame struct {
	Type    string `json:"type"`
	Content string `json:"content"`
}

// errorFrame is RunAgent's error frame: error is the message as a string
// (the Python SDK calls string methods on it), and the structured fields
// of the error object go beside it. A missing entrypoint also has detail,
// as the original sends it.
type errorFrame struct {
	Type         string  `json:"type"`
	Error        string  `json:"error"`
	Code         string  `json:"code"`
	Details      any     `json:"details"`
	Field        *string `json:"field"`
	Detail       string  `json:"detail,omitempty"`
	InvocationID string  `json:"invocation_id,omitempty"`
}

func startedFrame(id string) statusFrame {
	return statusFrame{Type: "status", Status: "stream_started", InvocationID: id}
}

func completedFrame(id string, chunks int, elapsed time.Duration) statusFrame {
	secs := elapsed.Seconds()
	return statusFrame{Type: "status", Status: "stream_completed", InvocationID: id, TotalChunks: &chunks, ExecutionTime: &secs}
}

func errFrame(err error) errorFrame {
	b := errorBodyOf(err)
	f := errorFrame{Type: "error", Error: b.Message, Code: b.Code, Details: b.Details, Field: b.Field, InvocationID: invocationIDOf(err)}
	if b.Code == core.CodeNotFound && b.Field != nil && *b.Field == "entrypoint_tag" {
		f.Detail = b.Message
	}
	return f
}

// runStreamWebSocket serves GET /agents/{agent_id}/run-stream.
func (h *runHandlers) runStreamWebSocket(w http.ResponseWriter, r *http.Request) error {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return core.Errorf(core.CodeValidation, "this endpoint streams over WebSocket: send an Upgrade: websocket request, or POST with Accept: text/event-stream for Server-Sent Events")
	}
	// Who may use the agent was settled before the upgrade (the route is
	// agent-scoped), with the same HTTP answers as the other routes.
	release, err := h.shed.stream(h.addrKey(r))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		return err
	}
	defer release()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Browsers cannot attach an Authorization header to a WebSocket, so
		// cross-origin pages are refused; SDKs send no Origin at all.
		OriginPatterns: nil,
	})
	if err != nil {
		h.log.Debug("websocket accept", "request_id", requestID(r), "err", err)
		return nil // Accept already answered
	}
	h.sockets.Add(1)
	defer h.sockets.Done()
	defer conn.CloseNow()
	conn.SetReadLimit(h.limits.MaxBody)

	ctx := r.Context()
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	// After an error frame the socket closes with 1003, as RunAgent's does.
	fail := func(err error) error {
		noteFailure(r, err)
		if e := send(errFrame(err)); e == nil {
			conn.Close(websocket.StatusUnsupportedData, "")
		}
		return nil
	}

	rctx, cancel := context.WithTimeout(ctx, firstMessageTimeout)
	stop := context.AfterFunc(h.drainCtx, cancel)
	typ, msg, err := conn.Read(rctx)
	stop()
	cancel()
	if h.draining.Load() {
		return fail(executor.ErrClosed)
	}
	if err != nil {
		if websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
			return nil
		}
		return fail(core.Errorf(core.CodeValidation, "expected one JSON text message with the run request: %v", errors.Unwrap(err)))
	}
	if typ != websocket.MessageText {
		return fail(core.Errorf(core.CodeValidation, "the run request must be a text message holding JSON"))
	}
	body, err := h.limits.decodeRunRequest(msg)
	if err != nil {
		return fail(err)
	}
	// From here on the client only listens; a close or any message from it
	// cancels the run.
	ctx = conn.CloseRead(ctx)
	c, err := h.prepare(ctx, r, body, "websocket", true)
	if err != nil {
		return fail(err)
	}
	if err := send(startedFrame(c.inv.ID)); err != nil {
		h.abandon(c, err)
		return nil
	}
	started := time.Now()
	chunks := 0
	_, err = h.execute(c, func(_ int, s string) error {
		chunks++
		return send(dataFrame{Type: "data", Content: s})
	})
	if err != nil {
		return fail(err)
	}
	if err := send(completedFrame(c.inv.ID, chunks, time.Since(started))); err == nil {
		conn.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}

// runStreamSSE serves POST /agents/{agent_id}/run-stream as Server-Sent
// Events.
func (h *runHandlers) runStreamSSE(w http.ResponseWriter, r *http.Request) error {
	if !acceptsEventStream(r.Header.Get("Accept")) {
		return core.Errorf(core.CodeNotAcceptable, "POST to run-stream answers with Server-Sent Events: send Accept: text/event-stream (or open a WebSocket with GET)")
	}
	release, err := h.shed.stream(h.addrKey(r))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		return err
	}
	defer release()
	body, err := h.readRunRequest(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	c, err := h.prepare(ctx, r, body, "sse", true)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Set("X-Invocation-ID", c.inv.ID)
	w.WriteHeader(http.StatusOK)

	send := sseSender(w, rc)
	if err := send("status", "", startedFrame(c.inv.ID)); err != nil {
		h.abandon(c, err)
		return nil
	}
	started := time.Now()
	chunks := 0
	_, err = h.execute(c, func(seq int, s string) error {
		chunks++
		return send("data", strconv.Itoa(seq), dataFrame{Type: "data", Content: s})
	})
	if err != nil {
		noteFailure(r, err)
		if ctx.Err() == nil {
			_ = send("error", "", errFrame(err))
		}
		return nil
	}
	_ = send("status", "", completedFrame(c.inv.ID, chunks, time.Since(started)))
	return nil
}

// sseSender returns a function that writes one Server-Sent Event (with
// an id when id is not "") holding v as JSON, and flushes it.
func sseSender(w http.ResponseWriter, rc *http.ResponseController) func(event, id string, v any) error {
	buf := make([]byte, 0, 512)
	return func(event, id string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		buf = buf[:0]
		buf = append(buf, "event: "...)
		buf = append(buf, event...)
		buf = append(buf, '\n')
		if id != "" {
			buf = append(buf, "id: "...)
			buf = append(buf, id...)
			buf = append(buf, '\n')
		}
		buf = append(buf, "data: "...)
		buf = append(buf, b...) // JSON from Marshal has no raw newlines
		buf = append(buf, '\n', '\n')
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(buf); err != nil {
			return err
		}
		return rc.Flush()
	}
}

// noteFailure gives the audit the outcome of a stream that failed after
// its connection was answered (101 or 200). A client that went away
// keeps the default.
func noteFailure(r *http.Request, err error) {
	if code := errorBodyOf(err).Code; code != core.CodeCancelled {
		noteStatus(r, statusOf(code))
	}
}

func acceptsEventStream(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
			return true
		}
	}
	return false
}
