// Package oidctest is an OpenID Connect issuer on loopback for tests of
// the console's sign-in. It stands in for a real identity provider (none
// can run here) and is strict where one is: it serves discovery and a
// JWKS, and an authorization endpoint that approves its configured user
// at once, remembering the PKCE code challenge (S256 only); its token
// endpoint checks the client, the redirect URI, that the code is used
// once, and the code verifier against the challenge, and answers an
// ES256-signed JWT access token (with the claims the test sets, such as
// runagent_role) and an ID token carrying the nonce.
//
// (github.com/oauth2-proxy/mockoidc was considered: it checks PKCE only
// when the authorization request carried a challenge, requires a client
// secret, and puts no custom claims in its access tokens, so it cannot
// issue a role.)
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config configures an Issuer.
type Config struct {
	// ClientID is the only client; ClientSecret its secret ("" for a
	// public client).
	ClientID, ClientSecret string
	// RedirectURL is the only redirect URI registered.
	RedirectURL string
	// Audience is the access tokens' aud (default "runagent").
	Audience string
	// Localhost names the issuer http://localhost:port instead of
	// http://127.0.0.1:port: another site than a server on 127.0.0.1,
	// so a browser treats the sign-in's redirects as cross-site.
	Localhost bool
}

// User is who the authorization endpoint signs in.
type User struct {
	Subject string
	// Claims are added to the access token (runagent_role, ...).
	Claims map[string]any
	// Deny makes the authorization endpoint answer error=access_denied.
	Deny bool
}

// Issuer is a test OpenID Connect issuer. Its methods are safe for
// concurrent use.
type Issuer struct {
	URL string // the issuer identifier, http://127.0.0.1:port
	cfg Config
	key *ecdsa.PrivateKey
	srv *httptest.Server

	mu        sync.Mutex
	user      User
	ttl       time.Duration
	now       func() time.Time
	noIDToken bool
	badNonce  bool
	codes     map[string]grant
	authReqs  []url.Values
	tokenReqs []url.Values
}

type grant struct {
	challenge, redirect, nonce string
	user                       User
}

// New starts an Issuer on loopback, closed when the test ends.
func New(t testing.TB, cfg Config) *Issuer {
	t.Helper()
	if cfg.Audience == "" {
		cfg.Audience = "runagent"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{cfg: cfg, key: key, ttl: time.Hour, now: time.Now, codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("GET /jwks", is.jwks)
	mux.HandleFunc("GET /authorize", is.authorize)
	mux.HandleFunc("POST /token", is.token)
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	if cfg.Localhost {
		is.URL = strings.Replace(is.URL, "127.0.0.1", "localhost", 1)
	}
	return is
}

// SetUser sets who the next sign-ins are.
func (is *Issuer) SetUser(u User) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.user = u
}

// SetTokenTTL sets the lifetime of the tokens issued (default 1 h);
// SetClock the issuer's clock.
func (is *Issuer) SetTokenTTL(d time.Duration) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.ttl = d
}

// SetClock sets the clock that dates the tokens (default time.Now).
func (is *Issuer) SetClock(now func() time.Time) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.now = now
}

// OmitIDToken makes the token endpoint answer no ID token; WrongNonce
// makes the ID token carry a nonce other than the one asked for.
func (is *Issuer) OmitIDToken(v bool) { is.mu.Lock(); is.noIDToken = v; is.mu.Unlock() }

// WrongNonce makes the ID token carry a nonce other than the one asked
// for.
func (is *Issuer) WrongNonce(v bool) { is.mu.Lock(); is.badNonce = v; is.mu.Unlock() }

// AuthRequests returns the query of every authorization request so far.
func (is *Issuer) AuthRequests() []url.Values {
	is.mu.Lock()
	defer is.mu.Unlock()
	return append([]url.Values(nil), is.authReqs...)
}

// TokenRequests returns the form of every token request so far (the
// client secret removed).
func (is *Issuer) TokenRequests() []url.Values {
	is.mu.Lock()
	defer is.mu.Unlock()
	return append([]url.Values(nil), is.tokenReqs...)
}

