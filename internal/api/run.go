package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/registry"
	"github.com/runagent/runagent/internal/value"
	"github.com/runagent/runagent/internal/webhook"
)

// call is a validated run about to start.
type call struct {
	inv     *core.Invocation
	req     executor.Request
	release func() // frees the run's concurrency slots
	keep    bool   // record the payload (inputs, output, logs)
	// ctx is the run's own context: the request's, or for a run that
	// outlives its request (async_execution, on_disconnect "continue")
	// one that only a cancel, the deadline or shutdown ends.
	ctx      context.Context
	detached bool
	live     *liveRun
	// lease holds the user's persistent memory, mounted in the run; it
	// is released once the run's sandbox has ended.
	lease *memory.Lease
	// leaseKept is closed when the lease is released: it ends the watch
	// that stops the run if the lease is lost (watchLease).
	leaseKept chan struct{}
	// hooks are told when the run ends (the agent's webhook, the run's).
	hooks []webhook.Target
}

// releaseMemory gives back c's persistent memory, if it holds any.
func (c *call) releaseMemory() {
	if c.lease != nil {
		if c.leaseKept != nil {
			close(c.leaseKept)
			c.leaseKept = nil
		}
		c.lease.Release()
		c.lease = nil
	}
}

// watchLease stops c's run (cancel) if its node loses the lease of the
// user's memory to another node (memory.Lease.Lost: its lock's database
// connection ended), so that it stops writing to a store another node may
// mount next; the other node waits long enough for that (memory.Options
// .Fence).
func (c *call) watchLease(cancel context.CancelFunc) {
	lost := c.lease.Lost()
	if lost == nil {
		return
	}
	c.leaseKept = make(chan struct{})
	kept := c.leaseKept
	go func() {
		select {
		case <-lost:
			cancel()
		case <-kept:
		}
	}()
}

// prepare validates a run against the agent's current deployment and
// records the invocation as running. Nothing starts if it fails.
func (h *runHandlers) prepare(ctx context.Context, r *http.Request, body *runRequest, transport string, stream bool) (*call, error) {
	if h.draining.Load() {
		return nil, executor.ErrClosed
	}
	d := agentOf(r)
	if err := h.agentRate(r, d); err != nil {
		return nil, err
	}
	ep, ok := d.Config.Entrypoint(body.EntrypointTag)
	if !ok {
		return nil, &core.Error{Code: core.CodeNotFound, Field: "entrypoint_tag",
			Message: fmt.Sprintf("entrypoint %s not found in agent %s; it has: %s", quoteID(body.EntrypointTag), d.AgentID, tagList(d.Config))}
	}
	switch {
	case ep.Streaming() && !stream:
		return nil, &core.Error{Code: core.CodeValidation, Field: "entrypoint_tag",
			Message: fmt.Sprintf("entrypoint %q streams (its tag ends in _stream); call /run-stream instead of /run", ep.Tag)}
	case !ep.Streaming() && stream:
		return nil, &core.Error{Code: core.CodeValidation, Field: "entrypoint_tag",
			Message: fmt.Sprintf("entrypoint %q does not stream (streaming tags end in _stream); call /run instead of /run-stream", ep.Tag)}
	}
	if err := checkInput(ep, body); err != nil {
		return nil, err
	}
	inv := &core.Invocation{
		ID:            uuid.NewString(),
		AgentID:       d.AgentID,
		ProjectID:     d.ProjectID,
		AgentVersion:  d.Hash,
		EntrypointTag: ep.Tag,
		Streaming:     stream,
		Transport:     transport,
		Status:        core.StatusRunning,
		Caller:        callerOf(r),
		NodeID:        h.nodeID,
		InputArgs:     body.InputArgs,
		InputKwargs:   body.InputKwargs,
		CreatedAt:     h.now().UTC(),
	}
	if body.UserID != nil {
		inv.UserID = *body.UserID
	}
	if body.PersistentMemory != nil && *body.PersistentMemory {
		// Memory opens the user's state: the credential must be entitled
		// to that user (userauth.go).
		if err := h.authorizeUser(r, inv.UserID); err != nil {
			return nil, err
		}
	}
	if !d.Config.KeepsPayloads() {
		// The agent's config says store_payloads: false.
		inv.InputArgs, inv.InputKwargs = nil, nil
	}
	req := executor.Request{
		InvocationID: inv.ID, AgentDir: d.Dir, EnvDir: d.EnvDir, Config: d.Config, Entrypoint: ep,
		Args: body.InputArgs, Kwargs: body.InputKwargs, UserID: inv.UserID, Caller: inv.Caller,
	}
	if body.TimeoutSeconds != nil {
		req.Timeout = time.Duration(*body.TimeoutSeconds * float64(time.Second))
	}
	secrets, err := h.secretValues(ctx, d.AgentID)
	if err != nil {
		return nil, fmt.Errorf("read the agent's secrets: %w", err)
	}
	// The webhooks' signing secret is the server's, never the agent's.
	hooks, secrets, err := h.webhooks.Prepare(d.AgentID, d.Config, body.webhook, secrets)
	if err != nil {
		return nil, err
	}
	req.Secrets = secrets
	var lease *memory.Lease
	if body.wantsMemory() {
		if lease, err = h.openMemory(ctx, d, inv, &req); err != nil {
			return nil, err
		}
	}
	release, err := h.runSlots(r, d.AgentID)
	if err != nil {
		if lease != nil {
			lease.Release()
		}
		return nil, err
	}
	if err := h.store.CreateInvocation(ctx, inv); err != nil {
		release()
		if lease != nil {
			lease.Release()
		}
		return nil, fmt.Errorf("record invocation: %w", err)
	}
	noteAudit(r, "invocation_id", inv.ID)
	noteInvocation(r, inv.ID)
	c := &call{inv: inv, req: req, release: release, keep: d.Config.KeepsPayloads(), detached: body.detached(stream), lease: lease, hooks: hooks}
	var cancel context.CancelFunc
	if c.detached {
		c.ctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
	} else {
		c.ctx, cancel = context.WithCancel(ctx)
	}
	c.live = h.live.add(inv.ID, inv.ProjectID, inv.AgentID, stream, cancel)
	if lease != nil {
		c.watchLease(cancel)
	}
	return c, nil
}

