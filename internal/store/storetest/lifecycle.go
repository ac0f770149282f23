package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

// lifecycleTests are run by Run with the identity tests.
//
// Beyond the documentation of core.IdentityStore, they pin down:
//
//   - A deleted project is gone for Project, Projects and
//     SetProjectRateLimit (ErrNotFound) but its id stays taken: creating
//     it again is a CodeConflict whose message says a deleted project had
//     it, and creating a principal in it a CodeValidation error. Its
//     agents are gone for Agent, Agents and AgentVersion, their secrets
//     are deleted, their invocations kept; deploying a version in the
//     deleted project is a CodeValidation error, and with a deleted
//     agent's id (in any project) a CodeConflict.
//   - DeleteProject marks its principals deleted and revokes their keys
//     at t; keys revoked before keep their time. It returns the agents
//     and principals not deleted before and the keys not revoked before,
//     each sorted by id and never nil. Other projects are untouched.
//   - A refused DeleteProject (agents without force) changes nothing; its
//     error's Details are the *core.ProjectContents it would remove.
//   - A deleted principal's keys cannot be added to (CodeValidation).
//   - An owner is "enabled" when neither disabled nor deleted, and its key
//     "usable" at t when not revoked and not expired at t. Disabling or
//     deleting an enabled owner needs another enabled owner with a usable
//     key; a disabled owner may be deleted regardless.
var lifecycleTests = []struct {
	name string
	fn   func(t *testing.T, s identityStore)
}{
	{"DeleteProject", testDeleteProject},
	{"DeleteProjectRefused", testDeleteProjectRefused},
	{"DeleteEmptyProject", testDeleteEmptyProject},
	{"DisablePrincipal", testDisablePrincipal},
	{"DeletePrincipal", testDeletePrincipal},
	{"LastOwner", testLastOwner},
}

