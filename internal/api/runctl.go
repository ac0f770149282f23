package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/runagent/runagent/internal/core"
)

// Runs after their request: waiting for one, cancelling one, rejoining a
// stream (live.go keeps what they need).

// maxWait bounds GET /invocations/{id}?wait=.
const maxWait = 60 * time.Second

// cancelWait is how long a cancel waits for the run to end before it
// answers with the record as it stands.
const cancelWait = 5 * time.Second

// visibleInvocation returns invocation id if the caller may see it, and
// NOT_FOUND, exactly as for one that does not exist, otherwise.
func visibleInvocation(r *http.Request, store core.InvocationStore, id string) (*core.Invocation, error) {
	if !validID(id) {
		return nil, core.Errorf(core.CodeNotFound, "invocation %s not found", quoteID(id))
	}
	inv, err := store.Invocation(r.Context(), id)
	if err != nil {
		if core.ErrorCode(err) == core.CodeNotFound {
			return nil, core.Errorf(core.CodeNotFound, "invocation %q not found", id)
		}
		return nil, err
	}
	if !identity(r).CanAgent(inv.ProjectID, inv.AgentID) {
		return nil, core.Errorf(core.CodeNotFound, "invocation %q not found", id)
	}
	return inv, nil
}

// parseWait reads ?wait=: a Go duration ("30s") or a number of seconds.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || secs != secs {
			return 0, fieldError("wait", "wait must be a duration such as 30s, or a number of seconds")
		}
		if secs < 0 || secs > maxWait.Seconds() {
			return 0, fieldError("wait", "wait must be between 0 and "+maxWait.String())
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 || d > maxWait {
		return 0, fieldError("wait", "wait must be between 0 and "+maxWait.String())
	}
	return d, nil
}

// getInvocation serves GET /invocations/{invocation_id}; with ?wait= it
// answers when the run ends or the wait is over, whichever is first. A
// run on another node is waited for through the cluster (cluster.go).
func (h *invocationHandlers) getInvocation(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("invocation_id")
	wait, err := parseWait(r.URL.Query().Get("wait"))
	if err != nil {
		return err
	}
	inv, err := visibleInvocation(r, h.store, id)
	if err != nil {
		return err
	}
	if wait > 0 && inv.Status == core.StatusRunning {
		if lr := h.live.get(id); lr != nil {
			awaitEnd(r, lr, wait)
			if inv, err = visibleInvocation(r, h.store, id); err != nil {
				return err
			}
		} else if h.cluster != nil {
			ended, stop := h.cluster.WatchEnded(id)
			inv, err = h.awaitRemoteEnd(r, id, ended, wait)
			stop()
			if err != nil {
				return err
			}
		}
	}
	named, err := h.named(r.Context(), inv)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, named)
	return nil
}

// awaitEnd waits until lr has ended, d has passed or r's client has gone.
func awaitEnd(r *http.Request, lr *liveRun, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-lr.done:
	case <-t.C:
	case <-r.Context().Done():
	}
}

// cancelInvocation serves POST /invocations/{invocation_id}/cancel: it
// stops a queued or running run (its sandbox is killed), waits up to
// cancelWait for its record to say so and answers with the record. A run
// on another node is cancelled by that node (cluster.go).
func (h *invocationHandlers) cancelInvocation(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("invocation_id")
	inv, err := visibleInvocation(r, h.store, id)
	if err != nil {
		return err
	}
	if inv.Status != core.StatusRunning {
		return core.Errorf(core.CodeConflict, "invocation %s has already ended (status %s); there is nothing to cancel", id, inv.Status)
	}
	lr := h.live.get(id)
	if lr == nil && h.cluster != nil {
		return h.cancelRemote(w, r, id)
	}
	if lr == nil {
		return core.Errorf(core.CodeConflict, "invocation %s is not running on this server", id)
	}
	if lr.stop(identity(r).Caller()) {
		awaitEnd(r, lr, cancelWait)
	}
	if inv, err = visibleInvocation(r, h.store, id); err != nil {
		return err
	}
	named, err := h.named(r.Context(), inv)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, named)
	return nil
}

