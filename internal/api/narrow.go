package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
)

// Access only narrows. Every control route that hands out, changes or
// removes a credential or an agent compares what it would create or touch
// with what the caller holds (auth.Within) and refuses anything wider with
// 403, saying which part was too wide, and a privilege_refused security
// event. What a request leaves out is inherited from the caller, never
// "everything": a key made by a key limited to agent A reaches only A.
// End users (users) are the exception, because there the least is the
// empty list: a request that names none gets none, and names only users
// within the caller's.
//
// Owners set the ceilings of time and rate: their keys' expiry and rate
// limit bound nothing (an instance would otherwise lock itself out when
// its first owner key expires); their role, scopes and projects still do.

// holderGrant is what the request's identity holds, resolved.
func (rb *rateBook) holderGrant(ctx context.Context, id auth.Identity) (auth.Grant, error) {
	g := auth.Grant{Role: id.Role, Project: id.ProjectID, Scopes: id.Scopes, Agents: id.Agents, Users: id.UserEntries()}
	if id.Owner() {
		g.Project = ""
		return g, nil
	}
	g.Expires = id.Expires
	rl, err := rb.grantRate(ctx, id.ProjectID, id.RateLimit, id.RateLimitByOwner)
	if err != nil {
		return auth.Grant{}, err
	}
	g.RateLimit = rl
	return g, nil
}

// keyGrant is the authority key k of a principal with role holds.
func (rb *rateBook) keyGrant(ctx context.Context, k *core.APIKey, role core.Role) (auth.Grant, error) {
	g := auth.Grant{Role: role, Project: k.ProjectID, Scopes: k.Scopes, Agents: k.Agents, Users: k.Users, Expires: k.ExpiresAt}
	rl, err := rb.grantRate(ctx, k.ProjectID, k.RateLimit, k.RateLimitByOwner)
	if err != nil {
		return auth.Grant{}, err
	}
	g.RateLimit = rl
	return g, nil
}

// authority is the part of a grant that says what it may do and where
// (role, scopes, project, agents, users): what revoking, disabling or
// deleting takes away, where expiry and rate limit do not matter.
func authority(id auth.Identity) auth.Grant {
	g := auth.Grant{Role: id.Role, Project: id.ProjectID, Scopes: id.Scopes, Agents: id.Agents, Users: id.UserEntries()}
	if id.Owner() {
		g.Project = ""
	}
	return g
}

// mayChangePrincipal refuses to disable, enable or delete a principal
// whose role, or any of whose keys, reaches beyond the caller.
func (h *projectHandlers) mayChangePrincipal(r *http.Request, p *core.Principal, what string) error {
	holder := authority(identity(r))
	// The principal's role and project; its scopes, agents and users
	// are its keys'.
	roleOnly := auth.Grant{Role: holder.Role, Project: holder.Project}
	if err := auth.Within(auth.Grant{Role: p.Role, Project: p.ProjectID}, roleOnly); err != nil {
		return h.refuseWider(r, what, err)
	}
	keys, err := h.store.APIKeys(r.Context(), core.KeyFilter{PrincipalID: p.ID})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := auth.Within(auth.Grant{Role: p.Role, Project: k.ProjectID, Scopes: k.Scopes, Agents: k.Agents, Users: k.Users}, holder); err != nil {
			return h.refuseWider(r, what, err)
		}
	}
	return nil
}

// refuseWider answers a request that asked for more than its caller
// holds: a privilege_refused event, and 403 naming the part.
func (b *base) refuseWider(r *http.Request, what string, err error) error {
	tw, ok := err.(*auth.TooWide)
	if !ok {
		return err
	}
	b.emit(r, core.SecurityEvent{Type: core.EventPrivilegeRefused,
		Message: "refused to " + what + ": " + tw.Error(),
		Details: map[string]string{"action": what, "part": string(tw.Part), "path": r.URL.Path}})
	noteAudit(r, "refused_part", string(tw.Part))
	return &core.Error{Code: core.CodeForbidden, Field: string(tw.Part),
		Message: fmt.Sprintf("you cannot %s: it reaches beyond your credential in %s (%s)", what, tw.Part, tw.Reason)}
}
