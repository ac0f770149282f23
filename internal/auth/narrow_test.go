package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/authtest"
	"github.com/runagent/runagent/internal/core"
)

// users is an admin grant in p1 acting for the entries us.
func users(us ...string) auth.Grant {
	return auth.Grant{Role: core.RoleAdmin, Project: "p1", Users: us}
}

func TestWithin(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	later := day.Add(24 * time.Hour)
	admin := auth.Grant{Role: core.RoleAdmin, Project: "p1"}
	narrowAdmin := auth.Grant{Role: core.RoleAdmin, Project: "p1", Scopes: []core.Permission{core.PermAdmin}}
	a1 := auth.Grant{Role: core.RoleAdmin, Project: "p1", Agents: []string{"A1"}}
	slow := core.RateLimit{Requests: 5, PeriodSeconds: 60}
	tests := []struct {
		name           string
		target, holder auth.Grant
		want           auth.Part // "" = within
	}{
		{"same", admin, admin, ""},
		{"viewer from admin", auth.Grant{Role: core.RoleViewer, Project: "p1"}, admin, ""},
		{"owner from admin", auth.Grant{Role: core.RoleOwner}, admin, auth.PartRole},
		{"admin from user", auth.Grant{Role: core.RoleAdmin, Project: "p1", Scopes: []core.Permission{core.PermRead}}, auth.Grant{Role: core.RoleUser, Project: "p1"}, auth.PartRole},
		{"user from streamer", auth.Grant{Role: core.RoleUser, Project: "p1"}, auth.Grant{Role: core.RoleStreamer, Project: "p1"}, auth.PartRole},
		{"streamer from user", auth.Grant{Role: core.RoleStreamer, Project: "p1"}, auth.Grant{Role: core.RoleUser, Project: "p1"}, ""},
		{"unscoped admin from admin scoped to admin", admin, narrowAdmin, auth.PartScopes},
		{"scoped admin from admin scoped to admin", narrowAdmin, narrowAdmin, ""},
		{"empty scopes", auth.Grant{Role: core.RoleViewer, Project: "p1", Scopes: []core.Permission{}}, admin, auth.PartScopes},
		{"scope the role lacks", auth.Grant{Role: core.RoleViewer, Project: "p1", Scopes: []core.Permission{core.PermWrite}}, admin, auth.PartScopes},
		{"other project", auth.Grant{Role: core.RoleViewer, Project: "p2"}, admin, auth.PartProject},
		{"owner: any project", auth.Grant{Role: core.RoleAdmin, Project: "p2"}, auth.Grant{Role: core.RoleOwner}, ""},
		{"all agents from A1", admin, a1, auth.PartAgents},
		{"A2 from A1", auth.Grant{Role: core.RoleAdmin, Project: "p1", Agents: []string{"A2"}}, a1, auth.PartAgents},
		{"A1 from A1", a1, a1, ""},
		{"A1 from all", a1, admin, ""},
		{"outlives", auth.Grant{Role: core.RoleUser, Project: "p1", Expires: &later}, auth.Grant{Role: core.RoleAdmin, Project: "p1", Expires: &day}, auth.PartExpiry},
		{"never expires", auth.Grant{Role: core.RoleUser, Project: "p1"}, auth.Grant{Role: core.RoleAdmin, Project: "p1", Expires: &day}, auth.PartExpiry},
		{"expires with holder", auth.Grant{Role: core.RoleUser, Project: "p1", Expires: &day}, auth.Grant{Role: core.RoleAdmin, Project: "p1", Expires: &day}, ""},
		{"faster", auth.Grant{Role: core.RoleUser, Project: "p1", RateLimit: &core.RateLimit{Requests: 1_000_000, PeriodSeconds: 1}}, auth.Grant{Role: core.RoleAdmin, Project: "p1", RateLimit: &slow}, auth.PartRateLimit},
		{"bigger burst, slower rate", auth.Grant{Role: core.RoleUser, Project: "p1", RateLimit: &core.RateLimit{Requests: 50, PeriodSeconds: 3600}}, auth.Grant{Role: core.RoleAdmin, Project: "p1", RateLimit: &slow}, auth.PartRateLimit},
		{"unlimited", auth.Grant{Role: core.RoleUser, Project: "p1"}, auth.Grant{Role: core.RoleAdmin, Project: "p1", RateLimit: &slow}, auth.PartRateLimit},
		{"slower", auth.Grant{Role: core.RoleUser, Project: "p1", RateLimit: &core.RateLimit{Requests: 1, PeriodSeconds: 60}}, auth.Grant{Role: core.RoleAdmin, Project: "p1", RateLimit: &slow}, ""},
		{"no users from none", admin, admin, ""},
		{"a user from none", users("alice"), admin, auth.PartUsers},
		{"* from none", users("*"), admin, auth.PartUsers},
		{"* from *", users("*"), users("*"), ""},
		{"anything from *", users("alice", "team-*", "x"), users("*"), ""},
		{"* from a prefix", users("*"), users("ab*"), auth.PartUsers},
		{"longer prefix and ids from a prefix", users("abx*", "abc", "ab"), users("ab*"), ""},
		{"shorter prefix from a prefix", users("a*"), users("ab*"), auth.PartUsers},
		{"another id from a prefix", users("ac"), users("ab*"), auth.PartUsers},
		{"the same id", users("alice"), users("alice"), ""},
		{"a prefix from an exact id", users("alice*"), users("alice"), auth.PartUsers},
		{"another id", users("bob"), users("alice"), auth.PartUsers},
		{"one of two not covered", users("alice", "bob"), users("alice"), auth.PartUsers},
		{"owner holds no users", users("alice"), auth.Grant{Role: core.RoleOwner}, auth.PartUsers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.Within(tt.target, tt.holder)
			var got auth.Part
			if tw, ok := errors.AsType[*auth.TooWide](err); ok {
				got = tw.Part
			} else if err != nil {
				t.Fatalf("Within = %v, not a *auth.TooWide", err)
			}
			if got != tt.want {
				t.Errorf("auth.Within(%+v, %+v) = %v, want part %q", tt.target, tt.holder, err, tt.want)
			}
		})
	}
}