// rejoinStream serves GET /invocations/{invocation_id}/stream: a stream's
// events from after Last-Event-ID (or ?after=; from the start without
// either), then the live ones, then its end, over Server-Sent Events or,
// with an Upgrade, a WebSocket. The frames are those of run-stream. A
// stream kept by another node is relayed from it (cluster.go).
func (h *runHandlers) rejoinStream(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("invocation_id")
	inv, err := visibleInvocation(r, h.store, id)
	if err != nil {
		return err
	}
	ws := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	if !ws && !acceptsEventStream(r.Header.Get("Accept")) {
		return core.Errorf(core.CodeNotAcceptable, "this endpoint streams: send Accept: text/event-stream for Server-Sent Events, or open a WebSocket")
	}
	after, err := rejoinPoint(r)
	if err != nil {
		return err
	}
	if !inv.Streaming {
		return core.Errorf(core.CodeValidation, "invocation %s is not a stream; read its result with GET /api/v1/invocations/%s", id, id)
	}
	if h.live.cfg.Keep < 0 {
		return core.Errorf(core.CodeGone, "this server keeps no stream events to rejoin (it runs with --stream-keep < 0); the output of invocation %s is in GET /api/v1/invocations/%s once it ends", id, id)
	}
	lr := h.live.get(id)
	if lr == nil && h.cluster != nil {
		return h.rejoinRemote(w, r, inv, after, ws)
	}
	if lr == nil {
		if inv.Status == core.StatusRunning {
			return core.Errorf(core.CodeConflict, "invocation %s is not running on this server", id)
		}
		return core.Errorf(core.CodeGone, "the events of invocation %s are no longer kept (streams are kept %s after they end); its output is in GET /api/v1/invocations/%s", id, h.live.cfg.Keep, id)
	}
	if _, _, _, gone := lr.since(after); gone {
		return core.Errorf(core.CodeGone, "the events of invocation %s after %d are no longer kept (each stream keeps its last %d bytes); its output is in GET /api/v1/invocations/%s", id, after, h.live.cfg.MaxBytes, id)
	}
	release, err := h.shed.stream(h.addrKey(r))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		return err
	}
	defer release()
	f := func(ctx context.Context, data func(liveEvent) error, end func(any) error) error {
		return follow(ctx, lr, after, data, end)
	}
	if ws {
		return h.rejoinWebSocket(w, r, id, f)
	}
	return h.rejoinSSE(w, r, id, f)
}

// follower sends a stream's events to data, then its terminal frame to
// end (follow for a stream kept here, followRelay for one relayed).
type follower func(ctx context.Context, data func(liveEvent) error, end func(any) error) error

// rejoinPoint is the last event the client has: Last-Event-ID, else
// ?after=, else -1 (none).
func rejoinPoint(r *http.Request) (int, error) {
	s, field := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if s == "" {
		s, field = r.URL.Query().Get("after"), "after"
	}
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 {
		return 0, fieldError(field, field+" must be the id of an event of the stream (a whole number), or -1 for all of them")
	}
	return n, nil
}

// follow sends lr's events after after, then waits for more, until the
// run's end frame has been sent or sending fails.
func follow(ctx context.Context, lr *liveRun, after int, data func(liveEvent) error, end func(any) error) error {
	for {
		evs, fin, more, gone := lr.since(after)
		if gone {
			return end(errFrame(core.Errorf(core.CodeGone, "this client fell behind the events kept of the stream")))
		}
		for _, ev := range evs {
			if err := data(ev); err != nil {
				return err
			}
			after = ev.seq
		}
		if fin != nil {
			return end(fin)
		}
		select {
		case <-more:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (h *runHandlers) rejoinSSE(w http.ResponseWriter, r *http.Request, id string, follow follower) error {
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Set("X-Invocation-ID", id)
	w.WriteHeader(http.StatusOK)
	send := sseSender(w, rc)
	if err := send("status", "", startedFrame(id)); err != nil {
		return nil
	}
	_ = follow(r.Context(),
		func(ev liveEvent) error {
			return send("data", strconv.Itoa(ev.seq), dataFrame{Type: "data", Content: ev.content})
		},
		func(fin any) error {
			if isErrorEnd(fin) {
				return send("error", "", fin)
			}
			return send("status", "", fin)
		})
	return nil
}

func (h *runHandlers) rejoinWebSocket(w http.ResponseWriter, r *http.Request, id string, follow follower) error {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: nil})
	if err != nil {
		return nil // Accept already answered
	}
	h.sockets.Add(1)
	defer h.sockets.Done()
	defer conn.CloseNow()
	ctx := conn.CloseRead(r.Context())
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	if err := send(startedFrame(id)); err != nil {
		return nil
	}
	err = follow(ctx,
		func(ev liveEvent) error { return send(dataFrame{Type: "data", Content: ev.content}) },
		send)
	if err == nil {
		conn.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}
