package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
)

// The console as a person reads it: agents by name, one time format,
// table cells that do not break inside short words, every table a set of
// labelled cards at a phone's width.

// retiredID is an agent deployed and then deleted: its runs and the keys
// narrowed to it outlive it.
const retiredID = "dddddddd-dddd-4ddd-8ddd-000000000009"

// shownTime is the one way the console writes a time: local, year first,
// 24-hour clock.
var shownTime = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)

// TestBrowserNamesTimesAndCells: an owner sees agents by name where the
// views used to show their ids — the invocations list (the name linking
// to the agent's view, the id in its title; a deleted agent as "deleted
// agent <short id>"), an invocation's detail (name and id) and the keys'
// limits — with the XSS-named agent's name as text; every time in the
// invocations, keys, audit and agent views reads "YYYY-MM-DD hh:mm:ss"
// local, with the UTC instant in its datetime and title; at 1280 px the
// audit's short cells (action, IP, principal) are one line each; at 390
// px the agents table's cells are labelled like the other tables' and no
// view scrolls sideways.
func TestBrowserNamesTimesAndCells(t *testing.T) {
	s := newSite(t)
	st, bg := s.store, t.Context()
	if _, err := s.reg.DeployDir(bg, agentDir(t, retiredID, "retired-bot"), "p1"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteAgent(bg, retiredID, time.Now()); err != nil {
		t.Fatal(err)
	}
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	for i, agent := range []string{s.agents[0], s.agents[1], retiredID} {
		inv := &core.Invocation{ID: fmt.Sprintf("named-%d", i), AgentID: agent, ProjectID: "p1", EntrypointTag: "echo", Transport: "rest",
			Caller: "key:seed", InputArgs: json.RawMessage(`[]`), InputKwargs: json.RawMessage(`{}`), CreatedAt: created.Add(time.Duration(i) * time.Second)}
		if err := st.CreateInvocation(bg, inv); err != nil {
			t.Fatal(err)
		}
		done := inv.CreatedAt.Add(time.Second)
		inv.Status, inv.CompletedAt, inv.DurationMS = core.StatusCompleted, &done, 1000
		if err := st.FinishInvocation(bg, inv); err != nil {
			t.Fatal(err)
		}
	}
	owner := mustKey(t, st, "", core.RoleOwner, "owner-console")
	// A viewer's key narrowed to three agents, one since deleted.
	_, narrowID, hash := apikey.New()
	now := time.Now().UTC()
	exp := now.Add(time.Hour)
	pr := &core.Principal{ID: "pr-narrow", ProjectID: "p1", Name: "narrow", Kind: core.PrincipalService, Role: core.RoleViewer, CreatedAt: now}
	if err := st.CreatePrincipal(bg, pr); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIKey(bg, &core.APIKey{ID: narrowID, PrincipalID: pr.ID, ProjectID: "p1", Name: "narrow", Hash: hash, CreatedAt: now, ExpiresAt: &exp,
		Agents: []string{s.agents[0], s.agents[1], retiredID}}); err != nil {
		t.Fatal(err)
	}
	keys, err := st.APIKeys(bg, core.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}

	ctx := browser(t)
	signIn(t, ctx, s, owner)

	// The invocations list: names (one the payload, as text), linked;
	// the deleted agent by its short id, not linked.
	do(t, ctx, "open the invocations", chromedp.Evaluate[chromedp.Void](`location.hash = "#invocations"`))
	waitFor(t, ctx, "the runs", `document.querySelectorAll("#inv-body tr").length === 3`)
	agents := eval[map[string][]string](t, ctx, `Object.fromEntries([...document.querySelectorAll("#inv-body tr")].map(tr => {
		const td = tr.children[2], a = td.querySelector("a");
		return [tr.dataset.invocationId, [td.textContent, a ? a.getAttribute("href") : "", (a || td.firstElementChild).title]];
	}))`)
	want := map[string][]string{
		"named-0": {"support-bot", "#agent/" + s.agents[0], s.agents[0]},
		"named-1": {xssName, "#agent/" + s.agents[1], s.agents[1]},
		"named-2": {"deleted agent dddddddd", "", retiredID},
	}
	for id, w := range want {
		if got := agents[id]; strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("invocation %s shows its agent as %q (text, link, title), want %q", id, got, w)
		}
	}
	noScriptRan(t, ctx, "#view-invocations")
	checkTimes(t, ctx, "the invocations list", "#inv-body td:nth-child(2) time", 3)

	// A run's detail: the agent's name, linked, and its id.
	do(t, ctx, "open a run", chromedp.Click(chromedp.CSS(`#inv-body tr[data-invocation-id="named-0"] td:first-child a`)))
	waitFor(t, ctx, "the run", `document.getElementById("inv-detail-title").textContent === "Invocation named-0"`)
	if got := eval[string](t, ctx, `(dd => dd.querySelector("a").textContent + "|" + dd.querySelector("a").getAttribute("href") + "|" + dd.querySelector(".mono").textContent)(document.querySelector("#inv-timeline dd"))`); got != "support-bot|#agent/"+s.agents[0]+"|"+s.agents[0] {
		t.Errorf("the run's agent reads %q, want its name linked to its view, and its id", got)
	}
	checkTimes(t, ctx, "the run's timeline", "#inv-timeline time", 3)

	// The keys' limits: names, the deleted agent by its short id.
	do(t, ctx, "open the keys", chromedp.Evaluate[chromedp.Void](`location.hash = "#keys"`))
	row := `#keys-body tr[data-key-id="` + narrowID + `"]`
	waitFor(t, ctx, "the narrowed key", `!!document.querySelector('`+row+`')`)
	limits := eval[[]string](t, ctx, `(td => [td.textContent, td.title])(document.querySelector('`+row+` td:nth-child(3)'))`)
	if wantText := "agents support-bot, " + xssName + ", deleted agent dddddddd"; limits[0] != wantText {
		t.Errorf("the key's limits read %q, want %q", limits[0], wantText)
	}
	if !strings.Contains(limits[1], retiredID) || !strings.Contains(limits[1], s.agents[0]) {
		t.Errorf("the limits' title %q does not hold the agents' ids", limits[1])
	}
	noScriptRan(t, ctx, "#view-keys")
	checkTimes(t, ctx, "the keys' expiry", "#keys-body td:nth-child(4) time", len(keys))

	// The agent view's versions.
	do(t, ctx, "open an agent", chromedp.Evaluate[chromedp.Void](`location.hash = "#agent/`+s.agents[0]+`"`))
	waitFor(t, ctx, "its versions", `document.querySelectorAll("#versions-body tr").length === 1`)
	checkTimes(t, ctx, "the agent's versions", "#versions-body time", 1)

	// The audit trail: times, and short tokens on one line at 1280 px.
	do(t, ctx, "open the audit trail", chromedp.Evaluate[chromedp.Void](`location.hash = "#audit"`))
	waitFor(t, ctx, "records", `document.querySelectorAll("#audit-body tr").length >= 3`)
	n := eval[int](t, ctx, `document.querySelectorAll("#audit-body tr").length`)
	checkTimes(t, ctx, "the audit trail", "#audit-body td:nth-child(2) time", n)
	// A cell's text on one line is one rectangle per text node.
	broken := eval[[]string](t, ctx, `[...document.querySelectorAll("#audit-body td.token")].filter(td => {
		const r = document.createRange();
		r.selectNodeContents(td);
		const tops = new Set([...r.getClientRects()].map(c => Math.round(c.top)));
		return tops.size > 1;
	}).map(td => td.dataset.label + ": " + td.textContent)`)
	if len(broken) != 0 {
		t.Errorf("at 1280 px these audit cells break inside their words: %q", broken)
	}
	labels := eval[[]string](t, ctx, `[...new Set([...document.querySelectorAll("#audit-body td.token")].map(td => td.dataset.label))]`)
	if strings.Join(labels, ",") != "Seq,Principal,Action,IP" {
		t.Errorf("the audit's whole cells are %q, want Seq, Principal, Action and IP", labels)
	}

	// A phone's width: the agents table's cells say their column, as
	// the other tables' do, and no view scrolls sideways.
	do(t, ctx, "390 px", chromedp.EmulateViewport(390, 844))
	waitFor(t, ctx, "the window's width", `window.innerWidth === 390`)
	for _, view := range []struct{ hash, ready string }{
		{"#agents", `document.querySelectorAll("#agents-body tr").length === 2 && !document.getElementById("view-agents").hidden`},
		{"#audit", `document.querySelectorAll("#audit-body tr").length >= 3 && !document.getElementById("view-audit").hidden`},
		{"#invocations", `document.querySelectorAll("#inv-body tr").length === 3 && !document.getElementById("inv-list").hidden`},
		{"#keys", `!!document.querySelector('` + row + `') && !document.getElementById("view-keys").hidden`},
	} {
		do(t, ctx, "open "+view.hash, chromedp.Evaluate[chromedp.Void](`location.hash = "`+view.hash+`"`))
		waitFor(t, ctx, view.hash+" at 390 px", view.ready)
		if over := eval[int](t, ctx, `document.documentElement.scrollWidth`); over > 390 {
			t.Errorf("%s at 390 px is %d px wide: it scrolls sideways", view.hash, over)
		}
		if view.hash != "#agents" {
			continue
		}
		cells := eval[[]string](t, ctx, `[...document.querySelectorAll("#agents-body td:not([data-needs])")].map(td => getComputedStyle(td, "::before").content)`)
		want := []string{`"Name: "`, `"Agent id: "`, `"Version: "`, `"Entrypoints: "`}
		if len(cells) != 2*len(want) {
			t.Fatalf("the agents table has %d cells, want %d", len(cells), 2*len(want))
		}
		for i, got := range cells {
			if got != want[i%len(want)] {
				t.Errorf("at 390 px an agent's cell %d is labelled %s, want %s", i, got, want[i%len(want)])
			}
		}
	}
}

