package console_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
)

// namedKey makes a viewer key of project p1 named name, created at at.
func namedKey(t *testing.T, s *site, name string, at time.Time) {
	t.Helper()
	_, id, hash := apikey.New()
	p := &core.Principal{ID: "pr-" + id, ProjectID: "p1", Name: "viewer", Kind: core.PrincipalService, Role: core.RoleViewer, CreatedAt: at}
	if err := s.store.CreatePrincipal(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	if err := s.store.CreateAPIKey(t.Context(), &core.APIKey{ID: id, PrincipalID: p.ID, ProjectID: "p1", Name: name, Hash: hash, CreatedAt: at, ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserKeysPaged: the keys view asks the server for one page of
// keys at a time (?limit=20, then the server's cursor; never an offset)
// and pages through them with Next and Previous, by keyboard; a key name
// with markup on the second page is shown as text.
func TestBrowserKeysPaged(t *testing.T) {
	s := newSite(t)
	namedKey(t, s, xssKeyName, time.Now().Add(-time.Hour)) // the oldest: on the last page
	for range 22 {
		mustKey(t, s.store, "p1", core.RoleViewer)
	}
	keys, err := s.store.APIKeys(t.Context(), core.KeyFilter{ProjectID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	total := len(keys) // 23 and the site's
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	do(t, ctx, "open the keys view",
		chromedp.Navigate(s.url+"/console#keys"),
		chromedp.WaitVisible(chromedp.CSS(`#keys-body tr`)),
	)
	asked := func() []string {
		return eval[[]string](t, ctx, `performance.getEntriesByType("resource").map(e => e.name).filter(n => n.includes("/api/v1/keys"))`)
	}
	if a := asked(); len(a) == 0 || !strings.HasSuffix(a[len(a)-1], "/api/v1/keys?limit=20") {
		t.Errorf("the view asked for keys with %q, want one page (?limit=20)", a)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#keys-body tr").length`); n != 20 {
		t.Errorf("first page: %d rows, want 20", n)
	}
	if got := eval[string](t, ctx, `document.getElementById("keys-page").textContent`); got != "1–20" {
		t.Errorf("first page reads %q, want 1–20", got)
	}
	if !eval[bool](t, ctx, `!document.getElementById("keys-next").disabled && document.getElementById("keys-prev").disabled`) {
		t.Error("on the first page Next is disabled or Previous is not")
	}
	// Next, by keyboard.
	eval[bool](t, ctx, `document.getElementById("keys-next").focus(), true`)
	do(t, ctx, "next page", chromedp.KeyEvent("\r"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#keys-body tr").length === `+fmt.Sprint(total-20)))
	if a := asked(); !strings.Contains(a[len(a)-1], "limit=20&cursor=") || strings.Contains(a[len(a)-1], "offset") {
		t.Errorf("the second page was asked for with %q, want ?limit=20&cursor=…", a[len(a)-1])
	}
	if got, want := eval[string](t, ctx, `document.getElementById("keys-page").textContent`), fmt.Sprintf("21–%d", total); got != want {
		t.Errorf("second page reads %q, want %q", got, want)
	}
	if !eval[bool](t, ctx, `document.getElementById("keys-next").disabled && !document.getElementById("keys-prev").disabled`) {
		t.Error("on the last page Next is enabled or Previous is not")
	}
	names := eval[[]string](t, ctx, `[...document.querySelectorAll("#keys-body td.name")].map(td => td.textContent)`)
	if len(names) == 0 || names[len(names)-1] != xssKeyName {
		t.Errorf("last page's names %q, want the oldest, %q, last, as text", names, xssKeyName)
	}
	if eval[bool](t, ctx, `window.__xss !== undefined || document.querySelectorAll("#keys-body img").length > 0`) {
		t.Error("a key name was made into an element or ran script")
	}
	// Previous, by keyboard: the first page again.
	eval[bool](t, ctx, `document.getElementById("keys-prev").focus(), true`)
	do(t, ctx, "previous page", chromedp.KeyEvent("\r"),
		chromedp.Poll[chromedp.Void](`document.getElementById("keys-page").textContent === "1–20"`))
}

// TestBrowserBlocksPaged: the blocks view pages through the blocks by
// the server's cursor; lifting the last block of the last page shows the
// page before it.
func TestBrowserBlocksPaged(t *testing.T) {
	blocks := ratelimit.NewMemoryBlocks(api.BlockPolicy{After: 100, Window: time.Hour, For: time.Hour}, nil)
	s := newSite(t, func(d *api.Deps) { d.Blocks = blocks })
	for i := range 21 {
		block(t, blocks, 100, fmt.Sprintf("ip:198.51.100.%d", i+1))
	}
	ctx := browser(t)
	signIn(t, ctx, s, mustKey(t, s.store, "", core.RoleOwner))
	do(t, ctx, "open the blocks view",
		chromedp.Click(chromedp.CSS(`#nav a[data-view="blocks"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#blocks-body tr`)),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll("#blocks-body tr").length`); n != 20 {
		t.Errorf("first page: %d blocks, want 20", n)
	}
	do(t, ctx, "next page",
		chromedp.Click(chromedp.ID("blocks-next")),
		chromedp.Poll[chromedp.Void](`document.getElementById("blocks-page").textContent === "21–21"`))
	last := eval[string](t, ctx, `document.querySelector("#blocks-body tr").dataset.client`)
	do(t, ctx, "lift the only block of the last page",
		chromedp.Click(chromedp.CSS(`#blocks-body tr button`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("blocks-page").textContent === "1–20"`))
	if left, _ := blocks.Check(t.Context(), last); left != 0 {
		t.Errorf("%s is still blocked", last)
	}
	if !eval[bool](t, ctx, `document.getElementById("blocks-next").disabled && document.getElementById("blocks-prev").disabled`) {
		t.Error("with 20 blocks left on one page, Next or Previous is enabled")
	}
}
