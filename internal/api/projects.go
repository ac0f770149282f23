package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/runagent/runagent/internal/core"
)

// Projects and principals (owners only): projects are created, listed,
// given a rate limit and deleted with everything in them; principals are
// listed, disabled, enabled and deleted. Every change to who may act
// forgets this node's cached keys, so it takes effect here on the next
// request (on other nodes within the 2 s their caches trust a key), and
// emits a security event.

func (h *projectHandlers) listProjects(w http.ResponseWriter, r *http.Request) error {
	ps, err := h.store.Projects(r.Context())
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []*core.Project{}
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"projects": ps})
	return nil
}

func (h *projectHandlers) createProject(w http.ResponseWriter, r *http.Request) error {
	var req createProjectRequest
	if err := h.decodeStrict(w, r, &req); err != nil {
		return err
	}
	if !projectIDRE.MatchString(req.ProjectID) {
		return fieldError("project_id", "project_id must be 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit")
	}
	if req.Name == "" {
		req.Name = req.ProjectID
	}
	if len(req.Name) > 100 || !printable(req.Name) {
		return fieldError("name", "name must be at most 100 printable characters")
	}
	if req.RateLimit != nil && !req.RateLimit.Valid() {
		return fieldError("rate_limit", rateLimitRule)
	}
	p := &core.Project{ID: req.ProjectID, Name: req.Name, CreatedAt: h.now().UTC(), RateLimit: req.RateLimit}
	if err := h.store.CreateProject(r.Context(), p); err != nil {
		return err
	}
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: "project created",
		Details: map[string]string{"project_id": p.ID, "rate_limit": rateString(p.RateLimit)}})
	h.writeData(w, r, http.StatusCreated, p)
	return nil
}

// updateProject changes a project's settings: today its rate limit
// ({"rate_limit": {...}}, or null for the server's default).
func (h *projectHandlers) updateProject(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("project_id")
	if !projectIDRE.MatchString(id) {
		return core.Errorf(core.CodeNotFound, "project not found")
	}
	var req struct {
		RateLimit json.RawMessage `json:"rate_limit"`
	}
	if err := h.decodeStrict(w, r, &req); err != nil {
		return err
	}
	if req.RateLimit == nil {
		return fieldError("rate_limit", "nothing to change: send rate_limit (an object, or null for the server's default)")
	}
	var rl *core.RateLimit
	if err := strictJSON(req.RateLimit, &rl); err != nil || (rl != nil && !rl.Valid()) {
		return fieldError("rate_limit", rateLimitRule)
	}
	if err := h.store.SetProjectRateLimit(r.Context(), id, rl); err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return core.Errorf(core.CodeNotFound, "project not found")
		}
		return err
	}
	h.rates.projectRates.forget(id)
	p, err := h.store.Project(r.Context(), id)
	if err != nil {
		return err
	}
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: "project rate limit changed",
		Details: map[string]string{"project_id": id, "rate_limit": rateString(rl)}})
	h.writeData(w, r, http.StatusOK, p)
	return nil
}

// rateString names a rate limit in events ("default" for none).
func rateString(rl *core.RateLimit) string {
	if rl == nil {
		return "default"
	}
	return toLimit(*rl).String()
}

// deleteProject deletes a project, its principals and their keys, and
// with ?force=true its agents.
func (h *projectHandlers) deleteProject(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("project_id")
	if !projectIDRE.MatchString(id) {
		return core.Errorf(core.CodeNotFound, "project not found")
	}
	force := false
	if s := r.URL.Query().Get("force"); s != "" {
		var err error
		if force, err = strconv.ParseBool(s); err != nil {
			return fieldError("force", "force must be true or false")
		}
	}
	c, err := h.store.DeleteProject(r.Context(), id, force, h.now().UTC())
	if err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return core.Errorf(core.CodeNotFound, "project %q not found", id)
		}
		if e, ok := errors.AsType[*core.Error](err); ok {
			if c, ok := e.Details.(*core.ProjectContents); ok {
				return wouldRemove(id, c)
			}
		}
		return err
	}
	h.agents.dropAgents(c.Agents)
	h.forgetIdentities()
	h.rates.projectRates.forget(id)
	// A deploy into the project that raced the delete may have put its
	// agent back in the registry; agentFor drops it on sight.
	h.agents.liveProjects.forget(id)
	noteAudit(r, "agent_ids", strings.Join(c.Agents, ","))
	noteAudit(r, "principal_count", strconv.Itoa(len(c.Principals)))
	noteAudit(r, "revoked_key_count", strconv.Itoa(len(c.Keys)))
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: "project deleted",
		Details: map[string]string{"project_id": id, "agents": strconv.Itoa(len(c.Agents)),
			"principals": strconv.Itoa(len(c.Principals)), "revoked_keys": strconv.Itoa(len(c.Keys))}})
	erased := 0
	for _, agent := range c.Agents {
		n, err := eraseAgentMemory(r.Context(), h.mem, id, agent)
		erased += n
		if err != nil {
			h.log.Error("project deleted, but not all of its agents' persistent memory", "project_id", id, "agent_id", agent, "erased", erased, "err", err)
			noteAudit(r, "memory_erased", strconv.Itoa(erased))
			return core.Errorf(core.CodeUnavailable, "project %s is deleted, but %v while erasing the persistent memory of agent %s (%d stores erased); erase the rest with runagent memory delete", id, err, agent, erased)
		}
	}
	if erased > 0 {
		noteAudit(r, "memory_erased", strconv.Itoa(erased))
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"project_id": id, "deleted": true, "removed": c})
	return nil
}

