package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/core"
)

// The agent view and its "try it" forms in the browser: versions,
// entrypoints with their schemas, runs plain and streamed, rollback,
// what a viewer sees, and markup in an agent's data shown as text.

// schemaAgentID is the agent with an input_schema that deploySchemaAgent
// adds to a site.
const schemaAgentID = "bbbbbbbb-bbbb-4bbb-8bbb-000000000001"

// deploySchemaAgent deploys an agent whose plain entrypoint "ask" has an
// input_schema with a field of each kind a form shows, and whose
// descriptions, field title and enum value hold xssText.
func deploySchemaAgent(t *testing.T, s *site) {
	t.Helper()
	// Raw JSON: the form follows the schema's order of properties.
	x, _ := json.Marshal(xssText)
	schema := json.RawMessage(`{"kwargs": {"type": "object", "required": ["message"], "additionalProperties": false, "properties": {
		"message": {"type": "string", "minLength": 1, "description": ` + string(x) + `},
		"count": {"type": "integer", "minimum": 1, "maximum": 5},
		"mode": {"enum": ["fast", ` + string(x) + `]},
		"loud": {"type": "boolean", "title": ` + string(x) + `},
		"reply_to": {"type": "string", "format": "email", "maxLength": 50},
		"extra": {"type": "object"}}},
	  "args": {"maxItems": 0}}`)
	cfg := map[string]any{
		"agent_name": "schema-bot",
		"agent_id":   schemaAgentID,
		"agent_architecture": map[string]any{"entrypoints": []map[string]any{
			{"file": "main.py", "module": "echo", "tag": "ask", "input_schema": schema, "description": xssText},
			{"file": "main.py", "module": "echo_stream", "tag": "tell_stream"},
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
	if _, err := s.reg.DeployDir(t.Context(), dir, "p1"); err != nil {
		t.Fatal(err)
	}
}

// openAgent shows the agent view of id, as its link in the agents list
// does, and waits for its entrypoints and versions.
func openAgent(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	do(t, ctx, "open agent "+id,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#agents-body tr[data-agent-id=%q] td.name a`, id))),
	)
	waitFor(t, ctx, "agent "+id+" shown", fmt.Sprintf(`document.getElementById("agent-id").textContent === %q`, id))
	do(t, ctx, "agent "+id+"'s entrypoints and versions",
		chromedp.WaitVisible(chromedp.CSS(`#agent-entrypoints article.ep`)),
		chromedp.WaitVisible(chromedp.CSS(`#versions-body tr`)),
	)
	if got := eval[string](t, ctx, `location.hash`); got != "#agent/"+id {
		t.Errorf("the agent view's address is %q, want #agent/%s", got, id)
	}
}

func currentVersion(t *testing.T, s *site, id string) string {
	t.Helper()
	vs, err := s.store.AgentVersions(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Current {
			return v.Hash
		}
	}
	t.Fatalf("agent %s has no current version", id)
	return ""
}

func short(v string) string { return strings.TrimPrefix(v, "sha256:")[:12] }

// TestBrowserAgentVersionsAndRollback: an admin opens an agent from the
// list and sees its entrypoints and versions (the current one marked);
// a rollback asks first (declined, nothing changes), then, confirmed,
// makes the older version current in the store and on the page.
func TestBrowserAgentVersionsAndRollback(t *testing.T) {
	s := newSite(t)
	id := s.agents[0]
	v1 := currentVersion(t, s, id)
	dir := agentDir(t, id, "support-bot")
	os.WriteFile(filepath.Join(dir, "extra.py"), []byte("X = 1\n"), 0o644)
	if _, err := s.reg.DeployDir(t.Context(), dir, "p1"); err != nil {
		t.Fatal(err)
	}
	v2 := currentVersion(t, s, id)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	openAgent(t, ctx, id)

	if got := eval[string](t, ctx, `document.getElementById("agent-title").textContent`); got != "support-bot" {
		t.Errorf("agent title %q, want support-bot", got)
	}
	tags := eval[[]string](t, ctx, `[...document.querySelectorAll("#agent-entrypoints article.ep h3")].map(h => h.textContent)`)
	if fmt.Sprint(tags) != "[echo echo_stream stream]" {
		t.Errorf("entrypoints shown: %q, want echo and echo_stream (marked stream)", tags)
	}
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll("#versions-body tr")].map(tr => tr.dataset.version + " " + tr.cells[3].textContent)`)
	if want := []string{v2 + " current", v1 + " "}; fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("versions shown %q, want %q (newest first, current marked)", rows, want)
	}
	if got := eval[string](t, ctx, `document.getElementById("agent-version").textContent`); got != short(v2) {
		t.Errorf("current version shown %q, want %q", got, short(v2))
	}
	if n := eval[int](t, ctx, `[...document.querySelectorAll("button.rollback")].filter(b => b.offsetParent !== null).length`); n != 1 {
		t.Errorf("%d rollback buttons shown, want 1 (the version that is not current)", n)
	}

	// Declined: no change.
	eval[bool](t, ctx, `window.__asked = []; window.confirm = (m) => { window.__asked.push(m); return false; }; true`)
	do(t, ctx, "roll back, declined", chromedp.Click(chromedp.CSS(`button.rollback`)))
	if asked := eval[[]string](t, ctx, `window.__asked`); len(asked) != 1 || !strings.Contains(asked[0], v1) {
		t.Errorf("the confirmation asked %q, want one question naming %s", asked, v1)
	}
	if cur := currentVersion(t, s, id); cur != v2 {
		t.Fatalf("current after a declined rollback: %s, want %s", cur, v2)
	}

	// Confirmed.
	eval[bool](t, ctx, `window.confirm = () => true; true`)
	do(t, ctx, "roll back", chromedp.Click(chromedp.CSS(`button.rollback`)))
	waitFor(t, ctx, "the rolled back version shown", fmt.Sprintf(`document.getElementById("agent-version").textContent === %q`, short(v1)))
	if cur := currentVersion(t, s, id); cur != v1 {
		t.Errorf("stored current after rollback: %s, want %s", cur, v1)
	}
	rows = eval[[]string](t, ctx, `[...document.querySelectorAll("#versions-body tr")].map(tr => tr.dataset.version + " " + tr.cells[3].textContent)`)
	if want := []string{v2 + " ", v1 + " current"}; fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("versions after rollback %q, want %q", rows, want)
	}
	if msg := eval[string](t, ctx, `document.getElementById("status").textContent`); !strings.Contains(msg, "Rolled support-bot back to "+short(v1)) {
		t.Errorf("status after rollback %q, want it to say so", msg)
	}
}

// TestBrowserTryPlain: the "try it" form of an entrypoint with a schema
// has a labelled field of the right kind per property; it refuses
// missing and malformed values before sending, shows the server's
// violations for what it cannot check (format email), and runs valid
// input, showing the result and a link to the invocation's record.
func TestBrowserTryPlain(t *testing.T) {
	s := newSite(t)
	deploySchemaAgent(t, s)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	openAgent(t, ctx, schemaAgentID)
	const form = `document.querySelector('form.try[data-tag="ask"]')`

	kinds := eval[string](t, ctx, `[...`+form+`.querySelectorAll(".field")].map(f => {
		const i = f.querySelector("input, select, textarea");
		const l = f.querySelector("label[for='" + i.id + "']");
		return f.dataset.field + ":" + i.tagName.toLowerCase() + (i.type ? "/" + i.type : "") + (l ? "" : ":unlabelled");
	}).join(" ")`)
	if want := "message:textarea/textarea count:input/text mode:select/select-one loud:input/checkbox reply_to:input/text extra:textarea/textarea"; kinds != want {
		t.Errorf("fields %q, want %q (and no positional field: args has maxItems 0)", kinds, want)
	}

	submit := func(what string) {
		t.Helper()
		do(t, ctx, what, chromedp.Click(chromedp.CSS(`form.try[data-tag="ask"] button[type=submit]`)))
	}
	errorOf := func(field string) string {
		t.Helper()
		return eval[string](t, ctx, fmt.Sprintf(`(e => e.hidden ? "" : e.textContent)(%s.querySelector('[data-field=%q] .field-error'))`, form, field))
	}
	runs := func() int {
		t.Helper()
		invs, err := s.store.Invocations(t.Context(), core.InvocationFilter{AgentID: schemaAgentID})
		if err != nil {
			t.Fatal(err)
		}
		return len(invs)
	}

	submit("submit empty")
	if got := errorOf("message"); got != "Enter a value." {
		t.Errorf("message left empty: error %q, want %q", got, "Enter a value.")
	}
	if focused := eval[string](t, ctx, `document.activeElement.name`); focused != "message" {
		t.Errorf("after a refused submit the focus is on %q, want the first bad field", focused)
	}
	do(t, ctx, "fill in",
		chromedp.SendKeys(chromedp.CSS(`form.try[data-tag="ask"] [name=message]`), "hi"),
		chromedp.SendKeys(chromedp.CSS(`form.try[data-tag="ask"] [name=count]`), "2.5"),
		chromedp.SendKeys(chromedp.CSS(`form.try[data-tag="ask"] [name=extra]`), "{nope"),
	)
	submit("submit a fraction")
	if got, want := [3]string{errorOf("message"), errorOf("count"), errorOf("extra")}, [3]string{"", "Enter a whole number.", "This is not valid JSON."}; got != want {
		t.Errorf("errors (message, count, extra): %q, want %q", got, want)
	}
	if n := runs(); n != 0 {
		t.Fatalf("%d runs after refused submits, want none sent", n)
	}

	// What only the server checks: its violation is shown.
	eval[bool](t, ctx, form+`.querySelector("[name=count]").value = "3"; `+form+`.querySelector("[name=extra]").value = '{"k": [1]}'; true`)
	do(t, ctx, "a reply_to that is no email", chromedp.SendKeys(chromedp.CSS(`form.try[data-tag="ask"] [name=reply_to]`), "nope"))
	submit("submit a bad email")
	do(t, ctx, "server error", chromedp.WaitVisible(chromedp.CSS(`form.try[data-tag="ask"] .run-error`)))
	if msg := eval[string](t, ctx, form+`.querySelector(".run-error").textContent`); !strings.Contains(msg, "input_kwargs.reply_to") {
		t.Errorf("the server's refusal is shown as %q, want it to name input_kwargs.reply_to", msg)
	}

	eval[bool](t, ctx, form+`.querySelector("[name=reply_to]").value = ""; `+form+`.querySelector("[name=mode]").value = "1"; `+form+`.querySelector("[name=loud]").checked = true; true`)
	submit("run")
	waitFor(t, ctx, "the result", form+`.querySelector(".run-state").textContent === "Completed."`)
	out := eval[string](t, ctx, form+`.querySelector("pre.output").textContent`)
	var got struct {
		Kwargs map[string]any `json:"kwargs"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q is not the echo's JSON: %v", out, err)
	}
	want := map[string]any{"message": "hi", "count": float64(3), "mode": xssText, "loud": true, "extra": map[string]any{"k": []any{float64(1)}}}
	if fmt.Sprint(got.Kwargs) != fmt.Sprint(want) {
		t.Errorf("the run got kwargs %v, want %v", got.Kwargs, want)
	}
	href := eval[string](t, ctx, form+`.querySelector(".run-link a").getAttribute("href")`)
	inv, ok := strings.CutPrefix(href, "#invocations/")
	if !ok {
		t.Fatalf("invocation link %q, want #invocations/<id>", href)
	}
	if rec, err := s.store.Invocation(t.Context(), inv); err != nil || rec.AgentID != schemaAgentID {
		t.Errorf("the linked invocation %q: %+v, %v; want a record of the run", inv, rec, err)
	}
	noScriptRan(t, ctx, "main")
}

// TestBrowserTryStream: a streaming entrypoint's run shows each chunk as
// it arrives, in order, before the stream completes; the invocation id
// links to its record; markup in a chunk is shown as text.
func TestBrowserTryStream(t *testing.T) {
	const delay = 200 * time.Millisecond
	s := newSiteWith(t, siteOptions{ChunkDelay: delay})
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	openAgent(t, ctx, s.agents[0])
	const form = `document.querySelector('form.try[data-tag="echo_stream"]')`
	// Each chunk's arrival, and the completion, as the page sees them.
	eval[bool](t, ctx, `window.__seen = []; new MutationObserver(() => {
		const f = `+form+`;
		const n = f.querySelectorAll(".chunks li").length;
		const last = window.__seen[window.__seen.length - 1];
		if (n > 0 && (!last || last.n !== n)) window.__seen.push({n, t: performance.now(), text: f.querySelector(".chunks li:last-child").textContent});
		if (f.querySelector(".run-state").textContent.startsWith("Completed") && !window.__done) window.__done = performance.now();
	}).observe(`+form+`, {subtree: true, childList: true, characterData: true}); true`)
	args, _ := json.Marshal([]string{"one", "two", xssText, "four"})
	do(t, ctx, "run the stream",
		chromedp.SetValue(chromedp.CSS(`form.try[data-tag="echo_stream"] textarea[name^="Positional"]`), string(args)),
		chromedp.Click(chromedp.CSS(`form.try[data-tag="echo_stream"] button[type=submit]`)),
	)
	waitFor(t, ctx, "the stream's end", `window.__done !== undefined`)
	type seen struct {
		N    int
		T    float64
		Text string
	}
	got := eval[[]seen](t, ctx, `window.__seen`)
	done := eval[float64](t, ctx, `window.__done`)
	if len(got) != 4 {
		t.Fatalf("chunks seen one by one: %+v, want 4 arrivals", got)
	}
	for i, want := range []string{"one", "two", xssText, "four"} {
		if got[i].N != i+1 || !strings.Contains(got[i].Text, want) {
			t.Errorf("arrival %d: %+v, want chunk %d holding %q", i, got[i], i+1, want)
		}
	}
	// The first chunk was on the page well before the stream ended.
	if lead := time.Duration((done - got[0].T) * float64(time.Millisecond)); lead < 2*delay {
		t.Errorf("the first chunk was shown %v before completion, want at least %v: the output is not shown as it arrives", lead, 2*delay)
	}
	state := eval[string](t, ctx, form+`.querySelector(".run-state").textContent`)
	if !strings.HasPrefix(state, "Completed: 4 chunks") {
		t.Errorf("state %q, want Completed: 4 chunks", state)
	}
	href := eval[string](t, ctx, form+`.querySelector(".run-link a").getAttribute("href")`)
	inv, _ := strings.CutPrefix(href, "#invocations/")
	if rec, err := s.store.Invocation(t.Context(), inv); err != nil || rec.AgentID != s.agents[0] {
		t.Errorf("the linked invocation %q (%s): %+v, %v; want the stream's record", inv, href, rec, err)
	}
	noScriptRan(t, ctx, "main")
}

// TestBrowserAgentViewer: a viewer sees an agent's entrypoints, schemas
// and versions but no "try it" form and no rollback; a writer (a role
// with run permission) sees the forms. The view also fits 390 px wide.
func TestBrowserAgentViewer(t *testing.T) {
	s := newSite(t)
	dir := agentDir(t, s.agents[0], "support-bot")
	os.WriteFile(filepath.Join(dir, "extra.py"), []byte("X = 1\n"), 0o644)
	if _, err := s.reg.DeployDir(t.Context(), dir, "p1"); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["viewer"])
	openAgent(t, ctx, s.agents[0])
	const visible = `(sel) => [...document.querySelectorAll(sel)].filter(e => e.offsetParent !== null).length`
	counts := eval[[]int](t, ctx, `(v => [v("#agent-entrypoints article.ep"), v("#versions-body tr"), v("form.try"), v("form.try button"), v("button.rollback")])(`+visible+`)`)
	if fmt.Sprint(counts) != "[2 2 0 0 0]" {
		t.Errorf("a viewer sees entrypoints, versions, forms, run buttons, rollbacks: %v, want [2 2 0 0 0]", counts)
	}

	user := mustKey(t, s.store, "p1", core.RoleUser)
	do(t, ctx, "sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in")))
	signIn(t, ctx, s, user)
	openAgent(t, ctx, s.agents[0])
	counts = eval[[]int](t, ctx, `(v => [v("form.try"), v("button.rollback")])(`+visible+`)`)
	if fmt.Sprint(counts) != "[2 0]" {
		t.Errorf("a user sees forms, rollbacks: %v, want [2 0]", counts)
	}

	do(t, ctx, "390 px wide", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#agent-entrypoints article.ep`)))
	if over := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`); over {
		t.Errorf("at 390 px the agent view scrolls sideways (%d px wide)", eval[int](t, ctx, `document.documentElement.scrollWidth`))
	}
}

// TestBrowserAgentXSS: markup in an agent's name, an entrypoint's
// description, its schema (a field's description, title and enum value)
// and a build's log is shown as text and runs nothing. (An entrypoint's
// tag cannot hold markup: deploys refuse tags beyond letters, digits,
// '_' and '-', which this test checks too.)
func TestBrowserAgentXSS(t *testing.T) {
	s := newSite(t)
	deploySchemaAgent(t, s)
	bad := agentDir(t, "cccccccc-cccc-4ccc-8ccc-000000000001", "tagged")
	cfg, _ := os.ReadFile(filepath.Join(bad, "runagent.config.json"))
	cfg = []byte(strings.Replace(string(cfg), `"tag": "echo"`, `"tag": "<img src=x onerror=alert(1)>"`, 1))
	os.WriteFile(filepath.Join(bad, "runagent.config.json"), cfg, 0o644)
	if _, err := s.reg.DeployDir(t.Context(), bad, "p1"); err == nil {
		t.Error("an entrypoint tag with markup was deployed")
	}
	v := currentVersion(t, s, schemaAgentID)
	now := time.Now().UTC()
	if err := s.store.PutBuild(t.Context(), &core.Build{ID: "build-xss", AgentID: schemaAgentID, ProjectID: "p1", Version: v,
		Status: core.BuildFailed, Error: xssText, Log: "pip says " + xssText, StartedAt: now, FinishedAt: now}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])

	openAgent(t, ctx, s.agents[1])
	if got := eval[string](t, ctx, `document.getElementById("agent-title").textContent`); got != xssName {
		t.Errorf("agent title %q, want the name as text %q", got, xssName)
	}
	noScriptRan(t, ctx, "main")

	do(t, ctx, "back to the list", chromedp.Navigate(s.url+"/console#agents"), chromedp.WaitVisible(chromedp.CSS(`#agents-body tr`)))
	openAgent(t, ctx, schemaAgentID)
	do(t, ctx, "show the build log",
		chromedp.Click(chromedp.CSS(`#builds-body tr[data-build="build-xss"] button`)),
		chromedp.WaitVisible(chromedp.ID("build-log-text")),
	)
	texts := eval[[]string](t, ctx, `(f => [
		document.querySelector('article.ep[data-tag="ask"] .ep-desc').textContent,
		f.querySelector('[data-field="message"] .hint').textContent,
		f.querySelector('[data-field="loud"] label').textContent,
		f.querySelector('[data-field="mode"] option:last-child').textContent,
		document.getElementById("build-log-text").textContent,
	])(document.querySelector('form.try[data-tag="ask"]'))`)
	want := []string{xssText, xssText, xssText, xssText, xssText + "\n\npip says " + xssText}
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Errorf("description, field hint, field label, enum option, build log shown as %q, want the payloads as text %q", texts, want)
	}
	if schema := eval[string](t, ctx, `document.querySelector('article.ep[data-tag="ask"] details pre').textContent`); !strings.Contains(schema, `"minLength": 1`) {
		t.Errorf("the input schema is shown as %q, want it pretty-printed", schema)
	}
	noScriptRan(t, ctx, "main")
}

