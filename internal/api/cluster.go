package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/runagent/runagent/internal/cluster"
	"github.com/runagent/runagent/internal/core"
)

// Runs held by other nodes (Deps.Cluster): a cancel, a rejoin or a wait
// for a run this node does not hold asks the cluster bus. The request is
// authorized here, as for a local run; the node holding the run acts on
// the bus's signed messages alone.

// Store polls of a wait for a run on another node, besides the bus's end
// announcements: rare while the bus hears Redis (an announcement can be
// lost in a reconnect), often while it does not.
const (
	remotePollBusUp   = 5 * time.Second
	remotePollBusDown = time.Second
)

// clusterRuns answers other nodes' asks from this node's live runs.
type clusterRuns struct{ live *liveRuns }

// CancelRun implements cluster.Local: as a cancel on this node.
func (c clusterRuns) CancelRun(id, who string) bool {
	lr := c.live.get(id)
	if lr == nil {
		return false
	}
	lr.stop(who)
	return true
}

// Stream implements cluster.Local: the events follow sends are those a
// rejoin on this node would.
func (c clusterRuns) Stream(id string, after int) (func(context.Context, func(cluster.Event) error) (cluster.End, error), error) {
	if c.live.cfg.Keep < 0 {
		return nil, cluster.ErrNotHeld
	}
	lr := c.live.get(id)
	if lr == nil || !lr.stream {
		return nil, cluster.ErrNotHeld
	}
	if _, _, _, gone := lr.since(after); gone {
		return nil, cluster.ErrGone
	}
	return func(ctx context.Context, ev func(cluster.Event) error) (cluster.End, error) {
		var end cluster.End
		err := follow(ctx, lr, after,
			func(e liveEvent) error { return ev(cluster.Event{Seq: e.seq, Content: e.content}) },
			func(fin any) (err error) {
				end, err = cluster.EndFrame(fin, isErrorEnd(fin))
				return err
			})
		return end, err
	}, nil
}

// relayedError is an error frame relayed from another node, as it was
// sent there.
type relayedError json.RawMessage

func (e relayedError) MarshalJSON() ([]byte, error) { return json.RawMessage(e).MarshalJSON() }

// isErrorEnd reports whether a stream's terminal frame is an error frame
// (sent as an "error" event over SSE).
func isErrorEnd(fin any) bool {
	switch fin.(type) {
	case errorFrame, relayedError:
		return true
	}
	return false
}

// goneNode is the answer for a run recorded as running that no node
// holds: its node has died or been cut off.
func goneNode(id string) error {
	return core.Errorf(core.CodeConflict, "invocation %s is recorded as running, but no node holds it: the node running it is gone; it will be marked failed when that node is declared dead", id)
}

// busError is the answer when the cluster bus cannot be asked.
func busError(err error) error {
	if errors.Is(err, cluster.ErrBusy) {
		return &core.Error{Code: core.CodeUnavailable, Message: "the node holding the invocation is busy; retry shortly", Err: err}
	}
	return &core.Error{Code: core.CodeUnavailable, Message: "cannot reach the other nodes (Redis); retry shortly", Err: err}
}

// cancelRemote cancels a run this node does not hold: the node holding it
// stops it as a local cancel would; this one waits up to cancelWait for
// the record to say so and answers with the record.
func (h *invocationHandlers) cancelRemote(w http.ResponseWriter, r *http.Request, id string) error {
	ended, stop := h.cluster.WatchEnded(id) // before the ask: its end is not missed
	defer stop()
	if err := h.cluster.Cancel(r.Context(), id, identity(r).Caller()); err != nil {
		if !errors.Is(err, cluster.ErrNotHeld) {
			return busError(err)
		}
		inv, rerr := visibleInvocation(r, h.store, id)
		if rerr != nil {
			return rerr
		}
		if inv.Status != core.StatusRunning { // it ended meanwhile
			return core.Errorf(core.CodeConflict, "invocation %s has already ended (status %s); there is nothing to cancel", id, inv.Status)
		}
		return goneNode(id)
	}
	inv, err := h.awaitRemoteEnd(r, id, ended, cancelWait)
	if err != nil {
		return err
	}
	named, err := h.named(r.Context(), inv)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, named)
	return nil
}

