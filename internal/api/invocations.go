package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Reading invocation records: an agent's or every visible agent's
// (filtered, paged by cursor or offset), their statistics, and one by id.

// listInvocations serves GET /agents/{agent_id}/invocations: the agent's
// invocations, newest first, filtered and paged as listFilter reads.
func (h *invocationHandlers) listInvocations(w http.ResponseWriter, r *http.Request) error {
	agentID := agentOf(r).AgentID
	f, err := listFilter(r)
	if err != nil {
		return err
	}
	f.AgentID = agentID
	return h.writeList(w, r, f, map[string]any{"agent_id": agentID})
}

// listAllInvocations serves GET /invocations: the invocations of every
// agent the caller may see (its project's, narrowed to its key's agents;
// every project's for an instance owner), newest first, optionally of one
// ?agent_id=, filtered and paged as listFilter reads. An agent the caller
// may not see lists nothing, exactly as one that does not exist.
func (h *invocationHandlers) listAllInvocations(w http.ResponseWriter, r *http.Request) error {
	f, err := listFilter(r)
	if err != nil {
		return err
	}
	if a := r.URL.Query().Get("agent_id"); a != "" {
		if !validID(a) {
			return fieldError("agent_id", "agent_id must be an agent's id (letters, digits, - and _)")
		}
		f.AgentID = a
	}
	id := identity(r)
	if !id.Owner() {
		f.ProjectID = id.ProjectID
		if f.ProjectID == "" {
			f.ProjectID = core.DefaultProject
		}
	}
	if id.Agents != nil {
		f.AgentIDs = id.Agents
	}
	return h.writeList(w, r, f, map[string]any{})
}

