package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/core"
)

// The invocations view in the browser (browser_test.go has the site and
// the browser).

// xssTrace is an agent's error with a traceback whose last line is the
// XSS payload.
const xssTrace = "Traceback (most recent call last):\n  File \"main.py\", line 2, in echo\nValueError: " + xssName

// seedInvocations records 60 finished invocations of the site's two
// agents, a minute apart from base (the i-th: agent i%2, user u{i%3},
// failed when i%4 == 0), then one failed with the XSS payload in its
// output, logs and traceback, and one still running (on no server),
// newest. It returns the payload's invocation and the running one.
func seedInvocations(t *testing.T, s *site, base time.Time) (xss, running string) {
	t.Helper()
	ctx := t.Context()
	record := func(inv *core.Invocation, finish func(*core.Invocation)) {
		inv.ProjectID, inv.EntrypointTag, inv.Transport, inv.Caller = "p1", "echo", "rest", "key:seed"
		inv.InputArgs, inv.InputKwargs = json.RawMessage(`[1]`), json.RawMessage(`{}`)
		if err := s.store.CreateInvocation(ctx, inv); err != nil {
			t.Fatal(err)
		}
		if finish == nil {
			return
		}
		finish(inv)
		done := inv.CreatedAt.Add(1500 * time.Millisecond)
		inv.CompletedAt, inv.DurationMS = &done, 1500
		if err := s.store.FinishInvocation(ctx, inv); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		inv := &core.Invocation{ID: fmt.Sprintf("seed-%02d", i), AgentID: s.agents[i%2], UserID: fmt.Sprintf("u%d", i%3),
			CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		record(inv, func(inv *core.Invocation) {
			inv.Status, inv.Output = core.StatusCompleted, json.RawMessage(`{"ok":true}`)
			if i%4 == 0 {
				inv.Status, inv.Output, inv.ErrorCode, inv.ErrorMessage = core.StatusFailed, nil, "AGENT_ERROR", "boom"
			}
		})
	}
	payload, _ := json.Marshal(xssName)
	record(&core.Invocation{ID: "seed-xss", AgentID: s.agents[1], UserID: "x", CreatedAt: base.Add(61 * time.Minute)}, func(inv *core.Invocation) {
		inv.Status, inv.Output, inv.Logs = core.StatusFailed, payload, "started\n"+xssName+"\n"
		inv.ErrorCode, inv.ErrorMessage = "AGENT_ERROR", xssTrace
	})
	record(&core.Invocation{ID: "seed-running", AgentID: s.agents[0], UserID: "x", CreatedAt: base.Add(62 * time.Minute)}, nil)
	return "seed-xss", "seed-running"
}

// rerender runs steps that redraw the invocations table and waits until
// it is redrawn.
func rerender(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	eval[bool](t, ctx, `[...document.querySelectorAll("#inv-body tr")].forEach(tr => tr.dataset.old = 1), true`)
	do(t, ctx, what, steps...)
	waitFor(t, ctx, what, `!document.querySelector("#inv-body tr[data-old]") && (document.querySelectorAll("#inv-body tr").length > 0 || !document.getElementById("inv-empty").hidden)`)
}

const shownIDs = `[...document.querySelectorAll("#inv-body tr")].map(tr => tr.dataset.invocationId)`

// column is the text of the n-th cell (from 1) of every row shown.
func column(n int) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#inv-body tr td:nth-child(%d)")].map(td => td.textContent)`, n)
}

