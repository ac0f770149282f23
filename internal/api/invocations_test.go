package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// listPage is the data of an invocation listing.
type listPage struct {
	Invocations []*core.Invocation `json:"invocations"`
	Count       int                `json:"count"`
	NextCursor  string             `json:"next_cursor"`
}

func (w *world) list(cred, path string) (int, listPage) {
	w.t.Helper()
	status, body := w.do(cred, "GET", path, "")
	var env struct {
		Data listPage `json:"data"`
	}
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &env); err != nil {
			w.t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return status, env.Data
}

// seedRuns records n finished invocations of each agent, a second apart,
// for users u0…u2, and returns them by agent.
func (w *world) seedRuns(n int, agents ...struct{ id, project string }) {
	w.t.Helper()
	for i := range n {
		for j, a := range agents {
			inv := &core.Invocation{ID: fmt.Sprintf("seed-%d-%03d", j, i), AgentID: a.id, ProjectID: a.project, EntrypointTag: "echo",
				Transport: "rest", Caller: "key:seed", UserID: fmt.Sprintf("u%d", i%3),
				CreatedAt: w.now.Add(-time.Hour).Add(time.Duration(i) * time.Second)}
			if err := w.store.CreateInvocation(w.t.Context(), inv); err != nil {
				w.t.Fatal(err)
			}
			inv.Status = core.StatusCompleted
			if i%4 == 0 {
				inv.Status = core.StatusFailed
			}
			if err := w.store.FinishInvocation(w.t.Context(), inv); err != nil {
				w.t.Fatal(err)
			}
		}
	}
}

var seedAgents = []struct{ id, project string }{{agentP1, "p1"}, {agentP2, "p2"}, {openID, "p1"}}

