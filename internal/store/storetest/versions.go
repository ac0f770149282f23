package storetest

import (
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
