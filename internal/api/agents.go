package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/registry"
)

// Agents: listed, described and deployed by agentHandlers, and found as
// a request's caller may see them by agentFinder.

type entrypointView struct {
	Tag         string `json:"tag"`
	Kind        string `json:"kind"`
	File        string `json:"file,omitempty"`
	Module      string `json:"module,omitempty"`
	Streaming   bool   `json:"streaming"`
	Description string `json:"description,omitempty"`
	// InputSchema is set only where one agent is described (the
	// architecture route): a schema may be 64 KiB, too much for a list.
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

func entrypointViews(cfg *core.AgentConfig) []entrypointView {
	out := make([]entrypointView, 0, len(cfg.Entrypoints))
	for _, e := range cfg.Entrypoints {
		out = append(out, entrypointView{Tag: e.Tag, Kind: string(e.Kind), File: e.File, Module: e.Module, Streaming: e.Streaming(), Description: e.Description})
	}
	return out
}

// entrypointViewsWithSchemas is entrypointViews with each entrypoint's
// input_schema, which the console's "try it" form is generated from.
func entrypointViewsWithSchemas(cfg *core.AgentConfig) []entrypointView {
	out := entrypointViews(cfg)
	for i, e := range cfg.Entrypoints {
		out[i].InputSchema = e.InputSchema
	}
	return out
}

func (h *agentHandlers) architecture(w http.ResponseWriter, r *http.Request) error {
	d := agentOf(r)
	h.writeData(w, r, http.StatusOK, map[string]any{
		"agent_id":   d.AgentID,
		"agent_name": d.Config.AgentName,
		"framework":  d.Config.Framework,
		"version":    d.Config.Version,
		// current_version is the version hash this node serves (what
		// …/versions marks current and …/rollback takes).
		"current_version": d.Hash,
		"entrypoints":     entrypointViewsWithSchemas(d.Config),
	})
	return nil
}

// listAgents lists the agents the caller may see, ordered by id. With
// ?limit= (1-100) or ?cursor= it answers one page, read from the store
// by cursor as the keys list is; without, every agent, as RunAgent's
// clients expect. The caller's project and a key's agents are
// conditions of the store's query, so a page holds limit agents the
// caller may see. With ?include=entrypoints each listed agent carries
// its current version's entrypoints (what the console's agents view
// shows), read for that page only.
func (h *agentHandlers) listAgents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := visibleAgents(identity(r))
	paged := q.Has("limit") || q.Has("cursor") || q.Has("offset")
	var limit int
	if paged {
		var cursor string
		var err error
		if limit, cursor, err = cursorParams(q); err != nil {
			return err
		}
		if cursor != "" {
			if f.After, err = decodeUserCursor(cursor); err != nil {
				return err
			}
		}
		f.Limit = limit + 1
	}
	withEntrypoints := false
	switch inc := q.Get("include"); inc {
	case "":
	case "entrypoints":
		withEntrypoints = true
	default:
		return fieldError("include", "include may only be entrypoints")
	}
	agents, err := h.store.AgentsPage(r.Context(), f)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if paged {
		agents = pageOf(body, agents, limit, func(a *core.Agent) string { return encodeUserCursor(a.ID) })
	}
	if !withEntrypoints {
		body["agents"] = agents
		h.writeData(w, r, http.StatusOK, body)
		return nil
	}
	type listed struct {
		*core.Agent
		Entrypoints []entrypointView `json:"entrypoints"`
	}
	out := make([]listed, 0, len(agents))
	for _, ag := range agents {
		d, err := h.reg.Get(r.Context(), ag.ID)
		if err != nil {
			return err
		}
		out = append(out, listed{Agent: ag, Entrypoints: entrypointViews(d.Config)})
	}
	body["agents"] = out
	h.writeData(w, r, http.StatusOK, body)
	return nil
}