// TestListAllInvocationsScope: GET /invocations lists what the caller
// may see and nothing else: its project's agents, narrowed to its key's
// agents; every project's for an owner; an agent of another project, by
// ?agent_id=, lists nothing. The listing is audited.
func TestListAllInvocationsScope(t *testing.T) {
	w := newWorld(t)
	w.seedRuns(3, seedAgents...)
	w.keys["p1-open-only"] = w.key("p1", core.RoleViewer, nil, []string{openID}, nil)
	agentsOf := func(p listPage) []string {
		var out []string
		for _, inv := range p.Invocations {
			if !slices.Contains(out, inv.AgentID) {
				out = append(out, inv.AgentID)
			}
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		cred, query string
		want        []string
	}{
		{"viewer", "", []string{agentP1, openID}},
		{"p2admin", "", []string{agentP2}},
		{"owner", "", []string{agentP1, agentP2, openID}},
		{"p1-open-only", "", []string{openID}},
		{"p1-open-only", "?agent_id=" + agentP1, nil},
		{"viewer", "?agent_id=" + agentP2, nil},
		{"owner", "?agent_id=" + agentP2, []string{agentP2}},
	}
	for _, tt := range tests {
		status, page := w.list(tt.cred, "/api/v1/invocations"+tt.query)
		if status != http.StatusOK {
			t.Fatalf("%s: GET /invocations%s: %d", tt.cred, tt.query, status)
		}
		if got := agentsOf(page); !slices.Equal(got, tt.want) {
			t.Errorf("%s: GET /invocations%s lists agents %v, want %v", tt.cred, tt.query, got, tt.want)
		}
	}
	if recs := w.trail(audit.Filter{Action: "invocation.list"}); len(recs) != len(tests) {
		t.Errorf("%d invocation.list audit records, want %d", len(recs), len(tests))
	}
}

// TestListInvocationsCursorAndFilters: paging by next_cursor visits every
// invocation once, newest first, on both listing routes; the filters
// select what they name; bad parameters are refused with what to send.
func TestListInvocationsCursorAndFilters(t *testing.T) {
	w := newWorld(t)
	w.seedRuns(25, seedAgents...)
	for _, base := range []string{"/api/v1/invocations?limit=7", "/api/v1/agents/" + agentP1 + "/invocations?limit=7"} {
		var got []*core.Invocation
		path := base
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatalf("%s: paging does not end", base)
			}
			status, page := w.list("owner", path)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d", path, status)
			}
			got = append(got, page.Invocations...)
			if page.NextCursor == "" {
				break
			}
			path = base + "&cursor=" + url.QueryEscape(page.NextCursor)
		}
		_, all := w.list("owner", strings.Replace(base, "limit=7", "limit=1000", 1))
		if len(got) != len(all.Invocations) || len(got) < 26 {
			t.Fatalf("%s: paged %d invocations, one page of all has %d", base, len(got), len(all.Invocations))
		}
		for i := range got {
			if got[i].ID != all.Invocations[i].ID {
				t.Fatalf("%s: paged item %d is %s, want %s", base, i, got[i].ID, all.Invocations[i].ID)
			}
		}
	}

	since := w.now.Add(-time.Hour).Add(10 * time.Second).Format(time.RFC3339Nano)
	until := w.now.Add(-time.Hour).Add(20 * time.Second).Format(time.RFC3339Nano)
	filters := []struct {
		query string
		keep  func(*core.Invocation) bool
	}{
		{"status=failed", func(i *core.Invocation) bool { return i.Status == core.StatusFailed }},
		{"user_id=u1", func(i *core.Invocation) bool { return i.UserID == "u1" }},
		{"caller=key:seed", func(i *core.Invocation) bool { return i.Caller == "key:seed" }},
		{"since=" + since + "&until=" + until, func(i *core.Invocation) bool {
			return strings.HasPrefix(i.ID, "seed-") && !i.CreatedAt.Before(w.now.Add(-time.Hour).Add(10*time.Second)) && i.CreatedAt.Before(w.now.Add(-time.Hour).Add(20*time.Second))
		}},
		{"agent_id=" + agentP2 + "&status=completed&user_id=u2", func(i *core.Invocation) bool {
			return i.AgentID == agentP2 && i.Status == core.StatusCompleted && i.UserID == "u2"
		}},
	}
	_, everything := w.list("owner", "/api/v1/invocations?limit=1000")
	for _, f := range filters {
		var want []string
		for _, inv := range everything.Invocations {
			if f.keep(inv) {
				want = append(want, inv.ID)
			}
		}
		status, page := w.list("owner", "/api/v1/invocations?limit=1000&"+f.query)
		var got []string
		for _, inv := range page.Invocations {
			got = append(got, inv.ID)
		}
		if status != http.StatusOK || len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("?%s: %d, %v; want 200, %v", f.query, status, got, want)
		}
	}

	for _, q := range []string{"cursor=nope", "cursor=" + encodeCursor(core.InvocationCursor{CreatedAt: w.now, ID: "x"}) + "&offset=3",
		"since=yesterday", "until=2026-13-01T00:00:00Z", "status=done", "limit=0", "agent_id=../x", "user_id=" + strings.Repeat("u", 300)} {
		status, body := w.do("owner", "GET", "/api/v1/invocations?"+q, "")
		if status != http.StatusBadRequest || !strings.Contains(string(body), "must") {
			t.Errorf("?%s: %d %s, want 400 saying what to send", q, status, body)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []core.InvocationCursor{
		{CreatedAt: time.Unix(0, 0).UTC(), ID: "a"},
		{CreatedAt: time.Date(2026, 12, 7, 18, 0, 0, 123456789, time.UTC), ID: "inv_0123-abc"},
		{CreatedAt: time.Unix(0, -5).UTC(), ID: strings.Repeat("z", 64)},
	} {
		got, err := decodeCursor(encodeCursor(c))
		if err != nil || !got.CreatedAt.Equal(c.CreatedAt) || got.ID != c.ID {
			t.Errorf("decodeCursor(encodeCursor(%+v)) = %+v, %v", c, got, err)
		}
	}
}

// FuzzDecodeCursor: a client's cursor either decodes to a place that
// encodes back to the same cursor, or is refused with the cursor error.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(core.InvocationCursor{CreatedAt: time.Unix(1765130400, 5), ID: "inv-1"}))
	f.Add("")
	f.Add("MTIzLg")   // "123."
	f.Add("LTEuYQ")   // "-1.a"
	f.Add("MDEyLmE")  // "012.a"
	f.Add("MS4uLi4v") // "1..../"
	f.Add(strings.Repeat("A", 200))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if err != errCursor {
				t.Fatalf("decodeCursor(%q) = %v, want errCursor", s, err)
			}
			return
		}
		if !validID(c.ID) {
			t.Fatalf("decodeCursor(%q) = id %q, not a valid id", s, c.ID)
		}
		if back := encodeCursor(c); back != s {
			t.Fatalf("decodeCursor(%q) re-encodes as %q", s, back)
		}
	})
}

