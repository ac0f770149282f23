package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

// identityStore is a store with projects, principals and keys. Run
// asserts that the store under test is one; once core.Store includes
// core.IdentityStore this is just core.Store.
type identityStore interface {
	core.Store
	core.IdentityStore
}

// identityTests are run by Run on a store that must also be a
// core.IdentityStore.
//
// Beyond the documentation of core.IdentityStore, they pin down:
//
//   - A new store has exactly one project, core.DefaultProject, and no
//     principals. An agent version or invocation without a ProjectID is in
//     it, and reads back with ProjectID DefaultProject (the input's empty
//     ProjectID is filled in).
//   - Creating a project, principal or key with an empty ID is a
//     CodeValidation error, and with a used ID a CodeConflict error that
//     changes nothing. A zero CreatedAt is filled in.
//   - A principal is an owner exactly when it has no project; its Role and
//     Kind must be known. Its project, or a key's principal, not existing is
//     a CodeValidation error (the reference is bad; the target of the call
//     is not missing).
//   - A key's ProjectID is its principal's (filled in; another one is a
//     CodeValidation error). Its Hash must not be empty and its Scopes must
//     be known permissions and its Users a valid users list
//     (core.CheckUsers) (CodeValidation). Empty Scopes, Agents and Users
//     read back as nil; Users keep their order and bytes.
//   - APIKeys orders by CreatedAt descending, then ID descending. With a
//     Limit it answers that many at most, after After (a key's time and
//     id, whether or not that key exists), in the same order; a negative
//     Limit is CodeValidation.
//   - RevokeAPIKey and TouchAPIKey of an unknown key wrap ErrNotFound.
//     Revoking again keeps the first time; touching with an earlier time
//     than the last use changes nothing.
//   - RotateAPIKey sets the old key's ReplacedBy and ExpiresAt (the sooner
//     of its own and the new one). An unknown old key wraps ErrNotFound; a
//     revoked or already rotated one is a CodeConflict; a successor of
//     another principal is a CodeValidation error (an empty PrincipalID is
//     filled in). A failed rotation changes nothing.
//   - A version of an agent of another project is a CodeConflict error
//     whose message names neither project; a version in a project that
//     does not exist is a CodeValidation error.
//   - InvocationFilter.ProjectID selects one project's invocations.
var identityTests = []struct {
	name string
	fn   func(t *testing.T, s identityStore)
}{
	{"DefaultProject", testDefaultProject},
	{"Projects", testProjects},
	{"Principals", testPrincipals},
	{"PrincipalErrors", testPrincipalErrors},
	{"APIKeyRoundTrip", testAPIKeyRoundTrip},
	{"APIKeyErrors", testAPIKeyErrors},
	{"APIKeys", testAPIKeys},
	{"APIKeysPaged", testAPIKeysPaged},
	{"AgentsPaged", testAgentsPaged},
	{"RevokeAPIKey", testRevokeAPIKey},
	{"RotateAPIKey", testRotateAPIKey},
	{"RotateAPIKeyFailures", testRotateAPIKeyFailures},
	{"ConcurrentRotations", testConcurrentRotations},
	{"TouchAPIKey", testTouchAPIKey},
	{"IdentityNotFound", testIdentityNotFound},
	{"IdentityHostileStrings", testIdentityHostileStrings},
	{"AgentProjects", testAgentProjects},
	{"InvocationProjects", testInvocationProjects},
}

func mustCreateProject(t *testing.T, s identityStore, p *core.Project) {
	t.Helper()
	if err := s.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("CreateProject(%q) = %v", p.ID, err)
	}
}

func mustProject(t *testing.T, s identityStore, id string) *core.Project {
	t.Helper()
	p, err := s.Project(t.Context(), id)
	if err != nil {
		t.Fatalf("Project(%q) = %v", id, err)
	}
	checkUTC(t, "Project.CreatedAt", p.CreatedAt)
	return p
}

func mustProjects(t *testing.T, s identityStore) []*core.Project {
	t.Helper()
	ps, err := s.Projects(t.Context())
	if err != nil {
		t.Fatalf("Projects() = %v", err)
	}
	for _, p := range ps {
		checkUTC(t, "Project.CreatedAt", p.CreatedAt)
	}
	return ps
}

func principal(id, project string, role core.Role) *core.Principal {
	return &core.Principal{
		ID: id, ProjectID: project, Name: "name of " + id, Kind: core.PrincipalUser,
		Role: role, CreatedAt: base,
	}
}

func mustCreatePrincipal(t *testing.T, s identityStore, p *core.Principal) {
	t.Helper()
	if err := s.CreatePrincipal(t.Context(), p); err != nil {
		t.Fatalf("CreatePrincipal(%q) = %v", p.ID, err)
	}
}

func mustPrincipal(t *testing.T, s identityStore, id string) *core.Principal {
	t.Helper()
	p, err := s.Principal(t.Context(), id)
	if err != nil {
		t.Fatalf("Principal(%q) = %v", id, err)
	}
	checkUTC(t, "Principal.CreatedAt", p.CreatedAt)
	if p.DisabledAt != nil {
		checkUTC(t, "Principal.DisabledAt", *p.DisabledAt)
	}
	if p.DeletedAt != nil {
		checkUTC(t, "Principal.DeletedAt", *p.DeletedAt)
	}
	return p
}

func mustPrincipals(t *testing.T, s identityStore, f core.PrincipalFilter) []*core.Principal {
	t.Helper()
	ps, err := s.Principals(t.Context(), f)
	if err != nil {
		t.Fatalf("Principals(%+v) = %v", f, err)
	}
	return ps
}

func mustCount(t *testing.T, s identityStore) int {
	t.Helper()
	n, err := s.CountPrincipals(t.Context())
	if err != nil {
		t.Fatalf("CountPrincipals() = %v", err)
	}
	return n
}

// key returns a key of principal created at the given time.
func key(id, principal string, created time.Time) *core.APIKey {
	return &core.APIKey{
		ID: id, PrincipalID: principal, Name: "key " + id,
		Hash:      []byte("\x00\xffhash of " + id),
		CreatedAt: created,
	}
}

func mustCreateKey(t *testing.T, s identityStore, k *core.APIKey) {
	t.Helper()
	if err := s.CreateAPIKey(t.Context(), k); err != nil {
		t.Fatalf("CreateAPIKey(%q) = %v", k.ID, err)
	}
}