// visibleAgents is the filter of the agents id may see (as CanAgent
// says): an owner's every agent, another's those of its project, and of
// a key narrowed to some agents (an owner's too) those only. It fails closed: a caller
// that is not an owner and names no project sees none.
func visibleAgents(id auth.Identity) core.AgentFilter {
	if id.Owner() {
		return core.AgentFilter{IDs: id.Agents} // an owner's key may be narrowed to some agents too
	}
	if id.ProjectID == "" {
		return core.AgentFilter{IDs: []string{}}
	}
	return core.AgentFilter{ProjectID: id.ProjectID, IDs: id.Agents}
}

func (h *agentHandlers) deploy(w http.ResponseWriter, r *http.Request) error {
	mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "application/gzip", "application/x-gzip", "application/x-tar+gzip":
	default:
		return core.Errorf(core.CodeUnsupportedMedia, "deploy takes a packaged agent (Content-Type: application/gzip); use `runagent deploy <dir>`")
	}
	body, err := h.readBody(w, r, h.maxPackage)
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
		if _, err := h.store.Project(r.Context(), project); err != nil {
			if core.ErrorCode(err) == core.CodeNotFound {
				return core.Errorf(core.CodeNotFound, "project not found")
			}
			return err
		}
	}
	opts := registry.DeployOptions{Allow: func(agentID string, existing bool) error {
		return h.mayDeploy(r, id, agentID, existing)
	}}
	var stream *ndjson
	if acceptsNDJSON(r) {
		// Progress as it happens, one JSON object a line, then the result
		// (or the error) as the last line.
		stream = newNDJSON(w)
		opts.Progress = stream.progress
	}
	res, err := h.reg.DeployAs(r.Context(), body, project, opts)
	if err != nil {
		if stream != nil && stream.started {
			noteStatus(r, statusOf(errorBodyOf(err).Code))
			stream.fail(err)
			return nil
		}
		return err
	}
	d := res.Deployment
	noteAudit(r, "agent_id", d.AgentID)
	noteAudit(r, "version", d.Hash)
	h.log.Info("agent deployed", "agent_id", d.AgentID, "version", d.Hash, "new_version", res.Created, "caller", callerOf(r))
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	warnings := res.Warnings
	if warnings == nil {
		warnings = []string{}
	}
	data := map[string]any{
		"agent_id":    d.AgentID,
		"agent_name":  d.Config.AgentName,
		"version":     d.Hash,
		"created":     res.Created,
		"entrypoints": entrypointViews(d.Config),
		"warnings":    warnings,
	}
	if b := res.Prepared.Build; b != nil {
		noteAudit(r, "build_id", b.ID)
		data["build"] = buildView(b)
	}
	if stream != nil {
		noteStatus(r, status)
		stream.result(status, data)
		return nil
	}
	h.writeData(w, r, status, data)
	return nil
}

// buildView is a build as a deploy's answer shows it.
func buildView(b *core.Build) map[string]any {
	return map[string]any{"build_id": b.ID, "status": b.Status, "environment": b.EnvKey, "cached": b.Cached,
		"seconds": b.FinishedAt.Sub(b.StartedAt).Seconds()}
}

