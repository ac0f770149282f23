package console_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/ratelimit"
)

// apiGet decodes the data of the answer to GET path, asked with key,
// into v.
func apiGet(t *testing.T, s *site, key, path string, v any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200", path, res.StatusCode)
	}
	env := struct{ Data any }{Data: v}
	if err := json.NewDecoder(res.Body).Decode(&env); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// sameInstant checks the datetime of the <time> selector finds against
// the record's time as the API sent it (RFC 3339): the same UTC instant
// (to the millisecond: a browser's Date holds no finer).
func sameInstant(t *testing.T, what, datetime, sent string) {
	t.Helper()
	want, err := time.Parse(time.RFC3339Nano, sent)
	if err != nil {
		t.Fatalf("%s: the API sent the time %q: %v", what, sent, err)
	}
	got, err := time.Parse(time.RFC3339Nano, datetime)
	if err != nil {
		t.Errorf("%s: the shown time's datetime is %q, want an RFC 3339 instant", what, datetime)
		return
	}
	if !got.Equal(want.Truncate(time.Millisecond)) {
		t.Errorf("%s: the shown time's datetime is %s, want the record's %s", what, datetime, want.UTC().Format(time.RFC3339Nano))
	}
}

// TestBrowserTimesEverywhere: the secrets, persistent memory (as root:
// it mounts real encrypted stores), blocks and security events views, a
// rotated key's state and the metrics view show each time as the other
// views do — a <time> reading "YYYY-MM-DD hh:mm:ss" local, its datetime
// and title the record's UTC instant — and, at 390 px, the time cells
// keep their card labels. The events' XSS message stays text.
func TestBrowserTimesEverywhere(t *testing.T) {
	root := os.Geteuid() == 0
	var em *events.Emitter
	var mem *memory.Manager
	blocks := ratelimit.NewMemoryBlocks(api.BlockPolicy{After: 100, Window: time.Hour, For: time.Hour}, nil)
	s := newSite(t, opsDeps(t, &em), func(d *api.Deps) {
		d.Blocks = blocks
		if root {
			memoryDeps(t, &mem)(d)
		}
	})
	ops := &opsSite{site: s, events: em}
	owner := mustKey(t, s.store, "", core.RoleOwner, "owner-console")
	agent := s.agents[0]

	if got := ops.call(t, s.keys["admin"], "PUT", "/api/v1/agents/"+agent+"/secrets/API_TOKEN", `{"value":"not-shown"}`, ""); got != http.StatusOK {
		t.Fatalf("set a secret: %d, want 200", got)
	}
	block(t, blocks, 100, "ip:198.51.100.7")
	evTime := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Millisecond)
	if err := s.store.AppendEvents(t.Context(), []core.SecurityEvent{{ID: "ev-time", Time: evTime, Type: core.EventInputRejected,
		Severity: core.SeverityWarning, Message: xssText}}); err != nil {
		t.Fatal(err)
	}
	ops.flush(t)
	keys, err := s.store.APIKeys(t.Context(), core.KeyFilter{ProjectID: "p1"})
	if err != nil || len(keys) == 0 {
		t.Fatalf("the site's keys: %d, %v", len(keys), err)
	}
	rotated := keys[0].ID
	if got := ops.call(t, owner, "POST", "/api/v1/keys/"+rotated+"/rotate", "", ""); got != http.StatusCreated && got != http.StatusOK {
		t.Fatalf("rotate a key: %d", got)
	}
	if root {
		l, err := mem.Acquire(t.Context(), memory.Key{Project: "p1", Agent: agent, User: "alice"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l.Dir, "notes.txt"), []byte("likes tea"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}

	// The times the API sends, which the views must show.
	var secrets struct {
		Secrets []struct {
			UpdatedAt string `json:"updated_at"`
		} `json:"secrets"`
	}
	apiGet(t, s, owner, "/api/v1/agents/"+agent+"/secrets", &secrets)
	var blocked struct {
		Blocks []struct {
			Until string `json:"until"`
		} `json:"blocks"`
	}
	apiGet(t, s, owner, "/api/v1/blocks", &blocked)
	rot, err := s.store.APIKey(t.Context(), rotated)
	if err != nil || rot.ExpiresAt == nil {
		t.Fatalf("the rotated key: %+v, %v", rot, err)
	}
	if len(secrets.Secrets) != 1 || len(blocked.Blocks) != 1 {
		t.Fatalf("the API lists %d secrets and %d blocks, want 1 and 1", len(secrets.Secrets), len(blocked.Blocks))
	}

	ctx := browser(t)
	signIn(t, ctx, s, owner)
	datetime := func(selector string) string {
		t.Helper()
		return eval[string](t, ctx, `document.querySelector("`+selector+`").dateTime`)
	}

	do(t, ctx, "open the secrets", chromedp.Evaluate[chromedp.Void](`location.hash = "#secrets"`))
	pick(t, ctx, "secrets-agent", agent)
	waitFor(t, ctx, "the secret", `document.querySelectorAll("#secrets-body tr").length === 1`)
	checkTimes(t, ctx, "the secrets", "#secrets-body time", 1)
	sameInstant(t, "the secret's update", datetime("#secrets-body td.time time"), secrets.Secrets[0].UpdatedAt)

	if root {
		var mems struct {
			Memories []struct {
				LastUsedAt string `json:"last_used_at"`
			} `json:"memories"`
		}
		apiGet(t, s, owner, "/api/v1/agents/"+agent+"/memory", &mems)
		if len(mems.Memories) != 1 {
			t.Fatalf("the API lists %d memories, want 1", len(mems.Memories))
		}
		do(t, ctx, "open the memory", chromedp.Evaluate[chromedp.Void](`location.hash = "#memory"`))
		pick(t, ctx, "memory-agent", agent)
		waitFor(t, ctx, "alice's memory", `document.querySelectorAll("#memory-body tr").length === 1`)
		checkTimes(t, ctx, "the memory", "#memory-body time", 1)
		sameInstant(t, "the memory's last use", datetime("#memory-body td.time time"), mems.Memories[0].LastUsedAt)
	} else {
		t.Logf("uid %d may not mount persistent memory (it needs root): the memory view's times are not checked", os.Geteuid())
	}

	do(t, ctx, "open the blocks", chromedp.Evaluate[chromedp.Void](`location.hash = "#blocks"`))
	waitFor(t, ctx, "the block", `document.querySelectorAll("#blocks-body tr").length === 1`)
	checkTimes(t, ctx, "the blocks", "#blocks-body time", 1)
	sameInstant(t, "the block's end", datetime("#blocks-body td.time time"), blocked.Blocks[0].Until)

	do(t, ctx, "open the events", chromedp.Evaluate[chromedp.Void](`location.hash = "#events"`))
	waitFor(t, ctx, "the event", `!!document.querySelector('#events-body tr[data-event-id="ev-time"]') && document.querySelectorAll("#events-counts tbody tr").length > 0`)
	n := eval[int](t, ctx, `document.querySelectorAll("#events-body tr").length`)
	checkTimes(t, ctx, "the events", "#events-body td.time time", n)
	sameInstant(t, "the event's time", datetime("#events-body tr[data-event-id='ev-time'] td.time time"), evTime.Format(time.RFC3339Nano))
	// The chart's range: from the since to the until the chart asked for.
	checkTimes(t, ctx, "the chart's range", "#events-chart-title time", 2)
	rows := eval[int](t, ctx, `document.querySelectorAll("#events-counts tbody tr").length`)
	checkTimes(t, ctx, "the counts' buckets", "#events-counts tbody td.time time", rows)
	noScriptRan(t, ctx, "#view-events")

	do(t, ctx, "open the keys", chromedp.Evaluate[chromedp.Void](`location.hash = "#keys"`))
	state := "#keys-body tr[data-key-id='" + rotated + "'] td.state"
	waitFor(t, ctx, "the rotated key", `!!document.querySelector("`+state+` time")`)
	checkTimes(t, ctx, "the rotated key's state", state+" time", 1)
	sameInstant(t, "the rotated key's end", datetime(state+" time"), rot.ExpiresAt.Format(time.RFC3339Nano))

	do(t, ctx, "open the metrics", chromedp.Evaluate[chromedp.Void](`location.hash = "#metrics"`))
	waitFor(t, ctx, "the note", `!!document.querySelector("#metrics-note time")`)
	checkTimes(t, ctx, "the metrics' start", "#metrics-note time", 1)

	// A phone's width: every time cell is a card row that says its column.
	do(t, ctx, "390 px", chromedp.EmulateViewport(390, 844))
	waitFor(t, ctx, "the window's width", `window.innerWidth === 390`)
	for _, view := range []struct{ hash, cells, label string }{
		{"#secrets", "#secrets-body td.time", "Updated"},
		{"#blocks", "#blocks-body td.time", "Until"},
		{"#events", "#events-body td.time", "Time"},
	} {
		do(t, ctx, "open "+view.hash, chromedp.Evaluate[chromedp.Void](`location.hash = "`+view.hash+`"`))
		waitFor(t, ctx, view.hash+" at 390 px", `!!document.querySelector("`+view.cells+` time") && document.body.dataset.view === "`+view.hash[1:]+`"`)
		labels := eval[[]string](t, ctx, `[...document.querySelectorAll("`+view.cells+`")].map(td => getComputedStyle(td, "::before").content)`)
		for _, got := range labels {
			if got != `"`+view.label+`: "` {
				t.Errorf("at 390 px a time cell of %s is labelled %s, want %q", view.hash, got, view.label+": ")
			}
		}
		if len(labels) == 0 {
			t.Errorf("at 390 px %s shows no time cells", view.hash)
		}
	}
}
