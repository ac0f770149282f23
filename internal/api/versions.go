package api

import (
	"net/http"
	"strings"

	"github.com/runagent/runagent/internal/core"
)

// An agent's versions, rollback and deletion.

// listVersions lists the agent's versions, newest first.
func (h *agentHandlers) listVersions(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	vs, err := h.store.AgentVersions(r.Context(), d.AgentID)
	if err != nil {
		return agentLookupError(d.AgentID, err)
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"agent_id": d.AgentID, "versions": vs})
	return nil
}

// rollback makes a stored version of the agent current: later runs on
// this node use it.
func (h *agentHandlers) rollback(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	var req struct {
		Version string `json:"version"`
	}
	if err := h.decodeStrict(w, r, &req); err != nil {
		return err
	}
	if !validVersion(req.Version) {
		return fieldError("version", `version must be a version hash ("sha256:" and 64 hex digits); `+"`runagent agents versions`"+` lists them`)
	}
	noteAudit(r, "from_version", d.Hash)
	noteAudit(r, "version", req.Version)
	nd, err := h.reg.Rollback(r.Context(), d.AgentID, req.Version)
	if err != nil {
		if core.ErrorCode(err) == core.CodeNotFound {
			return core.Errorf(core.CodeNotFound, "agent %s has no version %s; `runagent agents versions` lists them", quoteID(d.AgentID), req.Version)
		}
		return err
	}
	h.log.Info("agent rolled back", "agent_id", nd.AgentID, "from_version", d.Hash, "version", nd.Hash, "caller", callerOf(r))
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, AgentID: nd.AgentID, Message: "agent rolled back",
		Details: map[string]string{"from_version": d.Hash, "version": nd.Hash}})
	h.writeData(w, r, http.StatusOK, map[string]any{
		"agent_id": nd.AgentID, "version": nd.Hash, "previous_version": d.Hash, "agent_name": nd.Config.AgentName,
	})
	return nil
}

// deleteAgent deletes the agent: it is no longer served on this node,
// its versions and secrets are removed, its invocation records kept.
func (h *agentHandlers) deleteAgent(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	if err := h.store.DeleteAgent(r.Context(), d.AgentID, h.now().UTC()); err != nil {
		return agentLookupError(d.AgentID, err)
	}
	h.finder.dropAgents([]string{d.AgentID})
	noteAudit(r, "version", d.Hash)
	h.log.Info("agent deleted", "agent_id", d.AgentID, "caller", callerOf(r))
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, AgentID: d.AgentID, Message: "agent deleted"})
	h.writeData(w, r, http.StatusOK, map[string]any{"agent_id": d.AgentID, "deleted": true})
	return nil
}

// validVersion accepts a bundle hash: "sha256:" and 64 lower-case hex
// digits.
func validVersion(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