// TestBrowserSSEParser: the console's SSE parser gives the same events
// however the response is split into chunks (at every offset, with CRLF,
// CR and LF line ends, comments and multi-line data).
func TestBrowserSSEParser(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	do(t, ctx, "open", chromedp.Navigate(s.url+"/console"), chromedp.WaitVisible(chromedp.ID("api-key")))
	got := eval[string](t, ctx, `import("/console/sse.js").then(({SSEParser}) => {
		const text = ": hi\r\nevent: status\r\ndata: {\"a\":1}\r\n\r\nid: 0\nevent: data\ndata: x\ndata:  y\n\nevent: data\rid: 1\rdata: é\r\rdata\n\nevent: ignored\n\n";
		const want = JSON.stringify(new SSEParser().push(text));
		for (let i = 0; i <= text.length; i++) {
			for (let j = i; j <= text.length; j++) {
				const p = new SSEParser();
				const got = JSON.stringify([...p.push(text.slice(0, i)), ...p.push(text.slice(i, j)), ...p.push(text.slice(j))]);
				if (got !== want) return "split at " + i + "," + j + ": " + got + " != " + want;
			}
		}
		return want;
	})`)
	const want = `[{"event":"status","data":"{\"a\":1}"},{"event":"data","data":"x\n y","id":"0"},{"event":"data","data":"é","id":"1"},{"event":"message","data":"","id":"1"}]`
	if got != want {
		t.Errorf("SSE parse: %s\nwant %s", got, want)
	}
}

