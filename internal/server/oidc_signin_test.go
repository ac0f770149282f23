package server

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/auth/oidc"
	"github.com/runagent/runagent/internal/auth/oidc/oidctest"
)

// TestOIDCConsoleSignIn: a console client in --oidc-config, with its
// secret in a file, signs a browser in through the issuer, end to end
// through the server.
func TestOIDCConsoleSignIn(t *testing.T) {
	// The redirect URL names the server's address, so take one first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	redirect := "http://" + addr + oidc.CallbackPath
	const secret = "s3cret-Value"
	idp := oidctest.New(t, oidctest.Config{ClientID: "console", ClientSecret: secret, RedirectURL: redirect})
	idp.SetUser(oidctest.User{Subject: "alice", Claims: map[string]any{"runagent_role": "admin", "runagent_project": "default"}})

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "oidc.json")
	doc := `{"issuers": [{"issuer": "` + idp.URL + `", "audiences": ["runagent"], "console": {"client_id": "console",
		"client_secret_file": "` + secretFile + `", "redirect_url": "` + redirect + `", "name": "Example SSO"}}]}`
	if err := os.WriteFile(cfgFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	withOwnerKey(t)
	s := serve(t, Config{Addr: addr, OIDCConfig: cfgFile})

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == "/console/" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	getBody := func(path string) (int, string, http.Header) {
		resp, err := client.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	status, body, _ := getBody("/api/v1/session/oidc")
	if status != http.StatusOK || !strings.Contains(body, `"name":"Example SSO"`) || strings.Contains(body, secret) {
		t.Fatalf("providers: %d %s", status, body)
	}
	status, body, h := getBody("/api/v1/session/oidc/" + oidc.ConsoleID(idp.URL) + "/start")
	if status != http.StatusFound || h.Get("Location") != "/console/" {
		t.Fatalf("sign-in: %d to %q %s, want a redirect to /console/", status, h.Get("Location"), body)
	}
	status, body, _ = getBody("/api/v1/whoami")
	var env struct {
		Data struct {
			Method, Role, Subject string
		} `json:"data"`
	}
	json.Unmarshal([]byte(body), &env)
	if status != http.StatusOK || env.Data.Method != "oidc" || env.Data.Role != "admin" || env.Data.Subject != idp.URL+"#alice" {
		t.Errorf("whoami: %d %s, want the issuer's alice, admin", status, body)
	}
}

func TestParseOIDCConsoleConfig(t *testing.T) {
	const base = `{"issuers": [{"issuer": "https://idp.example", "audiences": ["a"], "console": `
	for _, c := range []struct{ name, console, wantErr string }{
		{"public client", `{"client_id": "c", "redirect_url": "https://ra.example/api/v1/session/oidc/callback", "name": "SSO"}`, ""},
		{"secret in the config", `{"client_id": "c", "client_secret": "x", "redirect_url": "https://ra.example/api/v1/session/oidc/callback", "name": "SSO"}`, "unknown field"},
		{"misspelt", `{"clientid": "c"}`, "unknown field"},
	} {
		_, err := parseOIDCConfig([]byte(base + c.console + `}]}`))
		if (c.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.wantErr)
		}
	}
	// The values are the oidc package's to check, when the server opens.
	cfg, files, err := decodeOIDCConfig([]byte(base + `{"client_id": "c", "client_secret_file": "/run/secret", "redirect_url": "x", "name": "SSO"}}]}`))
	if err != nil || cfg.Issuers[0].Console == nil || cfg.Issuers[0].Console.ClientSecret != "" || files["https://idp.example"] != "/run/secret" {
		t.Errorf("decode: %+v %v %v, want the console client and its secret file, not read", cfg, files, err)
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, content, want, wantErr string }{
		{"trailing newline", "abc\n", "abc", ""},
		{"crlf", "abc\r\n", "abc", ""},
		{"empty", "\n", "", "is empty"},
		{"too long", strings.Repeat("x", maxSecretFile+1), "", "larger than"},
	} {
		p := filepath.Join(dir, c.name)
		os.WriteFile(p, []byte(c.content), 0o600)
		got, err := readSecretFile(p)
		if got != c.want || (c.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: %q, %v; want %q, %q", c.name, got, err, c.want, c.wantErr)
		}
		if err != nil && len(c.content) > 3 && strings.Contains(err.Error(), c.content[:4]) {
			t.Errorf("%s: error %q shows the content", c.name, err)
		}
	}
}