// doomed is the fixture of the project deletion tests: identity's
// projects and principals, agents, secrets, an invocation and keys in p1
// (one revoked before), and an agent and a key in p2.
func doomed(t *testing.T, s identityStore) {
	t.Helper()
	identity(t, s)
	for _, id := range []string{"agent-b", "agent-a"} {
		v := version(id, "Agent "+id, "sha256:"+id, []byte(id))
		v.ProjectID = "p1"
		mustPut(t, s, v, true)
		mustPutSecret(t, s, id, "TOKEN", "secret of "+id)
	}
	other := version("agent-p2", "Other", "sha256:p2", []byte("p2"))
	other.ProjectID = "p2"
	mustPut(t, s, other, true)
	mustPutSecret(t, s, "agent-p2", "TOKEN", "secret of p2")
	inv := invocation("inv-1", "agent-a", base)
	inv.ProjectID = "p1"
	mustCreate(t, s, inv)
	mustCreateKey(t, s, key("k-alice", "alice", base))
	mustCreateKey(t, s, key("k-svc", "svc", base))
	mustCreateKey(t, s, key("k-old", "svc", base))
	if err := s.RevokeAPIKey(t.Context(), "k-old", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	mustCreateKey(t, s, key("k-bob", "bob", base))
}

func testDeleteProject(t *testing.T, s identityStore) {
	ctx := t.Context()
	doomed(t, s)
	p2Before := mustProject(t, s, "p2")
	bobBefore, bobKeyBefore := mustPrincipal(t, s, "bob"), mustKey(t, s, "k-bob")
	at := base.Add(time.Hour)

	got, err := s.DeleteProject(ctx, "p1", true, at)
	if err != nil {
		t.Fatalf("DeleteProject(p1, force) = %v", err)
	}
	check(t, "DeleteProject(p1) removed", got, &core.ProjectContents{
		Agents: []string{"agent-a", "agent-b"}, Principals: []string{"alice", "svc"}, Keys: []string{"k-alice", "k-svc"},
	})

	// The project is gone, its id taken.
	_, err = s.Project(ctx, "p1")
	checkNotFound(t, "Project(p1) after its deletion", err)
	for _, p := range mustProjects(t, s) {
		if p.ID == "p1" {
			t.Errorf("Projects() lists the deleted project p1")
		}
	}
	checkNotFound(t, "SetProjectRateLimit(deleted p1)", s.SetProjectRateLimit(ctx, "p1", nil))
	err = s.CreateProject(ctx, &core.Project{ID: "p1", Name: "again", CreatedAt: base})
	checkCode(t, "CreateProject(p1) after its deletion", err, core.CodeConflict)
	if msg := core.ErrorMessage(err); !strings.Contains(msg, "deleted") {
		t.Errorf("CreateProject(p1) after its deletion: message %q does not say a deleted project had the id", msg)
	}
	checkCode(t, "CreatePrincipal in the deleted p1", s.CreatePrincipal(ctx, principal("carol", "p1", core.RoleUser)), core.CodeValidation)

	// Its principals are deleted and their keys revoked at t; a key
	// revoked before keeps its time.
	for _, id := range []string{"alice", "svc"} {
		p := mustPrincipal(t, s, id)
		if p.DeletedAt == nil || !p.DeletedAt.Equal(at) {
			t.Errorf("Principal(%s).DeletedAt = %v, want %v", id, p.DeletedAt, at)
		}
	}
	for id, want := range map[string]time.Time{"k-alice": at, "k-svc": at, "k-old": base.Add(time.Minute)} {
		if k := mustKey(t, s, id); k.RevokedAt == nil || !k.RevokedAt.Equal(want) {
			t.Errorf("APIKey(%s).RevokedAt = %v, want %v", id, k.RevokedAt, want)
		}
	}
	checkCode(t, "CreateAPIKey for a principal of the deleted p1", s.CreateAPIKey(ctx, key("k-new", "alice", base)), core.CodeValidation)
	checkMissingKey(t, s, "CreateAPIKey for a deleted principal", "k-new")

	// Its agents are gone with their versions and secrets; their
	// invocations stay.
	for _, id := range []string{"agent-a", "agent-b"} {
		_, err := s.Agent(ctx, id)
		checkNotFound(t, fmt.Sprintf("Agent(%s) of the deleted p1", id), err)
		_, err = s.AgentVersion(ctx, id, "sha256:"+id)
		checkNotFound(t, fmt.Sprintf("AgentVersion(%s) of the deleted p1", id), err)
		if v := mustSecretValues(t, s, id); len(v) != 0 {
			t.Errorf("SecretValues(%s) of the deleted p1 = %v, want none", id, v)
		}
	}
	agents, err := s.Agents(ctx)
	if err != nil {
		t.Fatalf("Agents() = %v", err)
	}
	if len(agents) != 1 || agents[0].ID != "agent-p2" {
		t.Errorf("Agents() after deleting p1 = %v, want agent-p2 only", agents)
	}
	if inv := mustInvocation(t, s, "inv-1"); inv.ProjectID != "p1" {
		t.Errorf("Invocation(inv-1).ProjectID = %q, want p1", inv.ProjectID)
	}

	// Nothing comes back under a deleted id.
	v := version("agent-new", "New", "sha256:new", []byte("new"))
	v.ProjectID = "p1"
	_, err = s.PutAgentVersion(ctx, v)
	checkCode(t, "PutAgentVersion in the deleted p1", err, core.CodeValidation)
	for _, project := range []string{"p1", "p2", core.DefaultProject} {
		v := version("agent-a", "Reborn", "sha256:reborn", []byte("reborn"))
		v.ProjectID = project
		_, err := s.PutAgentVersion(ctx, v)
		checkCode(t, fmt.Sprintf("PutAgentVersion of the deleted agent-a in %s", project), err, core.CodeConflict)
	}
	_, err = s.Agent(ctx, "agent-a")
	checkNotFound(t, "Agent(agent-a) after refused versions", err)

	// Another project is untouched.
	check(t, "Project(p2)", mustProject(t, s, "p2"), p2Before)
	check(t, "Principal(bob)", mustPrincipal(t, s, "bob"), bobBefore)
	check(t, "APIKey(k-bob)", mustKey(t, s, "k-bob"), bobKeyBefore)
	mustAgent(t, s, "agent-p2")
	check(t, "SecretValues(agent-p2)", mustSecretValues(t, s, "agent-p2"), map[string]string{"TOKEN": "secret of p2"})

	// Deleting again, an unknown project, the default project.
	_, err = s.DeleteProject(ctx, "p1", true, at.Add(time.Hour))
	checkNotFound(t, "DeleteProject(p1) again", err)
	if p := mustPrincipal(t, s, "alice"); p.DeletedAt == nil || !p.DeletedAt.Equal(at) {
		t.Errorf("deleting p1 again changed alice's DeletedAt to %v", p.DeletedAt)
	}
	_, err = s.DeleteProject(ctx, "nope", true, at)
	checkNotFound(t, "DeleteProject(unknown)", err)
	_, err = s.DeleteProject(ctx, core.DefaultProject, true, at)
	checkCode(t, "DeleteProject(default)", err, core.CodeConflict)
	mustProject(t, s, core.DefaultProject)
}

func testDeleteProjectRefused(t *testing.T, s identityStore) {
	ctx := t.Context()
	doomed(t, s)
	type state struct {
		Project    *core.Project
		Principals []*core.Principal
		Keys       []*core.APIKey
		Agents     []*core.Agent
		Versions   []*core.AgentVersion
		Secrets    []map[string]string
	}
	snapshot := func() state {
		st := state{
			Project:    mustProject(t, s, "p1"),
			Principals: mustPrincipals(t, s, core.PrincipalFilter{}),
			Keys:       mustKeys(t, s, core.KeyFilter{}),
		}
		for _, id := range []string{"agent-a", "agent-b"} {
			st.Agents = append(st.Agents, mustAgent(t, s, id))
			st.Versions = append(st.Versions, mustVersion(t, s, id, "sha256:"+id))
			st.Secrets = append(st.Secrets, mustSecretValues(t, s, id))
		}
		return st
	}
	before := snapshot()
	_, err := s.DeleteProject(ctx, "p1", false, base.Add(time.Hour))
	checkCode(t, "DeleteProject(p1) with agents, without force", err, core.CodeConflict)
	e, ok := errors.AsType[*core.Error](err)
	if !ok {
		t.Fatalf("DeleteProject error %v is not a *core.Error", err)
	}
	check(t, "refused DeleteProject details", e.Details, any(&core.ProjectContents{
		Agents: []string{"agent-a", "agent-b"}, Principals: []string{"alice", "svc"}, Keys: []string{"k-alice", "k-svc"},
	}))
	check(t, "the store after a refused DeleteProject", snapshot(), before)
}

func testDeleteEmptyProject(t *testing.T, s identityStore) {
	identity(t, s)
	mustCreateKey(t, s, key("k-bob", "bob", base))
	at := base.Add(time.Hour)
	// No agents: force is not needed.
	got, err := s.DeleteProject(t.Context(), "p2", false, at)
	if err != nil {
		t.Fatalf("DeleteProject(p2) without agents = %v", err)
	}
	check(t, "DeleteProject(p2) removed", got, &core.ProjectContents{Agents: []string{}, Principals: []string{"bob"}, Keys: []string{"k-bob"}})
	if k := mustKey(t, s, "k-bob"); k.RevokedAt == nil || !k.RevokedAt.Equal(at) {
		t.Errorf("APIKey(k-bob).RevokedAt = %v, want %v", k.RevokedAt, at)
	}
	// A project that never had anything.
	mustCreateProject(t, s, &core.Project{ID: "empty", CreatedAt: base})
	got, err = s.DeleteProject(t.Context(), "empty", false, at)
	if err != nil {
		t.Fatalf("DeleteProject(empty) = %v", err)
	}
	check(t, "DeleteProject(empty) removed", got, &core.ProjectContents{Agents: []string{}, Principals: []string{}, Keys: []string{}})
}

func testDisablePrincipal(t *testing.T, s identityStore) {
	ctx := t.Context()
	identity(t, s)
	mustCreateKey(t, s, key("k-alice", "alice", base))
	keyBefore := mustKey(t, s, "k-alice")
	first := base.Add(time.Hour)
	if err := s.DisablePrincipal(ctx, "alice", first); err != nil {
		t.Fatalf("DisablePrincipal(alice) = %v", err)
	}
	want := principal("alice", "p1", core.RoleUser)
	want.DisabledAt = &first
	check(t, "Principal(alice) disabled", mustPrincipal(t, s, "alice"), want)
	// Disabling does not touch the keys.
	check(t, "APIKey(k-alice) of a disabled principal", mustKey(t, s, "k-alice"), keyBefore)
	if err := s.DisablePrincipal(ctx, "alice", first.Add(time.Hour)); err != nil {
		t.Fatalf("DisablePrincipal(alice) again = %v", err)
	}
	check(t, "Principal(alice) disabled twice", mustPrincipal(t, s, "alice"), want)

	if err := s.EnablePrincipal(ctx, "alice"); err != nil {
		t.Fatalf("EnablePrincipal(alice) = %v", err)
	}
	check(t, "Principal(alice) enabled", mustPrincipal(t, s, "alice"), principal("alice", "p1", core.RoleUser))
	if err := s.EnablePrincipal(ctx, "alice"); err != nil {
		t.Errorf("EnablePrincipal of an enabled principal = %v", err)
	}
	if p := mustPrincipal(t, s, "svc"); p.DisabledAt != nil {
		t.Errorf("disabling alice disabled svc at %v", p.DisabledAt)
	}

	checkNotFound(t, "DisablePrincipal(unknown)", s.DisablePrincipal(ctx, "nope", first))
	checkNotFound(t, "EnablePrincipal(unknown)", s.EnablePrincipal(ctx, "nope"))
	if _, err := s.DeletePrincipal(ctx, "svc", first); err != nil {
		t.Fatal(err)
	}
	checkCode(t, "DisablePrincipal(deleted)", s.DisablePrincipal(ctx, "svc", first), core.CodeConflict)
	checkCode(t, "EnablePrincipal(deleted)", s.EnablePrincipal(ctx, "svc"), core.CodeConflict)
	if p := mustPrincipal(t, s, "svc"); p.DisabledAt != nil {
		t.Errorf("a refused DisablePrincipal set DisabledAt = %v", p.DisabledAt)
	}
}

func testDeletePrincipal(t *testing.T, s identityStore) {
	ctx := t.Context()
	identity(t, s)
	mustCreateKey(t, s, key("k1", "alice", base))
	mustCreateKey(t, s, key("k2", "alice", base))
	mustCreateKey(t, s, key("k-old", "alice", base))
	earlier := base.Add(time.Minute)
	if err := s.RevokeAPIKey(ctx, "k-old", earlier); err != nil {
		t.Fatal(err)
	}
	mustCreateKey(t, s, key("k-svc", "svc", base))
	svcKey := mustKey(t, s, "k-svc")

	at := base.Add(time.Hour)
	revoked, err := s.DeletePrincipal(ctx, "alice", at)
	if err != nil {
		t.Fatalf("DeletePrincipal(alice) = %v", err)
	}
	check(t, "DeletePrincipal(alice) revoked", revoked, []string{"k1", "k2"})
	want := principal("alice", "p1", core.RoleUser)
	want.DeletedAt = &at
	check(t, "Principal(alice) deleted", mustPrincipal(t, s, "alice"), want)
	for id, want := range map[string]time.Time{"k1": at, "k2": at, "k-old": earlier} {
		if k := mustKey(t, s, id); k.RevokedAt == nil || !k.RevokedAt.Equal(want) {
			t.Errorf("APIKey(%s).RevokedAt = %v, want %v", id, k.RevokedAt, want)
		}
	}
	check(t, "APIKey(k-svc) of another principal", mustKey(t, s, "k-svc"), svcKey)
	checkCode(t, "CreateAPIKey for a deleted principal", s.CreateAPIKey(ctx, key("k3", "alice", base)), core.CodeValidation)
	checkMissingKey(t, s, "CreateAPIKey for a deleted principal", "k3")
	checkCode(t, "RotateAPIKey of a deleted principal's key", s.RotateAPIKey(ctx, "k1", at, key("k4", "alice", base)), core.CodeConflict)
	checkMissingKey(t, s, "RotateAPIKey of a deleted principal's key", "k4")

	// Again: nothing more is revoked and the first time stays.
	revoked, err = s.DeletePrincipal(ctx, "alice", at.Add(time.Hour))
	if err != nil {
		t.Fatalf("DeletePrincipal(alice) again = %v", err)
	}
	if revoked == nil || len(revoked) != 0 {
		t.Errorf("DeletePrincipal(alice) again revoked %#v, want an empty slice", revoked)
	}
	check(t, "Principal(alice) deleted twice", mustPrincipal(t, s, "alice"), want)

	// A disabled principal may be deleted.
	if err := s.DisablePrincipal(ctx, "svc", at); err != nil {
		t.Fatal(err)
	}
	if revoked, err := s.DeletePrincipal(ctx, "svc", at); err != nil || !cmp.Equal(revoked, []string{"k-svc"}) {
		t.Errorf("DeletePrincipal(disabled svc) = %v, %v; want [k-svc]", revoked, err)
	}
	_, err = s.DeletePrincipal(ctx, "nope", at)
	checkNotFound(t, "DeletePrincipal(unknown)", err)
	// A deleted principal is still counted and listed (a tombstone).
	if n := mustCount(t, s); n != 4 {
		t.Errorf("CountPrincipals() = %d, want 4 (deleted ones included)", n)
	}
	if got := mustPrincipals(t, s, core.PrincipalFilter{ProjectID: "p1"}); len(got) != 2 {
		t.Errorf("Principals(p1) = %d principals, want alice and svc", len(got))
	}
}

func testLastOwner(t *testing.T, s identityStore) {
	ctx := t.Context()
	identity(t, s) // root is an owner without keys
	at := base.Add(time.Hour)
	mustCreateKey(t, s, key("k-root", "root", base))

	refused := func(what string, err error) {
		t.Helper()
		checkCode(t, what, err, core.CodeConflict)
		if msg := core.ErrorMessage(err); !strings.Contains(msg, "owner") {
			t.Errorf("%s: message %q does not say why (the last owner)", what, msg)
		}
	}
	refused("DisablePrincipal(the only owner)", s.DisablePrincipal(ctx, "root", at))
	_, err := s.DeletePrincipal(ctx, "root", at)
	refused("DeletePrincipal(the only owner)", err)

	// Another owner counts only while it is enabled and has a key usable
	// at the time of the change.
	mustCreatePrincipal(t, s, principal("root2", "", core.RoleOwner))
	refused("DisablePrincipal(root) while root2 has no key", s.DisablePrincipal(ctx, "root", at))
	expired := key("k-root2-expired", "root2", base)
	expired.ExpiresAt = &at
	mustCreateKey(t, s, expired)
	refused("DisablePrincipal(root) while root2's key expires at that time", s.DisablePrincipal(ctx, "root", at))
	mustCreateKey(t, s, key("k-root2-revoked", "root2", base))
	if err := s.RevokeAPIKey(ctx, "k-root2-revoked", base); err != nil {
		t.Fatal(err)
	}
	refused("DisablePrincipal(root) while root2's key is revoked", s.DisablePrincipal(ctx, "root", at))
	if p := mustPrincipal(t, s, "root"); p.DisabledAt != nil || p.DeletedAt != nil {
		t.Fatalf("refused changes changed root: %+v", p)
	}

	mustCreateKey(t, s, key("k-root2", "root2", base))
	if err := s.DisablePrincipal(ctx, "root", at); err != nil {
		t.Fatalf("DisablePrincipal(root) with root2 usable = %v", err)
	}
	// root is disabled: root2 is now the last.
	refused("DisablePrincipal(root2) while root is disabled", s.DisablePrincipal(ctx, "root2", at))
	_, err = s.DeletePrincipal(ctx, "root2", at)
	refused("DeletePrincipal(root2) while root is disabled", err)
	// A disabled owner may be deleted: it counts for nothing.
	if _, err := s.DeletePrincipal(ctx, "root", at); err != nil {
		t.Fatalf("DeletePrincipal(disabled root) = %v", err)
	}
	_, err = s.DeletePrincipal(ctx, "root2", at)
	refused("DeletePrincipal(root2), the last owner", err)
	if p := mustPrincipal(t, s, "root2"); p.DisabledAt != nil || p.DeletedAt != nil {
		t.Errorf("refused changes changed root2: %+v", p)
	}
	if k := mustKey(t, s, "k-root2"); k.RevokedAt != nil {
		t.Errorf("a refused DeletePrincipal revoked k-root2 at %v", k.RevokedAt)
	}
	// Principals of a project are not owners: they go freely.
	if _, err := s.DeletePrincipal(ctx, "bob", at); err != nil {
		t.Errorf("DeletePrincipal(bob) = %v", err)
	}
}