func tagList(cfg *core.AgentConfig) string {
	tags := make([]string, 0, len(cfg.Entrypoints))
	for _, e := range cfg.Entrypoints {
		tags = append(tags, e.Tag)
	}
	sort.Strings(tags)
	return strings.Join(tags, ", ")
}

// execute runs a prepared call in its own context (c.ctx). For a stream,
// onChunk is called with each chunk's structured string as the agent
// yields it; an error from onChunk (the client is gone) stops the run,
// unless the run is detached from its client. It returns the structured
// result of a plain call. The invocation record is finished whatever
// happens, and then the live run.
func (h *runHandlers) execute(c *call, onChunk func(seq int, structured string) error) (result string, err error) {
	out := newOutputRecorder(h.maxRecord, c.inv.Streaming)
	out.discard = !c.keep
	run, err := h.exec.Start(c.ctx, c.req)
	if err == nil {
		result, err = h.pump(run, c, out, func(seq int, s string) error {
			h.live.append(c.live, seq, s)
			if onChunk == nil {
				return nil
			}
			if err := onChunk(seq, s); err != nil {
				if c.detached {
					onChunk = nil // the client left; the run goes on
					return nil
				}
				return err
			}
			return nil
		})
	}
	if err != nil {
		if who := c.live.cancelledBy(); who != "" {
			err = &core.Error{Code: core.CodeCancelled, Err: err,
				Message: fmt.Sprintf("cancelled by %s (POST /api/v1/invocations/%s/cancel)", who, c.inv.ID)}
		}
	}
	// The outcome is recorded before the caller is answered; the sandbox's
	// teardown (kill, reap, unmount, cgroup removal: ~6 ms) and its logs,
	// which exist only once it has ended, come after the answer.
	// A plain run answered after its audit record's durable append may
	// have its record committed lazily; a detached one is answered
	// (202) before it finishes, so no durable commit follows its end.
	lazy := !c.detached && core.DurableCommitFollows(c.ctx)
	if ferr := h.finish(c.inv, out, "", err, lazy); ferr != nil && err == nil {
		// Fail closed: an answer is never given without its record. The
		// agent's result is not handed out; the record is written when
		// the store is back (finish keeps trying).
		err = &core.Error{Code: core.CodeUnavailable, Err: ferr,
			Message: "the run ended but its record could not be written (the store is unreachable), so its result is withheld; retry the run later"}
	}
	h.webhooks.Finished(c.inv, c.hooks)
	c.release()
	if run != nil {
		h.teardown.Add(1)
		go func() {
			defer h.teardown.Done()
			h.closeRun(c.inv.ID, run, c.keep)
			c.releaseMemory() // the sandbox has ended: the user's next run may have it
		}()
	} else {
		c.releaseMemory()
	}
	if err != nil {
		err = &invocationError{id: c.inv.ID, err: err}
		h.endLive(c, errFrame(err))
		return "", err
	}
	h.endLive(c, completedFrame(c.inv.ID, c.inv.Chunks, time.Duration(c.inv.DurationMS)*time.Millisecond))
	return result, nil
}

