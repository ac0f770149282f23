package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/ratelimit"
)

// cursorPage is one page of a list paged by cursor: the ids of its rows
// (the field id of each in the list named list) and its paging fields.
type cursorPage struct {
	IDs        []string
	Limit      int
	NextCursor string
}

// getPage GETs path as cred (from ip) and reads one page of list, whose
// rows are named by their field id.
func (w *world) getPage(t *testing.T, ip, cred, path, list, id string) cursorPage {
	t.Helper()
	status, body := w.doFrom(ip, cred, "GET", path, "")
	var env struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); status != http.StatusOK || err != nil {
		t.Fatalf("GET %s = %d %s", path, status, body)
	}
	var p cursorPage
	var rows []map[string]any
	if err := json.Unmarshal(env.Data[list], &rows); err != nil || rows == nil {
		t.Fatalf("GET %s: %s is %s, want a list", path, list, env.Data[list])
	}
	p.IDs = []string{}
	for _, r := range rows {
		p.IDs = append(p.IDs, fmt.Sprint(r[id]))
	}
	json.Unmarshal(env.Data["limit"], &p.Limit)
	json.Unmarshal(env.Data["next_cursor"], &p.NextCursor)
	if _, ok := env.Data["total"]; ok {
		t.Errorf("GET %s answers a total: a page must not count the whole list", path)
	}
	return p
}

// walk follows next_cursor from path (which has a query) with ?limit=
// and returns every row's id, checking that each page holds at most limit
// rows and that only a full page has a next one.
func (w *world) walk(t *testing.T, ip, cred, path, list, id string, limit int) []string {
	t.Helper()
	var all []string
	cursor := ""
	for range 100 {
		q := fmt.Sprintf("%s&limit=%d", path, limit)
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		p := w.getPage(t, ip, cred, q, list, id)
		if len(p.IDs) > limit || p.Limit != limit {
			t.Fatalf("GET %s: %d rows, limit %d; want at most %d", q, len(p.IDs), p.Limit, limit)
		}
		if p.NextCursor != "" && len(p.IDs) < limit {
			t.Fatalf("GET %s: a page of %d < %d with a next cursor", q, len(p.IDs), limit)
		}
		all = append(all, p.IDs...)
		if p.NextCursor == "" {
			return all
		}
		cursor = p.NextCursor
	}
	t.Fatalf("GET %s: more than 100 pages", path)
	return nil
}

// checkBadPaging: a bad limit, an offset (this list pages by cursor) and
// a cursor not made by the server are 400 on path (which has a query).
func (w *world) checkBadPaging(t *testing.T, ip, cred, path string) {
	t.Helper()
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "offset=0", "limit=5&offset=20",
		"cursor=x", "cursor=" + url.QueryEscape(encodeCursor(core.InvocationCursor{ID: "k"})+"="), "cursor=%00"} {
		if status, body := w.doFrom(ip, cred, "GET", path+"&"+q, ""); status != http.StatusBadRequest {
			t.Errorf("GET %s&%s = %d %s, want 400", path, q, status, body)
		}
	}
}