func mustKey(t *testing.T, s identityStore, id string) *core.APIKey {
	t.Helper()
	k, err := s.APIKey(t.Context(), id)
	if err != nil {
		t.Fatalf("APIKey(%q) = %v", id, err)
	}
	checkUTC(t, "APIKey.CreatedAt", k.CreatedAt)
	for name, tm := range map[string]*time.Time{"ExpiresAt": k.ExpiresAt, "RevokedAt": k.RevokedAt, "LastUsedAt": k.LastUsedAt} {
		if tm != nil {
			checkUTC(t, "APIKey."+name, *tm)
		}
	}
	return k
}

func mustKeys(t *testing.T, s identityStore, f core.KeyFilter) []*core.APIKey {
	t.Helper()
	ks, err := s.APIKeys(t.Context(), f)
	if err != nil {
		t.Fatalf("APIKeys(%+v) = %v", f, err)
	}
	return ks
}

func keyIDs(ks []*core.APIKey) []string {
	out := []string{}
	for _, k := range ks {
		out = append(out, k.ID)
	}
	return out
}

// check compares got and want with cmp, byte slices exactly.
func check[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if diff := cmp.Diff(got, want, exactBytes); diff != "" {
		t.Errorf("%s (-got +want):\n%s", what, diff)
	}
}

// checkMissingKey checks that a failed create left no key id behind.
func checkMissingKey(t *testing.T, s identityStore, what, id string) {
	t.Helper()
	if k, err := s.APIKey(t.Context(), id); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("%s: APIKey(%q) = %+v, %v; want ErrNotFound", what, id, k, err)
	}
}

// aboutNow checks that a time the store filled in is the current time.
func aboutNow(t *testing.T, what string, got, before time.Time) {
	t.Helper()
	checkUTC(t, what, got)
	if got.Before(before.Add(-time.Second)) || got.After(time.Now().Add(time.Second)) {
		t.Errorf("%s = %v, want about %v", what, got, before)
	}
}

// identity is the fixture of the key tests: projects p1 and p2, a user
// and a service in p1, an admin in p2 and an owner.
func identity(t *testing.T, s identityStore) {
	t.Helper()
	mustCreateProject(t, s, &core.Project{ID: "p1", Name: "Project One", CreatedAt: base})
	mustCreateProject(t, s, &core.Project{ID: "p2", Name: "Project Two", CreatedAt: base})
	mustCreatePrincipal(t, s, principal("alice", "p1", core.RoleUser))
	svc := principal("svc", "p1", core.RoleStreamer)
	svc.Kind = core.PrincipalService
	mustCreatePrincipal(t, s, svc)
	mustCreatePrincipal(t, s, principal("bob", "p2", core.RoleAdmin))
	mustCreatePrincipal(t, s, principal("root", "", core.RoleOwner))
}

func testDefaultProject(t *testing.T, s identityStore) {
	before := time.Now()
	ps := mustProjects(t, s)
	if len(ps) != 1 || ps[0].ID != core.DefaultProject {
		t.Fatalf("Projects() of a new store = %v, want just %q", ps, core.DefaultProject)
	}
	p := mustProject(t, s, core.DefaultProject)
	check(t, "Project(default)", p, ps[0])
	if p.CreatedAt.After(before.Add(time.Second)) {
		t.Errorf("default project created at %v, after the store was opened (%v)", p.CreatedAt, before)
	}
	if n := mustCount(t, s); n != 0 {
		t.Errorf("CountPrincipals() of a new store = %d, want 0", n)
	}
	err := s.CreateProject(t.Context(), &core.Project{ID: core.DefaultProject, Name: "mine", CreatedAt: base})
	checkCode(t, "CreateProject(default)", err, core.CodeConflict)
	check(t, "Project(default) after a conflicting create", mustProject(t, s, core.DefaultProject), p)
}

func testProjects(t *testing.T, s identityStore) {
	ctx := t.Context()
	for i, id := range []string{"charlie", "alpha", "bravo"} {
		p := &core.Project{ID: id, Name: "Project " + id, CreatedAt: base.Add(time.Duration(i) * time.Hour)}
		mustCreateProject(t, s, p)
		check(t, fmt.Sprintf("Project(%q)", id), mustProject(t, s, id), p)
	}
	got := mustProjects(t, s)
	var ids []string
	for _, p := range got {
		ids = append(ids, p.ID)
	}
	if want := []string{"alpha", "bravo", "charlie", core.DefaultProject}; !cmp.Equal(ids, want) {
		t.Errorf("Projects() ids = %v, want %v", ids, want)
	}
	check(t, "Projects()[0]", got[0], &core.Project{ID: "alpha", Name: "Project alpha", CreatedAt: base.Add(time.Hour)})

	// A zero CreatedAt is filled in.
	before := time.Now()
	p := &core.Project{ID: "delta"}
	mustCreateProject(t, s, p)
	aboutNow(t, "CreateProject set CreatedAt", p.CreatedAt, before)
	check(t, "Project(delta)", mustProject(t, s, "delta"), p)

	dup := &core.Project{ID: "alpha", Name: "impostor", CreatedAt: base.Add(time.Minute)}
	checkCode(t, "CreateProject(alpha) again", s.CreateProject(ctx, dup), core.CodeConflict)
	if got := mustProject(t, s, "alpha"); got.Name != "Project alpha" {
		t.Errorf("duplicate CreateProject changed the name to %q", got.Name)
	}
	checkCode(t, "CreateProject without id", s.CreateProject(ctx, &core.Project{Name: "x", CreatedAt: base}), core.CodeValidation)
	checkCode(t, "CreateProject with a zero rate limit", s.CreateProject(ctx, &core.Project{ID: "echo", RateLimit: &core.RateLimit{}}), core.CodeValidation)
	if n := len(mustProjects(t, s)); n != 5 {
		t.Errorf("after refused creates there are %d projects, want 5", n)
	}

	// Rate limits: set at creation, changed, cleared; invalid ones and
	// unknown projects are refused without changing anything.
	limited := &core.Project{ID: "foxtrot", Name: "F", CreatedAt: base, RateLimit: &core.RateLimit{Requests: 7, PeriodSeconds: 60}}
	mustCreateProject(t, s, limited)
	check(t, "Project(foxtrot)", mustProject(t, s, "foxtrot"), limited)
	if err := s.SetProjectRateLimit(ctx, "alpha", &core.RateLimit{Requests: 1000, PeriodSeconds: 1}); err != nil {
		t.Fatalf("SetProjectRateLimit(alpha): %v", err)
	}
	check(t, "alpha's rate limit", mustProject(t, s, "alpha").RateLimit, &core.RateLimit{Requests: 1000, PeriodSeconds: 1})
	checkCode(t, "SetProjectRateLimit(period 0)", s.SetProjectRateLimit(ctx, "alpha", &core.RateLimit{Requests: 1}), core.CodeValidation)
	check(t, "alpha's rate limit after a refused change", mustProject(t, s, "alpha").RateLimit, &core.RateLimit{Requests: 1000, PeriodSeconds: 1})
	if err := s.SetProjectRateLimit(ctx, "alpha", nil); err != nil {
		t.Fatalf("SetProjectRateLimit(alpha, nil): %v", err)
	}
	if rl := mustProject(t, s, "alpha").RateLimit; rl != nil {
		t.Errorf("alpha's rate limit after clearing = %+v, want nil", rl)
	}
	if err := s.SetProjectRateLimit(ctx, "nope", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("SetProjectRateLimit(unknown) = %v, want ErrNotFound", err)
	}
}

