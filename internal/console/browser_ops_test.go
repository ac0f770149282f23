package console_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/metrics"
)

// The owners' operations views: the audit trail, the security events and
// the metrics, in the browser.

// xssText is markup that runs script if a view puts it in the page as
// HTML.
const xssText = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`

// opsSite is a site that records security events in its store (flushed
// by flush), serves the executor's sandbox gauges in its metrics, and has
// an owner's key.
type opsSite struct {
	*site
	events *events.Emitter
}

func newOpsSite(t *testing.T) *opsSite {
	t.Helper()
	var em *events.Emitter
	s := newSite(t, opsDeps(t, &em))
	s.keys["owner"] = mustKey(t, s.store, "", core.RoleOwner)
	return &opsSite{site: s, events: em}
}

// opsDeps gives a site what the owner's views read: a security events
// emitter (into *em) and the gauges the server registers
// (server.registerGauges) that the metrics view charts.
func opsDeps(t *testing.T, em **events.Emitter) func(*api.Deps) {
	return func(d *api.Deps) {
		var err error
		*em, err = events.New(events.Config{Store: d.Store, Rules: []events.Rule{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*em).Close() })
		d.Events = *em
		m := metrics.New()
		ex := d.Exec
		stat := func(f func(executor.Stats) float64) func() float64 { return func() float64 { return f(ex.Stats()) } }
		m.Gauge("runagent_pool_ready_sandboxes", "Warm sandboxes ready to serve.", stat(func(s executor.Stats) float64 { return float64(s.Ready) }))
		m.Gauge("runagent_invocations_running", "Invocations running now.", stat(func(s executor.Stats) float64 { return float64(s.Running) }))
		d.Metrics = m
	}
}

func (s *opsSite) flush(t *testing.T) {
	t.Helper()
	if err := s.events.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// call makes an API request with a key (and a User-Agent) and returns
// its status.
func (s *opsSite) call(t *testing.T, key, method, path, body, userAgent string) int {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, s.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// signInOwner signs in with the owner's key and opens view (#name).
func (s *opsSite) signInOwner(t *testing.T, ctx context.Context, view, ready string) {
	t.Helper()
	signIn(t, ctx, s.site, s.keys["owner"])
	do(t, ctx, "open "+view, chromedp.Evaluate[chromedp.Void](`location.hash = "#`+view+`"`), chromedp.WaitVisible(chromedp.CSS(ready)))
}

// noScriptRan fails t if an XSS payload ran or became elements in root.
func noScriptRan(t *testing.T, ctx context.Context, root string) {
	t.Helper()
	if ran := eval[bool](t, ctx, `window.__xss !== undefined`); ran {
		t.Error("the XSS payload ran")
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("`+root+` img, `+root+` script").length`); n != 0 {
		t.Errorf("%s holds %d img or script elements made of the payload", root, n)
	}
}

