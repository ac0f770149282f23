package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// versionTests are run by Run with the agent tests.
//
// Beyond the documentation of core.AgentStore, they pin down:
//
//   - AgentVersions orders by CreatedAt descending, and the later stored
//     first among versions created at the same time; exactly the
//     agent's current version has Current.
//   - SetCurrentVersion changes what Agent and AgentVersions say is
//     current, and the agent's UpdatedAt only when the version changes.
//   - DeleteAgent leaves other agents alone; the deleted agent's id stays
//     taken (a version with it is a CodeConflict), its secrets are gone
//     and its invocations kept.
var versionTests = []struct {
	name string
	fn   func(t *testing.T, s core.Store)
}{
	{"ListAgentVersions", testListAgentVersions},
	{"AgentVersionsPaged", testAgentVersionsPaged},
	{"SetCurrentVersion", testSetCurrentVersion},
	{"DeleteAgent", testDeleteAgent},
}

// threeVersions stores versions v1, v2 (a minute later) and v3 (at the
// same time as v2) of agent-1; v3 is current.
func threeVersions(t *testing.T, s core.Store) {
	t.Helper()
	mustPut(t, s, version("agent-1", "Helper", "sha256:v1", []byte("one")), true)
	v2 := version("agent-1", "Helper", "sha256:v2", []byte("two!"))
	v2.CreatedAt = base.Add(time.Minute)
	mustPut(t, s, v2, true)
	v3 := version("agent-1", "Helper", "sha256:v3", []byte("three"))
	v3.CreatedAt = base.Add(time.Minute)
	mustPut(t, s, v3, true)
}

func mustVersions(t *testing.T, s core.Store, agentID string) []*core.VersionInfo {
	t.Helper()
	vs, err := s.AgentVersions(t.Context(), agentID)
	if err != nil {
		t.Fatalf("AgentVersions(%q) = %v", agentID, err)
	}
	for _, v := range vs {
		checkUTC(t, "VersionInfo.CreatedAt", v.CreatedAt)
	}
	return vs
}

func testListAgentVersions(t *testing.T, s core.Store) {
	threeVersions(t, s)
	mustPut(t, s, version("agent-2", "Other", "sha256:o1", []byte("other")), true)
	check(t, "AgentVersions(agent-1)", mustVersions(t, s, "agent-1"), []*core.VersionInfo{
		{Hash: "sha256:v3", Size: 5, CreatedAt: base.Add(time.Minute), Current: true},
		{Hash: "sha256:v2", Size: 4, CreatedAt: base.Add(time.Minute)},
		{Hash: "sha256:v1", Size: 3, CreatedAt: base},
	})
	_, err := s.AgentVersions(t.Context(), "nobody")
	checkNotFound(t, "AgentVersions(unknown)", err)
}

func testSetCurrentVersion(t *testing.T, s core.Store) {
	ctx := t.Context()
	threeVersions(t, s)
	before := mustAgent(t, s, "agent-1")
	if err := s.SetCurrentVersion(ctx, "agent-1", "sha256:v3"); err != nil {
		t.Fatalf("SetCurrentVersion(current) = %v", err)
	}
	if a := mustAgent(t, s, "agent-1"); !a.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("UpdatedAt after setting the current version again = %v, want %v", a.UpdatedAt, before.UpdatedAt)
	}
	if err := s.SetCurrentVersion(ctx, "agent-1", "sha256:v1"); err != nil {
		t.Fatalf("SetCurrentVersion(v1) = %v", err)
	}
	if a := mustAgent(t, s, "agent-1"); a.CurrentVersion != "sha256:v1" {
		t.Errorf("CurrentVersion after SetCurrentVersion(v1) = %q, want sha256:v1", a.CurrentVersion)
	}
	var current []string
	for _, v := range mustVersions(t, s, "agent-1") {
		if v.Current {
			current = append(current, v.Hash)
		}
	}
	check(t, "current versions after SetCurrentVersion(v1)", current, []string{"sha256:v1"})

	mustPut(t, s, version("agent-2", "Other", "sha256:o1", []byte("other")), true)
	checkNotFound(t, "SetCurrentVersion(unknown version)", s.SetCurrentVersion(ctx, "agent-1", "sha256:nope"))
	checkNotFound(t, "SetCurrentVersion(another agent's version)", s.SetCurrentVersion(ctx, "agent-1", "sha256:o1"))
	checkNotFound(t, "SetCurrentVersion(unknown agent)", s.SetCurrentVersion(ctx, "nobody", "sha256:v1"))
	if a := mustAgent(t, s, "agent-1"); a.CurrentVersion != "sha256:v1" {
		t.Errorf("CurrentVersion after refused changes = %q, want sha256:v1", a.CurrentVersion)
	}
}