// wouldRemove is the refusal of deleting project id, which has agents,
// without force: what it would remove, and how to go ahead.
func wouldRemove(id string, c *core.ProjectContents) error {
	agents := strings.Join(c.Agents, ", ")
	if len(c.Agents) > 5 {
		agents = strings.Join(c.Agents[:5], ", ") + ", …"
	}
	return &core.Error{Code: core.CodeConflict, Field: "project_id", Details: c, Message: fmt.Sprintf(
		"project %q has %s (%s), %s and %s; deleting it removes the agents (their versions and secrets; "+
			"their invocation records stay), deletes the principals and revokes the keys. To go ahead, "+
			"repeat with force=true (runagent projects delete %s --force)",
		id, count(len(c.Agents), "agent", "agents"), agents, count(len(c.Principals), "principal", "principals"),
		count(len(c.Keys), "key not yet revoked", "keys not yet revoked"), id)}
}

// count is "1 agent", "2 agents".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// listPrincipals lists principals, deleted ones included: all, or those
// of ?project_id= and/or ?role=.
func (h *projectHandlers) listPrincipals(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := core.PrincipalFilter{ProjectID: q.Get("project_id"), Role: core.Role(q.Get("role"))}
	if f.Role != "" && !f.Role.Valid() {
		return fieldError("role", "role must be one of viewer, user, streamer, admin, owner")
	}
	ps, err := h.store.Principals(r.Context(), f)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"principals": ps})
	return nil
}

// principalFor returns principal id, or NOT_FOUND.
func (h *projectHandlers) principalFor(r *http.Request, id string) (*core.Principal, error) {
	notFound := core.Errorf(core.CodeNotFound, "principal %s not found", quoteID(id))
	if !validID(id) {
		return nil, notFound
	}
	p, err := h.store.Principal(r.Context(), id)
	if errors.Is(err, core.ErrNotFound) {
		return nil, notFound
	}
	return p, err
}

// disablePrincipal refuses a principal's keys until it is enabled again.
func (h *projectHandlers) disablePrincipal(w http.ResponseWriter, r *http.Request) error {
	p, err := h.principalFor(r, r.PathValue("principal_id"))
	if err != nil {
		return err
	}
	if err := h.mayChangePrincipal(r, p, "disable this principal"); err != nil {
		return err
	}
	// The store refuses the last owner, saying why and what to do.
	if err := h.store.DisablePrincipal(r.Context(), p.ID, h.now().UTC()); err != nil {
		return err
	}
	return h.principalChanged(w, r, p, "principal disabled")
}

// enablePrincipal undoes disablePrincipal.
func (h *projectHandlers) enablePrincipal(w http.ResponseWriter, r *http.Request) error {
	p, err := h.principalFor(r, r.PathValue("principal_id"))
	if err != nil {
		return err
	}
	if err := h.mayChangePrincipal(r, p, "enable this principal"); err != nil {
		return err
	}
	if err := h.store.EnablePrincipal(r.Context(), p.ID); err != nil {
		return err
	}
	return h.principalChanged(w, r, p, "principal enabled")
}

// principalChanged forgets cached keys, emits the event and answers with
// the principal as it now is.
func (h *projectHandlers) principalChanged(w http.ResponseWriter, r *http.Request, p *core.Principal, what string) error {
	h.forgetIdentities()
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: what,
		Details: map[string]string{"principal_id": p.ID, "project_id": p.ProjectID, "role": string(p.Role)}})
	now, err := h.store.Principal(r.Context(), p.ID)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, now)
	return nil
}

// deletePrincipal deletes a principal and revokes its keys.
func (h *projectHandlers) deletePrincipal(w http.ResponseWriter, r *http.Request) error {
	p, err := h.principalFor(r, r.PathValue("principal_id"))
	if err != nil {
		return err
	}
	if err := h.mayChangePrincipal(r, p, "delete this principal"); err != nil {
		return err
	}
	revoked, err := h.store.DeletePrincipal(r.Context(), p.ID, h.now().UTC())
	if err != nil {
		return err
	}
	h.forgetIdentities()
	noteAudit(r, "revoked_key_ids", strings.Join(revoked, ","))
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: "principal deleted",
		Details: map[string]string{"principal_id": p.ID, "project_id": p.ProjectID, "role": string(p.Role),
			"revoked_keys": strconv.Itoa(len(revoked))}})
	h.writeData(w, r, http.StatusOK, map[string]any{"principal_id": p.ID, "deleted": true, "revoked_keys": revoked})
	return nil
}

// forgetIdentities makes this node see changed principals and projects
// at once: their keys are read again on their next use.
func (h *projectHandlers) forgetIdentities() {
	if h.auth != nil {
		h.auth.ForgetAll()
	}
}