// awaitRemoteEnd waits until invocation id, run by another node, is
// recorded as ended, d has passed or r's client has gone, and returns the
// record as it then is. The store is the truth; an end announcement
// (ended) only says when to read it.
func (h *invocationHandlers) awaitRemoteEnd(r *http.Request, id string, ended <-chan struct{}, d time.Duration) (*core.Invocation, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	// The bus may go away during the wait: every remotePollBusDown the
	// waiter looks whether it has, and then reads the store at that pace.
	tick := time.NewTicker(remotePollBusDown)
	defer tick.Stop()
	for {
		inv, err := visibleInvocation(r, h.store, id)
		if err != nil || inv.Status != core.StatusRunning {
			return inv, err
		}
		read := time.Now()
	wait:
		for {
			select {
			case <-ended:
				ended = nil // read the record once more, then poll
				break wait
			case <-tick.C:
				if !h.cluster.Connected() || time.Since(read) >= remotePollBusUp {
					break wait
				}
			case <-deadline.C:
				return visibleInvocation(r, h.store, id)
			case <-r.Context().Done():
				return inv, nil
			}
		}
	}
}

// rejoinRemote rejoins a stream this node does not keep: the node keeping
// it relays its events over the bus, and this one sends them to the
// client as a local rejoin would.
func (h *runHandlers) rejoinRemote(w http.ResponseWriter, r *http.Request, inv *core.Invocation, after int, ws bool) error {
	id := inv.ID
	release, err := h.shed.stream(h.addrKey(r))
	if err != nil {
		w.Header().Set("Retry-After", "1")
		return err
	}
	defer release()
	relay, err := h.cluster.Rejoin(r.Context(), id, after)
	switch {
	case errors.Is(err, cluster.ErrNotHeld):
		if inv.Status == core.StatusRunning {
			return core.Errorf(core.CodeGone, "no node keeps the events of invocation %s: the node running it is gone; it will be marked failed when that node is declared dead", id)
		}
		return core.Errorf(core.CodeGone, "the events of invocation %s are no longer kept on any node (streams are kept %s after they end); its output is in GET /api/v1/invocations/%s", id, h.live.cfg.Keep, id)
	case errors.Is(err, cluster.ErrGone):
		return core.Errorf(core.CodeGone, "the events of invocation %s after %d are no longer kept (each stream keeps its last %d bytes); its output is in GET /api/v1/invocations/%s", id, after, h.live.cfg.MaxBytes, id)
	case err != nil:
		return busError(err)
	}
	defer relay.Close()
	f := func(ctx context.Context, data func(liveEvent) error, end func(any) error) error {
		return followRelay(ctx, relay, data, end)
	}
	if ws {
		return h.rejoinWebSocket(w, r, id, f)
	}
	return h.rejoinSSE(w, r, id, f)
}

// followRelay is follow for a relayed stream: events, then the end frame
// as the relaying node sent it; a relay that breaks ends with an error
// frame that says to rejoin from the last event.
func followRelay(ctx context.Context, relay *cluster.Relay, data func(liveEvent) error, end func(any) error) error {
	for {
		ev, fin, err := relay.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return end(errFrame(core.Errorf(core.CodeUnavailable, "the stream relayed from another node broke off (%v); rejoin with Last-Event-ID set to the last event received", err)))
		}
		if fin != nil {
			if fin.Error {
				return end(relayedError(fin.Frame))
			}
			return end(json.RawMessage(fin.Frame))
		}
		if err := data(liveEvent{seq: ev.Seq, content: ev.Content}); err != nil {
			return err
		}
	}
}
