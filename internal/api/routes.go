package api

import (
	"fmt"
	"net/http"
	"strings"
)

// route is one route of the API, declared once: the router, the audit
// trail and the access tests all read it from routeTable.
type route struct {
	method, path string
	// access is who may call it (see access.go); the zero rule is
	// refused at start.
	access rule
	// agent: the path's {agent_id} is resolved to the caller's view of
	// the agent before the handler runs (NOT_FOUND for one it may not
	// see), and the handler reads it with agentOf.
	agent bool
	// audit is how it is audited: an action, or notAudited with the
	// reason; the zero value is refused at start.
	audit auditSpec
	serve handlerFunc
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// routeTable is every route of the API.
func (a *API) routeTable() []route {
	const v1 = "/api/v1"
	agentRes, keyRes := pathRes("agent/", "agent_id"), pathRes("key/", "key_id")
	projectRes, principalRes := pathRes("project/", "project_id"), pathRes("principal/", "principal_id")
	return append([]route{
		{"GET", v1 + "/health", public, false, notAudited("liveness: reads nothing protected"), a.ops.health},

		// Who the caller is, and the console's sessions (session.go).
		{"GET", v1 + "/whoami", readRule, false, notAudited("the caller's own identity and permissions"), a.sessions.whoami},
		{"POST", v1 + "/session", signInRule, false, audited("session.create", auditChange, fixedRes("session")), a.sessions.signIn},
		{"DELETE", v1 + "/session", readRule, false, audited("session.delete", auditChange, fixedRes("session")), a.sessions.signOut},
		// Console sign-in through an OIDC issuer (oidc_signin.go): public,
		// there is no credential yet; the callback audits itself.
		{"GET", v1 + "/session/oidc", public, false, notAudited("the names of the sign-in issuers, nothing secret"), a.oidc.providers},
		{"GET", v1 + "/session/oidc/{id}/start", public, false, notAudited("changes nothing on the server: the state travels in the browser's sealed cookie"), a.oidc.start},
		{"GET", v1 + "/session/oidc/callback", public, false, notAudited("audited by its handler: session.create as the signed-in identity, or denied with the reason"), a.oidc.callback},

		// Agents and runs (RunAgent's routes first).
		{"GET", v1 + "/agents", readRule, false, notAudited("agent names and versions, no data"), a.agents.listAgents},
		{"POST", v1 + "/agents", adminRule, false, audited("agent.deploy", auditStream, fixedRes("agents")), a.agents.deploy},
		{"GET", v1 + "/agents/{agent_id}/architecture", readAgent, true, notAudited("the agent's entrypoints, no data"), a.agents.architecture},
		{"GET", v1 + "/agents/{agent_id}/versions", readRule, true, audited("agent.versions", auditRead, agentRes), a.agents.listVersions},
		{"POST", v1 + "/agents/{agent_id}/rollback", adminRule, true, audited("agent.rollback", auditChange, agentRes), a.agents.rollback},
		{"DELETE", v1 + "/agents/{agent_id}", adminRule, true, audited("agent.delete", auditChange, agentRes), a.agents.deleteAgent},
		{"POST", v1 + "/agents/{agent_id}/run", invokeRule, true, audited("invocation.run", auditRun, agentRes), a.runs.run},
		{"GET", v1 + "/agents/{agent_id}/run-stream", streamWSRule, true, audited("invocation.stream", auditStream, agentRes), a.runs.runStreamWebSocket},
		{"POST", v1 + "/agents/{agent_id}/run-stream", streamRule, true, audited("invocation.stream", auditStream, agentRes), a.runs.runStreamSSE},
		{"GET", v1 + "/agents/{agent_id}/invocations", readRule, true, audited("invocation.list", auditRead, agentRes), a.invocations.listInvocations},
		{"GET", v1 + "/agents/{agent_id}/invocations/stats", readRule, true, notAudited("counts and durations, no payloads"), a.invocations.invocationStats},
		{"GET", v1 + "/agents/{agent_id}/builds", readRule, true, audited("build.list", auditRead, agentRes), a.agents.listBuilds},
		{"GET", v1 + "/builds/{build_id}", readRule, false, audited("build.read", auditRead, pathRes("build/", "build_id")), a.agents.getBuild},
		{"GET", v1 + "/invocations", readRule, false, audited("invocation.list", auditRead, fixedRes("invocations")), a.invocations.listAllInvocations},
		{"GET", v1 + "/invocations/{invocation_id}", readRule, false, audited("invocation.read", auditRead, pathRes("invocation/", "invocation_id")), a.invocations.getInvocation},
		{"POST", v1 + "/invocations/{invocation_id}/cancel", cancelRule, false, audited("invocation.cancel", auditChange, pathRes("invocation/", "invocation_id")), a.invocations.cancelInvocation},
		{"GET", v1 + "/invocations/{invocation_id}/stream", rejoinRule, false, audited("invocation.rejoin", auditStream, pathRes("invocation/", "invocation_id")), a.runs.rejoinStream},
		{"GET", v1 + "/invocations/{invocation_id}/webhooks", readRule, false, audited("invocation.webhooks", auditRead, pathRes("invocation/", "invocation_id")), a.invocations.listWebhooks},

		// Secrets.
		{"GET", v1 + "/agents/{agent_id}/secrets", adminRule, true, audited("secret.list", auditRead, agentRes), a.secrets.listSecrets},
		{"PUT", v1 + "/agents/{agent_id}/secrets/{name}", adminRule, true, audited("secret.set", auditChange, secretRes), a.secrets.putSecret},
		{"DELETE", v1 + "/agents/{agent_id}/secrets/{name}", adminRule, true, audited("secret.delete", auditChange, secretRes), a.secrets.deleteSecret},

		// Keys, projects, principals.
		{"GET", v1 + "/keys", adminRule, false, audited("key.list", auditRead, fixedRes("keys")), a.keys.listKeys},
		{"POST", v1 + "/keys", adminRule, false, audited("key.create", auditChange, fixedRes("keys")), a.keys.createKey},
		{"POST", v1 + "/keys/{key_id}/revoke", adminRule, false, audited("key.revoke", auditChange, keyRes), a.keys.revokeKey},
		{"POST", v1 + "/keys/{key_id}/rotate", adminRule, false, audited("key.rotate", auditChange, keyRes), a.keys.rotateKey},
		{"GET", v1 + "/projects", ownerRule, false, notAudited("project names and rate limits"), a.projects.listProjects},
		{"POST", v1 + "/projects", ownerRule, false, audited("project.create", auditChange, fixedRes("projects")), a.projects.createProject},
		{"PATCH", v1 + "/projects/{project_id}", ownerRule, false, audited("project.update", auditChange, projectRes), a.projects.updateProject},
		{"DELETE", v1 + "/projects/{project_id}", ownerRule, false, audited("project.delete", auditChange, projectRes), a.projects.deleteProject},
		{"GET", v1 + "/principals", ownerRule, false, audited("principal.list", auditRead, fixedRes("principals")), a.projects.listPrincipals},
		{"POST", v1 + "/principals/{principal_id}/disable", ownerRule, false, audited("principal.disable", auditChange, principalRes), a.projects.disablePrincipal},
		{"POST", v1 + "/principals/{principal_id}/enable", ownerRule, false, audited("principal.enable", auditChange, principalRes), a.projects.enablePrincipal},
		{"DELETE", v1 + "/principals/{principal_id}", ownerRule, false, audited("principal.delete", auditChange, principalRes), a.projects.deletePrincipal},

		// Operations: blocks, metrics, nodes, security events, audit, keyring.
		{"GET", v1 + "/blocks", ownerRule, false, notAudited("blocked addresses, expiring on their own"), a.ops.listBlocks},
		{"DELETE", v1 + "/blocks/{client}", ownerRule, false, audited("block.lift", auditChange, pathRes("block/", "client")), a.ops.liftBlock},
		{"GET", v1 + "/metrics", ownerRule, false, notAudited("aggregate counters"), a.ops.metricsHandler},
		{"GET", v1 + "/nodes", ownerRule, false, notAudited("node ids, versions and heartbeats, no data"), a.ops.listNodes},
		{"GET", v1 + "/events", ownerRule, false, audited("event.list", auditRead, fixedRes("events")), a.ops.listEvents},
		{"GET", v1 + "/events/counts", ownerRule, false, audited("event.count", auditRead, fixedRes("events")), a.ops.countEvents},
		{"GET", v1 + "/audit", ownerRule, false, audited("audit.list", auditRead, fixedRes("audit")), a.trail.listAudit},
		{"GET", v1 + "/audit/export", ownerRule, false, audited("audit.export", auditStream, fixedRes("audit")), a.trail.exportAudit},
		{"GET", v1 + "/audit/verify", ownerRule, false, audited("audit.verify", auditRead, fixedRes("audit")), a.trail.verifyAudit},
		{"GET", v1 + "/keyring", ownerRule, false, notAudited("key ids and dates, no key"), a.trail.keyringStatus},
		{"POST", v1 + "/keyring/rotate", ownerRule, false, audited("keyring.rotate_data_key", auditChange, fixedRes("keyring")), a.trail.rotateDataKey},
	}, a.memoryRoutes(v1)...)
}

// register checks every route's declaration and serves it through its
// chain (gateway.go). A route without an access rule or an audit
// decision, one registered twice, or an agent-scoped one without
// {agent_id} stops the server from starting: no route is served half
// declared.
func (g *gateway) register(routes []route) []route {
	seen := map[string]bool{}
	for _, rt := range routes {
		p := rt.pattern()
		switch {
		case rt.access == (rule{}):
			panic(fmt.Sprintf("route %s has no access rule", p))
		case rt.audit.action == "" && rt.audit.why == "":
			panic(fmt.Sprintf("route %s says neither how it is audited nor why it is not", p))
		case rt.agent && !strings.Contains(rt.path, "{agent_id}"):
			panic(fmt.Sprintf("route %s is agent-scoped but has no {agent_id}", p))
		case seen[p]:
			panic(fmt.Sprintf("route %s is declared twice", p))
		}
		seen[p] = true
		g.mux.Handle(p, g.chain(rt))
	}
	return routes
}

// routeFor returns the declared route of pattern.
func (a *API) routeFor(pattern string) (route, bool) {
	for _, rt := range a.routes {
		if rt.pattern() == pattern {
			return rt, true
		}
	}
	return route{}, false
}

var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
