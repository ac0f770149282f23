package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestConsoleServed: the binary serves the web console under /console
// with the console's CSP, the API keeps its own, and a console session
// made with the owner's key works in place of the key, needs its CSRF
// token for a change, and opens nothing after sign-out. The session
// token never appears in the server's log.
func TestConsoleServed(t *testing.T) {
	s := startServer(t)
	res, err := http.Get(s.URL + "/console")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
		res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("ETag") == "" {
		t.Errorf("GET /console: %d, CSP %q, X-Frame-Options %q, ETag %q", res.StatusCode,
			res.Header.Get("Content-Security-Policy"), res.Header.Get("X-Frame-Options"), res.Header.Get("ETag"))
	}
	res, err = http.Get(s.URL + "/api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Content-Security-Policy"); got != "default-src 'none'; frame-ancestors 'none'" {
		t.Errorf("the API's CSP changed: %q", got)
	}

	call := func(method, path string, header map[string]string, cookie *http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, s.URL+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	res = call("POST", "/api/v1/session", map[string]string{"Authorization": "Bearer " + s.OwnerKey}, nil)
	var env struct {
		Data struct {
			Role    string `json:"role"`
			Session struct {
				CSRFToken string `json:"csrf_token"`
			} `json:"session"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&env); err != nil || res.StatusCode != http.StatusCreated || env.Data.Role != "owner" {
		t.Fatalf("sign in: %d %+v %v", res.StatusCode, env, err)
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "runagent_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %v: want HttpOnly, SameSite=Strict", cookie)
	}
	if res := call("GET", "/api/v1/keys", nil, cookie); res.StatusCode != http.StatusOK {
		t.Errorf("GET keys with the session cookie: %d, want 200", res.StatusCode)
	}
	if res := call("DELETE", "/api/v1/session", nil, cookie); res.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without the CSRF token: %d, want 403", res.StatusCode)
	}
	if res := call("DELETE", "/api/v1/session", map[string]string{"X-CSRF-Token": env.Data.Session.CSRFToken}, cookie); res.StatusCode != http.StatusOK {
		t.Errorf("sign-out: %d, want 200", res.StatusCode)
	}
	if res := call("GET", "/api/v1/keys", nil, cookie); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET keys after sign-out: %d, want 401", res.StatusCode)
	}
	if strings.Contains(s.stderr.String(), cookie.Value[len(cookie.Value)-20:]) {
		t.Error("the session token appears in the server's log")
	}
}