// endLive ends c's live run with its terminal frame and frees its context.
func (h *runHandlers) endLive(c *call, end any) {
	h.live.finish(c.live, end)
	c.live.cancel()
	if h.cluster != nil {
		h.cluster.Ended(c.inv.ID) // waiters on other nodes read the record
	}
}

// closeRun ends a run's sandbox and adds its logs, and the limits it hit,
// to the invocation record.
func (h *runHandlers) closeRun(id string, run *executor.Run, keep bool) {
	exit := run.Close()
	logs := exit.Logs
	if !keep {
		logs = ""
	}
	if len(exit.Violations) > 0 {
		h.emit(nil, core.SecurityEvent{Type: core.EventSandboxViolation, InvocationID: id, AgentID: run.AgentID(),
			Message: "the sandbox hit its limits: " + strings.Join(exit.Violations, ", ")})
		logs += "\n[runagent] the sandbox hit these limits: " + strings.Join(exit.Violations, ", ") + "\n"
	}
	if logs == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.store.SetInvocationLogs(ctx, id, logs); err != nil {
		h.log.Error("record invocation logs", "invocation_id", id, "err", err)
	}
}

func (h *runHandlers) pump(run *executor.Run, c *call, out *outputRecorder, onChunk func(int, string) error) (string, error) {
	for {
		ev, err := run.Next()
		if err != nil {
			return "", err
		}
		s, err := value.Encode(ev.Value)
		if err != nil {
			return "", &core.Error{Code: core.CodeAgentError, Message: "the agent produced a value that is not valid JSON: " + err.Error(), Err: err}
		}
		if ev.Kind == guest.Result {
			if !c.inv.Streaming {
				out.add(ev.Value)
			}
			return s, nil
		}
		out.add(ev.Value)
		if err := onChunk(ev.Seq, s); err != nil {
			return "", &core.Error{Code: core.CodeCancelled, Message: "the client went away; the run was stopped", Err: err}
		}
	}
}

// finishRetry bounds how long a record that could not be written is
// retried in the background (the store was unreachable).
const finishRetry = 10 * time.Minute