func testPrincipals(t *testing.T, s identityStore) {
	mustCreateProject(t, s, &core.Project{ID: "p1", Name: "One", CreatedAt: base})
	mustCreateProject(t, s, &core.Project{ID: "p2", Name: "Two", CreatedAt: base})
	disabled, deleted := base.Add(time.Hour), base.Add(2*time.Hour)
	ps := []*core.Principal{
		principal("zed", "p1", core.RoleViewer),
		principal("amy", "p1", core.RoleAdmin),
		{ID: "ci", ProjectID: "p1", Name: "CI", Kind: core.PrincipalService, Role: core.RoleUser, CreatedAt: base.Add(time.Second), DisabledAt: &disabled},
		principal("bob", "p2", core.RoleStreamer),
		principal("root", "", core.RoleOwner),
		principal("admin", "", core.RoleOwner),
		principal("dflt", core.DefaultProject, core.RoleUser),
		{ID: "gone", ProjectID: "p2", Name: "Gone", Kind: core.PrincipalUser, Role: core.RoleViewer, CreatedAt: base, DisabledAt: &disabled, DeletedAt: &deleted},
	}
	for i, p := range ps {
		if n := mustCount(t, s); n != i {
			t.Errorf("CountPrincipals() = %d, want %d", n, i)
		}
		mustCreatePrincipal(t, s, p)
		check(t, fmt.Sprintf("Principal(%q)", p.ID), mustPrincipal(t, s, p.ID), p)
	}
	if n := mustCount(t, s); n != len(ps) {
		t.Errorf("CountPrincipals() = %d, want %d", n, len(ps))
	}
	byID := map[string]*core.Principal{}
	for _, p := range ps {
		byID[p.ID] = p
	}
	for _, tt := range []struct {
		f    core.PrincipalFilter
		want []string
	}{
		{core.PrincipalFilter{ProjectID: "p1"}, []string{"amy", "ci", "zed"}},
		{core.PrincipalFilter{ProjectID: "p2"}, []string{"bob", "gone"}},
		{core.PrincipalFilter{Role: core.RoleOwner}, []string{"admin", "root"}},
		{core.PrincipalFilter{ProjectID: core.DefaultProject}, []string{"dflt"}},
		{core.PrincipalFilter{ProjectID: "p1", Role: core.RoleAdmin}, []string{"amy"}},
		{core.PrincipalFilter{}, []string{"admin", "amy", "bob", "ci", "dflt", "gone", "root", "zed"}},
		{core.PrincipalFilter{ProjectID: "p3"}, nil},
		{core.PrincipalFilter{ProjectID: "P1"}, nil},
		{core.PrincipalFilter{Role: "superuser"}, nil},
	} {
		got := mustPrincipals(t, s, tt.f)
		if got == nil {
			t.Errorf("Principals(%+v) = nil, want a non-nil slice", tt.f)
		}
		var want []*core.Principal
		for _, id := range tt.want {
			want = append(want, byID[id])
		}
		if len(want) == 0 {
			want = []*core.Principal{}
		}
		check(t, fmt.Sprintf("Principals(%+v)", tt.f), got, want)
	}

	// A zero CreatedAt is filled in.
	before := time.Now()
	p := &core.Principal{ID: "new", ProjectID: "p2", Kind: core.PrincipalService, Role: core.RoleUser}
	mustCreatePrincipal(t, s, p)
	aboutNow(t, "CreatePrincipal set CreatedAt", p.CreatedAt, before)
	check(t, "Principal(new)", mustPrincipal(t, s, "new"), p)
}

func testPrincipalErrors(t *testing.T, s identityStore) {
	mustCreateProject(t, s, &core.Project{ID: "p1", Name: "One", CreatedAt: base})
	orig := principal("alice", "p1", core.RoleUser)
	mustCreatePrincipal(t, s, orig)
	tests := []struct {
		name string
		p    *core.Principal
		code string
	}{
		{"duplicate id", principal("alice", "p1", core.RoleAdmin), core.CodeConflict},
		{"duplicate id as owner", principal("alice", "", core.RoleOwner), core.CodeConflict},
		{"unknown project", principal("carol", "no-such-project", core.RoleUser), core.CodeValidation},
		{"no id", principal("", "p1", core.RoleUser), core.CodeValidation},
		{"unknown role", principal("dave", "p1", "superuser"), core.CodeValidation},
		{"no role", principal("dave", "p1", ""), core.CodeValidation},
		{"owner in a project", principal("dave", "p1", core.RoleOwner), core.CodeValidation},
		{"admin without a project", principal("dave", "", core.RoleAdmin), core.CodeValidation},
		{"unknown kind", &core.Principal{ID: "dave", ProjectID: "p1", Kind: "robot", Role: core.RoleUser, CreatedAt: base}, core.CodeValidation},
		{"no kind", &core.Principal{ID: "dave", ProjectID: "p1", Role: core.RoleUser, CreatedAt: base}, core.CodeValidation},
	}
	for _, tt := range tests {
		checkCode(t, "CreatePrincipal with "+tt.name, s.CreatePrincipal(t.Context(), tt.p), tt.code)
	}
	check(t, "Principal(alice) after refused creates", mustPrincipal(t, s, "alice"), orig)
	if n := mustCount(t, s); n != 1 {
		t.Errorf("CountPrincipals() after refused creates = %d, want 1", n)
	}
	for _, id := range []string{"carol", "dave"} {
		_, err := s.Principal(t.Context(), id)
		checkNotFound(t, fmt.Sprintf("Principal(%q) after a refused create", id), err)
	}
}