// writeList answers one page of the invocations f selects, in out with
// the page's size and, when the page is full, the cursor of the next.
func (h *invocationHandlers) writeList(w http.ResponseWriter, r *http.Request, f core.InvocationFilter, out map[string]any) error {
	list, err := h.store.Invocations(r.Context(), f)
	if err != nil {
		return err
	}
	named, err := h.withNames(r.Context(), f.AgentID, list)
	if err != nil {
		return err
	}
	out["invocations"], out["count"], out["limit"], out["offset"] = named, len(list), f.Limit, f.Offset
	if len(list) == f.Limit {
		last := list[len(list)-1]
		out["next_cursor"] = encodeCursor(core.InvocationCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	h.writeData(w, r, http.StatusOK, out)
	return nil
}

// namedInvocation is an invocation as the API shows it: its record and,
// beside it, its agent's name (left out for an agent since deleted). The
// extra field is additive: RunAgent's clients ignore fields they do not know.
type namedInvocation struct {
	*core.Invocation
	AgentName string `json:"agent_name,omitempty"`
}

// withNames pairs each invocation of list with its agent's name, found in
// one lookup for the whole page: the one agent a listing of agentID
// selects, or every agent otherwise (as GET /agents reads them).
func (h *invocationHandlers) withNames(ctx context.Context, agentID string, list []*core.Invocation) ([]namedInvocation, error) {
	out := make([]namedInvocation, len(list))
	if len(list) == 0 {
		return out, nil
	}
	names := map[string]string{}
	if agentID != "" {
		ag, err := h.store.Agent(ctx, agentID)
		if err != nil && core.ErrorCode(err) != core.CodeNotFound {
			return nil, err
		}
		if ag != nil {
			names[ag.ID] = ag.Name
		}
	} else {
		agents, err := h.store.Agents(ctx)
		if err != nil {
			return nil, err
		}
		for _, ag := range agents {
			names[ag.ID] = ag.Name
		}
	}
	for i, inv := range list {
		out[i] = namedInvocation{Invocation: inv, AgentName: names[inv.AgentID]}
	}
	return out, nil
}

// named is inv with its agent's name, as withNames pairs them.
func (h *invocationHandlers) named(ctx context.Context, inv *core.Invocation) (namedInvocation, error) {
	list, err := h.withNames(ctx, inv.AgentID, []*core.Invocation{inv})
	if err != nil {
		return namedInvocation{}, err
	}
	return list[0], nil
}

// listFilter reads a listing's query: ?limit= (1-1000, default 50);
// ?cursor= (a next_cursor of an earlier page) or ?offset=; ?status=,
// ?user_id=, ?caller=; ?since= and ?until= (RFC 3339 times: since <=
// created_at < until).
func listFilter(r *http.Request) (core.InvocationFilter, error) {
	q := r.URL.Query()
	var f core.InvocationFilter
	var err error
	if f.Limit, err = intParam(q.Get("limit"), "limit", 50, 1, 1000); err != nil {
		return f, err
	}
	if f.Offset, err = intParam(q.Get("offset"), "offset", 0, 0, 1<<30); err != nil {
		return f, err
	}
	if c := q.Get("cursor"); c != "" {
		if f.Offset != 0 {
			return f, fieldError("cursor", "cursor and offset must not be sent together: send the next_cursor of the previous page alone")
		}
		cur, err := decodeCursor(c)
		if err != nil {
			return f, err
		}
		f.After = &cur
	}
	if s := q.Get("status"); s != "" {
		f.Status = core.InvocationStatus(s)
		if !f.Status.Valid() {
			return f, fieldError("status", "status must be one of running, completed, failed, timeout, cancelled")
		}
	}
	for _, p := range []struct {
		name string
		to   *string
	}{{"user_id", &f.UserID}, {"caller", &f.Caller}} {
		v := q.Get(p.name)
		if len(v) > 256 {
			return f, fieldError(p.name, p.name+" must be at most 256 bytes")
		}
		*p.to = v
	}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || t.Year() < 1678 || t.Year() > 2261 {
			return f, fieldError(p.name, p.name+" must be a time such as 2026-12-07T18:00:00Z (RFC 3339)")
		}
		*p.to = t
	}
	return f, nil
}

// A cursor is a place in a listing, opaque to clients: the base64url of
// "<created_at in Unix nanoseconds>.<invocation id>".

func encodeCursor(c core.InvocationCursor) string { return encodeTimeCursor(c.CreatedAt, c.ID) }

var errCursor = fieldError("cursor", "cursor must be the next_cursor of an earlier page, unchanged")

// decodeCursor reads a cursor from a client; anything but a cursor
// encodeCursor made is errCursor.
func decodeCursor(s string) (core.InvocationCursor, error) {
	t, id, err := decodeTimeCursor(s, 128, validID)
	return core.InvocationCursor{CreatedAt: t, ID: id}, err
}

// A time cursor is the base64url of "<time in Unix nanoseconds>.<name>":
// the place after the last row of a page ordered by a time and a name
// (invocations and keys by creation and id, blocks by end and client).

func encodeTimeCursor(t time.Time, name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixNano(), 10) + "." + name))
}

// decodeTimeCursor reads a time cursor of at most max bytes whose name
// is valid; anything but a cursor encodeTimeCursor made is errCursor.
func decodeTimeCursor(s string, max int, valid func(string) bool) (time.Time, string, error) {
	if len(s) > max {
		return time.Time{}, "", errCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return time.Time{}, "", errCursor
	}
	ns, name, ok := strings.Cut(string(b), ".")
	if !ok || !valid(name) {
		return time.Time{}, "", errCursor
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return time.Time{}, "", errCursor
	}
	t := time.Unix(0, n).UTC()
	// Only the one spelling encodeTimeCursor makes (the decoder lets line
	// breaks, "+5" and "007" through).
	if encodeTimeCursor(t, name) != s {
		return time.Time{}, "", errCursor
	}
	return t, name, nil
}

func (h *invocationHandlers) invocationStats(w http.ResponseWriter, r *http.Request) error {
	agentID := agentOf(r).AgentID
	st, err := h.store.InvocationStats(r.Context(), agentID)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, st)
	return nil
}