// finish records the end of an invocation. It uses its own context so a
// caller that went away still leaves a complete record. If the store
// cannot take it, finish returns the error and keeps trying in the
// background, so that the record is complete once the store is back.
// Lazy says that a durable commit follows before the run is answered
// (core.WithDurableCommitFollows); the background retries are never lazy.
func (h *runHandlers) finish(inv *core.Invocation, out *outputRecorder, logs string, runErr error, lazy bool) error {
	done := h.now().UTC()
	inv.CompletedAt = &done
	inv.DurationMS = done.Sub(inv.CreatedAt).Milliseconds()
	inv.Output = out.bytes()
	inv.Chunks = out.chunks
	inv.Logs = logs
	inv.Status = core.StatusCompleted
	if runErr != nil {
		inv.ErrorCode = core.ErrorCode(runErr)
		inv.ErrorMessage = core.ErrorMessage(runErr)
		switch inv.ErrorCode {
		case core.CodeAgentTimeout:
			inv.Status = core.StatusTimeout
			h.emit(nil, core.SecurityEvent{Type: core.EventSandboxViolation, InvocationID: inv.ID, AgentID: inv.AgentID,
				Principal: inv.Caller, Message: "the agent ran past its deadline and was stopped"})
		case core.CodeCancelled:
			inv.Status = core.StatusCancelled
		default:
			inv.Status = core.StatusFailed
		}
	}
	h.metrics.Invocation(inv.AgentID, string(inv.Status))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if lazy {
		ctx = core.WithDurableCommitFollows(ctx)
	}
	err := h.store.FinishInvocation(ctx, inv)
	if err == nil {
		return nil
	}
	h.log.Error("record invocation result; retrying in the background", "invocation_id", inv.ID, "err", err)
	rec := *inv
	h.teardown.Add(1)
	go func() {
		defer h.teardown.Done()
		wait := 100 * time.Millisecond
		for deadline := h.now().Add(finishRetry); h.now().Before(deadline); {
			select {
			case <-h.drainCtx.Done(): // shutting down: the next start fails it
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := h.store.FinishInvocation(ctx, &rec)
			cancel()
			if err == nil {
				h.log.Info("recorded invocation result after a retry", "invocation_id", rec.ID)
				return
			}
		}
		h.log.Error("gave up recording invocation result", "invocation_id", rec.ID)
	}()
	return err
}

// outputRecorder keeps what is stored as an invocation's output: the
// result, or the JSON array of a stream's chunks, up to a size cap.
type outputRecorder struct {
	max       int
	stream    bool
	buf       bytes.Buffer
	chunks    int
	size      int
	truncated bool
	discard   bool // count chunks, keep nothing (store_payloads: false)
}

func newOutputRecorder(max int, stream bool) *outputRecorder {
	return &outputRecorder{max: max, stream: stream}
}

func (o *outputRecorder) add(v json.RawMessage) {
	if o.stream {
		o.chunks++
	}
	if o.discard {
		return
	}
	o.size += len(v)
	if o.truncated || o.buf.Len()+len(v)+2 > o.max {
		o.truncated = true
		return
	}
	if o.stream && o.buf.Len() > 0 {
		o.buf.WriteByte(',')
	}
	o.buf.Write(v)
}

func (o *outputRecorder) bytes() json.RawMessage {
	if o.discard {
		return nil
	}
	if o.truncated {
		b, _ := json.Marshal(map[string]any{"runagent_truncated": true, "bytes": o.size, "limit": o.max})
		return b
	}
	if o.stream {
		return json.RawMessage("[" + o.buf.String() + "]")
	}
	if o.buf.Len() == 0 {
		return nil
	}
	return json.RawMessage(o.buf.String())
}

// readRunRequest reads, caps and validates the JSON body of a run.
func (h *runHandlers) readRunRequest(w http.ResponseWriter, r *http.Request) (*runRequest, error) {
	if err := requireJSON(r); err != nil {
		return nil, err
	}
	raw, err := h.readBody(w, r, h.limits.MaxBody)
	if err != nil {
		return nil, err
	}
	return h.limits.decodeRunRequest(raw)
}

// abandon records a prepared call whose client left before it started.
func (h *runHandlers) abandon(c *call, err error) {
	err = &core.Error{Code: core.CodeCancelled, Message: "the client went away before the run started", Err: err}
	h.finish(c.inv, newOutputRecorder(h.maxRecord, c.inv.Streaming), "", err, false) // the caller has left; a failed write is retried
	h.webhooks.Finished(c.inv, c.hooks)
	c.release()
	c.releaseMemory()
	h.endLive(c, errFrame(&invocationError{id: c.inv.ID, err: err}))
}

// run serves POST /agents/{agent_id}/run.
func (h *runHandlers) run(w http.ResponseWriter, r *http.Request) error {
	body, err := h.readRunRequest(w, r)
	if err != nil {
		return err
	}
	c, err := h.prepare(r.Context(), r, body, "rest", false)
	if err != nil {
		return err
	}
	if c.detached {
		return h.runInBackground(w, r, c)
	}
	result, err := h.execute(c, nil)
	if err != nil {
		if errors.Is(r.Context().Err(), context.Canceled) {
			return nil // nobody is listening
		}
		return err
	}
	h.writeJSON(w, http.StatusOK, envelope{
		Success: true, Data: result, Timestamp: timestamp(h.now()),
		RequestID: requestID(r), InvocationID: c.inv.ID,
	})
	return nil
}

// runInBackground answers 202 and runs c after the request has gone: the
// client follows it with GET /api/v1/invocations/{id} (?wait=) and may
// cancel it.
func (h *runHandlers) runInBackground(w http.ResponseWriter, r *http.Request, c *call) error {
	h.background.Add(1)
	go func() {
		defer h.background.Done()
		h.execute(c, nil) // the outcome is in the invocation record
	}()
	loc := "/api/v1/invocations/" + c.inv.ID
	w.Header().Set("Location", loc)
	msg := "the run goes on in the background: GET " + loc + " (?wait=30s to wait for its end), POST " + loc + "/cancel to stop it"
	h.writeJSON(w, http.StatusAccepted, envelope{
		Success: true, Message: &msg, Timestamp: timestamp(h.now()),
		RequestID: requestID(r), InvocationID: c.inv.ID,
	})
	return nil
}

// runSlots takes a running-invocation slot for r's principal (or client
// address) and one for the agent, or refuses with 429 (503 when the count
// cannot be had: fail closed).
func (h *runHandlers) runSlots(r *http.Request, agentID string) (release func(), err error) {
	who := h.limitKey(r, identity(r))
	relP, ok, err := h.slots.Acquire(r.Context(), "runs:"+who, h.maxRunsP)
	if err != nil {
		return nil, h.slotsUnavailable(err)
	}
	if !ok {
		h.metrics.LimiterDecision("runs_principal", false)
		return nil, core.Errorf(core.CodeRateLimited, "you have %d invocations running, the most allowed at once; wait for one to finish", h.maxRunsP)
	}
	relA, ok, err := h.slots.Acquire(r.Context(), "agent:"+agentID, h.maxRunsA)
	if err != nil {
		relP()
		return nil, h.slotsUnavailable(err)
	}
	if !ok {
		relP()
		h.metrics.LimiterDecision("runs_agent", false)
		return nil, core.Errorf(core.CodeRateLimited, "agent %s has %d invocations running, the most allowed at once; retry shortly", agentID, h.maxRunsA)
	}
	return func() { relA(); relP() }, nil
}

func (h *runHandlers) slotsUnavailable(err error) error {
	h.log.Error("cannot count running invocations; refusing the request", "err", err)
	return &core.Error{Code: core.CodeUnavailable, Message: "invocation limits are unavailable; retry shortly", Err: err}
}

// agentRate applies an agent's own rate limit (its config's rate_limit:
// calls from all callers together), or refuses with 429 and Retry-After.
func (h *runHandlers) agentRate(r *http.Request, d *registry.Deployment) error {
	if h.limiter == nil || d.Config.RateLimit == nil {
		return nil
	}
	limit := toLimit(*d.Config.RateLimit)
	res, err := h.limiter.Allow(r.Context(), "agent-rate:"+d.AgentID, limit)
	if err != nil {
		h.log.Error("rate limiter unavailable; refusing the request", "err", err)
		return &core.Error{Code: core.CodeUnavailable, Message: "rate limiting is unavailable; retry shortly", Err: err}
	}
	h.metrics.LimiterDecision("agent", res.Allowed)
	if res.Allowed {
		return nil
	}
	h.emit(r, core.SecurityEvent{Type: core.EventRateLimitExceeded, AgentID: d.AgentID, Message: "agent rate limit exceeded",
		Details: map[string]string{"limit": limit.String(), "path": r.URL.Path}})
	secs := int(math.Ceil(res.RetryAfter.Seconds()))
	return &retryError{secs: secs, err: core.Errorf(core.CodeRateLimited, "agent %s takes at most %s; retry after %d s", d.AgentID, limit, secs)}
}

// secretValues returns the secrets an invocation of agentID gets. Agents
// without secrets (most) are remembered in a.noSecrets, so their runs skip
// the store read (13 % of a run's CPU in the API, by pprof).
func (h *runHandlers) secretValues(ctx context.Context, agentID string) (map[string]string, error) {
	now := h.now()
	if _, ok := h.noSecrets.get(agentID, now); ok {
		return nil, nil
	}
	v, err := h.store.SecretValues(ctx, agentID)
	if err == nil && len(v) == 0 {
		h.noSecrets.put(agentID, struct{}{}, now)
	}
	return v, err
}
