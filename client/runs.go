package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Runs that outlive their request: started in the background, waited
// for, cancelled, and streams rejoined.

// MaxWait is the longest one [Client.WaitInvocation] asks the server to
// hold its answer (the server's limit for ?wait=).
const MaxWait = 60 * time.Second

// waitGrace is added to a long-poll's wait for its request's default
// deadline, so the server's answer at the end of the wait arrives first.
const waitGrace = 30 * time.Second

var errEmptyInvocationID = errors.New("invocation id is empty")

// RunAsync starts a plain entrypoint in the background (async_execution)
// and returns its invocation id as soon as the server has accepted it
// (202 with a Location); the run goes on when the caller has gone. Follow
// it with [Client.WaitInvocation], stop it with [Client.CancelInvocation].
// Limits, quotas and audit apply as to any run: a refusal is an [*Error].
// A server that does not run calls in the background answers when the
// run has ended; its id is returned all the same, and a failure of the
// agent is then an [*Error] here.
func (c *Client) RunAsync(ctx context.Context, agentID string, req RunRequest) (invocationID string, err error) {
	op := "run agent " + strconv.Quote(agentID) + " in the background"
	if err := checkRun(agentID, req); err != nil {
		return "", c.fail(op, err)
	}
	w := req.wire("")
	w.Async = true
	body, err := json.Marshal(w)
	if err != nil {
		return "", c.fail(op, fmt.Errorf("encode request: %w", err))
	}
	env, err := c.call(ctx, op, http.MethodPost, c.endpoint("agents", agentID, "run"), bytes.NewReader(body), "application/json", nil)
	if err != nil {
		return "", err
	}
	if env.InvocationID == "" {
		return "", c.fail(op, errors.New("the server accepted the run but sent no invocation_id"))
	}
	return env.InvocationID, nil
}

// WaitInvocation reads an invocation, asking the server to hold its answer
// until the run ends or wait is over, whichever is first: one long-poll.
// The record's [Invocation.Ended] says which; a caller waiting longer
// calls again. wait is cut to [MaxWait]; zero or less reads at once. Without a
// deadline on ctx the request may take wait plus 30 s. A server that
// does not run the invocation itself (another node's run) answers at once.
func (c *Client) WaitInvocation(ctx context.Context, invocationID string, wait time.Duration) (*Invocation, error) {
	op := "wait for invocation " + strconv.Quote(invocationID)
	if invocationID == "" {
		return nil, c.fail(op, errEmptyInvocationID)
	}
	wait = min(wait, MaxWait)
	u := c.endpoint("invocations", invocationID)
	if wait > 0 {
		u += "?" + url.Values{"wait": {wait.String()}}.Encode()
	}
	ctx, cancel := withDefaultTimeout(ctx, max(wait, 0)+waitGrace)
	defer cancel()
	var inv Invocation
	if _, err := c.call(ctx, op, http.MethodGet, u, nil, "", &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// CancelInvocation stops a queued or running invocation (its sandbox is
// killed) and returns its record, whose status is "cancelled" once the
// run has stopped (the server waits a few seconds for that). An
// invocation that has already ended is an [*Error] with code CONFLICT
// (HTTP 409); one the caller may not see is NOT_FOUND.
func (c *Client) CancelInvocation(ctx context.Context, invocationID string) (*Invocation, error) {
	op := "cancel invocation " + strconv.Quote(invocationID)
	if invocationID == "" {
		return nil, c.fail(op, errEmptyInvocationID)
	}
	var inv Invocation
	if _, err := c.call(ctx, op, http.MethodPost, c.endpoint("invocations", invocationID, "cancel"), nil, "", &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// Rejoin follows a stream's invocation again over Server-Sent Events,
// running or finished: the chunks after the one numbered after (the
// server numbers a stream's chunks from 0; -1 for all of them), then the
// live ones, then its end, as [Client.StreamSSE] reads them. A stream
// that lost its connection resumes, losing and repeating nothing, with
//
//	s, err = c.Rejoin(ctx, s.InvocationID(), s.LastEventID())
//
// The server keeps a stream's events for a while after it ends (its
// --stream-keep, 10 minutes by default) and only so many bytes of each:
// past that, Rejoin is an [*Error] with code GONE (HTTP 410) and the
// output is in the record ([Client.Invocation]). An invocation that is
// not a stream is VALIDATION_ERROR. Closing a rejoined stream does not
// stop its run (the run's own client, unless it asked for
// [OnDisconnectContinue], does); [Client.CancelInvocation] does.
func (c *Client) Rejoin(ctx context.Context, invocationID string, after int) (*Stream, error) {
	op := "rejoin stream " + strconv.Quote(invocationID)
	if invocationID == "" {
		return nil, c.fail(op, errEmptyInvocationID)
	}
	after = max(after, -1)
	h := http.Header{}
	if after >= 0 {
		h.Set("Last-Event-ID", strconv.Itoa(after))
	}
	ctx, cancel := withDefaultTimeout(ctx, DefaultStreamTimeout)
	s, err := c.openSSE(ctx, cancel, op, http.MethodGet, c.endpoint("invocations", invocationID, "stream"), nil, h, after)
	if err != nil {
		return nil, err
	}
	if s.invocationID == "" {
		s.invocationID = invocationID
	}
	return s, nil
}