func testAPIKeyRoundTrip(t *testing.T, s identityStore) {
	identity(t, s)
	expires := base.Add(90 * 24 * time.Hour)
	revoked := base.Add(time.Hour)
	used := base.Add(time.Minute)
	tests := []struct {
		name string
		in   *core.APIKey
		// project is the ProjectID the store fills in.
		project string
	}{
		{
			name: "every field",
			in: &core.APIKey{
				ID: "k-full", PrincipalID: "alice", ProjectID: "p1", Name: "deploy bot",
				Hash:      []byte{0, 1, 2, 0xfe, 0xff, 0},
				Scopes:    []core.Permission{core.PermRead, core.PermStream},
				Agents:    []string{"agent-2", "agent-1", "agent with spaces"},
				Users:     []string{"zoë@example.com", "team-*", "a,b", "*"},
				CreatedAt: base, ExpiresAt: &expires, RevokedAt: &revoked, LastUsedAt: &used,
				LastUsedIP: "2001:db8::1", ReplacedBy: "k-other",
				RateLimit: &core.RateLimit{Requests: 5, PeriodSeconds: 60}, RateLimitByOwner: true,
			},
			project: "p1",
		},
		{
			name: "rate limit set by an admin",
			in: &core.APIKey{ID: "k-admin-rate", PrincipalID: "alice", Hash: []byte("h"), CreatedAt: base,
				RateLimit: &core.RateLimit{Requests: 9, PeriodSeconds: 1}},
			project: "p1",
		},
		{"project filled in", key("k-plain", "svc", base), "p1"},
		{"owner", key("k-owner", "root", base), ""},
		{"other project", key("k-bob", "bob", base), "p2"},
		{
			name:    "empty scopes, agents and users",
			in:      &core.APIKey{ID: "k-empty", PrincipalID: "alice", Hash: []byte("h"), Scopes: []core.Permission{}, Agents: []string{}, Users: []string{}, CreatedAt: base},
			project: "p1",
		},
		{
			name:    "one agent, every scope",
			in:      &core.APIKey{ID: "k-all", PrincipalID: "alice", Hash: []byte("h"), Scopes: core.AllPermissions, Agents: []string{"only"}, CreatedAt: base},
			project: "p1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := *tt.in
			mustCreateKey(t, s, &k)
			if k.ProjectID != tt.project {
				t.Errorf("CreateAPIKey set ProjectID = %q, want %q", k.ProjectID, tt.project)
			}
			want := *tt.in
			want.ProjectID = tt.project
			if len(want.Scopes) == 0 {
				want.Scopes = nil
			}
			if len(want.Agents) == 0 {
				want.Agents = nil
			}
			if len(want.Users) == 0 {
				want.Users = nil
			}
			check(t, "APIKey", mustKey(t, s, k.ID), &want)
		})
	}

	before := time.Now()
	k := &core.APIKey{ID: "k-now", PrincipalID: "alice", Hash: []byte("h")}
	mustCreateKey(t, s, k)
	aboutNow(t, "CreateAPIKey set CreatedAt", k.CreatedAt, before)
	check(t, "APIKey(k-now)", mustKey(t, s, "k-now"), k)
}

func testAPIKeyErrors(t *testing.T, s identityStore) {
	identity(t, s)
	orig := key("k1", "alice", base)
	mustCreateKey(t, s, orig)
	withProject := func(k *core.APIKey, p string) *core.APIKey { k.ProjectID = p; return k }
	tests := []struct {
		name string
		k    *core.APIKey
		code string
	}{
		{"duplicate id", key("k1", "bob", base.Add(time.Hour)), core.CodeConflict},
		{"unknown principal", key("k2", "nobody", base), core.CodeValidation},
		{"no principal", key("k2", "", base), core.CodeValidation},
		{"another project than its principal's", withProject(key("k2", "alice", base), "p2"), core.CodeValidation},
		{"a project for an owner's key", withProject(key("k2", "root", base), "p1"), core.CodeValidation},
		{"no id", key("", "alice", base), core.CodeValidation},
		{"no hash", &core.APIKey{ID: "k2", PrincipalID: "alice", CreatedAt: base}, core.CodeValidation},
		{"unknown scope", &core.APIKey{ID: "k2", PrincipalID: "alice", Hash: []byte("h"), Scopes: []core.Permission{"read", "root"}, CreatedAt: base}, core.CodeValidation},
		{"zero rate limit", &core.APIKey{ID: "k2", PrincipalID: "alice", Hash: []byte("h"), RateLimit: &core.RateLimit{}, CreatedAt: base}, core.CodeValidation},
		{"rate period over a day", &core.APIKey{ID: "k2", PrincipalID: "alice", Hash: []byte("h"), RateLimit: &core.RateLimit{Requests: 1, PeriodSeconds: 86401}, CreatedAt: base}, core.CodeValidation},
		{"a * inside a users entry", &core.APIKey{ID: "k2", PrincipalID: "alice", Hash: []byte("h"), Users: []string{"ok", "a*b"}, CreatedAt: base}, core.CodeValidation},
		{"an empty users entry", &core.APIKey{ID: "k2", PrincipalID: "alice", Hash: []byte("h"), Users: []string{""}, CreatedAt: base}, core.CodeValidation},
		{"a users entry not UTF-8", &core.APIKey{ID: "k2", PrincipalID: "alice", Hash: []byte("h"), Users: []string{"\xff"}, CreatedAt: base}, core.CodeValidation},
		{"too many users entries", &core.APIKey{ID: "k2", PrincipalID: "alice", Hash: []byte("h"), Users: slices.Repeat([]string{"a"}, core.MaxKeyUsers+1), CreatedAt: base}, core.CodeValidation},
	}
	for _, tt := range tests {
		checkCode(t, "CreateAPIKey with "+tt.name, s.CreateAPIKey(t.Context(), tt.k), tt.code)
	}
	orig.ProjectID = "p1"
	check(t, "APIKey(k1) after refused creates", mustKey(t, s, "k1"), orig)
	checkMissingKey(t, s, "after refused creates", "k2")
	if got := keyIDs(mustKeys(t, s, core.KeyFilter{})); !cmp.Equal(got, []string{"k1"}) {
		t.Errorf("APIKeys() after refused creates = %v, want [k1]", got)
	}
}