// TestKeysPaged: GET /api/v1/keys answers one page of the newest-first
// list at a time, by cursor, a page of 100 without ?limit=; the pages
// together are the list, whatever the page size; paging does not widen
// it (p2's admin sees p2's keys only).
func TestKeysPaged(t *testing.T) {
	w := newWorld(t)
	for range 5 {
		w.key("p1", core.RoleViewer, nil, nil, nil)
	}
	first := w.getPage(t, "192.0.2.1", "admin", "/api/v1/keys?", "keys", "key_id")
	all := first.IDs
	if len(all) != 11 || first.NextCursor != "" || first.Limit != 100 {
		t.Fatalf("without ?limit=: %d keys, limit %d, next %q; want p1's 11 keys on one page of 100", len(all), first.Limit, first.NextCursor)
	}
	keys, err := w.store.APIKeys(t.Context(), core.KeyFilter{ProjectID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range keys {
		want = append(want, k.ID)
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Fatalf("keys are not newest first (-store +api):\n%s", diff)
	}
	for _, limit := range []int{1, 2, 4, 10, 11, 100} {
		if diff := cmp.Diff(all, w.walk(t, "192.0.2.1", "admin", "/api/v1/keys?", "keys", "key_id", limit)); diff != "" {
			t.Errorf("pages of %d (-all +paged):\n%s", limit, diff)
		}
	}
	if got := w.walk(t, "192.0.2.1", "p2admin", "/api/v1/keys?", "keys", "key_id", 1); len(got) != 1 {
		t.Errorf("p2 admin's keys, a page at a time: %q, want p2's one key", got)
	}
	// A p1 cursor does not open p1 to p2's admin.
	p := w.getPage(t, "192.0.2.1", "admin", "/api/v1/keys?limit=1", "keys", "key_id")
	if got := w.getPage(t, "192.0.2.1", "p2admin", "/api/v1/keys?limit=5&cursor="+url.QueryEscape(p.NextCursor), "keys", "key_id"); slices.ContainsFunc(got.IDs, func(id string) bool { return slices.Contains(all, id) }) {
		t.Errorf("p2 admin with p1's cursor sees %q", got.IDs)
	}
	w.checkBadPaging(t, "192.0.2.1", "admin", "/api/v1/keys?")
}

// TestBlocksPaged: GET /api/v1/blocks answers one page of the blocks,
// soonest to end first, by cursor; the pages together are the list.
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
		if i != 2 { // the third and fourth end at one instant
			w.clock = w.clock.Add(time.Second)
		}
	}
	if got := w.getPage(t, "203.0.113.1", "owner", "/api/v1/blocks?", "blocks", "client"); !cmp.Equal(got.IDs, clients) || got.NextCursor != "" {
		t.Errorf("blocks without ?limit= = %q, next %q; want %q on one page", got.IDs, got.NextCursor, clients)
	}
	for _, limit := range []int{1, 2, 3, 5} {
		if diff := cmp.Diff(clients, w.walk(t, "203.0.113.1", "owner", "/api/v1/blocks?", "blocks", "client", limit)); diff != "" {
			t.Errorf("pages of %d (-want +got):\n%s", limit, diff)
		}
	}
	w.checkBadPaging(t, "203.0.113.1", "owner", "/api/v1/blocks?")
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

// TestMemoryPaged: an agent's memory list answers one page by cursor,
// by user id; the pages together are the list.
func TestMemoryPaged(t *testing.T) {
	w := newWorld(t)
	m := w.withMemory(t)
	users := []string{"alice", "bob", "carol", "dave", "zoë"}
	for _, u := range users {
		l, err := m.Acquire(t.Context(), memory.Key{Project: "p1", Agent: agentP1, User: u}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
	path := "/api/v1/agents/" + agentP1 + "/memory?"
	if got := w.getPage(t, "192.0.2.1", "admin", path, "memories", "user_id"); !cmp.Equal(got.IDs, users) || got.NextCursor != "" {
		t.Errorf("memory without ?limit= = %q, next %q; want %q on one page", got.IDs, got.NextCursor, users)
	}
	for _, limit := range []int{1, 2, 4, 5} {
		if diff := cmp.Diff(users, w.walk(t, "192.0.2.1", "admin", path, "memories", "user_id", limit)); diff != "" {
			t.Errorf("pages of %d (-want +got):\n%s", limit, diff)
		}
	}
	w.checkBadPaging(t, "192.0.2.1", "admin", path)
}

// FuzzCursorParams: any query gives a limit within bounds or a
// VALIDATION error naming limit or offset, never a panic.
func FuzzCursorParams(f *testing.F) {
	for _, s := range []string{"", "limit=20&cursor=abc", "limit=0", "limit=101", "offset=0", "limit=1e3", "limit=%00", "limit=20&limit=1", "cursor="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		limit, _, err := cursorParams(q)
		if err != nil {
			var ce *core.Error
			if !errors.As(err, &ce) || ce.Code != core.CodeValidation || (ce.Field != "limit" && ce.Field != "offset") {
				t.Fatalf("cursorParams(%q): %v, want a VALIDATION error on limit or offset", raw, err)
			}
			return
		}
		if limit < 1 || limit > maxListPage {
			t.Fatalf("cursorParams(%q) = %d: out of bounds", raw, limit)
		}
	})
}

// FuzzDecodeBlockCursor: a client's block cursor either decodes to a
// block of a valid client that encodes back to the same cursor, or is
// refused with the cursor error.
func FuzzDecodeBlockCursor(f *testing.F) {
	f.Add(encodeBlockCursor(Block{Client: "ip:192.0.2.1", Until: time.Unix(1765130400, 5)}))
	f.Add(encodeBlockCursor(Block{Client: "oidc:https://issuer#sub", Until: time.Unix(0, 0)}))
	f.Add("")
	f.Add("MTIzLg")      // "123."
	f.Add("LTEuaXA6eA")  // "-1.ip:x"
	f.Add("MDEyLmlwOng") // "012.ip:x"
	f.Add("MS5pcDog")    // "1.ip: "
	f.Add(strings.Repeat("A", 600))
	f.Fuzz(func(t *testing.T, s string) {
		b, err := decodeBlockCursor(s)
		if err != nil {
			if err != errCursor {
				t.Fatalf("decodeBlockCursor(%q) = %v, want errCursor", s, err)
			}
			return
		}
		if !validClient(b.Client) {
			t.Fatalf("decodeBlockCursor(%q) = client %q, not a valid client", s, b.Client)
		}
		if back := encodeBlockCursor(*b); back != s {
			t.Fatalf("decodeBlockCursor(%q) re-encodes as %q", s, back)
		}
	})
}

// FuzzDecodeUserCursor: a client's memory cursor either decodes to a
// user id a store may have that encodes back to the same cursor, or is
// refused with the cursor error.
func FuzzDecodeUserCursor(f *testing.F) {
	f.Add(encodeUserCursor("alice"))
	f.Add(encodeUserCursor("zoë"))
	f.Add(encodeUserCursor(strings.Repeat("u", memory.MaxUserID)))
	f.Add(encodeUserCursor(strings.Repeat("u", memory.MaxUserID+1)))
	f.Add(encodeUserCursor("a\x00b"))
	f.Add(encodeUserCursor("\xff"))
	f.Add("")
	f.Add("YWxpY2U\n")
	f.Add("YWxpY2V=")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := decodeUserCursor(s)
		if err != nil {
			if err != errCursor {
				t.Fatalf("decodeUserCursor(%q) = %v, want errCursor", s, err)
			}
			return
		}
		if err := (memory.Key{Project: "p", Agent: "a", User: u}).Validate(); err != nil || !utf8.ValidString(u) {
			t.Fatalf("decodeUserCursor(%q) = %q, not a user id: %v", s, u, err)
		}
		if back := encodeUserCursor(u); back != s {
			t.Fatalf("decodeUserCursor(%q) re-encodes as %q", s, back)
		}
	})
}
