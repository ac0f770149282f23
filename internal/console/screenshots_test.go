package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/ratelimit"
)

// The console's screenshots (docs/console/*.png, shown by
// docs/console.md): every view, filled with demo data, in the browser.
// `make screenshots` runs this test with -screenshots=docs/console;
// without the flag it writes into a temporary directory, so the test
// still proves that each view renders its data at both widths.

var screenshotsDir = flag.String("screenshots", "", "write the console's screenshots (PNG) into this directory; by default a temporary one")

// plannerID is the demo agent with an input schema and a streaming
// entrypoint.
const plannerID = "cccccccc-cccc-4ccc-8ccc-000000000001"

// The sizes of the screenshots: a laptop's window and a phone's.
const (
	wideW, wideH     = 1280, 800
	narrowW, narrowH = 390, 844
)

// shooter takes the screenshots of one browser into dir.
type shooter struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	taken []string
}

// shot waits for ready (a JavaScript expression) to be true, checks that
// the view's heading (selector heading) starts with title and that no script
// of the demo data's XSS payload ran, captures the viewport as
// dir/name.png and checks the image: a PNG of the viewport's width that
// is not blank.
func (s *shooter) shot(name, ready, heading, title string) {
	s.t.Helper()
	s.capture(name, ready, heading, title, false)
}

// shotFull is shot of the whole page, however long (the window's width).
func (s *shooter) shotFull(name, ready, heading, title string) {
	s.t.Helper()
	s.capture(name, ready, heading, title, true)
}

func (s *shooter) capture(name, ready, heading, title string, full bool) {
	t := s.t
	t.Helper()
	waitFor(t, s.ctx, name+" rendered", ready)
	got := eval[string](t, s.ctx, `(h => h && h.offsetParent !== null ? h.textContent : "(hidden)")(document.querySelector(`+jsString(heading)+`))`)
	if !strings.HasPrefix(got, title) {
		t.Errorf("%s: the view's heading %s reads %q, want it to start %q", name, heading, got, title)
	}
	if ran := eval[bool](t, s.ctx, `window.__xss !== undefined || document.querySelectorAll("main img, main script").length > 0`); ran {
		t.Errorf("%s: the demo data's XSS payload ran or became elements", name)
	}
	width := eval[int](t, s.ctx, `window.innerWidth`)
	if over := eval[int](t, s.ctx, `document.documentElement.scrollWidth`); over > width {
		t.Errorf("%s: the page is %d px wide in a %d px window (it scrolls sideways)", name, over, width)
	}
	// The caret would blink into the image or not: no focus ring or
	// caret in the shots.
	eval[bool](t, s.ctx, `document.activeElement && document.activeElement.blur && document.activeElement.blur(), true`)
	cctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	capture := chromedp.CaptureScreenshot()
	if full {
		capture = chromedp.FullScreenshot(100) // 100: PNG
	}
	img, err := chromedp.Run(cctx, capture)
	cancel()
	if err != nil {
		t.Fatalf("capture %s: %v", name, err)
	}
	decoded, err := png.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("%s: the screenshot is no PNG: %v", name, err)
	}
	b := decoded.Bounds()
	if b.Dx() != width {
		t.Errorf("%s: the screenshot is %d px wide, want the window's %d", name, b.Dx(), width)
	}
	// A view with its data has text, borders and badges: many colours
	// (anti-aliased text alone gives dozens); a blank or error page few.
	colours := map[uint64]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := decoded.At(x, y).RGBA()
			colours[uint64(r)<<32|uint64(g)<<16|uint64(bl)] = true
		}
	}
	if len(colours) < 32 {
		t.Errorf("%s: the screenshot has %d colours, want at least 32 (is it blank?)", name, len(colours))
	}
	path := filepath.Join(s.dir, name+".png")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	s.taken = append(s.taken, path)
	t.Logf("%s: %dx%d, %d KiB, %d colours", path, b.Dx(), b.Dy(), len(img)/1024, len(colours))
}