// TestBrowserAuditTrail: an owner filters the trail, sees a record's
// details (an XSS payload in its user agent as text), verifies the trail
// (OK), exports the filtered records as a download, and after the store
// is tampered with, the check shows the broken record's seq.
func TestBrowserAuditTrail(t *testing.T) {
	s := newOpsSite(t)
	for i := range 3 {
		if st := s.call(t, s.keys["admin"], "POST", "/api/v1/keys", fmt.Sprintf(`{"name":"k%d","role":"viewer"}`, i), ""); st != http.StatusCreated {
			t.Fatalf("create key %d: %d", i, st)
		}
	}
	if st := s.call(t, s.keys["admin"], "GET", "/api/v1/keys", "", xssText); st != http.StatusOK {
		t.Fatalf("list keys: %d", st)
	}
	ctx := browser(t)
	s.signInOwner(t, ctx, "audit", "#audit-body tr")

	// Filter: key.create that succeeded.
	do(t, ctx, "filter",
		chromedp.SendKeys(chromedp.ID("audit-action"), "key.create"),
		chromedp.SetValue(chromedp.ID("audit-outcome"), "success"),
		chromedp.Click(chromedp.CSS(`#audit-filter button[type=submit]`)),
		// The filtered page, not the one before it (which may also be 3 rows).
		chromedp.Poll[chromedp.Void](`(rows => rows.length === 3 && rows.every(tr => tr.children[3].textContent === "key.create"))([...document.querySelectorAll("#audit-body tr")])`),
	)
	cells := eval[[]string](t, ctx, `[...document.querySelectorAll("#audit-body tr")].map(tr => tr.children[3].textContent + " " + tr.children[5].textContent)`)
	for _, c := range cells {
		if c != "key.create success" {
			t.Errorf("filtered row %q, want key.create success", c)
		}
	}
	href := eval[string](t, ctx, `document.getElementById("audit-export").href`)
	if !strings.Contains(href, "action=key.create") || !strings.Contains(href, "outcome=success") {
		t.Errorf("export link %q does not carry the filters", href)
	}

	// Export the filtered records: a download of NDJSON.
	dir := t.TempDir()
	do(t, ctx, "allow downloads", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
		return err
	}))
	do(t, ctx, "export", chromedp.Click(chromedp.ID("audit-export")))
	exported := waitFile(t, filepath.Join(dir, "runagent-audit.ndjson"))
	var actions []string
	sc := bufio.NewScanner(strings.NewReader(exported))
	for sc.Scan() {
		var r struct{ Action, Outcome string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("exported line %q: %v", sc.Text(), err)
		}
		actions = append(actions, r.Action+" "+r.Outcome)
	}
	if len(actions) != 3 || actions[0] != "key.create success" {
		t.Errorf("exported %q, want the 3 key.create success records", actions)
	}

	// The XSS payload in a record's user agent is shown as text.
	do(t, ctx, "filter key.list",
		chromedp.Click(chromedp.CSS(`#audit-filter button[type=reset]`)),
		chromedp.SendKeys(chromedp.ID("audit-action"), "key.list"),
		chromedp.Click(chromedp.CSS(`#audit-filter button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`(rows => rows.length > 0 && rows.every(tr => tr.children[3].textContent === "key.list"))([...document.querySelectorAll("#audit-body tr")])`),
		chromedp.Click(chromedp.CSS(`#audit-body tr button`)),
		chromedp.WaitVisible(chromedp.CSS(`#audit-body tr.detail dl`)),
	)
	ua := eval[string](t, ctx, `[...document.querySelectorAll("#audit-body tr.detail dt")].find(dt => dt.textContent === "User agent").nextElementSibling.textContent`)
	if ua != xssText {
		t.Errorf("the user agent is shown as %q, want the text %q", ua, xssText)
	}
	noScriptRan(t, ctx, "#audit-body")

	// Verify, by keyboard: OK.
	eval[bool](t, ctx, `document.getElementById("audit-verify").focus(), true`)
	do(t, ctx, "verify", chromedp.KeyEvent("\r"),
		chromedp.Poll[chromedp.Void](`document.getElementById("audit-verify-result").classList.contains("ok")`))
	if got := eval[string](t, ctx, `document.getElementById("audit-verify-result").textContent`); !strings.HasPrefix(got, "OK: the chain verifies") {
		t.Errorf("verify result %q, want OK", got)
	}

	// Tamper with record 3 in the store file, as an attacker with the
	// file can: the check finds it.
	tamperAudit(t, s.dbPath, "UPDATE audit_records SET outcome = 'denied' WHERE seq = 3")
	do(t, ctx, "verify the tampered trail", chromedp.Click(chromedp.ID("audit-verify")),
		chromedp.Poll[chromedp.Void](`document.getElementById("audit-verify-result").classList.contains("bad")`))
	got := eval[string](t, ctx, `document.getElementById("audit-verify-result").textContent`)
	if !strings.HasPrefix(got, "BROKEN at seq 3: hash_mismatch") {
		t.Errorf("verify result after tampering %q, want BROKEN at seq 3: hash_mismatch", got)
	}
}

// waitFile waits for a download to finish and returns its content.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	t.Fatalf("no download at %s (the directory holds %v)", path, entries)
	return ""
}

