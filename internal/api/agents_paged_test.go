package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
)

// TestAgentsPaged: GET /api/v1/agents without paging parameters answers
// every agent the caller may see, as before (no limit, no cursor); with
// ?limit= it answers pages by cursor whose every page but the last holds
// limit agents the caller may see (a key narrowed to some agents gets
// full pages of those, never another's); ?offset= is refused.
func TestAgentsPaged(t *testing.T) {
	w := newWorld(t)
	// Agents only in the store (their versions are not runnable): six
	// more in p1, three more in p2.
	for i := range 9 {
		project, id := "p1", fmt.Sprintf("4%07d-0000-4000-8000-000000000000", i)
		if i >= 6 {
			project, id = "p2", fmt.Sprintf("5%07d-0000-4000-8000-000000000000", i)
		}
		v := &core.AgentVersion{AgentID: id, ProjectID: project, Hash: fmt.Sprintf("sha256:%064d", i),
			Config: core.AgentConfig{AgentID: id, AgentName: "stored"}, Package: []byte("x"), Size: 1, CreatedAt: w.now}
		if _, err := w.store.PutAgentVersion(t.Context(), v); err != nil {
			t.Fatal(err)
		}
	}
	narrowedIDs := []string{"40000005-0000-4000-8000-000000000000", agentP2, "50000007-0000-4000-8000-000000000000", openID, "40000001-0000-4000-8000-000000000000"}
	w.keys["narrowed"] = w.key("p1", core.RoleViewer, nil, narrowedIDs, nil)

	// Without paging parameters: every visible agent, in id order, and
	// nothing of paging in the answer.
	status, body := w.do("viewer", "GET", "/api/v1/agents", "")
	var env struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || status != http.StatusOK {
		t.Fatalf("GET /api/v1/agents = %d %s", status, body)
	}
	for _, k := range []string{"limit", "next_cursor", "total", "offset"} {
		if _, ok := env.Data[k]; ok {
			t.Errorf("GET /api/v1/agents without paging parameters answers %q: %s", k, body)
		}
	}
	all := w.getPage(t, "192.0.2.1", "viewer", "/api/v1/agents", "agents", "agent_id").IDs
	want := []string{agentP1, openID}
	for i := range 6 {
		want = append(want, fmt.Sprintf("4%07d-0000-4000-8000-000000000000", i))
	}
	slices.Sort(want)
	if !cmp.Equal(all, want) {
		t.Fatalf("p1 viewer's agents = %v, want %v", all, want)
	}
	for _, limit := range []int{1, 3, 7, 8, 100} {
		if got := w.walk(t, "192.0.2.1", "viewer", "/api/v1/agents?", "agents", "agent_id", limit); !cmp.Equal(got, all) {
			t.Errorf("pages of %d: %v, want %v", limit, got, all)
		}
	}
	// A key narrowed to some agents: pages of its own agents in p1 only.
	narrowed := []string{openID, "40000001-0000-4000-8000-000000000000", "40000005-0000-4000-8000-000000000000"}
	slices.Sort(narrowed)
	for _, limit := range []int{1, 2} {
		if got := w.walk(t, "192.0.2.1", "narrowed", "/api/v1/agents?", "agents", "agent_id", limit); !cmp.Equal(got, narrowed) {
			t.Errorf("narrowed key, pages of %d: %v, want %v", limit, got, narrowed)
		}
	}
	if got := w.getPage(t, "192.0.2.1", "narrowed", "/api/v1/agents", "agents", "agent_id").IDs; !cmp.Equal(got, narrowed) {
		t.Errorf("narrowed key, every agent: %v, want %v", got, narrowed)
	}
	// An owner pages through every project; p2's admin with p1's cursor
	// still sees p2's agents only.
	if got := w.walk(t, "192.0.2.1", "owner", "/api/v1/agents?", "agents", "agent_id", 4); len(got) != 12 || !slices.IsSorted(got) {
		t.Errorf("owner's agents in pages of 4: %v, want the 12 in id order", got)
	}
	p := w.getPage(t, "192.0.2.1", "viewer", "/api/v1/agents?limit=1", "agents", "agent_id")
	got := w.getPage(t, "192.0.2.1", "p2admin", "/api/v1/agents?limit=10&cursor="+url.QueryEscape(p.NextCursor), "agents", "agent_id").IDs
	if len(got) != 4 || slices.ContainsFunc(got, func(id string) bool { return slices.Contains(all, id) }) {
		t.Errorf("p2 admin with p1's cursor sees %v, want p2's four agents", got)
	}
	w.checkBadPaging(t, "192.0.2.1", "viewer", "/api/v1/agents?")

	// ?include=entrypoints on a page: the page's agents with theirs.
	w.keys["two"] = w.key("p1", core.RoleViewer, nil, []string{agentP1, openID}, nil)
	status, body = w.do("two", "GET", "/api/v1/agents?limit=1&include=entrypoints", "")
	var page struct {
		Data struct {
			Agents []struct {
				ID          string           `json:"agent_id"`
				Entrypoints []entrypointView `json:"entrypoints"`
			} `json:"agents"`
			NextCursor string `json:"next_cursor"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &page); err != nil || status != http.StatusOK || len(page.Data.Agents) != 1 ||
		page.Data.Agents[0].ID != agentP1 || len(page.Data.Agents[0].Entrypoints) == 0 || page.Data.NextCursor == "" {
		t.Errorf("limit 1 with entrypoints = %d %s: want %s with its entrypoints and a next cursor", status, body, agentP1)
	}
	if status, body := w.do("viewer", "GET", "/api/v1/agents?include=secrets", ""); status != http.StatusBadRequest {
		t.Errorf("?include=secrets: %d %s, want 400", status, body)
	}
}

// FuzzVersionCursor: a versions list's ?cursor= is taken only when it is
// a whole version hash ("sha256:" and 64 lowercase hex digits), which
// the store then looks up among the agent's versions; anything else is
// refused before the store is asked.
func FuzzVersionCursor(f *testing.F) {
	for _, s := range []string{"", "sha256:", "sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("A", 64),
		"sha256:" + strings.Repeat("a", 63), "sha256:" + strings.Repeat("a", 65), "SHA256:" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("g", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !validVersion(s) {
			return
		}
		hex, ok := strings.CutPrefix(s, "sha256:")
		if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
			t.Fatalf("validVersion(%q) = true for a cursor that is not a version hash", s)
		}
	})
}

// TestVisibleAgentsAgreesWithCanAgent: the store filter of the agents
// list holds exactly the agents CanAgent lets the caller act on, for
// owners and others, keys narrowed to some agents (an owner's too) or to
// none, and a caller without a project.
func TestVisibleAgentsAgreesWithCanAgent(t *testing.T) {
	agents := []*core.Agent{
		{ID: "a1", ProjectID: "p1"}, {ID: "a2", ProjectID: "p1"},
		{ID: "b1", ProjectID: "p2"}, {ID: "d1", ProjectID: core.DefaultProject},
	}
	ids := []auth.Identity{
		{Role: core.RoleOwner},
		{Role: core.RoleOwner, Agents: []string{"b1"}},
		{Role: core.RoleOwner, Agents: []string{}},
		{Role: core.RoleAdmin, ProjectID: "p1"},
		{Role: core.RoleAdmin, ProjectID: "p1", Agents: []string{"a2", "b1"}},
		{Role: core.RoleViewer, ProjectID: "p2", Agents: []string{}},
		{Role: core.RoleUser, ProjectID: core.DefaultProject},
		{Role: core.RoleUser},
	}
	for _, id := range ids {
		f := visibleAgents(id)
		for _, ag := range agents {
			in := (f.ProjectID == "" || f.ProjectID == ag.ProjectID) && (f.IDs == nil || slices.Contains(f.IDs, ag.ID))
			if want := id.CanAgent(ag.ProjectID, ag.ID); in != want {
				t.Errorf("%s in project %q narrowed to %v: filter %+v lists %s of %s: %v, CanAgent says %v",
					id.Role, id.ProjectID, id.Agents, f, ag.ID, ag.ProjectID, in, want)
			}
		}
	}
}