// checkTimes checks the <time> elements selector finds (want of them):
// each reads as shownTime, its datetime is an RFC 3339 UTC instant (in
// its title too), and its text, read as local time, is that instant to
// the second.
func checkTimes(t *testing.T, ctx context.Context, what, selector string, want int) {
	t.Helper()
	times := eval[[][]string](t, ctx, `[...document.querySelectorAll("`+selector+`")].map(e => [e.textContent, e.dateTime, e.title,
		String(new Date(e.textContent.replace(" ", "T")).getTime() === Math.floor(new Date(e.dateTime).getTime() / 1000) * 1000)])`)
	if len(times) != want {
		t.Errorf("%s: %d times shown, want %d", what, len(times), want)
	}
	for _, tm := range times {
		text, datetime, title, same := tm[0], tm[1], tm[2], tm[3]
		if !shownTime.MatchString(text) {
			t.Errorf("%s: a time reads %q, want YYYY-MM-DD hh:mm:ss", what, text)
		}
		if _, err := time.Parse(time.RFC3339Nano, datetime); err != nil || !strings.HasSuffix(datetime, "Z") {
			t.Errorf("%s: a time's datetime is %q, want an RFC 3339 UTC instant", what, datetime)
		}
		if !strings.HasPrefix(title, datetime) {
			t.Errorf("%s: a time's title is %q, want it to hold %s", what, title, datetime)
		}
		if same != "true" {
			t.Errorf("%s: %q, read as local time, is not the instant %s", what, text, datetime)
		}
	}
}

// TestClearShots: make screenshots removes the pictures of an earlier run
// (a view since gone leaves none behind) and keeps the directory's other
// files.
func TestClearShots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shots")
	if err := clearShots(dir); err != nil {
		t.Fatalf("clearShots of a new directory: %v", err)
	}
	for _, f := range []string{"gone-view.png", "agents.png", "README.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := clearShots(dir); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "README.txt" {
		t.Errorf("after clearShots the directory holds %q, want only README.txt", names)
	}
}
