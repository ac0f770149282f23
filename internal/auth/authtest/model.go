// Package authtest holds a model of access narrowing, written apart from
// auth.Within, for tests to check it and the routes built on it against.
package authtest

import (
	"fmt"
	"slices"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
)

// laterAgent and laterProject stand for agents and projects made later:
// a grant of "every agent" or "every project" reaches them, no list names
// them.
const (
	laterAgent   = "agent-made-later"
	laterProject = "project-made-later"
	// laterUser extends a prefix into a user id no entry names.
	laterUser = "\u2603user-made-later"
)

// admits reports whether the users entry e admits user id u, by the
// rule's own words: "x" is x, "x*" any id that starts with x.
func admits(e, u string) bool {
	if u == "" {
		return false
	}
	if e != "" && e[len(e)-1] == '*' {
		return len(u) >= len(e)-1 && u[:len(e)-1] == e[:len(e)-1]
	}
	return e == u
}

// userWorld is the user ids that tell two users lists apart: every
// exact entry, and every prefix alone and extended by laterUser.
func userWorld(lists ...[]string) []string {
	out := []string{laterUser}
	for _, l := range lists {
		for _, e := range l {
			if e != "" && e[len(e)-1] == '*' {
				p := e[:len(e)-1]
				out = append(out, p, p+laterUser)
			} else {
				out = append(out, e)
			}
		}
	}
	return out
}

// actions lists what g allows in a world of projects and agents (each
// agent exists in every project), as "permission/project/agent".
func actions(g auth.Grant, projects, agents []string) map[string]bool {
	out := map[string]bool{}
	for _, p := range core.AllPermissions {
		if !g.Role.Has(p) || (g.Scopes != nil && !slices.Contains(g.Scopes, p)) {
			continue
		}
		for _, proj := range append(slices.Clone(projects), laterProject) {
			if g.Project != "" && g.Project != proj {
				continue
			}
			for _, a := range append(slices.Clone(agents), laterAgent) {
				if g.Agents == nil || slices.Contains(g.Agents, a) {
					out[fmt.Sprint(p, "/", proj, "/", a)] = true
				}
			}
		}
	}
	return out
}

// Within reports whether target lies within holder in a world of projects
// and agents: it allows something, and nothing holder does not; its
// role could never be given a permission holder's role lacks, and is
// owner only if holder's is; every end user it may act for, holder may;
// it ends no later; and its rate allows no more requests per second and
// no more at once.
func Within(target, holder auth.Grant, projects, agents []string) bool {
	want, have := actions(target, projects, agents), actions(holder, projects, agents)
	if len(want) == 0 {
		return false
	}
	for a := range want {
		if !have[a] {
			return false
		}
	}
	for _, p := range target.Role.Permissions() {
		if !holder.Role.Has(p) {
			return false
		}
	}
	if target.Role == core.RoleOwner && holder.Role != core.RoleOwner {
		return false
	}
	for _, u := range userWorld(target.Users, holder.Users) {
		if slices.ContainsFunc(target.Users, func(e string) bool { return admits(e, u) }) &&
			!slices.ContainsFunc(holder.Users, func(e string) bool { return admits(e, u) }) {
			return false
		}
	}
	if holder.Expires != nil && (target.Expires == nil || target.Expires.After(*holder.Expires)) {
		return false
	}
	if holder.RateLimit != nil {
		if target.RateLimit == nil {
			return false
		}
		perSec := func(r *core.RateLimit) float64 { return float64(r.Requests) / float64(r.PeriodSeconds) }
		if perSec(target.RateLimit) > perSec(holder.RateLimit) || target.RateLimit.Requests > holder.RateLimit.Requests {
			return false
		}
	}
	return true
}
