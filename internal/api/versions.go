package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/registry"
)

// An agent's versions, rollback and deletion.

// listVersions lists the agent's versions, newest first, a page at a
// time as the keys list is: ?limit= (1-100, default 100) from ?cursor=
// (the version before, by its hash), read from the store's index.
func (h *agentHandlers) listVersions(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	limit, cursor, err := cursorParams(r.URL.Query())
	if err != nil {
		return err
	}
	f := core.VersionFilter{Limit: limit + 1}
	if cursor != "" {
		if !validVersion(cursor) {
			return errCursor
		}
		f.After = cursor
	}
	vs, err := h.store.AgentVersionsPage(r.Context(), d.AgentID, f)
	if err != nil {
		if e, ok := errors.AsType[*core.Error](err); ok && e.Field == "cursor" {
			return errCursor
		}
		return agentLookupError(d.AgentID, err)
	}
	body := map[string]any{"agent_id": d.AgentID}
	body["versions"] = pageOf(body, vs, limit, func(v *core.VersionInfo) string { return v.Hash })
	h.writeData(w, r, http.StatusOK, body)
	return nil
}

// rollback makes a stored version of the agent current: later runs on
// this node use it, and on every node sharing the store (a Shared
// registry reads the current version for each run).
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
	if n, err := h.eraseMemory(r.Context(), d); err != nil {
		// The agent is gone; what is left of its memory, an admin erases
		// with runagent memory delete (the log says which).
		h.log.Error("agent deleted, but not all of its users' persistent memory", "agent_id", d.AgentID, "erased", n, "err", err)
		noteAudit(r, "memory_erased", strconv.Itoa(n))
		return core.Errorf(core.CodeUnavailable, "agent %s is deleted, but %v while erasing its users' persistent memory (%d stores erased); erase the rest with runagent memory delete", d.AgentID, err, n)
	} else if n > 0 {
		noteAudit(r, "memory_erased", strconv.Itoa(n))
	}
	h.log.Info("agent deleted", "agent_id", d.AgentID, "caller", callerOf(r))
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, AgentID: d.AgentID, Message: "agent deleted"})
	h.writeData(w, r, http.StatusOK, map[string]any{"agent_id": d.AgentID, "deleted": true})
	return nil
}

// eraseMemory deletes every user's persistent memory of d's agent: an
// agent's deletion erases what it kept of its users.
func (h *agentHandlers) eraseMemory(ctx context.Context, d *registry.Deployment) (int, error) {
	return eraseAgentMemory(ctx, h.mem, d.ProjectID, d.AgentID)
}

// eraseAgentMemory deletes every store of agent in project from mem
// (nil: none), and says how many it deleted.
func eraseAgentMemory(ctx context.Context, mem PersistentMemory, project, agent string) (int, error) {
	if mem == nil {
		return 0, nil
	}
	// A page at a time, so that an agent of many users is not read
	// whole.
	n, after := 0, ""
	for {
		ms, err := mem.List(ctx, project, agent, after, eraseBatch)
		if err != nil {
			if core.ErrorCode(err) == core.CodeNotFound || core.ErrorCode(err) == core.CodeUnavailable {
				return n, nil // no stores, or none on this server
			}
			return n, err
		}
		for _, m := range ms {
			if err := mem.Delete(ctx, memory.Key{Project: project, Agent: agent, User: m.UserID}); err != nil {
				return n, err
			}
			n++
		}
		if len(ms) < eraseBatch {
			break
		}
		after = ms[len(ms)-1].UserID
	}
	return n, nil
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