// TestConsoleSessionReadsInvocations: what the console's invocations
// view calls, with the session cookie and no CSRF token (an EventSource
// sends no headers): the listing, and a rejoin of a run's stream, which
// is past authentication (here: refused because the run is a plain
// call, not a stream); the cancel, a change, needs the token.
func TestConsoleSessionReadsInvocations(t *testing.T) {
	w := newWorld(t)
	b := w.signIn("admin")
	if rec := w.with(b, false, "GET", "/api/v1/invocations", ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), w.inv) {
		t.Errorf("list with the session cookie: %d %s, want 200 with %s", rec.Code, rec.Body, w.inv)
	}
	rec := w.with(b, false, "GET", "/api/v1/invocations/"+w.inv+"/stream", "", "Accept", "text/event-stream")
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "not a stream") {
		t.Errorf("rejoin with the session cookie: %d %s, want 400 (not a stream)", rec.Code, rec.Body)
	}
	if rec := w.with(b, false, "POST", "/api/v1/invocations/"+w.inv+"/cancel", ""); rec.Code != http.StatusForbidden {
		t.Errorf("cancel with the cookie and no CSRF token: %d, want 403", rec.Code)
	}
	if rec := w.with(b, true, "POST", "/api/v1/invocations/"+w.inv+"/cancel", ""); rec.Code != http.StatusConflict {
		t.Errorf("cancel of an ended run with the CSRF token: %d %s, want 409", rec.Code, rec.Body)
	}
}

// TestInvocationsCarryAgentNames: the listings and an invocation's detail
// carry its agent's name beside its id (so a reader sees "a-1111", not a
// UUID); an agent since deleted has no name, and its id stays.
func TestInvocationsCarryAgentNames(t *testing.T) {
	w := newWorld(t)
	w.seedRuns(2, seedAgents...)
	if err := w.store.DeleteAgent(t.Context(), openID, w.now); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{agentP1: "a-1111", agentP2: "a-2222", openID: ""}
	type named struct {
		ID        string `json:"invocation_id"`
		AgentID   string `json:"agent_id"`
		AgentName string `json:"agent_name"`
	}
	read := func(path string) []byte {
		t.Helper()
		status, body := w.do("owner", "GET", path, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		return body
	}
	for _, path := range []string{"/api/v1/invocations", "/api/v1/agents/" + agentP1 + "/invocations", "/api/v1/invocations?agent_id=" + openID} {
		var env struct {
			Data struct {
				Invocations []named `json:"invocations"`
			} `json:"data"`
		}
		if err := json.Unmarshal(read(path), &env); err != nil {
			t.Fatal(err)
		}
		if len(env.Data.Invocations) == 0 {
			t.Fatalf("GET %s lists no invocations", path)
		}
		for _, inv := range env.Data.Invocations {
			if inv.AgentName != want[inv.AgentID] {
				t.Errorf("GET %s: invocation %s of agent %s has agent_name %q, want %q", path, inv.ID, inv.AgentID, inv.AgentName, want[inv.AgentID])
			}
		}
	}
	for id, name := range map[string]string{w.inv: "a-1111", "seed-2-000": ""} {
		body := read("/api/v1/invocations/" + id)
		var env struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatal(err)
		}
		got, present := env.Data["agent_name"]
		if name == "" && present {
			t.Errorf("GET /invocations/%s of a deleted agent has agent_name %v, want none", id, got)
		}
		if name != "" && got != name {
			t.Errorf("GET /invocations/%s has agent_name %v, want %q", id, got, name)
		}
		// The record's own fields are all still there, beside the name.
		for _, f := range []string{"invocation_id", "agent_id", "entrypoint_tag", "status", "created_at", "input_args"} {
			if _, ok := env.Data[f]; !ok {
				t.Errorf("GET /invocations/%s lacks %q: %s", id, f, body)
			}
		}
	}
}