// TestBrowserInvocationsListFilterPage: a viewer lists invocations
// newest first, 25 a page, pages older and newer by cursor, filters by
// status and user, by agent, and by time range; opens an invocation
// whose output, logs and traceback hold an XSS payload and sees them as
// text (no script ran); opens a running one and sees no Cancel (a
// viewer may not); and the view fits 390 px.
func TestBrowserInvocationsListFilterPage(t *testing.T) {
	s := newSite(t)
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	xss, running := seedInvocations(t, s, base)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["viewer"])

	do(t, ctx, "open the invocations view", chromedp.Click(chromedp.CSS(`#nav a[href="#invocations"]`)))
	waitFor(t, ctx, "first page", `document.querySelectorAll("#inv-body tr").length > 0`)
	page1 := eval[[]string](t, ctx, shownIDs)
	if len(page1) != 25 || page1[0] != running || page1[1] != xss || page1[2] != "seed-59" || page1[24] != "seed-37" {
		t.Fatalf("first page: %v, want 25 newest first (seed-running, seed-xss, seed-59 … seed-37)", page1)
	}
	rerender(t, ctx, "older", chromedp.Click(chromedp.ID("inv-next")))
	if got := eval[[]string](t, ctx, shownIDs); len(got) != 25 || got[0] != "seed-36" || got[24] != "seed-12" {
		t.Errorf("second page: %v, want seed-36 … seed-12", got)
	}
	rerender(t, ctx, "older again", chromedp.Click(chromedp.ID("inv-next")))
	if got := eval[[]string](t, ctx, shownIDs); len(got) != 12 || got[11] != "seed-00" {
		t.Errorf("last page: %v, want the 12 oldest", got)
	}
	if !eval[bool](t, ctx, `document.getElementById("inv-next").disabled`) {
		t.Error("Older is enabled on the last page")
	}
	rerender(t, ctx, "newer", chromedp.Click(chromedp.ID("inv-prev")))
	rerender(t, ctx, "newer again", chromedp.Click(chromedp.ID("inv-prev")))
	if got := eval[[]string](t, ctx, shownIDs); strings.Join(got, ",") != strings.Join(page1, ",") {
		t.Errorf("back on the first page: %v, want %v", got, page1)
	}

	// Status and user: i%4 == 0 and i%3 == 1.
	rerender(t, ctx, "filter by status and user",
		chromedp.SetValue(chromedp.ID("inv-status"), "failed"),
		chromedp.SendKeys(chromedp.ID("inv-user"), "u1"),
		chromedp.Click(chromedp.CSS(`#inv-filter button[type=submit]`)))
	if got := eval[[]string](t, ctx, shownIDs); strings.Join(got, ",") != "seed-52,seed-40,seed-28,seed-16,seed-04" {
		t.Errorf("failed runs of u1: %v, want seed-52, -40, -28, -16, -04", got)
	}
	// The agent named with the payload, by its option (shown as text).
	if opt := eval[string](t, ctx, fmt.Sprintf(`document.querySelector('#inv-agent option[value=%q]').textContent`, s.agents[1])); !strings.HasPrefix(opt, xssName) {
		t.Errorf("the agent filter shows %q, want the agent's name as text", opt)
	}
	eval[bool](t, ctx, fmt.Sprintf(`document.getElementById("inv-status").value = document.getElementById("inv-user").value = "",
		document.getElementById("inv-agent").value = %q, true`, s.agents[1]))
	rerender(t, ctx, "filter by agent", chromedp.Click(chromedp.CSS(`#inv-filter button[type=submit]`)))
	// The agent column shows the agent's name (the payload, as text),
	// its id in the link's title.
	agents := eval[[]string](t, ctx, `[...document.querySelectorAll("#inv-body tr td:nth-child(3) a")].map(a => a.textContent + "|" + a.title)`)
	if len(agents) != 25 || strings.Count(strings.Join(agents, "\n"), xssName+"|"+s.agents[1]) != 25 {
		t.Errorf("agent filter shows agents %q, want 25 rows of %s named with the payload", agents, s.agents[1])
	}
	// A time range, as the inputs take it (local time), from the 10th
	// run to before the 20th.
	local := func(at time.Time) string {
		return fmt.Sprintf(`new Date(%d - new Date(%d).getTimezoneOffset() * 60000).toISOString().slice(0, 19)`, at.UnixMilli(), at.UnixMilli())
	}
	eval[bool](t, ctx, `document.getElementById("inv-since").value = `+local(base.Add(10*time.Minute))+`, true`)
	eval[bool](t, ctx, `document.getElementById("inv-until").value = `+local(base.Add(20*time.Minute))+`, true`)
	eval[bool](t, ctx, `document.getElementById("inv-agent").value = "", true`)
	rerender(t, ctx, "filter by time",
		chromedp.Click(chromedp.CSS(`#inv-filter button[type=submit]`)))
	if got := eval[[]string](t, ctx, shownIDs); len(got) != 10 || got[0] != "seed-19" || got[9] != "seed-10" {
		t.Errorf("time range: %v, want seed-19 … seed-10", got)
	}

	// The payload's invocation, opened from the list.
	eval[bool](t, ctx, `document.getElementById("inv-since").value = document.getElementById("inv-until").value = "", true`)
	rerender(t, ctx, "no filter", chromedp.Click(chromedp.CSS(`#inv-filter button[type=submit]`)))
	do(t, ctx, "open the payload's invocation", chromedp.Click(chromedp.CSS(`#inv-body tr[data-invocation-id="seed-xss"] a`)))
	waitFor(t, ctx, "detail", `document.getElementById("inv-detail-title").textContent === "Invocation seed-xss"`)
	texts := eval[map[string]string](t, ctx, `Object.fromEntries(["inv-output", "inv-logs", "inv-error", "inv-error-code", "inv-timeline", "inv-input"].map(id => [id, document.getElementById(id).textContent]))`)
	// The output is the JSON string, as JSON.stringify writes it.
	wantOutput := `"` + strings.ReplaceAll(xssName, `"`, `\"`) + `"`
	for id, want := range map[string]string{"inv-output": wantOutput, "inv-logs": "started\n" + xssName + "\n", "inv-error": xssTrace, "inv-error-code": "AGENT_ERROR"} {
		if texts[id] != want {
			t.Errorf("#%s shows %q, want the text %q", id, texts[id], want)
		}
	}
	for _, want := range []string{"Created", "Started", "Completed", "Duration1.50 s", "Node—", "Cancelled by—", "Userx"} {
		if !strings.Contains(texts["inv-timeline"], want) {
			t.Errorf("timeline %q lacks %q", texts["inv-timeline"], want)
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#inv-detail img, #inv-detail script, #inv-agent img").length`); n != 0 {
		t.Errorf("the detail holds %d img or script elements made of the payload", n)
	}
	if ran := eval[bool](t, ctx, `window.__xss !== undefined`); ran {
		t.Error("the XSS payload ran")
	}

	// A running invocation: a viewer sees it running and no Cancel.
	do(t, ctx, "open the running one", chromedp.Navigate(s.url+"/console#invocations/"+running))
	waitFor(t, ctx, "running detail", `document.getElementById("inv-detail-status").textContent === "running"`)
	if shown := eval[bool](t, ctx, `document.getElementById("inv-cancel").offsetParent !== null`); shown {
		t.Error("a viewer sees Cancel")
	}

	for _, view := range []string{"#invocations/" + xss, "#invocations"} {
		do(t, ctx, "390 px", chromedp.EmulateViewport(390, 844), chromedp.Navigate(s.url+"/console"+view))
		waitFor(t, ctx, "390 px "+view, `document.body.dataset.view === "invocation" || document.querySelectorAll("#inv-body tr").length > 0`)
		if over := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`); over {
			t.Errorf("%s at 390 px scrolls sideways (%d px wide)", view, eval[int](t, ctx, `document.documentElement.scrollWidth`))
		}
	}
}

// TestBrowserInvocationLiveCancel: an admin opens a stream that is
// running; its output grows as chunks come (the stream rejoined with the
// session cookie), Cancel is shown, and pressing it cancels the run: the
// view shows it cancelled, by whom, and the record says so.
func TestBrowserInvocationLiveCancel(t *testing.T) {
	s := newSiteWith(t, siteOptions{ChunkDelay: 150 * time.Millisecond})
	items := make([]string, 400)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	rctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	id, body := startStream(rctx, t, s, s.agents[0], `{"entrypoint_tag":"echo_stream","input_args":[`+strings.Join(items, ",")+`]}`)
	go func() { // the caller keeps reading until the run ends
		sc := bufio.NewScanner(body)
		for sc.Scan() {
		}
	}()

	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	do(t, ctx, "open the running stream", chromedp.Navigate(s.url+"/console#invocations/"+id))
	waitFor(t, ctx, "live chunks", `/chunks? so far/.test(document.getElementById("inv-live").textContent)`)
	lines := `document.getElementById("inv-output").textContent.split("\n").length`
	n1 := eval[int](t, ctx, lines)
	time.Sleep(time.Second)
	n2 := eval[int](t, ctx, lines)
	if n2 <= n1 {
		t.Errorf("the output did not grow while the run streamed: %d lines, then %d", n1, n2)
	}
	if !eval[bool](t, ctx, `document.getElementById("inv-cancel").offsetParent !== null`) {
		t.Fatal("an admin sees no Cancel on a running invocation")
	}
	do(t, ctx, "cancel", chromedp.Click(chromedp.ID("inv-cancel")))
	waitFor(t, ctx, "cancelled", `document.getElementById("inv-detail-status").textContent === "cancelled"`)
	if tl := eval[string](t, ctx, `document.getElementById("inv-timeline").textContent`); !strings.Contains(tl, "Cancelled bykey:") {
		t.Errorf("timeline %q does not say which key cancelled the run", tl)
	}
	if eval[bool](t, ctx, `document.getElementById("inv-cancel").offsetParent !== null`) {
		t.Error("Cancel is still shown on a cancelled invocation")
	}
	inv, err := s.store.Invocation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Status != core.StatusCancelled || inv.Chunks >= len(items) {
		t.Errorf("the record after Cancel: status %s with %d of %d chunks, want cancelled before the end", inv.Status, inv.Chunks, len(items))
	}
}
