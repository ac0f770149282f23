package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
)

func (a *API) health(w http.ResponseWriter, r *http.Request) error {
	now := a.now()
	status, code := "healthy", http.StatusOK
	if err := a.store.Ping(r.Context()); err != nil {
		a.log.Error("health: store unreachable", "err", err)
		status, code = "unhealthy", http.StatusServiceUnavailable
	}
	if a.draining.Load() {
		status, code = "draining", http.StatusServiceUnavailable
	}
	a.writeJSON(w, code, map[string]any{
		"status":         status,
		"server":         "runagent",
		"timestamp":      timestamp(now),
		"uptime_seconds": int64(now.Sub(a.started).Seconds()),
		"version":        a.version,
		"agents":         a.reg.Count(),
		"active_runs":    a.exec.Active(),
	})
	return nil
}

type entrypointView struct {
	Tag         string `json:"tag"`
	Kind        string `json:"kind"`
	File        string `json:"file,omitempty"`
	Module      string `json:"module,omitempty"`
	Streaming   bool   `json:"streaming"`
	Description string `json:"description,omitempty"`
}

func entrypointViews(cfg *core.AgentConfig) []entrypointView {
	out := make([]entrypointView, 0, len(cfg.Entrypoints))
	for _, e := range cfg.Entrypoints {
		out = append(out, entrypointView{Tag: e.Tag, Kind: string(e.Kind), File: e.File, Module: e.Module, Streaming: e.Streaming(), Description: e.Description})
	}
	return out
}

func (a *API) architecture(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	a.writeData(w, r, http.StatusOK, map[string]any{
		"agent_id":    d.AgentID,
		"agent_name":  d.Config.AgentName,
		"framework":   d.Config.Framework,
		"version":     d.Config.Version,
		"entrypoints": entrypointViews(d.Config),
	})
	return nil
}

func (a *API) listAgents(w http.ResponseWriter, r *http.Request) error {
	all, err := a.store.Agents(r.Context())
	if err != nil {
		return err
	}
	id := identity(r)
	agents := []*core.Agent{}
	for _, ag := range all {
		if id.CanAgent(ag.ProjectID, ag.ID) {
			agents = append(agents, ag)
		}
	}
	a.writeData(w, r, http.StatusOK, map[string]any{"agents": agents})
	return nil
}

func (a *API) deploy(w http.ResponseWriter, r *http.Request) error {
	mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "application/gzip", "application/x-gzip", "application/x-tar+gzip":
	default:
		return core.Errorf(core.CodeUnsupportedMedia, "deploy takes a packaged agent (Content-Type: application/gzip); use `runagent deploy <dir>`")
	}
	body, err := a.readBody(w, r, a.maxPackage)
	if err != nil {
		return err
	}
	// Into the caller's project; an owner names one, or by default
	// redeploys an agent where it is (a new one goes to "default").
	id, project := identity(r), r.URL.Query().Get("project_id")
	if !id.Owner() {
		if project != "" && project != id.ProjectID {
			return core.Errorf(core.CodeNotFound, "project not found")
		}
		project = id.ProjectID
	}
	if project != "" {
		if _, err := a.store.Project(r.Context(), project); err != nil {
			if core.ErrorCode(err) == core.CodeNotFound {
				return core.Errorf(core.CodeNotFound, "project not found")
			}
			return err
		}
	}
	res, err := a.reg.DeployAs(r.Context(), body, project, func(agentID string, existing bool) error {
		return a.mayDeploy(r, id, agentID, existing)
	})
	if err != nil {
		return err
	}
	d := res.Deployment
	noteAudit(r, "agent_id", d.AgentID)
	noteAudit(r, "version", d.Hash)
	a.log.Info("agent deployed", "agent_id", d.AgentID, "version", d.Hash, "new_version", res.Created, "caller", callerOf(r))
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	warnings := res.Warnings
	if warnings == nil {
		warnings = []string{}
	}
	a.writeData(w, r, status, map[string]any{
		"agent_id":    d.AgentID,
		"agent_name":  d.Config.AgentName,
		"version":     d.Hash,
		"created":     res.Created,
		"entrypoints": entrypointViews(d.Config),
		"warnings":    warnings,
	})
	return nil
}

// mayDeploy refuses a deploy outside the caller's agents: a key limited
// to some agents replaces only their code (new code runs with the
// agent's secrets) and creates no agents.
func (a *API) mayDeploy(r *http.Request, id auth.Identity, agentID string, existing bool) error {
	if id.Agents == nil {
		return nil
	}
	if !existing {
		return a.refuseWider(r, "deploy a new agent", &auth.TooWide{Part: auth.PartAgents,
			Reason: fmt.Sprintf("your credential is limited to agents %s and cannot create agent %s", strings.Join(id.Agents, ", "), agentID)})
	}
	target := auth.Grant{Role: id.Role, Project: id.ProjectID, Scopes: id.Scopes, Agents: []string{agentID}}
	holder := auth.Grant{Role: id.Role, Project: id.ProjectID, Scopes: id.Scopes, Agents: id.Agents}
	if err := auth.Within(target, holder); err != nil {
		return a.refuseWider(r, "deploy this agent", err)
	}
	return nil
}

func (a *API) listInvocations(w http.ResponseWriter, r *http.Request) error {
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
	list, err := a.store.Invocations(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*core.Invocation{}
	}
	a.writeData(w, r, http.StatusOK, map[string]any{
		"agent_id": agentID, "invocations": list, "count": len(list), "limit": f.Limit, "offset": f.Offset,
	})
	return nil
}

func (a *API) invocationStats(w http.ResponseWriter, r *http.Request) error {
	agentID := agentOf(r).AgentID
	st, err := a.store.InvocationStats(r.Context(), agentID)
	if err != nil {
		return err
	}
	a.writeData(w, r, http.StatusOK, st)
	return nil
}

func (a *API) getInvocation(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("invocation_id")
	if !validID(id) {
		return core.Errorf(core.CodeNotFound, "invocation %s not found", quoteID(id))
	}
	inv, err := a.store.Invocation(r.Context(), id)
	if err != nil {
		if core.ErrorCode(err) == core.CodeNotFound {
			return core.Errorf(core.CodeNotFound, "invocation %q not found", id)
		}
		return err
	}
	if !identity(r).CanAgent(inv.ProjectID, inv.AgentID) {
		return core.Errorf(core.CodeNotFound, "invocation %q not found", id)
	}
	a.writeData(w, r, http.StatusOK, inv)
	return nil
}

func agentLookupError(id string, err error) error {
	if core.ErrorCode(err) == core.CodeNotFound {
		return core.Errorf(core.CodeNotFound, "agent %s not found; deploy it with `runagent deploy` or serve its directory", quoteID(id))
	}
	return err
}

// quoteID quotes a client-supplied identifier for an error message, or
// stands in for it when it is not a well-formed id: nothing arbitrary the
// client sent is reflected back.
func quoteID(id string) string {
	if validID(id) {
		return strconv.Quote(id)
	}
	return "(malformed id)"
}

func intParam(s, name string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fieldError(name, name+" must be an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	return n, nil
}

// validID accepts the ids this server issues and RunAgent's UUIDs.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