// FuzzWithin checks Within against a model written independently: a
// grant is the set of (permission, project, agent) actions it allows,
// plus the permissions its role could ever be given, its end and its
// rate; a target lies within a holder if and only if each of those is
// covered and it allows something.
func FuzzWithin(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{4, 0, 1, 1, 1, 1, 1, 3, 1, 2, 2, 2, 2, 2})
	f.Add([]byte{1, 1, 3, 5, 7, 9, 4, 2, 1, 7, 3, 6, 8, 2})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 2})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 24, 3, 0, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := byteReader(b)
		target, holder := drawGrant(&rd), drawGrant(&rd)
		err := auth.Within(target, holder)
		if err != nil {
			if _, ok := errors.AsType[*auth.TooWide](err); !ok {
				t.Fatalf("Within = %v, not a *auth.TooWide", err)
			}
		}
		if want := authtest.Within(target, holder, universeProjects, universeAgents); (err == nil) != want {
			t.Fatalf("auth.Within(%+v, %+v) = %v; the model says within = %v", target, holder, err, want)
		}
	})
}

type byteReader []byte

func (r *byteReader) next() int {
	if len(*r) == 0 {
		return 0
	}
	v := int((*r)[0])
	*r = (*r)[1:]
	return v
}

var (
	universeProjects = []string{"p1", "p2"}
	universeAgents   = []string{"A1", "A2", "A3"}
	universeUsers    = []string{"*", "ab*", "abc", "abx*", "b"}
)

// drawGrant makes a grant from 7 bytes: role, project, scopes (a bit
// set, 0 = nil, 16+ = empty), agents (a bit set, 0 = nil), expiry (0 =
// none, else days), rate (0 = none, else one of a few limits), users (a
// bit set of universeUsers, 0 = nil).
func drawGrant(r *byteReader) auth.Grant {
	g := auth.Grant{Role: core.AllRoles[r.next()%len(core.AllRoles)]}
	if g.Role != core.RoleOwner {
		g.Project = universeProjects[r.next()%len(universeProjects)]
	} else {
		r.next()
	}
	switch s := r.next() % 20; {
	case s == 0:
	case s >= 16:
		g.Scopes = []core.Permission{}
	default:
		g.Scopes = []core.Permission{}
		for i, p := range core.AllPermissions {
			if s&(1<<i) != 0 {
				g.Scopes = append(g.Scopes, p)
			}
		}
	}
	if a := r.next() % 8; a != 0 {
		g.Agents = []string{}
		for i, name := range universeAgents {
			if a&(1<<i) != 0 {
				g.Agents = append(g.Agents, name)
			}
		}
	}
	if d := r.next() % 4; d != 0 {
		e := time.Date(2027, 1, d, 0, 0, 0, 0, time.UTC)
		g.Expires = &e
	}
	rates := []core.RateLimit{{Requests: 5, PeriodSeconds: 60}, {Requests: 100, PeriodSeconds: 60}, {Requests: 2, PeriodSeconds: 1}, {Requests: 1000, PeriodSeconds: 3600}}
	if x := r.next() % (len(rates) + 1); x != 0 {
		g.RateLimit = &rates[x-1]
	}
	u := r.next() % (1 << len(universeUsers))
	for i, e := range universeUsers {
		if u&(1<<i) != 0 {
			g.Users = append(g.Users, e)
		}
	}
	return g
}
