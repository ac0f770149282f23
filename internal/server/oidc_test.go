package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// issuer is a real OIDC issuer on loopback: discovery, a JWKS with one
// ES256 key, and tokens signed with it.
type issuer struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		pub := key.PublicKey
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
			"x": b64(pub.X.FillBytes(make([]byte, 32))), "y": b64(pub.Y.FillBytes(make([]byte, 32))),
		}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) token(t *testing.T, aud, project, role string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": is.srv.URL, "sub": "alice", "aud": aud, "exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(), "runagent_project": project, "runagent_role": role,
	})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOIDCTokens: with --oidc-config, a server accepts access tokens of
// the configured issuer with the role and project they carry.
func TestOIDCTokens(t *testing.T) {
	is := newIssuer(t)
	cfgFile := filepath.Join(t.TempDir(), "oidc.json")
	doc := `{"issuers": [{"issuer": "` + is.srv.URL + `", "audiences": ["runagent"]}]}`
	if err := os.WriteFile(cfgFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	owner := withOwnerKey(t)
	s := serve(t, Config{OIDCConfig: cfgFile})

	viewer := is.token(t, "runagent", "default", "viewer")
	for _, c := range []struct {
		name, token, path string
		want              int
	}{
		{"viewer reads", viewer, "/api/v1/agents", http.StatusOK},
		{"viewer cannot manage keys", viewer, "/api/v1/keys", http.StatusForbidden},
		{"admin manages keys", is.token(t, "runagent", "default", "admin"), "/api/v1/keys", http.StatusOK},
		{"wrong audience", is.token(t, "other-app", "default", "admin"), "/api/v1/agents", http.StatusUnauthorized},
		{"tampered", viewer[:len(viewer)-4] + "AAAA", "/api/v1/agents", http.StatusUnauthorized},
		{"API keys still work", owner, "/api/v1/projects", http.StatusOK},
	} {
		if got := get(t, s.URL()+c.path, c.token); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestParseOIDCConfig(t *testing.T) {
	for _, c := range []struct{ name, doc, wantErr string }{
		{"ok", `{"issuers": [{"issuer": "https://idp.example", "audiences": ["a"], "leeway_seconds": 30}]}`, ""},
		{"misspelt field", `{"issuers": [{"issuer": "https://idp.example", "audience": ["a"]}]}`, "unknown field"},
		{"no issuers", `{"issuers": []}`, "no issuers"},
		{"trailing", `{"issuers": [{"issuer": "x"}]} {}`, "after the JSON"},
		{"leeway", `{"issuers": [{"issuer": "x", "leeway_seconds": 9999}]}`, "leeway_seconds"},
	} {
		_, err := parseOIDCConfig([]byte(c.doc))
		if (c.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.wantErr)
		}
	}
}

func FuzzParseOIDCConfig(f *testing.F) {
	f.Add([]byte(`{"issuers": [{"issuer": "https://idp.example", "audiences": ["a"]}]}`))
	f.Add([]byte(`{"issuers": [{"leeway_seconds": -1}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"issuers": [{"issuer": "https://idp.example", "audiences": ["a"], "console": {"client_id": "c", "client_secret_file": "/s", "redirect_url": "https://ra.example/api/v1/session/oidc/callback", "scopes": ["openid"], "name": "SSO"}}]}`))
	f.Add([]byte(`{"issuers": [{"console": null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parseOIDCConfig(b)
		if err == nil && len(cfg.Issuers) == 0 {
			t.Fatalf("accepted a config without issuers: %q", b)
		}
		if err != nil && !bytes.HasPrefix([]byte(err.Error()), []byte("oidc config:")) {
			t.Fatalf("error %q does not say it is about the oidc config", err)
		}
	})
}
