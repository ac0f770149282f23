package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
)

// Access only narrows. Every control route that hands out, changes or
// removes a credential or an agent compares what it would create or touch
// with what the caller holds (auth.Within) and refuses anything wider with
// 403, saying which part was too wide, and a privilege_refused security
// event. What a request leaves out is inherited from the caller, never
// "everything": a key made by a key limited to agent A reaches only A.
//
// Owners set the ceilings of time and rate: their keys' expiry and rate
// limit bound nothing (an instance would otherwise lock itself out when
// its first owner key expires); their role, scopes and projects still do.

// holderGrant is what the request's identity holds, resolved.
func (a *API) holderGrant(ctx context.Context, id auth.Identity) (auth.Grant, error) {
	g := auth.Grant{Role: id.Role, Project: id.ProjectID, Scopes: id.Scopes, Agents: id.Agents}
	if id.Owner() {
		g.Project = ""
		return g, nil
	}
	g.Expires = id.Expires
	rl, err := a.grantRate(ctx, id.ProjectID, id.RateLimit, id.RateLimitByOwner)
	if err != nil {
		return auth.Grant{}, err
	}
	g.RateLimit = rl
	return g, nil
}

// keyGrant is the authority key k of a principal with role holds.
func (a *API) keyGrant(ctx context.Context, k *core.APIKey, role core.Role) (auth.Grant, error) {
	g := auth.Grant{Role: role, Project: k.ProjectID, Scopes: k.Scopes, Agents: k.Agents, Expires: k.ExpiresAt}
	rl, err := a.grantRate(ctx, k.ProjectID, k.RateLimit, k.RateLimitByOwner)
	if err != nil {
		return auth.Grant{}, err
	}
	g.RateLimit = rl
	return g, nil
}

// grantRate is the rate limit a credential's grant holds (see
// effectiveRate), the server's default spelled out; nil when the server
// limits no rates.
func (a *API) grantRate(ctx context.Context, project string, own *core.RateLimit, byOwner bool) (*core.RateLimit, error) {
	if a.limiter == nil {
		return nil, nil
	}
	rl, err := a.effectiveRate(ctx, project, own, byOwner)
	if err != nil || rl != nil {
		return rl, err
	}
	d := fromLimit(a.rateLimit)
	return &d, nil
}

// effectiveRate is the rate limit that applies to a credential of project
// with its own limit own (nil: none): own if an owner set it; else the
// project's limit is a ceiling, so own counts only while it lies within
// it; else the project's. Nil means the server's default.
func (a *API) effectiveRate(ctx context.Context, project string, own *core.RateLimit, byOwner bool) (*core.RateLimit, error) {
	if own != nil && (byOwner || project == "") {
		return own, nil
	}
	var proj *core.RateLimit
	if project != "" {
		var err error
		if proj, err = a.projectRate(ctx, project); err != nil {
			return nil, err
		}
	}
	if own != nil && (proj == nil || own.Within(*proj)) {
		return own, nil
	}
	return proj, nil
}

// fromLimit expresses a limiter's limit as a stored rate limit: its burst
// per the time the sustained rate takes to refill it (whole seconds, at
// least one), so both compare as they are.
func fromLimit(l ratelimit.Limit) core.RateLimit {
	n := l.Burst
	if n == 0 {
		n = l.Rate
	}
	secs := max(int((l.Period*time.Duration(n)/time.Duration(l.Rate)+time.Second-1)/time.Second), 1)
	return core.RateLimit{Requests: n, PeriodSeconds: secs}
}

// authority is the part of a grant that says what it may do and where
// (role, scopes, project, agents): what revoking, disabling or deleting
// takes away, where expiry and rate limit do not matter.
func authority(id auth.Identity) auth.Grant {
	g := auth.Grant{Role: id.Role, Project: id.ProjectID, Scopes: id.Scopes, Agents: id.Agents}
	if id.Owner() {
		g.Project = ""
	}
	return g
}

// mayChangePrincipal refuses to disable, enable or delete a principal
// whose role, or any of whose keys, reaches beyond the caller.
func (a *API) mayChangePrincipal(r *http.Request, p *core.Principal, what string) error {
	holder := authority(identity(r))
	// The principal's role and project; its scopes and agents are its
	// keys'.
	roleOnly := auth.Grant{Role: holder.Role, Project: holder.Project}
	if err := auth.Within(auth.Grant{Role: p.Role, Project: p.ProjectID}, roleOnly); err != nil {
		return a.refuseWider(r, what, err)
	}
	keys, err := a.store.APIKeys(r.Context(), core.KeyFilter{PrincipalID: p.ID})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := auth.Within(auth.Grant{Role: p.Role, Project: k.ProjectID, Scopes: k.Scopes, Agents: k.Agents}, holder); err != nil {
			return a.refuseWider(r, what, err)
		}
	}
	return nil
}

// refuseWider answers a request that asked for more than its caller
// holds: a privilege_refused event, and 403 naming the part.
func (a *API) refuseWider(r *http.Request, what string, err error) error {
	tw, ok := err.(*auth.TooWide)
	if !ok {
		return err
	}
	a.emit(r, core.SecurityEvent{Type: core.EventPrivilegeRefused,
		Message: "refused to " + what + ": " + tw.Error(),
		Details: map[string]string{"action": what, "part": string(tw.Part), "path": r.URL.Path}})
	noteAudit(r, "refused_part", string(tw.Part))
	return &core.Error{Code: core.CodeForbidden, Field: string(tw.Part),
		Message: fmt.Sprintf("you cannot %s: it reaches beyond your credential in %s (%s)", what, tw.Part, tw.Reason)}
}