func testAPIKeys(t *testing.T, s identityStore) {
	identity(t, s)
	if got := mustKeys(t, s, core.KeyFilter{}); got == nil || len(got) != 0 {
		t.Errorf("APIKeys() with no keys = %#v, want an empty, non-nil slice", got)
	}
	// Created in this order, at these offsets: ids and times disagree, and
	// k-a and k-b share a time.
	fixture := []struct {
		id, principal string
		at            time.Duration
	}{
		{"k-c", "alice", 0},
		{"k-a", "svc", 2 * time.Second},
		{"k-b", "alice", 2 * time.Second},
		{"k-e", "bob", time.Second},
		{"k-d", "root", 3 * time.Second},
		{"k-f", "alice", -time.Second},
	}
	for _, f := range fixture {
		mustCreateKey(t, s, key(f.id, f.principal, base.Add(f.at)))
	}
	tests := []struct {
		f    core.KeyFilter
		want []string
	}{
		{core.KeyFilter{}, []string{"k-d", "k-b", "k-a", "k-e", "k-c", "k-f"}},
		{core.KeyFilter{ProjectID: "p1"}, []string{"k-b", "k-a", "k-c", "k-f"}},
		{core.KeyFilter{ProjectID: "p2"}, []string{"k-e"}},
		{core.KeyFilter{PrincipalID: "alice"}, []string{"k-b", "k-c", "k-f"}},
		{core.KeyFilter{PrincipalID: "root"}, []string{"k-d"}},
		{core.KeyFilter{ProjectID: "p1", PrincipalID: "svc"}, []string{"k-a"}},
		{core.KeyFilter{ProjectID: "p2", PrincipalID: "alice"}, []string{}},
		{core.KeyFilter{ProjectID: core.DefaultProject}, []string{}},
		{core.KeyFilter{PrincipalID: "nobody"}, []string{}},
		{core.KeyFilter{ProjectID: "p1' OR '1'='1"}, []string{}},
	}
	for _, tt := range tests {
		got := mustKeys(t, s, tt.f)
		if !cmp.Equal(keyIDs(got), tt.want) {
			t.Errorf("APIKeys(%+v) = %v, want %v", tt.f, keyIDs(got), tt.want)
		}
		for _, k := range got {
			check(t, fmt.Sprintf("APIKeys(%+v) item %s", tt.f, k.ID), k, mustKey(t, s, k.ID))
		}
	}
}

func testRevokeAPIKey(t *testing.T, s identityStore) {
	ctx := t.Context()
	identity(t, s)
	k := key("k1", "alice", base)
	mustCreateKey(t, s, k)
	mustCreateKey(t, s, key("k2", "alice", base))

	first := base.Add(time.Hour)
	if err := s.RevokeAPIKey(ctx, "k1", first); err != nil {
		t.Fatalf("RevokeAPIKey(k1) = %v", err)
	}
	want := *k
	want.RevokedAt = &first
	check(t, "APIKey(k1) after revocation", mustKey(t, s, "k1"), &want)
	if ok, why := mustKey(t, s, "k1").Usable(first); ok || why != "revoked" {
		t.Errorf("revoked key Usable(revocation time) = %v, %q; want false, revoked", ok, why)
	}

	// Revoking again, later or earlier, keeps the first time.
	for _, at := range []time.Time{first.Add(time.Hour), first.Add(-time.Minute)} {
		if err := s.RevokeAPIKey(ctx, "k1", at); err != nil {
			t.Errorf("RevokeAPIKey(k1) again = %v, want nil", err)
		}
		check(t, "APIKey(k1) after a second revocation", mustKey(t, s, "k1"), &want)
	}
	if k2 := mustKey(t, s, "k2"); k2.RevokedAt != nil {
		t.Errorf("revoking k1 revoked k2 at %v", k2.RevokedAt)
	}
	checkNotFound(t, "RevokeAPIKey(unknown)", s.RevokeAPIKey(ctx, "nope", first))
}

func testRotateAPIKey(t *testing.T, s identityStore) {
	ctx := t.Context()
	identity(t, s)
	longLived := base.Add(365 * 24 * time.Hour)
	soon := base.Add(30 * time.Minute)
	overlap := base.Add(24 * time.Hour)
	tests := []struct {
		name        string
		oldExpires  *time.Time
		wantExpires time.Time
	}{
		{"no expiry", nil, overlap},
		{"later expiry", &longLived, overlap},
		{"sooner expiry", &soon, soon},
		{"same expiry", &overlap, overlap},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := key(fmt.Sprintf("old-%d", i), "svc", base)
			old.Scopes = []core.Permission{core.PermRead}
			old.Agents = []string{"agent-1"}
			old.Users = []string{"u1", "team-*"}
			old.ExpiresAt = tt.oldExpires
			mustCreateKey(t, s, old)

			next := key(fmt.Sprintf("new-%d", i), "", base.Add(time.Minute))
			next.Scopes = old.Scopes
			next.Users = old.Users
			if err := s.RotateAPIKey(ctx, old.ID, overlap, next); err != nil {
				t.Fatalf("RotateAPIKey(%s) = %v", old.ID, err)
			}
			if next.PrincipalID != "svc" || next.ProjectID != "p1" {
				t.Errorf("RotateAPIKey set next principal %q project %q, want svc p1", next.PrincipalID, next.ProjectID)
			}
			check(t, "successor", mustKey(t, s, next.ID), next)
			want := *old
			want.ReplacedBy = next.ID
			want.ExpiresAt = &tt.wantExpires
			check(t, "rotated key", mustKey(t, s, old.ID), &want)
		})
	}

	// The successor may itself be rotated, and is listed first.
	next := key("newer", "svc", base.Add(time.Hour))
	if err := s.RotateAPIKey(ctx, "new-0", base.Add(48*time.Hour), next); err != nil {
		t.Fatalf("RotateAPIKey(new-0) = %v", err)
	}
	if got := mustKeys(t, s, core.KeyFilter{PrincipalID: "svc"}); len(got) == 0 || got[0].ID != "newer" {
		t.Errorf("APIKeys(svc) = %v, want newer first", keyIDs(got))
	}
}

