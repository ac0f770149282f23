package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/ratelimit"
)

// page is the paging part of a list's answer.
type page struct {
	Total  *int `json:"total"`
	Limit  int  `json:"limit"`
	Offset int  `json:"offset"`
}

// TestKeysPaged: GET /api/v1/keys with ?limit= answers one page of the
// newest-first list, from ?offset=, with the total; without it, every
// key and no total; a bad limit or offset is 400.
func TestKeysPaged(t *testing.T) {
	w := newWorld(t)
	keyIDs := func(path string) ([]string, page) {
		t.Helper()
		status, body := w.do("admin", "GET", path, "")
		var env struct {
			Data struct {
				page
				Keys []struct {
					ID string `json:"key_id"`
				} `json:"keys"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &env); status != http.StatusOK || err != nil {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		ids := []string{}
		for _, k := range env.Data.Keys {
			ids = append(ids, k.ID)
		}
		return ids, env.Data.page
	}
	all, p := keyIDs("/api/v1/keys")
	if p.Total != nil || len(all) != 6 {
		t.Fatalf("unpaged list: %d keys, total %v; want p1's 6 keys and no total", len(all), p.Total)
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"limit=4", all[:4]},
		{"limit=4&offset=4", all[4:]},
		{"limit=2&offset=1", all[1:3]},
		{"limit=100", all},
		{"limit=4&offset=6", []string{}},
		{"limit=4&offset=1000", []string{}},
	}
	for _, tt := range tests {
		got, p := keyIDs("/api/v1/keys?" + tt.query)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("keys?%s (-want +got):\n%s", tt.query, diff)
		}
		if p.Total == nil || *p.Total != len(all) {
			t.Errorf("keys?%s total = %v, want %d", tt.query, p.Total, len(all))
		}
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "limit=5&offset=-1"} {
		if status, body := w.do("admin", "GET", "/api/v1/keys?"+q, ""); status != http.StatusBadRequest {
			t.Errorf("keys?%s = %d %s, want 400", q, status, body)
		}
	}
	// Paging does not widen the list: p2's admin sees only p2's key.
	status, body := w.do("p2admin", "GET", "/api/v1/keys?limit=100", "")
	var env struct {
		Data struct {
			page
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); status != http.StatusOK || err != nil || env.Data.Total == nil || *env.Data.Total != 1 {
		t.Errorf("p2 admin's keys?limit=100 = %d %s, want total 1", status, body)
	}
}

// TestBlocksPaged: GET /api/v1/blocks with ?limit= answers one page of
// the blocks, soonest to end first, with the total.
func TestBlocksPaged(t *testing.T) {
	w := newWorld(t)
	b := ratelimit.NewMemoryBlocks(BlockPolicy{After: 1, Window: time.Minute, For: 10 * time.Minute}, func() time.Time { return w.clock })
	w.api.setBlocker(b)
	var clients []string
	for i := range 5 {
		c := fmt.Sprintf("ip:198.51.100.%d", i+1)
		if _, err := b.Strike(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		w.clock = w.clock.Add(time.Second) // each ends a second after the one before
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", clients},
		{"?limit=2", clients[:2]},
		{"?limit=2&offset=4", clients[4:]},
		{"?limit=2&offset=5", []string{}},
	} {
		status, body := w.doFrom("203.0.113.1", "owner", "GET", "/api/v1/blocks"+tt.query, "")
		var env struct {
			Data struct {
				page
				Blocks []struct {
					Client string `json:"client"`
				} `json:"blocks"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &env); status != http.StatusOK || err != nil {
			t.Fatalf("blocks%s = %d %s", tt.query, status, body)
		}
		got := []string{}
		for _, bl := range env.Data.Blocks {
			got = append(got, bl.Client)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("blocks%s (-want +got):\n%s", tt.query, diff)
		}
		if paged := tt.query != ""; paged != (env.Data.Total != nil) || paged && *env.Data.Total != len(clients) {
			t.Errorf("blocks%s total = %v, want %d when paged and none otherwise", tt.query, env.Data.Total, len(clients))
		}
	}
	if status, _ := w.doFrom("203.0.113.1", "owner", "GET", "/api/v1/blocks?limit=1000", ""); status != http.StatusBadRequest {
		t.Errorf("blocks?limit=1000 = %d, want 400", status)
	}
}

// TestWhoamiUsers: whoami names the end users a key acts for (the
// console offers a new key only those), and none for a key without.
func TestWhoamiUsers(t *testing.T) {
	w := newWorld(t)
	users := []string{"alice", "team-*"}
	token, id, hash := apikey.New()
	pr := &core.Principal{ID: "pr-" + id, ProjectID: "p1", Name: "svc", Kind: core.PrincipalService, Role: core.RoleAdmin, CreatedAt: w.now}
	if err := w.store.CreatePrincipal(t.Context(), pr); err != nil {
		t.Fatal(err)
	}
	exp := w.now.Add(time.Hour)
	if err := w.store.CreateAPIKey(t.Context(), &core.APIKey{ID: id, PrincipalID: pr.ID, ProjectID: "p1", Name: "k", Hash: hash, Users: users, CreatedAt: w.now, ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	w.keys["with-users"] = token
	for cred, want := range map[string][]string{"with-users": users, "admin": nil} {
		status, body := w.do(cred, "GET", "/api/v1/whoami", "")
		var env struct {
			Data whoamiBody `json:"data"`
		}
		if err := json.Unmarshal(body, &env); status != http.StatusOK || err != nil {
			t.Fatalf("whoami as %s = %d %s", cred, status, body)
		}
		if !slices.Equal(env.Data.Users, want) {
			t.Errorf("whoami as %s: users %q, want %q", cred, env.Data.Users, want)
		}
	}
}

// TestMemoryPaged: an agent's memory list answers one page with
// ?limit=, and the total.
func TestMemoryPaged(t *testing.T) {
	w := newWorld(t)
	m := w.withMemory(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		l, err := m.Acquire(t.Context(), memory.Key{Project: "p1", Agent: agentP1, User: u}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
	users := func(query string) ([]string, page) {
		t.Helper()
		status, body := w.do("admin", "GET", "/api/v1/agents/"+agentP1+"/memory"+query, "")
		var env struct {
			Data struct {
				page
				Memories []memoryEntry `json:"memories"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &env); status != http.StatusOK || err != nil {
			t.Fatalf("memory%s = %d %s", query, status, body)
		}
		out := []string{}
		for _, e := range env.Data.Memories {
			out = append(out, e.UserID)
		}
		return out, env.Data.page
	}
	all, p := users("")
	if len(all) != 3 || p.Total != nil {
		t.Fatalf("unpaged: %q, total %v; want 3 users and no total", all, p.Total)
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"?limit=2", all[:2]},
		{"?limit=2&offset=2", all[2:]},
		{"?limit=2&offset=3", []string{}},
	} {
		got, p := users(tt.query)
		if diff := cmp.Diff(tt.want, got); diff != "" || p.Total == nil || *p.Total != 3 {
			t.Errorf("memory%s: total %v (-want +got):\n%s", tt.query, p.Total, diff)
		}
	}
	if status, _ := w.do("admin", "GET", "/api/v1/agents/"+agentP1+"/memory?limit=0", ""); status != http.StatusBadRequest {
		t.Errorf("memory?limit=0 = %d, want 400", status)
	}
}

// FuzzPageParams: any query gives a page within bounds or a
// VALIDATION error naming limit or offset, never a panic.
func FuzzPageParams(f *testing.F) {
	for _, s := range []string{"", "limit=20&offset=0", "limit=0", "limit=101", "offset=-1", "limit=1e3", "limit=%00", "limit=20&limit=1", "offset=1073741825"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		limit, offset, err := pageParams(q)
		if err != nil {
			var ce *core.Error
			if !errors.As(err, &ce) || ce.Code != core.CodeValidation || (ce.Field != "limit" && ce.Field != "offset") {
				t.Fatalf("pageParams(%q): %v, want a VALIDATION error on limit or offset", raw, err)
			}
			return
		}
		if limit < 0 || limit > 100 || offset < 0 || offset > 1<<30 {
			t.Fatalf("pageParams(%q) = %d, %d: out of bounds", raw, limit, offset)
		}
	})
}
