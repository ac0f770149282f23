package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/runagent/runagent/internal/core"
)

// Agent secrets: admins of the agent's project set and delete them and
// list their names; no route returns a value.

func (a *API) listSecrets(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	ss, err := a.store.Secrets(r.Context(), d.AgentID)
	if err != nil {
		return err
	}
	a.writeData(w, r, http.StatusOK, map[string]any{"secrets": ss})
	return nil
}

func (a *API) putSecret(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	name := r.PathValue("name")
	if err := core.CheckSecretName(name); err != nil {
		return err
	}
	var req struct {
		Value *string `json:"value"`
	}
	if err := a.decodeStrict(w, r, &req); err != nil {
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
	if err := a.store.PutSecret(r.Context(), s, *req.Value); err != nil {
		return err
	}
	a.noSecrets.forget(d.AgentID)
	a.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, AgentID: d.AgentID, Message: "secret set",
		Details: map[string]string{"secret": name}})
	a.writeData(w, r, http.StatusOK, s)
	return nil
}

func (a *API) deleteSecret(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	name := r.PathValue("name")
	a.noSecrets.forget(d.AgentID)
	if err := a.store.DeleteSecret(r.Context(), d.AgentID, name); err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return core.Errorf(core.CodeNotFound, "agent %s has no secret %s", d.AgentID, quoteID(name))
		}
		return err
	}
	a.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, AgentID: d.AgentID, Message: "secret deleted",
		Details: map[string]string{"secret": name}})
	a.writeData(w, r, http.StatusOK, map[string]any{"agent_id": d.AgentID, "name": name, "deleted": true})
	return nil
}

// secretValues returns the secrets an invocation of agentID gets. Agents
// without secrets (most) are remembered in a.noSecrets, so their runs skip
// the store read (13 % of a run's CPU in the API, by pprof).
func (a *API) secretValues(ctx context.Context, agentID string) (map[string]string, error) {
	now := a.now()
	if _, ok := a.noSecrets.get(agentID, now); ok {
		return nil, nil
	}
	v, err := a.store.SecretValues(ctx, agentID)
	if err == nil && len(v) == 0 {
		a.noSecrets.put(agentID, struct{}{}, now)
	}
	return v, err
}