func testRotateAPIKeyFailures(t *testing.T, s identityStore) {
	ctx := t.Context()
	identity(t, s)
	later := base.Add(time.Hour)
	mustCreateKey(t, s, key("live", "alice", base))
	mustCreateKey(t, s, key("revoked", "alice", base))
	if err := s.RevokeAPIKey(ctx, "revoked", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	mustCreateKey(t, s, key("rotated", "alice", base))
	if err := s.RotateAPIKey(ctx, "rotated", later, key("rotated-next", "alice", base)); err != nil {
		t.Fatal(err)
	}
	mustCreateKey(t, s, key("bobs", "bob", base))

	snapshot := func() map[string]*core.APIKey {
		m := map[string]*core.APIKey{}
		for _, k := range mustKeys(t, s, core.KeyFilter{}) {
			m[k.ID] = k
		}
		return m
	}
	before := snapshot()
	tests := []struct {
		name  string
		old   string
		next  *core.APIKey
		check func(t *testing.T, err error)
	}{
		{"unknown old key", "nope", key("n1", "alice", base), func(t *testing.T, err error) {
			checkNotFound(t, "RotateAPIKey(unknown)", err)
		}},
		{"revoked old key", "revoked", key("n2", "alice", base), func(t *testing.T, err error) {
			checkCode(t, "RotateAPIKey(revoked)", err, core.CodeConflict)
		}},
		{"already rotated old key", "rotated", key("n3", "alice", base), func(t *testing.T, err error) {
			checkCode(t, "RotateAPIKey(rotated)", err, core.CodeConflict)
		}},
		{"successor id in use", "live", key("bobs", "alice", base), func(t *testing.T, err error) {
			checkCode(t, "RotateAPIKey with a used successor id", err, core.CodeConflict)
		}},
		{"successor is the old key", "live", key("live", "alice", base), func(t *testing.T, err error) {
			checkCode(t, "RotateAPIKey with the old id", err, core.CodeConflict)
		}},
		{"successor of another principal", "live", key("n4", "bob", base), func(t *testing.T, err error) {
			checkCode(t, "RotateAPIKey to another principal", err, core.CodeValidation)
		}},
		{"successor of an unknown principal", "live", key("n5", "nobody", base), func(t *testing.T, err error) {
			checkCode(t, "RotateAPIKey to an unknown principal", err, core.CodeValidation)
		}},
		{"successor without a hash", "live", &core.APIKey{ID: "n6", PrincipalID: "alice", CreatedAt: base}, func(t *testing.T, err error) {
			checkCode(t, "RotateAPIKey to a key without a hash", err, core.CodeValidation)
		}},
		{"successor with an unknown scope", "live", &core.APIKey{ID: "n7", Hash: []byte("h"), Scopes: []core.Permission{"sudo"}, CreatedAt: base}, func(t *testing.T, err error) {
			checkCode(t, "RotateAPIKey to a key with an unknown scope", err, core.CodeValidation)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, s.RotateAPIKey(ctx, tt.old, later, tt.next))
			// Nothing changed: no successor, the old key as it was.
			check(t, "keys after a failed rotation", snapshot(), before)
		})
	}
}

func testConcurrentRotations(t *testing.T, s identityStore) {
	identity(t, s)
	mustCreateKey(t, s, key("old", "alice", base))
	const n = 8
	var (
		wg   sync.WaitGroup
		errs [n]error
	)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.RotateAPIKey(t.Context(), "old", base.Add(time.Hour), key(fmt.Sprintf("next-%d", i), "alice", base))
		})
	}
	wg.Wait()
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil && winner == "":
			winner = fmt.Sprintf("next-%d", i)
		case err == nil:
			t.Errorf("rotations to %s and next-%d both succeeded", winner, i)
		default:
			checkCode(t, fmt.Sprintf("losing rotation to next-%d", i), err, core.CodeConflict)
		}
	}
	if winner == "" {
		t.Fatalf("no concurrent rotation succeeded: %v", errs)
	}
	if got := mustKey(t, s, "old").ReplacedBy; got != winner {
		t.Errorf("old.ReplacedBy = %q, want the winner %q", got, winner)
	}
	if got := keyIDs(mustKeys(t, s, core.KeyFilter{})); len(got) != 2 || !slices.Contains(got, winner) {
		t.Errorf("APIKeys() = %v, want old and %s only", got, winner)
	}
}

func testTouchAPIKey(t *testing.T, s identityStore) {
	ctx := t.Context()
	identity(t, s)
	k := key("k1", "alice", base)
	mustCreateKey(t, s, k)
	mustCreateKey(t, s, key("k2", "alice", base))

	t1 := base.Add(time.Minute)
	if err := s.TouchAPIKey(ctx, "k1", t1, "203.0.113.7"); err != nil {
		t.Fatalf("TouchAPIKey(k1) = %v", err)
	}
	want := *k
	want.LastUsedAt, want.LastUsedIP = &t1, "203.0.113.7"
	check(t, "APIKey(k1) after a touch", mustKey(t, s, "k1"), &want)

	// An older touch (arriving late) does not go back in time.
	if err := s.TouchAPIKey(ctx, "k1", t1.Add(-time.Second), "198.51.100.1"); err != nil {
		t.Fatalf("TouchAPIKey(k1, earlier) = %v", err)
	}
	check(t, "APIKey(k1) after an earlier touch", mustKey(t, s, "k1"), &want)

	t2 := t1.Add(time.Hour)
	if err := s.TouchAPIKey(ctx, "k1", t2, "2001:db8::2"); err != nil {
		t.Fatalf("TouchAPIKey(k1, later) = %v", err)
	}
	want.LastUsedAt, want.LastUsedIP = &t2, "2001:db8::2"
	check(t, "APIKey(k1) after a later touch", mustKey(t, s, "k1"), &want)

	if k2 := mustKey(t, s, "k2"); k2.LastUsedAt != nil || k2.LastUsedIP != "" {
		t.Errorf("touching k1 touched k2: %v %q", k2.LastUsedAt, k2.LastUsedIP)
	}
	checkNotFound(t, "TouchAPIKey(unknown)", s.TouchAPIKey(ctx, "nope", t2, "127.0.0.1"))
}

func testIdentityNotFound(t *testing.T, s identityStore) {
	ctx := t.Context()
	identity(t, s)
	p, err := s.Project(ctx, "missing")
	checkNotFound(t, "Project(missing)", err)
	if p != nil {
		t.Errorf("Project(missing) = %+v, want nil", p)
	}
	pr, err := s.Principal(ctx, "missing")
	checkNotFound(t, "Principal(missing)", err)
	if pr != nil {
		t.Errorf("Principal(missing) = %+v, want nil", pr)
	}
	k, err := s.APIKey(ctx, "missing")
	checkNotFound(t, "APIKey(missing)", err)
	if k != nil {
		t.Errorf("APIKey(missing) = %+v, want nil", k)
	}
	// Ids are matched exactly.
	for _, id := range []string{"ALICE", "alice ", "%", "_lice"} {
		_, err := s.Principal(ctx, id)
		checkNotFound(t, fmt.Sprintf("Principal(%q)", id), err)
	}
}