// TestBrowserTryKeyboardAndStop: a plain form is filled in and sent by
// keyboard alone (Enter in a field submits it); a stream is stopped with
// its Stop button after its first chunk, which cancels the run: its
// record does not complete. The forms fit 390 px wide.
func TestBrowserTryKeyboardAndStop(t *testing.T) {
	s := newSiteWith(t, siteOptions{ChunkDelay: 300 * time.Millisecond})
	deploySchemaAgent(t, s)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	openAgent(t, ctx, schemaAgentID)

	const ask = `form.try[data-tag="ask"]`
	eval[bool](t, ctx, `document.querySelector('`+ask+` [name=message]').focus(), true`)
	do(t, ctx, "type the message, Tab to count, type it and Enter",
		chromedp.KeyEvent("hello"),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent("4\r"),
	)
	waitFor(t, ctx, "the result", `document.querySelector('`+ask+` .run-state').textContent === "Completed."`)
	if out := eval[string](t, ctx, `document.querySelector('`+ask+` pre.output').textContent`); !strings.Contains(out, `"message": "hello"`) || !strings.Contains(out, `"count": 4`) {
		t.Errorf("keyboard run's output %q, want message hello and count 4", out)
	}

	const stream = `form.try[data-tag="tell_stream"]`
	args, _ := json.Marshal([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	do(t, ctx, "start a long stream",
		chromedp.SetValue(chromedp.CSS(stream+` textarea[name^="Positional"]`), string(args)),
		chromedp.Click(chromedp.CSS(stream+` button[type=submit]`)),
	)
	waitFor(t, ctx, "the first chunk", `document.querySelectorAll('`+stream+` .chunks li').length >= 1`)
	do(t, ctx, "stop", chromedp.Click(chromedp.CSS(stream+` button.secondary`)))
	waitFor(t, ctx, "stopped", `document.querySelector('`+stream+` .run-state').textContent.startsWith("Stopped")`)
	href := eval[string](t, ctx, `document.querySelector('`+stream+` .run-link a').getAttribute("href")`)
	inv, _ := strings.CutPrefix(href, "#invocations/")
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := s.store.Invocation(t.Context(), inv)
		if err != nil {
			t.Fatalf("the stopped stream's record %q: %v", inv, err)
		}
		if rec.Status != core.StatusRunning {
			if rec.Status == core.StatusCompleted {
				t.Errorf("the stopped stream's record says %s, want it cancelled", rec.Status)
			}
			t.Logf("the stopped stream's record: %s", rec.Status)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped stream is still running after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('`+stream+` .chunks li').length`); n >= 20 {
		t.Errorf("%d chunks shown after Stop, want fewer than 20", n)
	}

	do(t, ctx, "390 px wide", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(ask)))
	if over := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`); over {
		t.Errorf("at 390 px the agent view with its forms scrolls sideways (%d px wide)", eval[int](t, ctx, `document.documentElement.scrollWidth`))
	}
}