func testDeleteAgent(t *testing.T, s core.Store) {
	ctx := t.Context()
	threeVersions(t, s)
	mustPut(t, s, version("agent-2", "Other", "sha256:o1", []byte("other")), true)
	mustPutSecret(t, s, "agent-1", "TOKEN", "one")
	mustPutSecret(t, s, "agent-2", "TOKEN", "two")
	mustCreate(t, s, invocation("inv-1", "agent-1", base))

	if err := s.DeleteAgent(ctx, "agent-1", base.Add(time.Hour)); err != nil {
		t.Fatalf("DeleteAgent(agent-1) = %v", err)
	}
	_, err := s.Agent(ctx, "agent-1")
	checkNotFound(t, "Agent(deleted)", err)
	_, err = s.AgentVersions(ctx, "agent-1")
	checkNotFound(t, "AgentVersions(deleted)", err)
	_, err = s.AgentVersion(ctx, "agent-1", "sha256:v1")
	checkNotFound(t, "AgentVersion(deleted)", err)
	checkNotFound(t, "SetCurrentVersion(deleted)", s.SetCurrentVersion(ctx, "agent-1", "sha256:v1"))
	agents, err := s.Agents(ctx)
	if err != nil {
		t.Fatalf("Agents() = %v", err)
	}
	for _, a := range agents {
		if a.ID == "agent-1" {
			t.Errorf("Agents() lists the deleted agent-1")
		}
	}
	if got := mustSecretValues(t, s, "agent-1"); len(got) != 0 {
		t.Errorf("secrets of the deleted agent = %v, want none", got)
	}
	if _, err := s.Invocation(ctx, "inv-1"); err != nil {
		t.Errorf("Invocation of the deleted agent = %v, want it kept", err)
	}
	_, err = s.PutAgentVersion(ctx, version("agent-1", "Helper", "sha256:v4", []byte("four")))
	checkCode(t, "PutAgentVersion(deleted agent's id)", err, core.CodeConflict)
	checkNotFound(t, "DeleteAgent(deleted)", s.DeleteAgent(ctx, "agent-1", base.Add(2*time.Hour)))
	checkNotFound(t, "DeleteAgent(unknown)", s.DeleteAgent(ctx, "nobody", base))

	// The other agent is untouched.
	if a := mustAgent(t, s, "agent-2"); a.CurrentVersion != "sha256:o1" {
		t.Errorf("agent-2 current version = %q, want sha256:o1", a.CurrentVersion)
	}
	check(t, "agent-2 secrets", mustSecretValues(t, s, "agent-2"), map[string]string{"TOKEN": "two"})
}

// testAgentVersionsPaged: pages of every size, each after the last
// version of the page before, list every version once in AgentVersions'
// order (versions created at the same time among them); a cursor the
// agent does not have is a CodeValidation on "cursor".
func testAgentVersionsPaged(t *testing.T, s core.Store) {
	ctx := t.Context()
	// Nine versions at three instants, and another agent's between.
	var want []string
	for i := range 9 {
		v := version("agent-1", "Helper", fmt.Sprintf("sha256:v%d", i), []byte("x"))
		v.CreatedAt = base.Add(time.Duration(i/3) * time.Minute)
		mustPut(t, s, v, true)
		o := version("agent-2", "Other", fmt.Sprintf("sha256:o%d", i), []byte("y"))
		o.CreatedAt = v.CreatedAt
		mustPut(t, s, o, true)
		want = append(want, v.Hash)
	}
	slices.Reverse(want) // newest first, the later stored first
	if got := versionHashes(mustVersions(t, s, "agent-1")); !slices.Equal(got, want) {
		t.Fatalf("AgentVersions(agent-1) = %v, want %v", got, want)
	}
	for _, limit := range []int{1, 2, 3, 4, 9, 10} {
		var got []string
		f := core.VersionFilter{Limit: limit}
		for range 20 {
			page, err := s.AgentVersionsPage(ctx, "agent-1", f)
			if err != nil {
				t.Fatalf("AgentVersionsPage(%+v) = %v", f, err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(page))
			}
			got = append(got, versionHashes(page)...)
			if len(page) < limit {
				break
			}
			f.After = page[len(page)-1].Hash
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: pages = %v, want %v", limit, got, want)
		}
	}
	page, err := s.AgentVersionsPage(ctx, "agent-1", core.VersionFilter{Limit: 5, After: "sha256:v0"})
	if err != nil || len(page) != 0 {
		t.Errorf("AgentVersionsPage after the oldest = %v, %v; want an empty page", page, err)
	}
	if page, err := s.AgentVersionsPage(ctx, "agent-1", core.VersionFilter{Limit: 1}); err != nil || len(page) != 1 || !page[0].Current {
		t.Errorf("AgentVersionsPage(limit 1) = %v, %v; want the current version", page, err)
	}
	_, err = s.AgentVersionsPage(ctx, "agent-1", core.VersionFilter{Limit: 2, After: "sha256:o3"})
	checkCode(t, "AgentVersionsPage after another agent's version", err, core.CodeValidation)
	if e, ok := errors.AsType[*core.Error](err); !ok || e.Field != "cursor" {
		t.Errorf("AgentVersionsPage after another agent's version = %v; want an error on cursor", err)
	}
	_, err = s.AgentVersionsPage(ctx, "nobody", core.VersionFilter{Limit: 2, After: "sha256:v1"})
	checkNotFound(t, "AgentVersionsPage(unknown agent, after)", err)
	_, err = s.AgentVersionsPage(ctx, "nobody", core.VersionFilter{Limit: 2})
	checkNotFound(t, "AgentVersionsPage(unknown agent)", err)
	_, err = s.AgentVersionsPage(ctx, "agent-1", core.VersionFilter{Limit: -1})
	checkCode(t, "AgentVersionsPage with limit -1", err, core.CodeValidation)
}