// viewport sets the window's size and waits until the page has it.
func (s *shooter) viewport(w, h int64) {
	s.t.Helper()
	do(s.t, s.ctx, fmt.Sprintf("%dx%d", w, h), chromedp.EmulateViewport(w, h))
	waitFor(s.t, s.ctx, "the window's width", fmt.Sprintf(`window.innerWidth === %d`, w))
}

// open shows a view by its address, as a link to it does.
func (s *shooter) open(hash string) {
	s.t.Helper()
	do(s.t, s.ctx, "open "+hash, chromedp.Evaluate[chromedp.Void](`location.hash = `+jsString(hash)+`; window.scrollTo(0, 0)`))
}

// TestScreenshots fills a site with demo data (two agents, one with an
// input schema, a second version and builds; runs that completed,
// streamed, failed with a traceback and were cancelled; keys, one
// narrowed; secrets; persistent memory; blocks; failed sign-ins), signs
// in as an owner and captures every view of the console at 1280×800 and
// some at 390×844. Each shot is taken once its data is on the page; the
// images are checked to be PNGs of the window's width that are not
// blank. The XSS payload among the data (a failed sign-in's user agent)
// never runs.
func TestScreenshots(t *testing.T) {
	dir := *screenshotsDir
	if dir == "" {
		dir = t.TempDir()
	} else if err := clearShots(dir); err != nil {
		t.Fatal(err)
	}
	d := demoSite(t)
	ctx := browser(t)
	s := &shooter{t: t, ctx: ctx, dir: dir}

	// Signed out: the sign-in page, wide and narrow.
	s.viewport(wideW, wideH)
	do(t, ctx, "open the console", chromedp.Navigate(d.url+"/console"), chromedp.WaitVisible(chromedp.ID("api-key")))
	s.shot("sign-in", `!document.getElementById("sign-in").hidden`, "#sign-in-title", "Sign in")
	s.viewport(narrowW, narrowH)
	s.shot("sign-in-mobile", `!document.getElementById("sign-in").hidden`, "#sign-in-title", "Sign in")
	s.viewport(wideW, wideH)
	signIn(t, ctx, d.site, d.keys["owner"])

	s.shot("agents", `document.querySelectorAll("#agents-body tr").length === 2`, "#agents-title", "Agents")

	// An agent: entrypoints and versions; further down its builds with a
	// log opened.
	s.open("#agent/" + plannerID)
	s.shot("agent", `document.getElementById("agent-id").textContent === "`+plannerID+`" &&
		document.querySelectorAll("#versions-body tr").length === 2 && document.querySelectorAll("#builds-body tr").length === 2`,
		"#agent-title", "travel-planner")
	do(t, ctx, "open a build's log", chromedp.Click(chromedp.CSS(`#builds-body tr[data-build="bld-7f3a"] button`)),
		chromedp.WaitVisible(chromedp.ID("build-log")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("builds-title").scrollIntoView()`))
	s.shot("agent-build-log", `document.getElementById("build-log-text").textContent.includes("Successfully installed")`, "#builds-title", "Builds")

	// Try it: a streamed run's chunks, shown as they came.
	const streamForm = `form.try[data-tag="plan_stream"]`
	do(t, ctx, "run the stream",
		chromedp.SetValue(chromedp.CSS(streamForm+` textarea[name^="Positional"]`), `["Day 1: Lisbon, Alfama walk", "Day 2: Sintra", "Day 3: Cascais coast", "Day 4: LX Factory, fado"]`),
		chromedp.Click(chromedp.CSS(streamForm+` button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('`+streamForm+` .run-state').textContent.startsWith("Completed")`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('`+streamForm+`').closest("article").scrollIntoView()`))
	s.shot("try-it", `document.querySelectorAll('`+streamForm+` .chunks li').length === 4`, streamForm+" .run-state", "Completed: 4 chunks")

	s.open("#invocations")
	s.shot("invocations", `document.querySelectorAll("#inv-body tr").length >= 10 && !!document.querySelector("#inv-body tr[data-invocation-id='`+d.failed+`']")`, "#invocations-title", "Invocations")
	s.open("#invocations/" + d.failed)
	s.shotFull("invocation", `document.getElementById("inv-detail-status").textContent === "failed" && !document.getElementById("inv-error-box").hidden`, "#inv-detail-title", "Invocation "+d.failed)
	s.open("#invocations/" + d.cancelled)
	s.shotFull("invocation-cancelled", `document.getElementById("inv-detail-status").textContent === "cancelled" && document.getElementById("inv-timeline").textContent.includes("Cancelled by")`, "#inv-detail-title", "Invocation "+d.cancelled)

	// Keys: the list, then a new key's secret, shown once.
	s.open("#keys")
	s.shot("keys", `document.querySelectorAll("#keys-body tr").length >= 5`, "#keys-title", "API keys")
	do(t, ctx, "create a key",
		chromedp.Click(chromedp.CSS(`#key-new summary`)),
		chromedp.WaitVisible(chromedp.ID("key-name")),
		chromedp.SendKeys(chromedp.ID("key-name"), "notebook"),
		chromedp.SetValue(chromedp.ID("key-role"), "viewer"),
		chromedp.Click(chromedp.CSS(`#key-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("key-secret")),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	s.shot("key-created", `document.getElementById("key-secret-value").value.startsWith("rak_")`, "#keys-title", "API keys")
	do(t, ctx, "hide the secret and the form", chromedp.Click(chromedp.ID("key-secret-done")), chromedp.WaitNotVisible(chromedp.ID("key-secret")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("key-new").open = false`))

	s.open("#secrets")
	pick(t, ctx, "secrets-agent", plannerID)
	s.shot("secrets", `document.querySelectorAll("#secrets-body tr").length === 2`, "#secrets-title", "Secrets")
	s.open("#memory")
	pick(t, ctx, "memory-agent", plannerID)
	if d.memory {
		s.shot("memory", `document.querySelectorAll("#memory-body tr").length === 2`, "#memory-title", "Persistent memory")
	} else {
		t.Logf("uid %d may not mount persistent memory (it needs root): the memory view is shot turned off", os.Geteuid())
		s.shot("memory", `!document.getElementById("memory-off").hidden`, "#memory-title", "Persistent memory")
	}
	s.open("#blocks")
	s.shot("blocks", `document.querySelectorAll("#blocks-body tr").length === 2`, "#blocks-title", "Blocked clients")

	s.open("#audit")
	waitFor(t, ctx, "audit records", `document.querySelectorAll("#audit-body tr").length > 10`)
	do(t, ctx, "verify the trail", chromedp.Click(chromedp.ID("audit-verify")))
	s.shot("audit", `!document.getElementById("audit-verify-result").hidden && document.getElementById("audit-verify-result").textContent.startsWith("OK")`, "#audit-title", "Audit trail")

	// The failed sign-ins' records: the one whose user agent is markup
	// shows it as text.
	do(t, ctx, "filter the sign-ins", chromedp.SetValue(chromedp.ID("audit-action"), "session.create"),
		chromedp.SetValue(chromedp.ID("audit-outcome"), "denied"),
		chromedp.Click(chromedp.CSS(`#audit-filter button[type=submit]`)))
	waitFor(t, ctx, "the failed sign-ins", `[...document.querySelectorAll("#audit-body tr")].length === 3`)
	eval[bool](t, ctx, `[...document.querySelectorAll("#audit-body tr button")].forEach(b => b.click()), true`)
	waitFor(t, ctx, "their details", `[...document.querySelectorAll("#audit-body tr.detail")].some(tr => tr.textContent.includes(`+jsString(xssText)+`))`)
	noScriptRan(t, ctx, "main")

	d.flush(t)
	s.open("#events")
	s.shot("events", `document.querySelectorAll("#events-chart rect").length > 0 && document.querySelectorAll("#events-body tr").length >= 4`, "#events-title", "Security events")

	// Metrics: sampled four times a second, with runs in between, so
	// that the charts have lines.
	eval[bool](t, ctx, `import("/console/metrics.js").then(m => (m.sampleEvery(250), true))`)
	s.open("#metrics")
	waitFor(t, ctx, "metrics sampled", `Number(document.getElementById("view-metrics").dataset.samples) >= 2`)
	for i := range 6 {
		if st := d.call(t, d.keys["admin"], "POST", "/api/v1/agents/"+plannerID+"/run", fmt.Sprintf(`{"entrypoint_tag":"plan","input_kwargs":{"destination":"Kyoto","days":%d},"user_id":"erin"}`, i+2), ""); st != http.StatusOK {
			t.Fatalf("run %d while the metrics are sampled: %d", i, st)
		}
		time.Sleep(150 * time.Millisecond)
	}
	s.shot("metrics", `Number(document.getElementById("view-metrics").dataset.samples) >= 8 && document.querySelectorAll("#metrics-charts path").length >= 5`, "#metrics-title", "Metrics")

	// The phone's width.
	s.viewport(narrowW, narrowH)
	s.open("#agents")
	s.shot("agents-mobile", `!document.getElementById("view-agents").hidden && document.querySelectorAll("#agents-body tr").length === 2`, "#agents-title", "Agents")
	s.open("#invocations")
	s.shot("invocations-mobile", `!document.getElementById("inv-list").hidden && document.querySelectorAll("#inv-body tr").length >= 10`, "#invocations-title", "Invocations")
	s.open("#events")
	s.shot("events-mobile", `!document.getElementById("view-events").hidden && document.querySelectorAll("#events-chart rect").length > 0`, "#events-title", "Security events")
	s.open("#keys")
	s.shot("keys-mobile", `!document.getElementById("view-keys").hidden && document.querySelectorAll("#keys-body tr").length >= 5`, "#keys-title", "API keys")

	if want := 21; len(s.taken) != want {
		t.Errorf("%d screenshots taken, want %d", len(s.taken), want)
	}
}

// TestScreenshotsOIDC captures the sign-in page of a console that signs
// in through an OIDC issuer (a test issuer on loopback, its console
// client named "Example SSO"): the "Sign in with Example SSO" link above
// the key form, at 1280×800 and 390×844. `make screenshots` runs it after
// TestScreenshots, which clears the directory first.
func TestScreenshotsOIDC(t *testing.T) {
	dir := *screenshotsDir
	if dir == "" {
		dir = t.TempDir()
	}
	site, _ := oidcSiteNamed(t, "Example SSO")
	ctx := browser(t)
	s := &shooter{t: t, ctx: ctx, dir: dir}
	const ready = `!document.getElementById("sign-in").hidden && document.querySelector("#sign-in-providers a")?.textContent === "Sign in with Example SSO"`
	s.viewport(wideW, wideH)
	do(t, ctx, "open the console", chromedp.Navigate(site.url+"/console"), chromedp.WaitVisible(chromedp.CSS("#sign-in-providers a")))
	s.shot("sign-in-oidc", ready, "#sign-in-title", "Sign in")
	s.viewport(narrowW, narrowH)
	s.shot("sign-in-oidc-mobile", ready, "#sign-in-title", "Sign in")
	if want := 2; len(s.taken) != want {
		t.Errorf("%d screenshots taken, want %d", len(s.taken), want)
	}
}

// clearShots makes dir, and removes the screenshots (*.png) an earlier
// run left in it, so that a view that is gone (or renamed) leaves no
// picture behind; other files are kept.
func clearShots(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.png"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return nil
}

// pick chooses an agent in a view's agent list, as a person does.
func pick(t *testing.T, ctx context.Context, id, agent string) {
	t.Helper()
	waitFor(t, ctx, id+" filled", `document.querySelector("#`+id+` option[value='`+agent+`']") !== null`)
	eval[bool](t, ctx, `(s => (s.value = `+jsString(agent)+`, s.dispatchEvent(new Event("change")), true))(document.getElementById(`+jsString(id)+`))`)
}

// demo is a site with the demo data.
type demo struct {
	*opsSite
	failed, cancelled string // invocation ids
	memory            bool   // persistent memory is on (root only)
}

// demoSite starts a site with security events, metrics, blocks and (as
// root) persistent memory, and fills it through the API as people would
// (deploys, runs, keys, secrets, failed sign-ins), and through the store
// what the test server cannot make (builds: it installs no packages;
// a run that raised: its sandboxes only echo).
func demoSite(t *testing.T) *demo {
	t.Helper()
	var em *events.Emitter
	var mem *memory.Manager
	blocks := ratelimit.NewMemoryBlocks(api.BlockPolicy{After: 30, Window: time.Hour, For: time.Hour}, nil)
	root := os.Geteuid() == 0
	// Keys named as people name theirs (the pictures show the names).
	names := map[core.Role]string{core.RoleViewer: "status-page", core.RoleAdmin: "ops-admin"}
	s := newSiteWith(t, siteOptions{ChunkDelay: 250 * time.Millisecond, KeyNames: names, Deps: []func(*api.Deps){func(d *api.Deps) {
		opsDeps(t, &em)(d)
		d.Blocks = blocks
		if root {
			memoryDeps(t, &mem)(d)
		}
	}}})
	s.keys["owner"] = mustKey(t, s.store, "", core.RoleOwner, "owner-console")
	d := &demo{opsSite: &opsSite{site: s, events: em}, memory: root}
	ctx := t.Context()
	admin := s.keys["admin"]
	must := func(status, want int, what string) {
		t.Helper()
		if status != want {
			t.Fatalf("%s: %d, want %d", what, status, want)
		}
	}

	// The site's second agent is named with markup for other tests: not
	// in the pictures.
	must(d.call(t, admin, "DELETE", "/api/v1/agents/"+s.agents[1], "", ""), http.StatusOK, "delete the XSS agent")

	// The planner, deployed twice, with a build of each version.
	dir := plannerDir(t)
	if _, err := s.reg.DeployDir(ctx, dir, "p1"); err != nil {
		t.Fatal(err)
	}
	v1 := currentVersion(t, s, plannerID)
	if err := os.WriteFile(filepath.Join(dir, "prompts.py"), []byte("SYSTEM = 'You plan trips.'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.reg.DeployDir(ctx, dir, "p1"); err != nil {
		t.Fatal(err)
	}
	v2 := currentVersion(t, s, plannerID)
	now := time.Now().UTC()
	for _, b := range []*core.Build{
		{ID: "bld-2c91", Version: v1, EnvKey: "env-5d2e", Status: core.BuildSucceeded, StartedAt: now.Add(-26 * time.Hour),
			Log: "Collecting httpx==0.27.2\nCollecting pydantic==2.9.2\nInstalling collected packages: sniffio, idna, h11, anyio, httpcore, httpx, pydantic\nSuccessfully installed anyio-4.6.2 h11-0.14.0 httpcore-1.0.6 httpx-0.27.2 idna-3.10 pydantic-2.9.2 sniffio-1.3.1\nload check: main.py imports, entrypoints plan and plan_stream found\n"},
		{ID: "bld-7f3a", Version: v2, EnvKey: "env-5d2e", Status: core.BuildSucceeded, StartedAt: now.Add(-3 * time.Minute),
			Log: "Collecting httpx==0.27.2\n  Using cached httpx-0.27.2-py3-none-any.whl (76 kB)\nCollecting pydantic==2.9.2\n  Using cached pydantic-2.9.2-py3-none-any.whl (434 kB)\nInstalling collected packages: sniffio, idna, h11, anyio, httpcore, httpx, pydantic\nSuccessfully installed anyio-4.6.2 h11-0.14.0 httpcore-1.0.6 httpx-0.27.2 idna-3.10 pydantic-2.9.2 sniffio-1.3.1\nload check: main.py imports, entrypoints plan and plan_stream found\n"},
	} {
		b.AgentID, b.ProjectID, b.FinishedAt = plannerID, "p1", b.StartedAt.Add(41*time.Second)
		if err := s.store.PutBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
	}

	// Runs: plain ones by several users, a stream, one cancelled.
	for i, r := range []string{
		`{"entrypoint_tag":"plan","input_kwargs":{"destination":"Lisbon","days":4,"style":"relaxed"},"user_id":"alice"}`,
		`{"entrypoint_tag":"plan","input_kwargs":{"destination":"Kyoto","days":7,"style":"packed"},"user_id":"bob"}`,
		`{"entrypoint_tag":"plan","input_kwargs":{"destination":"Reykjavík","days":3},"user_id":"alice"}`,
		`{"entrypoint_tag":"plan","input_kwargs":{"destination":"Oaxaca","days":5,"style":"relaxed"},"user_id":"chen"}`,
	} {
		must(d.call(t, admin, "POST", "/api/v1/agents/"+plannerID+"/run", r, ""), http.StatusOK, fmt.Sprint("run ", i))
	}
	for i, q := range []string{"Where is my order #4411?", "How do I reset my password?", "Do you ship to Norway?"} {
		body, _ := json.Marshal(map[string]any{"entrypoint_tag": "echo", "input_args": []string{q}, "user_id": fmt.Sprintf("cust-%d", 1041+i)})
		must(d.call(t, admin, "POST", "/api/v1/agents/"+s.agents[0]+"/run", string(body), ""), http.StatusOK, "support run")
	}
	id, body := startStream(t.Context(), t, d.site, plannerID, `{"entrypoint_tag":"plan_stream","input_args":["Day 1: Kyoto, Fushimi Inari","Day 2: Arashiyama","Day 3: Nara"],"user_id":"bob"}`)
	io.Copy(io.Discard, body)
	if inv, err := s.store.Invocation(ctx, id); err != nil || inv.Status != core.StatusCompleted {
		t.Fatalf("the demo stream %s: %+v, %v; want completed", id, inv, err)
	}
	// Cancelled after its second chunk of eight (a chunk every 250 ms).
	id, body = startStream(t.Context(), t, d.site, plannerID, `{"entrypoint_tag":"plan_stream","input_args":["Day 1: Oaxaca city","Day 2: Monte Albán","Day 3: Hierve el Agua","Day 4: Mitla","Day 5: Puerto Escondido","Day 6: Mazunte","Day 7: Zipolite","Day 8: back"],"user_id":"chen"}`)
	first := bufio.NewReader(body)
	for {
		line, err := first.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream to cancel ended before its second chunk: %v", err)
		}
		if strings.Contains(line, "Day 2") {
			break
		}
	}
	must(d.call(t, admin, "POST", "/api/v1/invocations/"+id+"/cancel", "", ""), http.StatusOK, "cancel the stream")
	io.Copy(io.Discard, first)
	d.cancelled = id
	waitStatus(t, s, id, core.StatusCancelled)

	// A run that raised (the echo sandboxes cannot): recorded as the
	// server records one.
	d.failed = "inv-demo-failed"
	start := time.Now().UTC().Add(-90 * time.Second)
	inv := &core.Invocation{ID: d.failed, ProjectID: "p1", AgentID: plannerID, EntrypointTag: "plan", Transport: "rest", Caller: "key:demo",
		UserID: "dana", InputArgs: json.RawMessage(`[]`), InputKwargs: json.RawMessage(`{"destination":"Atlantis","days":2}`), CreatedAt: start}
	if err := s.store.CreateInvocation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	done := start.Add(2300 * time.Millisecond)
	inv.Status, inv.CompletedAt, inv.DurationMS = core.StatusFailed, &done, 2300
	inv.Logs = "planning a 2-day trip to Atlantis\nlooking up flights…\n"
	inv.ErrorCode = "AGENT_ERROR"
	inv.ErrorMessage = "Traceback (most recent call last):\n  File \"main.py\", line 14, in plan\n    airport = find_airport(destination)\n  File \"main.py\", line 9, in find_airport\n    raise LookupError(f\"no airport serves {city!r}\")\nLookupError: no airport serves 'Atlantis'"
	if err := s.store.FinishInvocation(ctx, inv); err != nil {
		t.Fatal(err)
	}

	// Keys: a narrowed one, others of several roles, one revoked.
	for _, k := range []string{
		`{"name":"analytics-dashboard","role":"viewer","agents":["` + plannerID + `"],"rate_limit":{"requests":60,"period_seconds":60}}`,
		`{"name":"ci-deploy","role":"admin","scopes":["read","admin"]}`,
		`{"name":"mobile-app","role":"user"}`,
		`{"name":"old-webhook","role":"streamer"}`,
	} {
		must(d.call(t, admin, "POST", "/api/v1/keys", k, ""), http.StatusCreated, "create key")
	}
	keys, err := s.store.APIKeys(ctx, core.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == "old-webhook" {
			must(d.call(t, admin, "POST", "/api/v1/keys/"+k.ID+"/revoke", "", ""), http.StatusOK, "revoke a key")
		}
	}

	// Secrets (the values are made up; the console never shows them).
	for _, name := range []string{"OPENAI_API_KEY", "WEATHER_API_TOKEN"} {
		must(d.call(t, admin, "PUT", "/api/v1/agents/"+plannerID+"/secrets/"+name, `{"value":"demo-value-not-a-secret"}`, ""), http.StatusOK, "set a secret")
	}

	// Blocks: an address and a key that failed too often.
	for _, c := range []string{"ip:203.0.113.45", "key:k7Hq2mXv9Tz1"} {
		for range 30 {
			if _, err := blocks.Strike(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Failed sign-ins with a key never issued, one of them by a client
	// whose user agent is markup (shown in the event's details as text).
	for _, ua := range []string{"Mozilla/5.0 (X11; Linux x86_64)", xssText, "curl/8.5.0"} {
		must(d.call(t, "rak_notarealkeyxxxxxxxxxxxxxxxxxxxxxxxx", "POST", "/api/v1/session", "", ua), http.StatusUnauthorized, "a failed sign-in")
	}
	if err := s.store.AppendEvents(ctx, []core.SecurityEvent{{ID: "ev-demo-rejected", Time: time.Now(), Type: core.EventInputRejected,
		Severity: core.SeverityWarning, Message: "input rejected: days: must be at most 14", Details: map[string]string{"agent_id": plannerID, "field": "days"}}}); err != nil {
		t.Fatal(err)
	}
	d.flush(t)

	// Persistent memory of two users.
	if root {
		for user, note := range map[string]string{"alice": "prefers trains; vegetarian", "bob": "window seat; travels with a bike"} {
			l, err := mem.Acquire(ctx, memory.Key{Project: "p1", Agent: plannerID, User: user}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(l.Dir, "profile.txt"), []byte(note), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d
}

// plannerDir is the demo agent's directory: "plan" takes keyword
// arguments described by an input schema, "plan_stream" streams.
func plannerDir(t *testing.T) string {
	t.Helper()
	schema := json.RawMessage(`{"kwargs": {"type": "object", "required": ["destination"], "additionalProperties": false, "properties": {
		"destination": {"type": "string", "minLength": 1, "description": "City or region to visit"},
		"days": {"type": "integer", "minimum": 1, "maximum": 14},
		"style": {"enum": ["relaxed", "packed"]}}},
	  "args": {"maxItems": 0}}`)
	cfg := map[string]any{
		"agent_name": "travel-planner",
		"agent_id":   plannerID,
		"agent_architecture": map[string]any{"entrypoints": []map[string]any{
			{"file": "main.py", "module": "echo", "tag": "plan", "input_schema": schema, "description": "Plans a trip day by day."},
			{"file": "main.py", "module": "echo_stream", "tag": "plan_stream", "description": "The same plan, one day at a time."},
		}},
		"auth_settings": map[string]any{"type": "api_key"},
	}
	dir := t.TempDir()
	b, _ := json.Marshal(cfg)
	for f, body := range map[string][]byte{"runagent.config.json": b, "main.py": []byte("def echo(*a, **k): return a\ndef echo_stream(*a): yield from a\n")} {
		if err := os.WriteFile(filepath.Join(dir, f), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// waitStatus waits up to 10 s for invocation id to reach status.
func waitStatus(t *testing.T, s *site, id string, status core.InvocationStatus) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		inv, err := s.store.Invocation(t.Context(), id)
		if err == nil && inv.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invocation %s: %+v, %v; want %s within 10 s", id, inv, err, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