func testIdentityHostileStrings(t *testing.T, s identityStore) {
	for i, h := range hostile {
		p := &core.Project{ID: h, Name: h, CreatedAt: base}
		mustCreateProject(t, s, p)
		check(t, fmt.Sprintf("Project(hostile %d)", i), mustProject(t, s, h), p)

		pr := &core.Principal{ID: h, ProjectID: h, Name: h, Kind: core.PrincipalUser, Role: core.RoleAdmin, CreatedAt: base}
		mustCreatePrincipal(t, s, pr)
		check(t, fmt.Sprintf("Principal(hostile %d)", i), mustPrincipal(t, s, h), pr)
		check(t, fmt.Sprintf("Principals(hostile %d)", i), mustPrincipals(t, s, core.PrincipalFilter{ProjectID: h}), []*core.Principal{pr})

		k := &core.APIKey{
			ID: h, PrincipalID: h, Name: h, Hash: []byte(h), Agents: []string{h, "<&>", "nul\x00"},
			LastUsedIP: h, ReplacedBy: h, CreatedAt: base,
		}
		mustCreateKey(t, s, k)
		check(t, fmt.Sprintf("APIKey(hostile %d)", i), mustKey(t, s, h), k)
		for _, f := range []core.KeyFilter{{ProjectID: h}, {PrincipalID: h}} {
			if got := keyIDs(mustKeys(t, s, f)); !cmp.Equal(got, []string{h}) {
				t.Errorf("APIKeys(hostile %d filter %+v) = %q, want just the one", i, f, got)
			}
		}
	}
	if n := len(mustProjects(t, s)); n != len(hostile)+1 {
		t.Errorf("Projects() = %d, want %d", n, len(hostile)+1)
	}
	if n := mustCount(t, s); n != len(hostile) {
		t.Errorf("CountPrincipals() = %d, want %d", n, len(hostile))
	}
	if n := len(mustKeys(t, s, core.KeyFilter{})); n != len(hostile) {
		t.Errorf("APIKeys() = %d, want %d", n, len(hostile))
	}
}

func testAgentProjects(t *testing.T, s identityStore) {
	ctx := t.Context()
	secret := &core.Project{ID: "secret-team", Name: "Secret Team", CreatedAt: base}
	mustCreateProject(t, s, secret)

	dflt := version("agent-d", "In default", "sha256:d1", []byte("d1"))
	mustPut(t, s, dflt, true)
	if dflt.ProjectID != core.DefaultProject {
		t.Errorf("PutAgentVersion set ProjectID = %q, want %q", dflt.ProjectID, core.DefaultProject)
	}
	explicit := version("agent-e", "Explicit default", "sha256:e1", []byte("e1"))
	explicit.ProjectID = core.DefaultProject
	mustPut(t, s, explicit, true)
	mine := version("agent-s", "Secret", "sha256:s1", []byte("s1"))
	mine.ProjectID = secret.ID
	mustPut(t, s, mine, true)

	for id, want := range map[string]string{"agent-d": core.DefaultProject, "agent-e": core.DefaultProject, "agent-s": secret.ID} {
		if a := mustAgent(t, s, id); a.ProjectID != want {
			t.Errorf("Agent(%s).ProjectID = %q, want %q", id, a.ProjectID, want)
		}
	}
	check(t, "AgentVersion(agent-s)", mustVersion(t, s, "agent-s", "sha256:s1"), mine)
	check(t, "AgentVersion(agent-d)", mustVersion(t, s, "agent-d", "sha256:d1"), dflt)
	agents, err := s.Agents(ctx)
	if err != nil {
		t.Fatalf("Agents() = %v", err)
	}
	var got []string
	for _, a := range agents {
		got = append(got, a.ID+"@"+a.ProjectID)
	}
	if want := []string{"agent-d@default", "agent-e@default", "agent-s@secret-team"}; !cmp.Equal(got, want) {
		t.Errorf("Agents() = %v, want %v", got, want)
	}

	// More versions in the same project are fine.
	v2 := version("agent-s", "Secret", "sha256:s2", []byte("s2"))
	v2.ProjectID = secret.ID
	mustPut(t, s, v2, true)
	mustPut(t, s, version("agent-d", "In default", "sha256:d2", []byte("d2")), true)

	// A version of an agent of another project is refused, whatever its
	// hash, without naming the project that has it.
	beforeS, beforeD := mustAgent(t, s, "agent-s"), mustAgent(t, s, "agent-d")
	for _, tt := range []struct {
		agent, project, hash string
	}{
		{"agent-s", "", "sha256:new"},
		{"agent-s", core.DefaultProject, "sha256:s1"},
		{"agent-d", secret.ID, "sha256:new"},
		{"agent-d", secret.ID, "sha256:d1"},
	} {
		v := version(tt.agent, "Impostor", tt.hash, []byte("impostor"))
		v.ProjectID = tt.project
		created, err := s.PutAgentVersion(ctx, v)
		what := fmt.Sprintf("PutAgentVersion(%s in %q)", tt.agent, tt.project)
		checkCode(t, what, err, core.CodeConflict)
		if created {
			t.Errorf("%s created = true", what)
		}
		if err == nil {
			continue
		}
		msg := core.ErrorMessage(err)
		for _, leak := range []string{"secret", "Secret", core.DefaultProject, "Default"} {
			if strings.Contains(msg, leak) || strings.Contains(err.Error(), leak) {
				t.Errorf("%s error %q mentions %q", what, err, leak)
			}
		}
		for _, hint := range []string{tt.agent, "another project", "runagent init"} {
			if !strings.Contains(msg, hint) {
				t.Errorf("%s message %q does not mention %q", what, msg, hint)
			}
		}
	}
	check(t, "Agent(agent-s) after refused versions", mustAgent(t, s, "agent-s"), beforeS)
	check(t, "Agent(agent-d) after refused versions", mustAgent(t, s, "agent-d"), beforeD)
	_, err = s.AgentVersion(ctx, "agent-s", "sha256:new")
	checkNotFound(t, "AgentVersion of a refused version", err)
	check(t, "AgentVersion(agent-s, s1) after refused versions", mustVersion(t, s, "agent-s", "sha256:s1"), mine)

	// A project that does not exist.
	v := version("agent-x", "Nowhere", "sha256:x1", []byte("x"))
	v.ProjectID = "no-such-project"
	_, err = s.PutAgentVersion(ctx, v)
	checkCode(t, "PutAgentVersion in an unknown project", err, core.CodeValidation)
	_, err = s.Agent(ctx, "agent-x")
	checkNotFound(t, "Agent of a refused version", err)
}

