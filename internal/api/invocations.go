package api

import (
	"net/http"

	"github.com/runagent/runagent/internal/core"
)

// Reading invocation records: an agent's (filtered, paged), their
// statistics, and one by id.

func (h *invocationHandlers) listInvocations(w http.ResponseWriter, r *http.Request) error {
	agentID := agentOf(r).AgentID
	q := r.URL.Query()
	f := core.InvocationFilter{AgentID: agentID, Limit: 50}
	var err error
	if f.Limit, err = intParam(q.Get("limit"), "limit", 50, 1, 1000); err != nil {
		return err
	}
	if f.Offset, err = intParam(q.Get("offset"), "offset", 0, 0, 1<<30); err != nil {
		return err
	}
	if s := q.Get("status"); s != "" {
		f.Status = core.InvocationStatus(s)
		if !f.Status.Valid() {
			return fieldError("status", "status must be one of running, completed, failed, timeout, cancelled")
		}
	}
	list, err := h.store.Invocations(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*core.Invocation{}
	}
	h.writeData(w, r, http.StatusOK, map[string]any{
		"agent_id": agentID, "invocations": list, "count": len(list), "limit": f.Limit, "offset": f.Offset,
	})
	return nil
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
