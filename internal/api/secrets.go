package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/runagent/runagent/internal/core"
)

// Agent secrets: admins of the agent's project set and delete them and
// list their names; no route returns a value.

func (h *secretHandlers) listSecrets(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	ss, err := h.store.Secrets(r.Context(), d.AgentID)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"secrets": ss})
	return nil
}

func (h *secretHandlers) putSecret(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	name := r.PathValue("name")
	if err := core.CheckSecretName(name); err != nil {
		return err
	}
	var req struct {
		Value *string `json:"value"`
	}
	if err := h.decodeStrict(w, r, &req); err != nil {
		return err
	}
	if req.Value == nil {
		return fieldError("value", "value is required (a string)")
	}
	if strings.ContainsRune(*req.Value, 0) {
		return fieldError("value", "a secret value cannot contain NUL characters (it becomes an environment variable)")
	}
	// The trail can tell whether a known value was set, never read it.
	noteSensitive(r, "value", *req.Value)
	s := &core.Secret{AgentID: d.AgentID, Name: name, UpdatedBy: callerOf(r)}
	if err := h.store.PutSecret(r.Context(), s, *req.Value); err != nil {
		return err
	}
	h.noSecrets.forget(d.AgentID)
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, AgentID: d.AgentID, Message: "secret set",
		Details: map[string]string{"secret": name}})
	h.writeData(w, r, http.StatusOK, s)
	return nil
}

func (h *secretHandlers) deleteSecret(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	name := r.PathValue("name")
	h.noSecrets.forget(d.AgentID)
	if err := h.store.DeleteSecret(r.Context(), d.AgentID, name); err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return core.Errorf(core.CodeNotFound, "agent %s has no secret %s", d.AgentID, quoteID(name))
		}
		return err
	}
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, AgentID: d.AgentID, Message: "secret deleted",
		Details: map[string]string{"secret": name}})
	h.writeData(w, r, http.StatusOK, map[string]any{"agent_id": d.AgentID, "name": name, "deleted": true})
	return nil
}
