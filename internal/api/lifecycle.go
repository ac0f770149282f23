package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/runagent/runagent/internal/core"
)

// The end of projects and principals (owners only): deleting a project
// with everything in it, listing principals, disabling, enabling and
// deleting them. Every change forgets this node's cached keys, so it
// takes effect here on the next request (on other nodes within the 2 s
// their caches trust a key), and emits a security event.

// deleteProject deletes a project, its principals and their keys, and
// with ?force=true its agents.
func (a *API) deleteProject(w http.ResponseWriter, r *http.Request) error {
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
	c, err := a.store.DeleteProject(r.Context(), id, force, a.now().UTC())
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
	a.dropAgents(c.Agents)
	a.forgetIdentities()
	a.projectRates.forget(id)
	// A deploy into the project that raced the delete may have put its
	// agent back in the registry; agentFor drops it on sight.
	a.liveProjects.forget(id)
	noteAudit(r, "agent_ids", strings.Join(c.Agents, ","))
	noteAudit(r, "principal_count", strconv.Itoa(len(c.Principals)))
	noteAudit(r, "revoked_key_count", strconv.Itoa(len(c.Keys)))
	a.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: "project deleted",
		Details: map[string]string{"project_id": id, "agents": strconv.Itoa(len(c.Agents)),
			"principals": strconv.Itoa(len(c.Principals)), "revoked_keys": strconv.Itoa(len(c.Keys))}})
	a.writeData(w, r, http.StatusOK, map[string]any{"project_id": id, "deleted": true, "removed": c})
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
func (a *API) listPrincipals(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := core.PrincipalFilter{ProjectID: q.Get("project_id"), Role: core.Role(q.Get("role"))}
	if f.Role != "" && !f.Role.Valid() {
		return fieldError("role", "role must be one of viewer, user, streamer, admin, owner")
	}
	ps, err := a.store.Principals(r.Context(), f)
	if err != nil {
		return err
	}
	a.writeData(w, r, http.StatusOK, map[string]any{"principals": ps})
	return nil
}

// principalFor returns principal id, or NOT_FOUND.
func (a *API) principalFor(r *http.Request, id string) (*core.Principal, error) {
	notFound := core.Errorf(core.CodeNotFound, "principal %s not found", quoteID(id))
	if !validID(id) {
		return nil, notFound
	}
	p, err := a.store.Principal(r.Context(), id)
	if errors.Is(err, core.ErrNotFound) {
		return nil, notFound
	}
	return p, err
}

// disablePrincipal refuses a principal's keys until it is enabled again.
func (a *API) disablePrincipal(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principalFor(r, r.PathValue("principal_id"))
	if err != nil {
		return err
	}
	if err := a.mayChangePrincipal(r, p, "disable this principal"); err != nil {
		return err
	}
	// The store refuses the last owner, saying why and what to do.
	if err := a.store.DisablePrincipal(r.Context(), p.ID, a.now().UTC()); err != nil {
		return err
	}
	return a.principalChanged(w, r, p, "principal disabled")
}

// enablePrincipal undoes disablePrincipal.
func (a *API) enablePrincipal(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principalFor(r, r.PathValue("principal_id"))
	if err != nil {
		return err
	}
	if err := a.mayChangePrincipal(r, p, "enable this principal"); err != nil {
		return err
	}
	if err := a.store.EnablePrincipal(r.Context(), p.ID); err != nil {
		return err
	}
	return a.principalChanged(w, r, p, "principal enabled")
}

// principalChanged forgets cached keys, emits the event and answers with
// the principal as it now is.
func (a *API) principalChanged(w http.ResponseWriter, r *http.Request, p *core.Principal, what string) error {
	a.forgetIdentities()
	a.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: what,
		Details: map[string]string{"principal_id": p.ID, "project_id": p.ProjectID, "role": string(p.Role)}})
	now, err := a.store.Principal(r.Context(), p.ID)
	if err != nil {
		return err
	}
	a.writeData(w, r, http.StatusOK, now)
	return nil
}

// deletePrincipal deletes a principal and revokes its keys.
func (a *API) deletePrincipal(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principalFor(r, r.PathValue("principal_id"))
	if err != nil {
		return err
	}
	if err := a.mayChangePrincipal(r, p, "delete this principal"); err != nil {
		return err
	}
	revoked, err := a.store.DeletePrincipal(r.Context(), p.ID, a.now().UTC())
	if err != nil {
		return err
	}
	a.forgetIdentities()
	noteAudit(r, "revoked_key_ids", strings.Join(revoked, ","))
	a.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: "principal deleted",
		Details: map[string]string{"principal_id": p.ID, "project_id": p.ProjectID, "role": string(p.Role),
			"revoked_keys": strconv.Itoa(len(revoked))}})
	a.writeData(w, r, http.StatusOK, map[string]any{"principal_id": p.ID, "deleted": true, "revoked_keys": revoked})
	return nil
}

// forgetIdentities makes this node see changed principals and projects
// at once: their keys are read again on their next use.
func (a *API) forgetIdentities() {
	if a.auth != nil {
		a.auth.ForgetAll()
	}
}

// dropAgents stops serving agents deleted with their project: the
// registry forgets them and their warm sandboxes are killed. Runs in
// progress finish.
func (a *API) dropAgents(ids []string) {
	for _, d := range a.reg.Remove(ids...) {
		if a.exec != nil {
			a.exec.Evict(d.Dir)
		}
	}
	for _, id := range ids {
		a.noSecrets.forget(id)
	}
}

// projectGone reports whether project (an agent's, so it existed) was
// deleted, through a.liveProjects: an agent loaded on this node before its
// project was deleted on another stops being served within the cache's
// TTL.
func (a *API) projectGone(ctx context.Context, project string) (bool, error) {
	now := a.now()
	if live, ok := a.liveProjects.get(project, now); ok {
		return !live, nil
	}
	_, err := a.store.Project(ctx, project)
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		return false, err
	}
	live := err == nil
	a.liveProjects.put(project, live, now)
	return !live, nil
}
