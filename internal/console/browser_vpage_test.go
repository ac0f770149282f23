package console_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/core"
)

// TestBrowserAgentsAndVersionsPaged: the agents view pages through 45
// agents, and the agent view through 25 versions, by the server's
// cursors (never an offset), with Next and Previous by keyboard; an
// agent name with markup on the last page is shown as text; at 390 px
// the versions' and builds' cells are labelled with their columns and
// the agent view does not scroll sideways.
func TestBrowserAgentsAndVersionsPaged(t *testing.T) {
	s := newSite(t)
	ctx := t.Context()
	// 43 more agents (45 with the site's two), ids after the site's; the
	// last one's name is markup.
	var last string
	for i := 3; i <= 45; i++ {
		id := fmt.Sprintf("aaaaaaaa-aaaa-4aaa-8aaa-%012d", i)
		name := fmt.Sprintf("agent-%02d", i)
		if i == 45 {
			name, last = xssKeyName, id
		}
		if _, err := s.reg.DeployDir(ctx, agentDir(t, id, name), "p1"); err != nil {
			t.Fatal(err)
		}
	}
	// 25 versions of the first agent, and a build of it.
	agent := s.agents[0]
	dir := agentDir(t, agent, "support-bot")
	for i := range 24 {
		if err := os.WriteFile(filepath.Join(dir, "extra.py"), []byte(fmt.Sprintf("X = %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.reg.DeployDir(ctx, dir, "p1"); err != nil {
			t.Fatal(err)
		}
	}
	a, err := s.store.Agent(ctx, agent)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.PutBuild(ctx, &core.Build{ID: "bld-1", AgentID: agent, ProjectID: "p1", Version: a.CurrentVersion,
		Status: core.BuildSucceeded, StartedAt: time.Now(), FinishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	b := browser(t)
	signIn(t, b, s, s.keys["admin"])
	asked := func(path string) string {
		a := eval[[]string](t, b, `performance.getEntriesByType("resource").map(e => e.name).filter(n => n.includes(`+jsString(path)+`))`)
		if len(a) == 0 {
			return ""
		}
		return a[len(a)-1]
	}
	// pressOn focuses the button id and presses Enter, then waits for
	// the pager's text to read want.
	pressOn := func(id, pageID, want string) {
		t.Helper()
		eval[bool](t, b, `document.getElementById(`+jsString(id)+`).focus(), true`)
		do(t, b, id+" to "+want, chromedp.KeyEvent("\r"),
			chromedp.Poll[chromedp.Void](`document.getElementById(`+jsString(pageID)+`).textContent === `+jsString(want)))
	}

	do(t, b, "open the agents view", chromedp.Navigate(s.url+"/console#agents"),
		chromedp.Poll[chromedp.Void](`document.getElementById("agents-page").textContent === "1–20"`))
	if n := eval[int](t, b, `document.querySelectorAll("#agents-body tr").length`); n != 20 {
		t.Errorf("agents, first page: %d rows, want 20", n)
	}
	if got := asked("/api/v1/agents?"); !strings.Contains(got, "limit=20") || strings.Contains(got, "cursor") || strings.Contains(got, "offset") {
		t.Errorf("the first page of agents was asked for with %q, want ?limit=20", got)
	}
	pressOn("agents-next", "agents-page", "21–40")
	pressOn("agents-next", "agents-page", "41–45")
	if got := asked("/api/v1/agents?"); !strings.Contains(got, "cursor=") || strings.Contains(got, "offset") {
		t.Errorf("the last page of agents was asked for with %q, want a cursor", got)
	}
	if !eval[bool](t, b, `document.getElementById("agents-next").disabled && !document.getElementById("agents-prev").disabled`) {
		t.Error("on the agents' last page Next is enabled or Previous is not")
	}
	if got := eval[string](t, b, `document.querySelector('#agents-body tr[data-agent-id="`+last+`"] td.name').textContent`); got != xssKeyName {
		t.Errorf("the last agent's name reads %q, want %q as text", got, xssKeyName)
	}
	if eval[bool](t, b, `window.__xss !== undefined || document.querySelectorAll("#agents-body img, #agents-body script").length > 0`) {
		t.Error("an agent name was made into an element or ran script")
	}
	pressOn("agents-prev", "agents-page", "21–40")

	do(t, b, "open the agent view", chromedp.Navigate(s.url+"/console#agent/"+agent),
		chromedp.Poll[chromedp.Void](`document.getElementById("versions-page").textContent === "1–10"`))
	if n := eval[int](t, b, `document.querySelectorAll("#versions-body tr").length`); n != 10 {
		t.Errorf("versions, first page: %d rows, want 10", n)
	}
	if !eval[bool](t, b, `document.querySelector("#versions-body tr").classList.contains("current")`) {
		t.Error("the first version listed is not the current one")
	}
	pressOn("versions-next", "versions-page", "11–20")
	pressOn("versions-next", "versions-page", "21–25")
	if got := asked("/versions?"); !strings.Contains(got, "limit=10&cursor=sha256") || strings.Contains(got, "offset") {
		t.Errorf("the last page of versions was asked for with %q, want ?limit=10&cursor=…", got)
	}
	if !eval[bool](t, b, `document.getElementById("versions-next").disabled`) {
		t.Error("on the versions' last page Next is enabled")
	}
	pressOn("versions-prev", "versions-page", "11–20")

	// 390 px: rows are cards, each cell labelled; nothing scrolls
	// sideways.
	do(t, b, "390 px", chromedp.EmulateViewport(390, 844), chromedp.Navigate(s.url+"/console#agent/"+agent),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#versions-body tr").length === 10 && document.querySelectorAll("#builds-body tr").length === 1`))
	for _, body := range []string{"versions-body", "builds-body"} {
		unlabelled := eval[int](t, b, `[...document.querySelectorAll("#`+body+` td:not(.actions)")].filter(td => !td.dataset.label || getComputedStyle(td, "::before").content === "none").length`)
		if unlabelled != 0 {
			t.Errorf("at 390 px, %d cells of #%s have no label shown", unlabelled, body)
		}
	}
	if got := eval[string](t, b, `getComputedStyle(document.querySelector("#versions-body td"), "::before").content`); got != `"Version: "` {
		t.Errorf("at 390 px the first version cell is labelled %s, want \"Version: \"", got)
	}
	if over := eval[bool](t, b, `document.documentElement.scrollWidth > window.innerWidth`); over {
		t.Errorf("the agent view at 390 px scrolls sideways (%d px wide)", eval[int](t, b, `document.documentElement.scrollWidth`))
	}
}