func versionHashes(vs []*core.VersionInfo) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Hash
	}
	return out
}

// testAgentsPaged: the project and the ids of AgentFilter are applied
// before the limit, so every page holds Limit of the agents selected
// (never fewer because others were left out), a deleted agent is in
// none, and pages after each page's last id list every agent once.
func testAgentsPaged(t *testing.T, s identityStore) {
	ctx := t.Context()
	identity(t, s)
	var p1 []string
	for i := range 10 {
		for _, p := range []string{"p1", "p2"} {
			v := version(fmt.Sprintf("%s-a%02d", p, i), "Agent", fmt.Sprintf("sha256:%s-%d", p, i), []byte("x"))
			v.ProjectID = p
			mustPut(t, s, v, true)
		}
		p1 = append(p1, fmt.Sprintf("p1-a%02d", i))
	}
	if err := s.DeleteAgent(ctx, "p1-a04", base); err != nil {
		t.Fatal(err)
	}
	p1 = slices.Delete(p1, 4, 5)
	pages := func(f core.AgentFilter) []string {
		t.Helper()
		var got []string
		for range 30 {
			page, err := s.AgentsPage(ctx, f)
			if err != nil {
				t.Fatalf("AgentsPage(%+v) = %v", f, err)
			}
			if len(page) > f.Limit {
				t.Fatalf("AgentsPage(%+v): a page of %d", f, len(page))
			}
			for _, a := range page {
				got = append(got, a.ID)
			}
			if len(page) < f.Limit {
				return got
			}
			f.After = page[len(page)-1].ID
		}
		t.Fatalf("AgentsPage(%+v): more than 30 pages", f)
		return nil
	}
	for _, limit := range []int{1, 2, 3, 9, 10} {
		if got := pages(core.AgentFilter{ProjectID: "p1", Limit: limit}); !slices.Equal(got, p1) {
			t.Errorf("limit %d: pages of p1 = %v, want %v", limit, got, p1)
		}
	}
	narrowed := []string{"p1-a01", "p1-a04", "p1-a07", "p1-a09", "p2-a02"}
	tests := []struct {
		name string
		f    core.AgentFilter
		want []string
	}{
		{"a key's agents, in its project", core.AgentFilter{ProjectID: "p1", IDs: narrowed, Limit: 2}, []string{"p1-a01", "p1-a07"}},
		{"a key's agents, after one", core.AgentFilter{ProjectID: "p1", IDs: narrowed, Limit: 2, After: "p1-a01"}, []string{"p1-a07", "p1-a09"}},
		{"no agents", core.AgentFilter{ProjectID: "p1", IDs: []string{}, Limit: 2}, []string{}},
		{"every project", core.AgentFilter{Limit: 3, After: "p1-a08"}, []string{"p1-a09", "p2-a00", "p2-a01"}},
		{"after a missing id", core.AgentFilter{ProjectID: "p2", Limit: 2, After: "p2-a05x"}, []string{"p2-a06", "p2-a07"}},
		{"after the last", core.AgentFilter{ProjectID: "p2", Limit: 2, After: "p2-a09"}, []string{}},
	}
	for _, tt := range tests {
		page, err := s.AgentsPage(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: AgentsPage(%+v) = %v", tt.name, tt.f, err)
		}
		got := []string{}
		for _, a := range page {
			got = append(got, a.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: AgentsPage(%+v) = %v, want %v", tt.name, tt.f, got, tt.want)
		}
	}
	_, err := s.AgentsPage(ctx, core.AgentFilter{Limit: -1})
	checkCode(t, "AgentsPage with limit -1", err, core.CodeValidation)
}
