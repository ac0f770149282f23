package console_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/ratelimit"
)

// The browser tests of the keys, secrets, persistent memory and blocks
// views: each acts through the page as a person would (forms, buttons,
// confirmations) and checks the effect through the API or the store.

// xssKeyName is a key name that runs script if put in the page as HTML.
const xssKeyName = `<img src=x onerror="window.__xss=1">key`

// dialogs accepts every confirmation the page asks for and records its
// message.
type dialogs struct {
	mu   sync.Mutex
	msgs []string
}

func acceptDialogs(t *testing.T, ctx context.Context) *dialogs {
	t.Helper()
	d := &dialogs{}
	events := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			d.mu.Lock()
			d.msgs = append(d.msgs, ev.Message)
			d.mu.Unlock()
			// Answered from another goroutine than the one receiving
			// the events.
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return d
}

func (d *dialogs) seen(substr string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.ContainsFunc(d.msgs, func(m string) bool { return strings.Contains(m, substr) })
}

// apiStatus calls the API with key and returns the status.
func apiStatus(t *testing.T, s *site, key, method, path string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// inPage reports whether text is anywhere in the page: its markup or
// the value of any of its fields.
func inPage(t *testing.T, ctx context.Context, text string) bool {
	t.Helper()
	return eval[bool](t, ctx, `(t => document.documentElement.outerHTML.includes(t) ||
  [...document.querySelectorAll("input, textarea")].some(i => i.value.includes(t)))(`+jsString(text)+`)`)
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// keyRow selects the keys table's row of key id.
func keyRow(id string) string { return `#keys-body tr[data-key-id="` + id + `"]` }

// TestBrowserKeys: an admin creates a key narrowed to a role and one
// agent, sees its secret once (gone after Done, and after a reload), the
// key works against the API within its narrowing; the admin rotates it
// (a new secret, shown once; both work during the overlap) and revokes
// the successor after a confirmation (it stops working). The key's name,
// markup, is shown as text.
func TestBrowserKeys(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	d := acceptDialogs(t, ctx)
	signIn(t, ctx, s, s.keys["admin"])
	if shown := eval[[]string](t, ctx, `[...document.querySelectorAll("#nav a")].filter(a => !a.hidden && a.offsetParent !== null).map(a => a.dataset.view)`); !slices.Contains(shown, "keys") || slices.Contains(shown, "blocks") {
		t.Errorf("an admin's navigation shows %q, want keys and not blocks (owners only)", shown)
	}
	do(t, ctx, "open the keys view",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="keys"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#keys-body tr`)),
		chromedp.Click(chromedp.CSS(`#key-new summary`)),
		chromedp.WaitVisible(chromedp.ID("key-name")),
	)
	// The form offers only what the admin holds: no owner role, and the
	// agents the admin sees.
	roles := eval[[]string](t, ctx, `[...document.querySelectorAll("#key-role option")].map(o => o.value)`)
	if want := []string{"viewer", "user", "streamer", "admin"}; !slices.Equal(roles, want) {
		t.Errorf("roles offered to an admin: %q, want %q", roles, want)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#key-agents input").length`); n != 2 {
		t.Errorf("the form offers %d agents, want the 2 the admin sees", n)
	}
	if hidden := eval[bool](t, ctx, `document.getElementById("key-users-row").hidden && document.getElementById("key-project-row").hidden`); !hidden {
		t.Error("the form offers end users or projects to an admin who holds none")
	}

	// The admin's own key ends within the hour: no number of days fits
	// under it, so the form offers only the default (its end).
	if !eval[bool](t, ctx, `document.getElementById("key-days").disabled`) {
		t.Error("the form offers days of expiry beyond the admin's own key")
	}
	do(t, ctx, "choose the viewer role", chromedp.SetValue(chromedp.ID("key-role"), "viewer"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("key-role").dispatchEvent(new Event("change"))`))
	if offered := eval[[]string](t, ctx, `[...document.querySelectorAll('#key-scopes input:not(:disabled)')].map(i => i.value)`); !slices.Equal(offered, []string{"read"}) {
		t.Errorf("scopes offered with the viewer role: %q, want only read", offered)
	}
	do(t, ctx, "create a narrowed key",
		chromedp.SendKeys(chromedp.ID("key-name"), xssKeyName),
		chromedp.Click(chromedp.CSS(`#key-agents input[value="`+s.agents[0]+`"]`)),
		chromedp.Click(chromedp.CSS(`#key-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("key-secret")),
	)
	secret := eval[string](t, ctx, `document.getElementById("key-secret-value").value`)
	k, err := apikey.Parse(secret)
	if err != nil {
		t.Fatalf("the page shows %q as the new key: %v", secret, err)
	}
	stored, err := s.store.APIKey(t.Context(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := apikey.Parse(s.keys["admin"])
	if err != nil {
		t.Fatal(err)
	}
	adminKey, err := s.store.APIKey(t.Context(), admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Name != xssKeyName || !slices.Equal(stored.Agents, []string{s.agents[0]}) || !stored.ExpiresAt.Equal(*adminKey.ExpiresAt) {
		t.Errorf("stored key: name %q, agents %q, expires %v; want the form's name, agent %s, the admin key's end %v",
			stored.Name, stored.Agents, stored.ExpiresAt, s.agents[0], adminKey.ExpiresAt)
	}
	// The key works, within its narrowing: it reads its agent, not the
	// other, and cannot run (a viewer).
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/agents/" + s.agents[0] + "/architecture", 200},
		{"GET", "/api/v1/agents/" + s.agents[1] + "/architecture", 404},
		{"POST", "/api/v1/agents/" + s.agents[0] + "/run", 403},
		{"GET", "/api/v1/keys", 403},
	} {
		if got := apiStatus(t, s, secret, c.method, c.path); got != c.want {
			t.Errorf("the new key: %s %s = %d, want %d", c.method, c.path, got, c.want)
		}
	}
	name := eval[string](t, ctx, `document.querySelector('`+keyRow(k.ID)+` td.name').textContent`)
	if name != xssKeyName {
		t.Errorf("the key's name is shown as %q, want the text %q", name, xssKeyName)
	}
	if ran := eval[bool](t, ctx, `window.__xss !== undefined || document.querySelectorAll("#keys-body img").length > 0`); ran {
		t.Error("the key's name was made into an element or ran script")
	}

	do(t, ctx, "dismiss the secret", chromedp.Click(chromedp.ID("key-secret-done")), chromedp.WaitNotVisible(chromedp.ID("key-secret")))
	if inPage(t, ctx, secret) {
		t.Error("the key's secret is still in the page after Done")
	}
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(keyRow(k.ID))))
	if inPage(t, ctx, secret) || !eval[bool](t, ctx, `document.getElementById("key-secret").hidden`) {
		t.Error("the key's secret is shown again after a reload")
	}

	do(t, ctx, "rotate", chromedp.Click(chromedp.CSS(keyRow(k.ID)+` button:not(.danger)`)), chromedp.WaitVisible(chromedp.ID("key-secret")))
	if !d.seen("Rotate key " + xssKeyName) {
		t.Errorf("rotating asked no confirmation naming the key (dialogs %q)", d.msgs)
	}
	next := eval[string](t, ctx, `document.getElementById("key-secret-value").value`)
	nk, err := apikey.Parse(next)
	if err != nil || nk.ID == k.ID {
		t.Fatalf("after rotating the page shows %q (%v), want a new key", next, err)
	}
	for _, key := range []string{secret, next} {
		if got := apiStatus(t, s, key, "GET", "/api/v1/agents/"+s.agents[0]+"/architecture"); got != 200 {
			t.Errorf("during the overlap a key of the rotation gets %d, want 200", got)
		}
	}
	do(t, ctx, "dismiss and wait for the successor's row",
		chromedp.Click(chromedp.ID("key-secret-done")),
		chromedp.WaitVisible(chromedp.CSS(keyRow(nk.ID))))
	if st := eval[string](t, ctx, `document.querySelector('`+keyRow(k.ID)+` td.state').textContent`); !strings.Contains(st, "rotated to "+nk.ID) {
		t.Errorf("the rotated key's state reads %q, want rotated to %s", st, nk.ID)
	}

	do(t, ctx, "revoke the successor",
		chromedp.Click(chromedp.CSS(keyRow(nk.ID)+` button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(keyRow(nk.ID)+` td.state`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('`+keyRow(nk.ID)+` td.state').textContent === "revoked"`),
	)
	if !d.seen("Revoke key " + xssKeyName) {
		t.Errorf("revoking asked no confirmation naming the key (dialogs %q)", d.msgs)
	}
	if got := apiStatus(t, s, next, "GET", "/api/v1/agents"); got != http.StatusUnauthorized {
		t.Errorf("the revoked key gets %d, want 401", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('`+keyRow(nk.ID)+` button').length`); n != 0 {
		t.Errorf("a revoked key's row offers %d actions, want none", n)
	}
}

// TestBrowserKeyWiderRefused: a request the form could not have made (an
// owner role, by hand) is refused by the server, and the page says why.
func TestBrowserKeyWiderRefused(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	before := s.keyCount(t)
	do(t, ctx, "create an owner key by hand",
		chromedp.Navigate(s.url+"/console#keys"),
		chromedp.WaitVisible(chromedp.CSS(`#keys-body tr`)),
		chromedp.Click(chromedp.CSS(`#key-new summary`)),
		chromedp.SendKeys(chromedp.ID("key-name"), "too wide"),
		chromedp.Evaluate[chromedp.Void](`(s => { const o = document.createElement("option"); o.value = o.textContent = "owner"; s.append(o); s.value = "owner"; })(document.getElementById("key-role"))`),
		chromedp.Click(chromedp.CSS(`#key-form button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("key-form-error").textContent !== ""`),
	)
	if msg := eval[string](t, ctx, `document.getElementById("key-form-error").textContent`); !strings.Contains(msg, "owner") {
		t.Errorf("the refusal reads %q, want it to name the owner role", msg)
	}
	if s.keyCount(t) != before || !eval[bool](t, ctx, `document.getElementById("key-secret").hidden`) {
		t.Error("a refused key was made or shown")
	}
}

// TestBrowserSecrets: an admin sets a secret of an agent from a password
// field (the value is nowhere in the page afterwards, the store holds
// it) and deletes it after a confirmation; a name the server refuses is
// reported, as text.
func TestBrowserSecrets(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	d := acceptDialogs(t, ctx)
	signIn(t, ctx, s, s.keys["admin"])
	const value = "sk-test-0123456789-value-never-shown"
	do(t, ctx, "set a secret",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="secrets"]`)),
		chromedp.WaitVisible(chromedp.ID("secrets-form")),
		chromedp.SetValue(chromedp.ID("secrets-agent"), s.agents[0]),
		chromedp.SendKeys(chromedp.ID("secret-name"), "OPENAI_API_KEY"),
		chromedp.SendKeys(chromedp.ID("secret-value"), value),
		chromedp.Click(chromedp.CSS(`#secrets-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#secrets-body tr[data-secret="OPENAI_API_KEY"]`)),
	)
	if typ := eval[string](t, ctx, `document.getElementById("secret-value").type`); typ != "password" {
		t.Errorf("the value field is of type %q, want password", typ)
	}
	if inPage(t, ctx, value) {
		t.Error("the secret's value is in the page after saving")
	}
	vals, err := s.store.SecretValues(t.Context(), s.agents[0])
	if err != nil || vals["OPENAI_API_KEY"] != value {
		t.Errorf("stored secrets of the agent: %v (%v), want OPENAI_API_KEY set to the typed value", len(vals), err)
	}

	do(t, ctx, "delete it",
		chromedp.Click(chromedp.CSS(`#secrets-body tr[data-secret="OPENAI_API_KEY"] button.danger`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#secrets-body tr[data-secret="OPENAI_API_KEY"]`)),
	)
	if !d.seen("Delete secret OPENAI_API_KEY") {
		t.Errorf("deleting asked no confirmation naming the secret (dialogs %q)", d.msgs)
	}
	if ss, err := s.store.Secrets(t.Context(), s.agents[0]); err != nil || len(ss) != 0 {
		t.Errorf("secrets left after delete: %d (%v), want none", len(ss), err)
	}

	// A name with markup is refused by the server; the page reports it
	// as text and keeps no value.
	do(t, ctx, "set a secret named with markup",
		chromedp.SendKeys(chromedp.ID("secret-name"), xssName),
		chromedp.SendKeys(chromedp.ID("secret-value"), value),
		chromedp.Click(chromedp.CSS(`#secrets-form button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("secrets-form-error").textContent !== ""`),
	)
	if ran := eval[bool](t, ctx, `window.__xss !== undefined || document.querySelectorAll("#view-secrets img, #view-secrets script").length > 0`); ran {
		t.Error("the refused name was made into an element or ran script")
	}
	if inPage(t, ctx, value) {
		t.Error("the value of a refused secret stays in the page")
	}
}

// TestBrowserBlocks: an owner sees the blocked clients (one named with
// markup, shown as text) and lifts one; the block is gone.
func TestBrowserBlocks(t *testing.T) {
	// The console's own first call, signed out, is an authentication
	// failure too: blocks need more strikes than it makes.
	const after = 20
	blocks := ratelimit.NewMemoryBlocks(api.BlockPolicy{After: after, Window: time.Hour, For: time.Hour}, nil)
	s := newSite(t, func(d *api.Deps) { d.Blocks = blocks })
	const evil = `key:<img/src=x/onerror=window.__xss=3>`
	block(t, blocks, after, "ip:198.51.100.7", evil)
	ctx := browser(t)
	signIn(t, ctx, s, mustKey(t, s.store, "", core.RoleOwner))
	do(t, ctx, "open the blocks view",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="blocks"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#blocks-body tr`)),
	)
	clients := eval[[]string](t, ctx, `[...document.querySelectorAll("#blocks-body tr td:first-child")].map(td => td.textContent)`)
	if !slices.Equal(clients, []string{"ip:198.51.100.7", evil}) {
		t.Errorf("blocked clients shown: %q, want both, as text", clients)
	}
	if ran := eval[bool](t, ctx, `window.__xss !== undefined || document.querySelectorAll("#blocks-body img").length > 0`); ran {
		t.Error("a client's name was made into an element or ran script")
	}
	do(t, ctx, "lift the first",
		chromedp.Click(chromedp.CSS(`#blocks-body tr[data-client="ip:198.51.100.7"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#blocks-body tr[data-client="ip:198.51.100.7"]`)),
	)
	if left, err := blocks.Check(t.Context(), "ip:198.51.100.7"); err != nil || left != 0 {
		t.Errorf("the lifted client is blocked for %v more (%v)", left, err)
	}
	if left, _ := blocks.Check(t.Context(), evil); left == 0 {
		t.Error("the other client's block was lifted too")
	}
}

// TestBrowserMemory: an admin sees an agent's users with persistent
// memory (real encrypted stores) and their sizes, and deletes one after
// a confirmation; a user id with markup is shown as text.
func TestBrowserMemory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("uid %d may not attach loop devices or mount file systems, which persistent memory needs; run as root", os.Geteuid())
	}
	var mem *memory.Manager
	const evilUser = `<img src=x onerror="window.__xss=4">`
	s := newSite(t, memoryDeps(t, &mem))
	for _, u := range []string{"alice", evilUser} {
		l, err := mem.Acquire(t.Context(), memory.Key{Project: "p1", Agent: s.agents[0], User: u}, 0)
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
	ctx := browser(t)
	d := acceptDialogs(t, ctx)
	signIn(t, ctx, s, s.keys["admin"])
	do(t, ctx, "open the memory view",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="memory"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#memory-body tr`)),
	)
	users := eval[[]string](t, ctx, `[...document.querySelectorAll("#memory-body td.name")].map(td => td.textContent).sort()`)
	if !slices.Equal(users, []string{evilUser, "alice"}) {
		t.Errorf("users shown: %q, want alice and the markup as text", users)
	}
	if used := eval[string](t, ctx, `document.querySelector('#memory-body tr[data-user="alice"] td:nth-child(2)').textContent`); !strings.Contains(used, " of ") {
		t.Errorf("alice's size reads %q, want used of cap", used)
	}
	if ran := eval[bool](t, ctx, `window.__xss !== undefined || document.querySelectorAll("#memory-body img").length > 0`); ran {
		t.Error("a user id was made into an element or ran script")
	}
	do(t, ctx, "delete alice's memory",
		chromedp.Click(chromedp.CSS(`#memory-body tr[data-user="alice"] button.danger`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#memory-body tr[data-user="alice"]`)),
	)
	if !d.seen("Delete the persistent memory of user alice") {
		t.Errorf("deleting asked no confirmation naming the user (dialogs %q)", d.msgs)
	}
	left, err := mem.List(t.Context(), "p1", s.agents[0], "", 0)
	if err != nil || len(left) != 1 || left[0].UserID != evilUser {
		t.Errorf("stores left: %d (%v), want only the other user's", len(left), err)
	}
}

// TestBrowserViewerSeesNoKeyActions: a viewer is offered only the agents
// and invocations views, none of the
// keys, secrets, memory and blocks views, and opening one by its address
// shows that the role lacks it, with no form and no button.
func TestBrowserViewerSeesNoKeyActions(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["viewer"])
	if shown := eval[[]string](t, ctx, `[...document.querySelectorAll("#nav a")].filter(a => a.offsetParent !== null).map(a => a.dataset.view)`); !slices.Equal(shown, []string{"agents", "invocations"}) {
		t.Errorf("a viewer's navigation shows %q, want only agents and invocations", shown)
	}
	for _, view := range []string{"keys", "secrets", "memory", "blocks"} {
		do(t, ctx, "open "+view,
			chromedp.Evaluate[chromedp.Void](`location.hash = "#`+view+`"`),
			chromedp.WaitVisible(chromedp.CSS(`#view-`+view+` .denied`)),
		)
		if n := eval[int](t, ctx, `[...document.querySelectorAll("#view-`+view+` button, #view-`+view+` form, #view-`+view+` input")].filter(e => e.offsetParent !== null).length`); n != 0 {
			t.Errorf("a viewer sees %d buttons, forms or fields in the %s view", n, view)
		}
	}
}

// TestBrowserKeysNarrowScreen: the keys view fits 390 px wide without
// sideways scrolling, and its actions stay reachable.
func TestBrowserKeysNarrowScreen(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	for _, width := range []int64{1280, 390} {
		do(t, ctx, "keys view",
			chromedp.EmulateViewport(width, 844),
			chromedp.Navigate(s.url+"/console#keys"),
			chromedp.WaitVisible(chromedp.CSS(`#keys-body tr`)),
			chromedp.Click(chromedp.CSS(`#key-new summary`)),
		)
		if over := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`); over {
			t.Errorf("at %d px the keys view scrolls sideways (%d px wide)", width, eval[int](t, ctx, `document.documentElement.scrollWidth`))
		}
		if ok := eval[bool](t, ctx, `[...document.querySelectorAll("#keys-body button")].every(b => b.offsetParent !== null) && document.querySelector("#key-form button[type=submit]").offsetParent !== null`); !ok {
			t.Errorf("at %d px a key's action or the create button is hidden", width)
		}
	}
}

// TestBrowserMemoryOff: on a server without persistent memory the
// memory view says so in the view, and offers nothing to delete.
func TestBrowserMemoryOff(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	do(t, ctx, "open the memory view",
		chromedp.Navigate(s.url+"/console#memory"),
		chromedp.WaitVisible(chromedp.ID("memory-off")),
	)
	if msg := eval[string](t, ctx, `document.getElementById("memory-off").textContent`); !strings.Contains(msg, "keeps no persistent memory") {
		t.Errorf("the memory view says %q, want that the server keeps no persistent memory", msg)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#memory-body button").length`); n != 0 {
		t.Errorf("%d delete buttons without memory", n)
	}
}

// TestBrowserRevokeOwnKey: an admin who revokes the key its session
// stands on is returned to the sign-in, told why, and the key is gone
// from the page; its secret panel is emptied when the view is left.
func TestBrowserRevokeOwnKey(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	acceptDialogs(t, ctx)
	signIn(t, ctx, s, s.keys["admin"])
	own, err := apikey.Parse(s.keys["admin"])
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "rotate another key, then leave the view with its secret shown",
		chromedp.Navigate(s.url+"/console#keys"),
		chromedp.WaitVisible(chromedp.CSS(`#keys-body tr`)),
		chromedp.Click(chromedp.CSS(`#keys-body tr:not([data-key-id="`+own.ID+`"]) button:not(.danger)`)),
		chromedp.WaitVisible(chromedp.ID("key-secret")),
	)
	rotated := eval[string](t, ctx, `document.getElementById("key-secret-value").value`)
	do(t, ctx, "to the agents view", chromedp.Click(chromedp.CSS(`#nav a[data-view="agents"]`)), chromedp.WaitVisible(chromedp.ID("view-agents")))
	if rotated == "" || inPage(t, ctx, rotated) {
		t.Errorf("after leaving the keys view the rotated key (%d bytes) is still in the page", len(rotated))
	}
	do(t, ctx, "revoke the own key",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="keys"]`)),
		chromedp.WaitVisible(chromedp.CSS(keyRow(own.ID))),
		// Found and clicked in one step: the table may be drawn again
		// (its page read once more) between a lookup and a click.
		chromedp.Poll[chromedp.Void](`(b => b ? (b.click(), true) : false)(document.querySelector('`+keyRow(own.ID)+` button.danger'))`),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
	)
	if msg := eval[string](t, ctx, `document.getElementById("status").textContent`); !strings.Contains(msg, "session has ended") {
		t.Errorf("status after revoking the own key: %q, want it to say the session ended", msg)
	}
	if got := apiStatus(t, s, s.keys["admin"], "GET", "/api/v1/agents"); got != http.StatusUnauthorized {
		t.Errorf("the revoked own key gets %d, want 401", got)
	}
}

// block strikes each client strikes times, which blocks it.
func block(t *testing.T, blocks *ratelimit.MemoryBlocks, strikes int, clients ...string) {
	t.Helper()
	for _, c := range clients {
		for range strikes {
			if _, err := blocks.Strike(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// memoryDeps gives a site persistent memory (into *mem): real encrypted
// stores on loop mounts, which need root.
func memoryDeps(t *testing.T, mem **memory.Manager) func(*api.Deps) {
	return func(d *api.Deps) {
		kr, ok := d.Keyring.(core.Sealer)
		if !ok {
			t.Fatal("the site's keyring cannot seal")
		}
		m, err := memory.New(memory.Options{Dir: filepath.Join(t.TempDir(), "memory"), Store: d.Store, Keyring: kr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		d.Memory = m
		*mem = m
	}
}