// Token returns an access token for u as the token endpoint would issue
// it, for tests that call the API with a bearer token.
func (is *Issuer) Token(t testing.TB, u User) string {
	t.Helper()
	is.mu.Lock()
	defer is.mu.Unlock()
	tok, err := is.accessToken(u)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (is *Issuer) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                is.URL,
		"jwks_uri":                              is.URL + "/jwks",
		"authorization_endpoint":                is.URL + "/authorize",
		"token_endpoint":                        is.URL + "/token",
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"subject_types_supported":               []string{"public"},
	})
}

func (is *Issuer) jwks(w http.ResponseWriter, r *http.Request) {
	b64 := base64.RawURLEncoding.EncodeToString
	pub := is.key.PublicKey
	x, y := make([]byte, 32), make([]byte, 32)
	pub.X.FillBytes(x)
	pub.Y.FillBytes(y)
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "test", "alg": "ES256", "use": "sig", "x": b64(x), "y": b64(y),
	}}})
}

// authorize approves the configured user at once and redirects back
// with a code, or with an error the way a real issuer does.
func (is *Issuer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	is.mu.Lock()
	is.authReqs = append(is.authReqs, q)
	u := is.user
	is.mu.Unlock()
	// Errors about the client or the redirect URI are shown, never
	// redirected (RFC 6749 4.1.2.1).
	if q.Get("client_id") != is.cfg.ClientID || q.Get("redirect_uri") != is.cfg.RedirectURL {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(is.cfg.RedirectURL)
	answer := url.Values{"state": {q.Get("state")}}
	switch {
	case q.Get("response_type") != "code":
		answer.Set("error", "unsupported_response_type")
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		answer.Set("error", "invalid_request")
		answer.Set("error_description", "PKCE with S256 is required")
	case u.Deny || u.Subject == "":
		answer.Set("error", "access_denied")
		answer.Set("error_description", "<script>alert('the user said no')</script>")
	default:
		code := randomString()
		is.mu.Lock()
		is.codes[code] = grant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), nonce: q.Get("nonce"), user: u}
		is.mu.Unlock()
		answer.Set("code", code)
	}
	back.RawQuery = answer.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token exchanges a code (RFC 6749 4.1.3, RFC 7636 4.6).
func (is *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	f := r.PostForm
	logged := maps.Clone(f)
	delete(logged, "client_secret")
	is.mu.Lock()
	is.tokenReqs = append(is.tokenReqs, logged)
	is.mu.Unlock()

	clientID, secret, basic := r.BasicAuth()
	if !basic {
		clientID, secret = f.Get("client_id"), f.Get("client_secret")
	}
	if clientID != is.cfg.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(is.cfg.ClientSecret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if f.Get("grant_type") != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	is.mu.Lock()
	g, ok := is.codes[f.Get("code")]
	delete(is.codes, f.Get("code")) // a code is used once, even when the rest is wrong
	is.mu.Unlock()
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case !ok || g.redirect != f.Get("redirect_uri"):
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	case subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1:
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	access, err := is.accessToken(g.user)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error")
		return
	}
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(is.ttl / time.Second)}
	if !is.noIDToken {
		nonce := g.nonce
		if is.badNonce {
			nonce = randomString()
		}
		now := is.now()
		id, err := is.sign(jwt.MapClaims{"iss": is.URL, "sub": g.user.Subject, "aud": is.cfg.ClientID,
			"nonce": nonce, "iat": now.Unix(), "exp": now.Add(is.ttl).Unix()})
		if err != nil {
			oauthError(w, http.StatusInternalServerError, "server_error")
			return
		}
		resp["id_token"] = id
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// accessToken signs an access token for u. Preconditions: is.mu is held.
func (is *Issuer) accessToken(u User) (string, error) {
	now := is.now()
	c := jwt.MapClaims{}
	maps.Copy(c, u.Claims)
	maps.Copy(c, jwt.MapClaims{"iss": is.URL, "sub": u.Subject, "aud": is.cfg.Audience,
		"iat": now.Unix(), "exp": now.Add(is.ttl).Unix(), "jti": randomString()})
	return is.sign(c)
}

func (is *Issuer) sign(c jwt.MapClaims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = "test"
	return t.SignedString(is.key)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func randomString() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
