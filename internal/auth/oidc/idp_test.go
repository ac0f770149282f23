package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// testKey is a signing key of the test identity provider.
type testKey struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func (k *testKey) public() crypto.PublicKey { return k.priv.Public() }

// Keys are generated once per test binary: RSA generation is slow under
// the race detector.
var (
	keysOnce sync.Once
	keyPool  map[string]*testKey
)

// mustKey returns the test key named kid: "rsa1", "rsa2", "rsa3" (RS256),
// "pss1" (PS256), "ec1", "ec2" (ES256) or "ed1" (EdDSA).
func mustKey(tb testing.TB, kid string) *testKey {
	tb.Helper()
	keysOnce.Do(func() {
		keyPool = map[string]*testKey{}
		for _, name := range []string{"rsa1", "rsa2", "rsa3"} {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keyPool[name] = &testKey{kid: name, method: jwt.SigningMethodRS256, priv: k}
		}
		pss, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keyPool["pss1"] = &testKey{kid: "pss1", method: jwt.SigningMethodPS256, priv: pss}
		for _, name := range []string{"ec1", "ec2"} {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			keyPool[name] = &testKey{kid: name, method: jwt.SigningMethodES256, priv: k}
		}
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		keyPool["ed1"] = &testKey{kid: "ed1", method: jwt.SigningMethodEdDSA, priv: ed}
	})
	k := keyPool[kid]
	if k == nil {
		tb.Fatalf("no test key %q", kid)
	}
	return k
}

// testIdP is a real identity provider in miniature, on loopback TLS: it
// serves a discovery document and a JWKS, and signs tokens.
type testIdP struct {
	tb     testing.TB
	srv    *httptest.Server
	issuer string

	mu           sync.Mutex
	published    []*testKey
	docIssuer    string        // the issuer the discovery document names
	status       int           // when not 0, every response has this status
	jwksOverride []byte        // when set, served instead of the JWKS
	hang         chan struct{} // when set, requests hang until it is closed

	discoveryHits atomic.Int32
	jwksHits      atomic.Int32
}

// newTestIdP starts an identity provider publishing the named keys.
func newTestIdP(tb testing.TB, kids ...string) *testIdP {
	tb.Helper()
	idp := &testIdP{tb: tb}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", idp.serveDiscovery)
	mux.HandleFunc("GET /jwks", idp.serveJWKS)
	idp.srv = httptest.NewTLSServer(mux)
	tb.Cleanup(idp.srv.Close)
	idp.issuer = idp.srv.URL
	idp.docIssuer = idp.issuer
	idp.publish(kids...)
	return idp
}

// publish replaces the published key set.
func (idp *testIdP) publish(kids ...string) {
	idp.tb.Helper()
	keys := make([]*testKey, len(kids))
	for i, kid := range kids {
		keys[i] = mustKey(idp.tb, kid)
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.published = keys
}

func (idp *testIdP) setStatus(code int) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.status = code
}

func (idp *testIdP) setDocIssuer(iss string) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.docIssuer = iss
}

func (idp *testIdP) setJWKSOverride(b []byte) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.jwksOverride = b
}

// hold makes every request wait until release is called (or the client
// gives up, or the test ends).
func (idp *testIdP) hold() (release func()) {
	hang := make(chan struct{})
	idp.mu.Lock()
	idp.hang = hang
	idp.mu.Unlock()
	release = sync.OnceFunc(func() { close(hang) })
	idp.tb.Cleanup(release) // runs before the server closes
	return release
}

func (idp *testIdP) wait(r *http.Request) {
	idp.mu.Lock()
	hang := idp.hang
	idp.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}
}

func (idp *testIdP) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	idp.discoveryHits.Add(1)
	idp.wait(r)
	idp.mu.Lock()
	status, docIssuer := idp.status, idp.docIssuer
	idp.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                docIssuer,
		"jwks_uri":                              idp.srv.URL + "/jwks",
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA", "PS256"},
	})
}

func (idp *testIdP) serveJWKS(w http.ResponseWriter, r *http.Request) {
	idp.jwksHits.Add(1)
	idp.wait(r)
	idp.mu.Lock()
	status, keys, override := idp.status, idp.published, idp.jwksOverride
	idp.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	if override != nil {
		w.Write(override)
		return
	}
	var set jwkset.JWKSMarshal
	set.Keys = []jwkset.JWKMarshal{}
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.method.Alg()), USE: jwkset.UseSig},
		})
		if err != nil {
			idp.tb.Errorf("marshal key %s: %v", k.kid, err)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	json.NewEncoder(w).Encode(set)
}

// t0 is the fixed "now" of the verifiers under test.
var t0 = time.Unix(1_900_000_000, 0)

// claims returns the claims of a valid token from idp, with edits applied:
// a nil value deletes a claim.
func (idp *testIdP) claims(edits map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss":              idp.issuer,
		"sub":              "alice",
		"aud":              []string{"runagent"},
		"exp":              t0.Add(time.Hour).Unix(),
		"iat":              t0.Add(-time.Minute).Unix(),
		"nbf":              t0.Add(-time.Minute).Unix(),
		"jti":              "token-1",
		"runagent_project": "proj1",
		"runagent_role":    "user",
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign returns a token with claims signed by the key named kid, which
// also names it in the header.
func (idp *testIdP) sign(kid string, claims jwt.MapClaims) string {
	idp.tb.Helper()
	k := mustKey(idp.tb, kid)
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		idp.tb.Fatalf("sign: %v", err)
	}
	return s
}

// token is sign with idp's valid claims after edits.
func (idp *testIdP) token(kid string, edits map[string]any) string {
	idp.tb.Helper()
	return idp.sign(kid, idp.claims(edits))
}

// issuerConfig is the config that accepts idp's tokens.
func (idp *testIdP) issuerConfig() IssuerConfig {
	return IssuerConfig{Issuer: idp.issuer, Audiences: []string{"runagent"}}
}

// mustVerifier returns a verifier for cfg that trusts the test TLS
// certificate, runs at t0 and is closed when the test ends.
func mustVerifier(tb testing.TB, cfg Config, opts ...Option) *Verifier {
	tb.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: testTLSConfig(tb)}}
	opts = append([]Option{
		WithHTTPClient(client),
		WithLogger(slog.New(slog.DiscardHandler)),
		WithClock(func() time.Time { return t0 }),
	}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := New(ctx, cfg, opts...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

// testTLSConfig trusts the certificate every httptest TLS server presents.
func testTLSConfig(tb testing.TB) *tls.Config {
	tb.Helper()
	tlsOnce.Do(func() {
		srv := httptest.NewTLSServer(http.NotFoundHandler())
		defer srv.Close()
		tlsConf = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	})
	return tlsConf.Clone()
}

var (
	tlsOnce sync.Once
	tlsConf *tls.Config
)
