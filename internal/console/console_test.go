package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestServesAssetsWithTheirHeaders(t *testing.T) {
	h := New()
	for _, tc := range []struct{ path, ctype, holds string }{
		{"/console", "text/html", `<script type="module" src="/console/app.js">`},
		{"/console/", "text/html", `id="sign-in-form"`},
		{"/console/app.js", "text/javascript", "import"},
		{"/console/api.js", "text/javascript", "X-CSRF-Token"},
		{"/console/agents.js", "text/javascript", "textContent"},
		{"/console/audit.js", "text/javascript", "/api/v1/audit/verify"},
		{"/console/events.js", "text/javascript", "/api/v1/events/counts"},
		{"/console/metrics.js", "text/javascript", "/api/v1/metrics"},
		{"/console/prom.js", "text/javascript", "export function parse"},
		{"/console/chart.js", "text/javascript", "createElementNS"},
		{"/console/dom.js", "text/javascript", "textContent"},
		{"/console/app.css", "text/css", "@media"},
	} {
		rec := serve(h, "GET", tc.path)
		hd := rec.Header()
		if rec.Code != http.StatusOK || !strings.HasPrefix(hd.Get("Content-Type"), tc.ctype) || !strings.Contains(rec.Body.String(), tc.holds) {
			t.Errorf("GET %s: %d %q, want 200 %s holding %q", tc.path, rec.Code, hd.Get("Content-Type"), tc.ctype, tc.holds)
		}
		if hd.Get("Content-Security-Policy") != CSP || hd.Get("X-Frame-Options") != "DENY" || hd.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: CSP %q, X-Frame-Options %q: want the console's CSP and DENY", tc.path, hd.Get("Content-Security-Policy"), hd.Get("X-Frame-Options"))
		}
		etag := hd.Get("ETag")
		if len(etag) != 34 || hd.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: ETag %q, Cache-Control %q: want a content hash and no-cache", tc.path, etag, hd.Get("Cache-Control"))
		}
		if rec := serve(h, "GET", tc.path, "If-None-Match", etag); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("GET %s with its ETag: %d, %d bytes; want 304, empty", tc.path, rec.Code, rec.Body.Len())
		}
	}
	if serve(h, "GET", "/console/app.js").Header().Get("ETag") == serve(h, "GET", "/console/api.js").Header().Get("ETag") {
		t.Error("two assets share an ETag")
	}
}

// TestNoInlineScriptOrStyle: the CSP forbids inline script and style, so
// the page must hold none (it would not run, and must not need to).
func TestNoInlineScriptOrStyle(t *testing.T) {
	page := serve(New(), "GET", "/console").Body.String()
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", " onsubmit=", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if n, m := strings.Count(page, "<script"), strings.Count(page, `<script type="module" src=`); n != m {
		t.Errorf("the page has %d script elements, %d of them external modules: want all external", n, m)
	}
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(CSP, want) || strings.Contains(CSP, "unsafe-inline") || strings.Contains(CSP, "unsafe-eval") {
			t.Errorf("CSP %q: want %s and nothing unsafe", CSP, want)
		}
	}
}

func TestRefuses(t *testing.T) {
	h := New()
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/console/nope.js", http.StatusNotFound},
		{"GET", "/console/assets/app.js", http.StatusNotFound},
		{"GET", "/console/index.html", http.StatusNotFound},
		{"GET", "/console/../go.mod", http.StatusNotFound},
		{"POST", "/console/", http.StatusMethodNotAllowed},
		{"DELETE", "/console/app.js", http.StatusMethodNotAllowed},
	} {
		rec := serve(h, tc.method, tc.path)
		if rec.Code != tc.want || rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s %s: %d, want %d with X-Frame-Options DENY", tc.method, tc.path, rec.Code, tc.want)
		}
	}
}

func TestMountLeavesOtherPathsToTheAPI(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Api", r.URL.Path)
	})
	h := Mount(api)
	for path, toAPI := range map[string]bool{
		"/console": false, "/console/": false, "/console/app.js": false,
		"/consoles": true, "/api/v1/agents": true, "/": true, "//console": true,
	} {
		rec := serve(h, "GET", path)
		if got := rec.Header().Get("X-Api") != ""; got != toAPI {
			t.Errorf("GET %s went to the API: %v, want %v", path, got, toAPI)
		}
	}
}