// tamperAudit opens the store's file directly, drops the audit triggers
// (an attacker with the file can) and runs stmts, as test/e2e does.
func tamperAudit(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{"DROP TRIGGER audit_records_no_update", "DROP TRIGGER audit_records_no_delete", "DROP TRIGGER audit_records_chain"}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestBrowserSecurityEvents: failed sign-ins in the browser become
// auth_failure events that the chart shows as bars and its table counts;
// an event's message with an XSS payload is shown as text; the type
// filter narrows the list.
func TestBrowserSecurityEvents(t *testing.T) {
	s := newOpsSite(t)
	ctx := browser(t)
	// Three sign-ins with a key the server never issued.
	wrong, wrongID, _ := apikey.New()
	for i := range 3 {
		do(t, ctx, fmt.Sprintf("failed sign-in %d", i),
			chromedp.Navigate(s.url+"/console"),
			chromedp.WaitVisible(chromedp.ID("api-key")),
			chromedp.SendKeys(chromedp.ID("api-key"), wrong+"\r"),
			chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent.includes("not accepted")`),
		)
	}
	if err := s.store.AppendEvents(t.Context(), []core.SecurityEvent{{ID: "ev-xss", Time: time.Now(), Type: core.EventInputRejected,
		Severity: core.SeverityWarning, Message: xssText, Details: map[string]string{"field": xssText}}}); err != nil {
		t.Fatal(err)
	}
	s.flush(t)

	// Loading the page without a session is a failed authentication
	// too: the chart shows every stored event.
	s.signInOwner(t, ctx, "events", "#events-chart rect")
	s.flush(t)
	stored, err := s.store.Events(t.Context(), core.EventFilter{Type: core.EventAuthFailure})
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "show the view again", chromedp.Evaluate[chromedp.Void](`document.getElementById("events-chart").replaceChildren()`),
		chromedp.Click(chromedp.CSS(`#events-filter button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`#events-chart rect`)))
	waitChart(t, ctx, "the whole chart", map[string]int{"auth_failure": len(stored), "input_rejected": 1})
	if n := eval[int](t, ctx, `document.querySelectorAll("#events-legend li").length`); n != 2 {
		t.Errorf("the legend names %d types, want 2", n)
	}

	// The failed sign-ins: the principal filter narrows chart and list to
	// the key they named.
	do(t, ctx, "filter by the wrong key",
		chromedp.SendKeys(chromedp.ID("events-principal"), "key:"+wrongID),
		chromedp.Click(chromedp.CSS(`#events-filter button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#events-body tr").length === 3`),
	)
	// The chart is drawn from its own request, which may end after the
	// list's: wait for it to redraw rather than read the one before.
	waitChart(t, ctx, "the chart of the failed sign-ins", map[string]int{"auth_failure": 3})
	// The table alternative, drawn with the chart, holds the same numbers.
	table := eval[[]string](t, ctx, `[...document.querySelectorAll("#events-counts tr")].map(tr => [...tr.children].map(c => c.textContent).join("|"))`)
	// (One bucket, or two if the sign-ins straddled the hour.)
	sum := 0
	for _, r := range table[min(1, len(table)):] {
		f := strings.Split(r, "|")
		n, _ := strconv.Atoi(f[len(f)-1])
		if f[1] != f[2] {
			t.Errorf("counts table row %q: the auth_failure count is not the row's total", r)
		}
		sum += n
	}
	if len(table) < 2 || table[0] != "From|auth_failure|All" || sum != 3 {
		t.Errorf("the counts table is %q, want a head and 3 auth_failure in all", table)
	}
	for _, msg := range eval[[]string](t, ctx, `[...document.querySelectorAll("#events-body td.message")].map(td => td.textContent)`) {
		if !strings.HasPrefix(msg, "authentication failed") {
			t.Errorf("a failed sign-in's event says %q", msg)
		}
	}
	do(t, ctx, "clear the filter", chromedp.Click(chromedp.CSS(`#events-filter button[type=reset]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events-body tr[data-event-id="ev-xss"]`)))

	// The list: the XSS event's message as text, its details too.
	msg := eval[string](t, ctx, `document.querySelector('#events-body tr[data-event-id="ev-xss"] td.message').textContent`)
	if msg != xssText {
		t.Errorf("the event's message is shown as %q, want the text %q", msg, xssText)
	}
	do(t, ctx, "open the event", chromedp.Click(chromedp.CSS(`#events-body tr[data-event-id="ev-xss"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#events-body tr.detail dl`)))
	noScriptRan(t, ctx, "#view-events")

	do(t, ctx, "filter by type",
		chromedp.SetValue(chromedp.ID("events-type"), "input_rejected"),
		chromedp.Click(chromedp.CSS(`#events-filter button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#events-body tr").length === 1`),
	)
	waitChart(t, ctx, "filtered by input_rejected", map[string]int{"input_rejected": 1})
}

// waitChart waits, for up to 15 s, until the events chart's bars count
// want by type, and fails the test with what they count otherwise. The
// chart is drawn from its own request, which may end after the list's (or
// a filter's): a chart read at once may be the one before it redrew.
func waitChart(t *testing.T, ctx context.Context, what string, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := eval[map[string]int](t, ctx, chartCounts)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: the chart's bars count %v after 15 s, want %v", what, got, want)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chartCounts sums the events chart's bars by type.
const chartCounts = `[...document.querySelectorAll("#events-chart rect")].reduce((m, r) => (m[r.dataset.series] = (m[r.dataset.series] || 0) + Number(r.dataset.count), m), {})`

// TestBrowserMetrics: the metrics view samples while shown, its charts
// and latest values follow runs made meanwhile, and it stops sampling
// when another view is shown.
func TestBrowserMetrics(t *testing.T) {
	s := newOpsSite(t)
	ctx := browser(t)
	signIn(t, ctx, s.site, s.keys["owner"])
	eval[bool](t, ctx, `import("/console/metrics.js").then(m => (m.sampleEvery(250), true))`)
	do(t, ctx, "open metrics", chromedp.Evaluate[chromedp.Void](`location.hash = "#metrics"`),
		chromedp.Poll[chromedp.Void](`Number(document.getElementById("view-metrics").dataset.samples) >= 2`))
	if note := eval[string](t, ctx, `document.getElementById("metrics-note").textContent`); !strings.Contains(note, "from when you opened it") {
		t.Errorf("the page does not say what it samples: %q", note)
	}
	latest := func(what string) string {
		return eval[string](t, ctx, `document.querySelector('#metrics-latest tr[data-metric="`+what+`"] td:last-child').textContent`)
	}
	if got := latest("sandboxes ready"); got == "not reported" {
		t.Errorf("sandboxes ready: %q, want a number", got)
	}
	if got := latest("memory resident"); !strings.HasSuffix(got, "MiB") {
		t.Errorf("memory resident: %q, want MiB", got)
	}

	for i := range 3 {
		if st := s.call(t, s.keys["admin"], "POST", "/api/v1/agents/"+s.agents[0]+"/run", `{"entrypoint_tag":"echo","input_args":[1]}`, ""); st != http.StatusOK {
			t.Fatalf("run %d: %d", i, st)
		}
	}
	do(t, ctx, "the runs are charted",
		chromedp.Poll[chromedp.Void](`document.querySelector('#metrics-latest tr[data-metric="runs completed (total)"] td:last-child').textContent === "3"`))
	// The completed series rose above zero: a point of its line is above
	// the chart's baseline (y 192 of 220).
	rose := eval[bool](t, ctx, `(() => {
		const p = document.querySelector('#metric-runs path[data-series="completed"]');
		return !!p && p.getAttribute("d").split(" ").some(pt => Number(pt.slice(1).split(",")[1]) < 191);
	})()`)
	if !rose {
		t.Error("the runs chart shows no completed runs")
	}
	if got := latest("latency p50"); got == "—" {
		t.Errorf("latency p50: %q, want a number", got)
	}
	for _, id := range []string{"requests", "latency", "runs", "sandboxes", "memory"} {
		if n := eval[int](t, ctx, `document.querySelectorAll("#metric-`+id+` path").length`); n == 0 {
			t.Errorf("the %s chart has no line", id)
		}
	}

	// Leaving the view stops the sampling.
	const scrapes = `performance.getEntriesByType("resource").filter(e => e.name.endsWith("/api/v1/metrics")).length`
	do(t, ctx, "leave", chromedp.Evaluate[chromedp.Void](`location.hash = "#agents"`), chromedp.WaitVisible(chromedp.CSS(`#agents-body tr`)),
		chromedp.Sleep(300*time.Millisecond))
	before := eval[int](t, ctx, scrapes)
	do(t, ctx, "wait", chromedp.Sleep(time.Second))
	if after := eval[int](t, ctx, scrapes); after != before {
		t.Errorf("the metrics were read %d more times after the view was left, want none", after-before)
	}
}

// TestBrowserOpsViewsOwnersOnly: an admin (not an owner) sees no link to
// the audit, events or metrics views, and opening one by its address
// shows nothing of it and asks the server nothing.
func TestBrowserOpsViewsOwnersOnly(t *testing.T) {
	s := newOpsSite(t)
	ctx := browser(t)
	signIn(t, ctx, s.site, s.keys["admin"])
	if n := eval[int](t, ctx, `[...document.querySelectorAll("#nav a")].filter(a => ["audit", "events", "metrics"].includes(a.dataset.view) && a.offsetParent !== null).length`); n != 0 {
		t.Errorf("an admin sees %d links to the owners' views", n)
	}
	for _, view := range []string{"audit", "events", "metrics"} {
		do(t, ctx, "open "+view, chromedp.Evaluate[chromedp.Void](`location.hash = "#`+view+`"`),
			chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent.includes("owners")`))
		if shown := eval[bool](t, ctx, `!document.getElementById("view-`+view+`").hidden`); shown {
			t.Errorf("an admin is shown the %s view", view)
		}
		do(t, ctx, "back", chromedp.Evaluate[chromedp.Void](`location.hash = "#agents"`), chromedp.WaitVisible(chromedp.CSS(`#agents-body tr`)))
	}
	asked := eval[[]string](t, ctx, `performance.getEntriesByType("resource").map(e => new URL(e.name).pathname).filter(p => /^\/api\/v1\/(audit|events|metrics)/.test(p))`)
	if len(asked) != 0 {
		t.Errorf("the console asked the server for %q for an admin", asked)
	}
}

// TestBrowserOpsLayout: the three views fit 1280 px and 390 px wide
// without sideways scrolling, and their controls are reachable.
func TestBrowserOpsLayout(t *testing.T) {
	s := newOpsSite(t)
	for i := range 3 {
		s.call(t, s.keys["admin"], "POST", "/api/v1/keys", fmt.Sprintf(`{"name":"k%d","role":"viewer"}`, i), "")
	}
	ctx := browser(t)
	signIn(t, ctx, s.site, s.keys["owner"])
	for _, width := range []int64{1280, 390} {
		for _, v := range []struct{ view, ready, control string }{
			{"audit", "#audit-body tr", "audit-verify"},
			{"events", "#events-chart", "events-range"},
			{"metrics", "#metric-memory", "metrics-latest"},
		} {
			do(t, ctx, fmt.Sprintf("%s at %d px", v.view, width), chromedp.EmulateViewport(width, 844),
				chromedp.Navigate(s.url+"/console#"+v.view), chromedp.WaitVisible(chromedp.CSS(v.ready)))
			if over := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`); over {
				t.Errorf("%s at %d px scrolls sideways (%d px wide)", v.view, width, eval[int](t, ctx, `document.documentElement.scrollWidth`))
			}
			if ok := eval[bool](t, ctx, `document.getElementById("`+v.control+`").offsetParent !== null`); !ok {
				t.Errorf("%s at %d px hides #%s", v.view, width, v.control)
			}
		}
	}
}

// TestBrowserPromParser: the metrics view's reader of the Prometheus text
// format reads what the server writes (escaped labels, special values,
// timestamps, histograms), computes rates and percentiles, and on hostile
// input — thousands of mutations of a real scrape — never throws.
func TestBrowserPromParser(t *testing.T) {
	s := newOpsSite(t)
	ctx := browser(t)
	do(t, ctx, "load", chromedp.Navigate(s.url+"/console"), chromedp.WaitVisible(chromedp.ID("api-key")))
	res, err := http.Get(s.url + "/api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	scrape := scrapeMetrics(t, s)

	got := eval[map[string]any](t, ctx, `import("/console/prom.js").then(p => {
		const text = [
			'# HELP x_total A counter.', '# TYPE x_total counter',
			'x_total{a="1",b="q\\"uote\\\\back\\nline"} 3 1700000000000',
			'x_total{a="2"} 4.5e1', 'x_total{a="3",} +Inf', 'y NaN', 'z -Inf',
			'__proto__{constructor="x"} 1', 'bad line here', 'w{a="unterminated} 1', 'v{a=1} 2', '',
			'h_bucket{le="0.1"} 2', 'h_bucket{le="0.2"} 6', 'h_bucket{le="+Inf"} 10',
		].join("\n");
		const r = p.parse(text);
		const b = p.buckets(r.samples, "h");
		return {
			n: r.samples.length, skipped: r.skipped, type: r.types.get("x_total"),
			label: r.samples[0].labels.b, sum: p.sum(r.samples, "x_total"),
			rate: p.rate(10, 40, 3), reset: p.rate(40, 10, 3),
			p50: p.quantile(0.5, null, b), p99: p.quantile(0.99, null, b), none: p.quantile(0.5, b, b),
		};
	})`)
	want := map[string]any{"n": 9.0, "skipped": 3.0, "type": "counter", "label": "q\"uote\\back\nline", "sum": 48.0,
		"rate": 10.0, "reset": nil, "p50": 0.175, "p99": 0.2, "none": nil}
	for k, w := range want {
		g := got[k]
		if gf, ok := g.(float64); ok {
			if wf, ok := w.(float64); ok && (gf-wf > 1e-9 || wf-gf > 1e-9) {
				t.Errorf("%s = %v, want %v", k, g, w)
			}
			continue
		}
		if g != w {
			t.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}

	// The real scrape parses with nothing skipped.
	skipped := eval[int](t, ctx, `import("/console/prom.js").then(p => p.parse(`+strconv.Quote(scrape)+`).skipped)`)
	if skipped != 0 {
		t.Errorf("the server's scrape: %d lines skipped, want 0", skipped)
	}
	// Mutations of it: never a throw, every sample well formed.
	bad := eval[string](t, ctx, `import("/console/prom.js").then(p => {
		const base = `+strconv.Quote(scrape)+`;
		const bytes = ['"', '\\', '{', '}', ',', '=', ' ', '\n', '#', 'e', '+', '-', '.', 'Inf', 'NaN', '\u0000', '\u2028', 'le="'];
		let seed = 1;
		const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
		for (let i = 0; i < 3000; i++) {
			let s = base;
			for (let j = 0, k = 1 + rnd(8); j < k; j++) {
				const at = rnd(s.length + 1);
				s = rnd(2) ? s.slice(0, at) + bytes[rnd(bytes.length)] + s.slice(at) : s.slice(0, at) + s.slice(at + 1 + rnd(20));
			}
			try {
				const r = p.parse(s);
				for (const x of r.samples) {
					if (typeof x.name !== "string" || typeof x.value !== "number" || Object.getPrototypeOf(x.labels) !== null) return "malformed sample from: " + s.slice(0, 200);
				}
				const b = p.buckets(r.samples, "runagent_http_request_duration_seconds");
				const q = p.quantile(0.99, null, b);
				if (q !== null && typeof q !== "number") return "quantile " + q;
			} catch (e) {
				return "threw " + e + " on: " + s.slice(0, 200);
			}
		}
		return "";
	})`)
	if bad != "" {
		t.Errorf("the parser on mutated input: %s", bad)
	}
}

// scrapeMetrics reads the site's metrics as the owner.
func scrapeMetrics(t *testing.T, s *opsSite) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url+"/api/v1/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.keys["owner"])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	if res.StatusCode != http.StatusOK || !strings.Contains(b.String(), "runagent_http_requests_total") {
		t.Fatalf("GET metrics: %d\n%s", res.StatusCode, b.String())
	}
	return b.String()
}

// TestBrowserMetricsSessionEnded: when the session ends while the
// metrics view samples (its key revoked), the next sample returns the
// console to the sign-in, which says why, and the sampling stops.
func TestBrowserMetricsSessionEnded(t *testing.T) {
	s := newOpsSite(t)
	ctx := browser(t)
	owner := mustKey(t, s.store, "", core.RoleOwner)
	signIn(t, ctx, s.site, owner)
	eval[bool](t, ctx, `import("/console/metrics.js").then(m => (m.sampleEvery(200), true))`)
	do(t, ctx, "open metrics", chromedp.Evaluate[chromedp.Void](`location.hash = "#metrics"`),
		chromedp.Poll[chromedp.Void](`Number(document.getElementById("view-metrics").dataset.samples) >= 1`))
	k, err := apikey.Parse(owner)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.call(t, s.keys["owner"], "POST", "/api/v1/keys/"+k.ID+"/revoke", "", ""); st != http.StatusOK {
		t.Fatalf("revoke the signed-in key: %d", st)
	}
	do(t, ctx, "the next sample ends the session", chromedp.WaitVisible(chromedp.ID("sign-in")))
	if msg := eval[string](t, ctx, `document.getElementById("status").textContent`); !strings.Contains(msg, "session has ended") {
		t.Errorf("status after the session ended: %q, want it to say so", msg)
	}
	const scrapes = `performance.getEntriesByType("resource").filter(e => e.name.endsWith("/api/v1/metrics")).length`
	before := eval[int](t, ctx, scrapes)
	do(t, ctx, "wait", chromedp.Sleep(800*time.Millisecond))
	if after := eval[int](t, ctx, scrapes); after != before {
		t.Errorf("the metrics were read %d more times after sign-out, want none", after-before)
	}
}