func testInvocationProjects(t *testing.T, s identityStore) {
	ctx := t.Context()
	var all []*core.Invocation
	for i, project := range []string{"", "p1", core.DefaultProject, "p2", "p1", "p1"} {
		agent := "agent-a"
		if i%2 == 1 {
			agent = "agent-b"
		}
		inv := invocation(fmt.Sprintf("inv-%d", i), agent, base.Add(time.Duration(i)*time.Second))
		inv.ProjectID = project
		mustCreate(t, s, inv)
		if project == "" && inv.ProjectID != core.DefaultProject {
			t.Errorf("CreateInvocation set ProjectID = %q, want %q", inv.ProjectID, core.DefaultProject)
		}
		if i == 4 {
			inv = finished(inv, core.StatusCompleted, 3)
			mustFinish(t, s, inv)
		}
		checkInvocation(t, "Invocation("+inv.ID+")", mustInvocation(t, s, inv.ID), inv)
		all = append([]*core.Invocation{inv}, all...) // newest first
	}
	pick := func(ids ...string) []*core.Invocation {
		var out []*core.Invocation
		for _, inv := range all {
			if slices.Contains(ids, inv.ID) {
				out = append(out, inv)
			}
		}
		return out
	}
	tests := []struct {
		f    core.InvocationFilter
		want []*core.Invocation
	}{
		{core.InvocationFilter{}, all},
		{core.InvocationFilter{ProjectID: core.DefaultProject}, pick("inv-0", "inv-2")},
		{core.InvocationFilter{ProjectID: "p1"}, pick("inv-1", "inv-4", "inv-5")},
		{core.InvocationFilter{ProjectID: "p2"}, pick("inv-3")},
		{core.InvocationFilter{ProjectID: "p3"}, nil},
		{core.InvocationFilter{ProjectID: "P1"}, nil},
		{core.InvocationFilter{ProjectID: "p1", AgentID: "agent-b"}, pick("inv-1", "inv-5")},
		{core.InvocationFilter{ProjectID: "p1", Status: core.StatusCompleted}, pick("inv-4")},
		{core.InvocationFilter{ProjectID: "p1", Limit: 1, Offset: 1}, pick("inv-4")},
	}
	for _, tt := range tests {
		got, err := s.Invocations(ctx, tt.f)
		if err != nil {
			t.Fatalf("Invocations(%+v) = %v", tt.f, err)
		}
		if !cmp.Equal(ids(got), ids(tt.want)) {
			t.Errorf("Invocations(%+v) = %v, want %v", tt.f, ids(got), ids(tt.want))
			continue
		}
		if len(tt.want) > 0 {
			check(t, fmt.Sprintf("Invocations(%+v)", tt.f), got, tt.want)
		}
	}
}

func testAPIKeysPaged(t *testing.T, s identityStore) {
	identity(t, s)
	// Twelve keys of p1 at four instants (three share each, so that ties
	// are broken by id), and p2's among them.
	var all []string
	for i := range 12 {
		id := fmt.Sprintf("k-%02d", i)
		mustCreateKey(t, s, key(id, []string{"alice", "svc"}[i%2], base.Add(time.Duration(i/3)*time.Second)))
		mustCreateKey(t, s, key(fmt.Sprintf("k2-%02d", i), "bob", base.Add(time.Duration(i/3)*time.Second)))
		all = append(all, id)
	}
	slices.Reverse(all) // newest first, greater id first
	p1 := core.KeyFilter{ProjectID: "p1"}
	if got := keyIDs(mustKeys(t, s, p1)); !cmp.Equal(got, all) {
		t.Fatalf("APIKeys(p1) = %v, want %v", got, all)
	}
	for _, limit := range []int{1, 2, 3, 5, 12, 13} {
		var got []string
		f := p1
		f.Limit = limit
		for range 20 {
			page := mustKeys(t, s, f)
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(page))
			}
			got = append(got, keyIDs(page)...)
			if len(page) < limit {
				break
			}
			last := page[len(page)-1]
			f.After = &core.KeyCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if !cmp.Equal(got, all) {
			t.Errorf("limit %d: pages = %v, want %v", limit, got, all)
		}
	}
	tests := []struct {
		name string
		f    core.KeyFilter
		want []string
	}{
		// After a key that does not exist: from its place in the order.
		{"after a missing id", core.KeyFilter{ProjectID: "p1", Limit: 2, After: &core.KeyCursor{CreatedAt: base.Add(2 * time.Second), ID: "k-07x"}}, []string{"k-07", "k-06"}},
		{"after the oldest", core.KeyFilter{ProjectID: "p1", Limit: 5, After: &core.KeyCursor{CreatedAt: base, ID: "k-00"}}, []string{}},
		{"after a time before all", core.KeyFilter{ProjectID: "p1", After: &core.KeyCursor{CreatedAt: base.Add(-time.Hour), ID: "z"}}, []string{}},
		{"after a later time", core.KeyFilter{ProjectID: "p1", Limit: 2, After: &core.KeyCursor{CreatedAt: base.Add(time.Hour), ID: ""}}, []string{"k-11", "k-10"}},
		{"principal", core.KeyFilter{PrincipalID: "svc", Limit: 2, After: &core.KeyCursor{CreatedAt: base.Add(3 * time.Second), ID: "k-11"}}, []string{"k-09", "k-07"}},
		{"every project", core.KeyFilter{Limit: 3}, []string{"k2-11", "k2-10", "k2-09"}},
	}
	for _, tt := range tests {
		if got := keyIDs(mustKeys(t, s, tt.f)); !cmp.Equal(got, tt.want) {
			t.Errorf("%s: APIKeys(%+v) = %v, want %v", tt.name, tt.f, got, tt.want)
		}
	}
	_, err := s.APIKeys(t.Context(), core.KeyFilter{Limit: -1})
	checkCode(t, "APIKeys with limit -1", err, core.CodeValidation)
}