// mayDeploy refuses a deploy outside the caller's agents: a key limited
// to some agents replaces only their code (new code runs with the
// agent's secrets) and creates no agents.
func (h *agentHandlers) mayDeploy(r *http.Request, id auth.Identity, agentID string, existing bool) error {
	if id.Agents == nil {
		return nil
	}
	if !existing {
		return h.refuseWider(r, "deploy a new agent", &auth.TooWide{Part: auth.PartAgents,
			Reason: fmt.Sprintf("your credential is limited to agents %s and cannot create agent %s", strings.Join(id.Agents, ", "), agentID)})
	}
	target := auth.Grant{Role: id.Role, Project: id.ProjectID, Scopes: id.Scopes, Agents: []string{agentID}}
	holder := auth.Grant{Role: id.Role, Project: id.ProjectID, Scopes: id.Scopes, Agents: id.Agents}
	if err := auth.Within(target, holder); err != nil {
		return h.refuseWider(r, "deploy this agent", err)
	}
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

// agentFor returns the current deployment of agentID if the request may
// use it; otherwise the same NOT_FOUND as for an unknown agent.
//
// An anonymous request (no credential, loopback development) gets the
// 401 that asks for a credential instead, for every agent but the ones
// that allow anonymous use — also for unknown ones, so that it learns
// nothing about which agents exist.
func (f *agentFinder) agentFor(r *http.Request, agentID string) (*registry.Deployment, error) {
	denied := agentLookupError(agentID, core.ErrNotFound)
	if id := identity(r); id.Method == auth.MethodAnonymous && !id.Owner() {
		denied = errUnauthorized
	}
	if !validID(agentID) {
		return nil, denied
	}
	d, err := f.reg.Get(r.Context(), agentID)
	if err != nil {
		if core.ErrorCode(err) == core.CodeNotFound {
			// Deleted on another node (a Shared registry reads the
			// store): stop serving it here too.
			if f.reg.Has(agentID) {
				f.dropAgents([]string{agentID})
			}
			return nil, denied
		}
		return nil, err
	}
	if !canAgent(r, d) {
		return nil, denied
	}
	// Its project may have been deleted on another node since the
	// registry loaded it.
	gone, err := f.projectGone(r.Context(), d.ProjectID)
	if err != nil {
		return nil, err
	}
	if gone {
		f.dropAgents([]string{d.AgentID})
		return nil, denied
	}
	return d, nil
}

// canAgent reports whether the request's identity may use agent d.
func canAgent(r *http.Request, d *registry.Deployment) bool {
	id := identity(r)
	if id.Method == auth.MethodAnonymous && !id.Owner() {
		return d.Config.AuthType == core.AuthNone
	}
	return id.CanAgent(d.ProjectID, d.AgentID)
}

// dropAgents stops serving agents deleted with their project: the
// registry forgets them and their warm sandboxes are killed. Runs in
// progress finish.
func (f *agentFinder) dropAgents(ids []string) {
	for _, d := range f.reg.Remove(ids...) {
		if f.exec != nil {
			f.exec.Evict(d.Dir)
		}
	}
	for _, id := range ids {
		f.noSecrets.forget(id)
	}
}

// projectGone reports whether project (an agent's, so it existed) was
// deleted, through a.liveProjects: an agent loaded on this node before its
// project was deleted on another stops being served within the cache's
// TTL.
func (f *agentFinder) projectGone(ctx context.Context, project string) (bool, error) {
	now := f.now()
	if live, ok := f.liveProjects.get(project, now); ok {
		return !live, nil
	}
	_, err := f.store.Project(ctx, project)
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		return false, err
	}
	live := err == nil
	f.liveProjects.put(project, live, now)
	return !live, nil
}

// listBuilds lists an agent's builds, newest first (?limit=, at most
// 100), without their logs.
func (h *agentHandlers) listBuilds(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(r.URL.Query().Get("limit"), "limit", 20, 1, 100)
	if err != nil {
		return err
	}
	bs, err := h.store.Builds(r.Context(), agentOf(r).AgentID, limit)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"builds": bs})
	return nil
}

// getBuild returns one build with its log, if the caller may see its
// agent (or, for an agent whose first deploy failed, its project).
func (h *agentHandlers) getBuild(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("build_id")
	notFound := core.Errorf(core.CodeNotFound, "build %s not found", quoteID(id))
	if !validID(id) {
		return notFound
	}
	b, err := h.store.Build(r.Context(), id)
	if errors.Is(err, core.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	if !identity(r).CanAgent(b.ProjectID, b.AgentID) {
		return notFound
	}
	h.writeData(w, r, http.StatusOK, b)
	return nil
}
