package auth

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Access can only narrow: a credential hands out, changes or removes only
// what lies within what it holds itself. Grant is that "what" — the
// authority of a credential, or of one it asks for — and Within is the
// one comparison every control route makes.

// Grant is the authority a credential holds or would receive, with
// "everything" already resolved: nil Scopes means every permission of
// Role, nil Agents every agent of Project, nil Expires and nil RateLimit
// no bound. Users is the other way round: nil is no end user at all, and
// "every user" is the entry "*".
type Grant struct {
	Role      core.Role
	Project   string            // "" only for owners: every project
	Scopes    []core.Permission // nil: all of Role's permissions
	Agents    []string          // nil: every agent of Project
	Users     []string          // end users it may act for (core.UsersAdmit); nil: nobody
	Expires   *time.Time        // nil: no end
	RateLimit *core.RateLimit   // the effective limit; nil: none
}

// Permissions is what g allows: its role's permissions, narrowed by its
// scopes.
func (g Grant) Permissions() []core.Permission {
	var out []core.Permission
	for _, p := range g.Role.Permissions() {
		if g.Scopes == nil || slices.Contains(g.Scopes, p) {
			out = append(out, p)
		}
	}
	return out
}

// Part names what part of a grant was too wide.
type Part string

// Parts of a grant.
const (
	PartRole      Part = "role"
	PartScopes    Part = "scopes"
	PartProject   Part = "project"
	PartAgents    Part = "agents"
	PartUsers     Part = "users"
	PartExpiry    Part = "expiry"
	PartRateLimit Part = "rate_limit"
)

// TooWide is the error Within returns: which part of the grant exceeds
// its holder's, and how, in words the holder can act on.
type TooWide struct {
	Part   Part
	Reason string
}

func (e *TooWide) Error() string { return string(e.Part) + " too wide: " + e.Reason }

// Within returns nil if target lies within holder, or a *TooWide naming
// the first part that does not: its role is not above holder's (only an
// owner makes an owner), its permissions are a subset of holder's, its
// project is holder's (owners: any), its agents are among holder's, every
// users entry is covered by one of holder's (core.EntryCovers), it ends
// no later than holder and its rate limit allows no more.
func Within(target, holder Grant) error {
	if target.Role == core.RoleOwner && holder.Role != core.RoleOwner {
		return &TooWide{PartRole, "only an instance owner can give the owner role"}
	}
	if !subset(target.Role.Permissions(), holder.Role.Permissions()) {
		return &TooWide{PartRole, fmt.Sprintf("role %s has permissions your role %s lacks", target.Role, holder.Role)}
	}
	want, have := target.Permissions(), holder.Permissions()
	if len(want) == 0 {
		return &TooWide{PartScopes, fmt.Sprintf("none of the scopes is a permission of role %s, so the key could do nothing", target.Role)}
	}
	if !subset(want, have) {
		return &TooWide{PartScopes, fmt.Sprintf("it would hold %s; you hold only %s", permList(want), permList(have))}
	}
	if holder.Project != "" && target.Project != holder.Project {
		return &TooWide{PartProject, "it is not in your project"}
	}
	if target.Agents != nil && len(target.Agents) == 0 {
		return &TooWide{PartAgents, "it names no agent, so the key could reach none"}
	}
	if holder.Agents != nil {
		if target.Agents == nil {
			return &TooWide{PartAgents, fmt.Sprintf("it would reach every agent of the project; you reach only %s", strings.Join(holder.Agents, ", "))}
		}
		for _, a := range target.Agents {
			if !slices.Contains(holder.Agents, a) {
				return &TooWide{PartAgents, fmt.Sprintf("agent %s is not one of yours (%s)", a, strings.Join(holder.Agents, ", "))}
			}
		}
	}
	if u, ok := core.UsersCover(holder.Users, target.Users); !ok {
		return &TooWide{PartUsers, fmt.Sprintf("users entry %s is not within yours (%s)", quoteEntry(u), entryList(holder.Users))}
	}
	if holder.Expires != nil && (target.Expires == nil || target.Expires.After(*holder.Expires)) {
		return &TooWide{PartExpiry, fmt.Sprintf("it would outlive your credential, which expires at %s", holder.Expires.UTC().Format(time.RFC3339))}
	}
	if holder.RateLimit != nil && (target.RateLimit == nil || !target.RateLimit.Within(*holder.RateLimit)) {
		return &TooWide{PartRateLimit, fmt.Sprintf("it would allow more than your own rate limit of %d requests per %d s", holder.RateLimit.Requests, holder.RateLimit.PeriodSeconds)}
	}
	return nil
}

// subset reports whether every element of a is in b.
func subset[T comparable](a, b []T) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// quoteEntry quotes a users entry for a message, shortened if long.
func quoteEntry(e string) string {
	if len(e) > 64 {
		e = strings.ToValidUTF8(e[:64], "") + "…"
	}
	return fmt.Sprintf("%q", e)
}

// entryList names a users list in a message: its first entries.
func entryList(us []string) string {
	if len(us) == 0 {
		return "none: your credential acts for no end user"
	}
	const show = 5
	q := make([]string, 0, show)
	for _, u := range us[:min(len(us), show)] {
		q = append(q, quoteEntry(u))
	}
	s := strings.Join(q, ", ")
	if len(us) > show {
		s += fmt.Sprintf(" and %d more", len(us)-show)
	}
	return s
}

func permList(ps []core.Permission) string {
	if len(ps) == 0 {
		return "no permission"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// InheritScopes is the scopes a new grant of role gets when its request
// names none: holder's, as far as role has them (nil when holder is not
// narrowed, so the stored key reads "every permission of its role").
func InheritScopes(role core.Role, holder Grant) []core.Permission {
	if holder.Scopes == nil {
		return nil
	}
	out := []core.Permission{}
	for _, p := range role.Permissions() {
		if slices.Contains(holder.Scopes, p) {
			out = append(out, p)
		}
	}
	return out
}
