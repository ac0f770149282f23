package oidc

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

func TestVerifyAcceptsEachAlgorithm(t *testing.T) {
	idp := newTestIdP(t, "rsa1", "pss1", "ec1", "ed1")
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{idp.issuerConfig()}})
	for _, kid := range []string{"rsa1", "pss1", "ec1", "ed1"} {
		t.Run(kid, func(t *testing.T) {
			raw := idp.token(kid, map[string]any{"runagent_project": "proj-" + kid, "runagent_role": "admin"})
			got, err := v.Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("Verify(%s token) = %v", kid, err)
			}
			want := Identity{
				Issuer:    idp.issuer,
				Subject:   "alice",
				Project:   "proj-" + kid,
				Role:      "admin",
				ExpiresAt: t0.Add(time.Hour),
				TokenID:   "token-1",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Verify(%s token) identity (-want +got):\n%s", kid, diff)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	idp := newTestIdP(t, "rsa1")
	ic := idp.issuerConfig()
	ic.Leeway = 30 * time.Second
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{ic}})
	for _, tc := range []struct {
		name  string
		edits map[string]any
		want  Reason // "" when accepted
	}{
		{"expired within leeway", map[string]any{"exp": t0.Add(-20 * time.Second).Unix()}, ""},
		{"expired beyond leeway", map[string]any{"exp": t0.Add(-40 * time.Second).Unix()}, ReasonExpired},
		{"nbf ahead within leeway", map[string]any{"nbf": t0.Add(20 * time.Second).Unix()}, ""},
		{"nbf ahead beyond leeway", map[string]any{"nbf": t0.Add(40 * time.Second).Unix()}, ReasonNotYetValid},
		{"iat ahead within leeway", map[string]any{"iat": t0.Add(20 * time.Second).Unix()}, ""},
		{"iat ahead beyond leeway", map[string]any{"iat": t0.Add(40 * time.Second).Unix()}, ReasonIssuedInFuture},
		{"no nbf, no iat", map[string]any{"nbf": nil, "iat": nil}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := idp.token("rsa1", tc.edits)
			_, err := v.Verify(t.Context(), raw)
			checkReason(t, raw, err, tc.want)
		})
	}
}

// checkReason fails t unless err is an *Error with reason want (or nil
// when want is empty), and unless its text and its causes' texts are free
// of the token and of each of its segments.
func checkReason(t *testing.T, raw string, err error, want Reason) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("Verify = %v, want success", err)
		}
		return
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("Verify = %v (%T), want an *Error with reason %q", err, err, want)
	}
	if e.Reason != want {
		t.Errorf("Verify reason = %q (%v), want %q", e.Reason, err, want)
	}
	for err := error(e); err != nil; err = errors.Unwrap(err) {
		text := err.Error() + fmt.Sprintf(" %+v %#v", err, err)
		if raw != "" && strings.Contains(text, raw) {
			t.Errorf("error text contains the token: %q", text)
		}
		for _, seg := range strings.Split(raw, ".") {
			if len(seg) >= 16 && strings.Contains(text, seg) {
				t.Errorf("error text contains a token segment: %q", text)
			}
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	idp := newTestIdP(t, "rsa1", "ec1")
	other := newTestIdP(t, "rsa2")
	rsOnly := newTestIdP(t, "rsa3", "ec2")
	rsOnlyConf := rsOnly.issuerConfig()
	rsOnlyConf.Algorithms = []string{"RS256"}
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{idp.issuerConfig(), other.issuerConfig(), rsOnlyConf}},
		WithClock(func() time.Time { return t0 }))

	valid := idp.token("rsa1", nil)
	parts := strings.Split(valid, ".")

	for _, tc := range []struct {
		name string
		raw  string
		want Reason
	}{
		{"expired", idp.token("rsa1", map[string]any{"exp": t0.Add(-2 * time.Minute).Unix()}), ReasonExpired},
		{"nbf in future", idp.token("rsa1", map[string]any{"nbf": t0.Add(2 * time.Minute).Unix()}), ReasonNotYetValid},
		{"iat in future", idp.token("rsa1", map[string]any{"iat": t0.Add(2 * time.Minute).Unix()}), ReasonIssuedInFuture},
		{"wrong audience", idp.token("rsa1", map[string]any{"aud": "someone-else"}), ReasonWrongAudience},
		{"no audience", idp.token("rsa1", map[string]any{"aud": nil}), ReasonMissingClaim},
		{"no exp", idp.token("rsa1", map[string]any{"exp": nil}), ReasonMissingClaim},
		{"exp is a string", idp.token("rsa1", map[string]any{"exp": "tomorrow"}), ReasonInvalidClaim},
		{"no sub", idp.token("rsa1", map[string]any{"sub": nil}), ReasonMissingClaim},
		{"empty sub", idp.token("rsa1", map[string]any{"sub": ""}), ReasonInvalidClaim},
		{"sub is a number", idp.token("rsa1", map[string]any{"sub": 42}), ReasonInvalidClaim},
		{"no iss", idp.token("rsa1", map[string]any{"iss": nil}), ReasonMissingClaim},
		{"no project", idp.token("rsa1", map[string]any{"runagent_project": nil}), ReasonMissingProject},
		{"project is a list", idp.token("rsa1", map[string]any{"runagent_project": []string{"a"}}), ReasonInvalidClaim},
		{"project has a newline", idp.token("rsa1", map[string]any{"runagent_project": "a\nb"}), ReasonInvalidClaim},
		{"no role", idp.token("rsa1", map[string]any{"runagent_role": nil}), ReasonMissingRole},
		{"unknown role", idp.token("rsa1", map[string]any{"runagent_role": "root"}), ReasonInvalidRole},
		{"jti is a number", idp.token("rsa1", map[string]any{"jti": 7}), ReasonInvalidClaim},
		{"unknown issuer", idp.token("rsa1", map[string]any{"iss": "https://evil.example"}), ReasonUnknownIssuer},
		{"issuer differs by a slash", idp.token("rsa1", map[string]any{"iss": idp.issuer + "/"}), ReasonUnknownIssuer},
		// A token naming the other issuer but signed with this issuer's
		// key: the other issuer's key set has no such key.
		{"wrong issuer's key", idp.sign("rsa1", idp.claims(map[string]any{"iss": other.issuer})), ReasonUnknownKey},
		// The same, naming a key ID the other issuer does publish.
		{"wrong issuer's key, borrowed kid", withKid(t, idp.sign("rsa1", idp.claims(map[string]any{"iss": other.issuer})), "rsa2"), ReasonBadSignature},
		{"alg none", unsigned(t, idp.claims(nil), ""), ReasonAlgNotAllowed},
		{"alg none with a signature", unsigned(t, idp.claims(nil), parts[2]), ReasonAlgNotAllowed},
		{"HS256 keyed with the public key PEM", hmacWithPublicKey(t, idp.claims(nil), "rsa1", "pem"), ReasonAlgNotAllowed},
		{"HS256 keyed with the public key DER", hmacWithPublicKey(t, idp.claims(nil), "rsa1", "der"), ReasonAlgNotAllowed},
		{"alg not in the issuer's list", rsOnly.token("ec2", nil), ReasonAlgNotAllowed},
		{"unrecognized alg", reheader(t, valid, map[string]any{"alg": "XS999", "kid": "rsa1"}), ReasonAlgNotAllowed},
		{"crit header", reheader(t, valid, map[string]any{"alg": "RS256", "kid": "rsa1", "crit": []string{"b64"}, "b64": false}), ReasonUnsupportedHeader},
		{"tampered payload", tamper(t, valid, map[string]any{"runagent_role": "owner"}), ReasonBadSignature},
		{"tampered header", reheader(t, valid, map[string]any{"alg": "RS256", "kid": "rsa1", "typ": "at+jwt"}), ReasonBadSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(idp.token("rsa1", map[string]any{"sub": "bob"}), ".")[2], ReasonBadSignature},
		{"altered signature", parts[0] + "." + parts[1] + "." + flipChar(parts[2], 10), ReasonBadSignature},
		{"empty signature", parts[0] + "." + parts[1] + ".", ReasonBadSignature},
		// The JWK's alg (RS256) differs from the token's (ES256).
		{"ES256 token naming an RSA key", withKid(t, idp.token("ec1", nil), "rsa1"), ReasonUnknownKey},
		{"unpublished key", idp.token("rsa3", nil), ReasonUnknownKey},
		{"unpublished key without kid", withoutKid(t, idp.token("rsa3", nil)), ReasonBadSignature},
		{"two segments", parts[0] + "." + parts[1], ReasonMalformed},
		{"four segments", valid + ".x", ReasonMalformed},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], ReasonMalformed},
		{"payload not JSON", parts[0] + "." + b64("not json") + "." + parts[2], ReasonMalformed},
		{"header not JSON", b64("{nope") + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"header without alg", b64(`{"kid":"rsa1"}`) + "." + parts[1] + "." + parts[2], ReasonMalformed},
		{"not base64 signature", parts[0] + "." + parts[1] + ".%%%", ReasonMalformed},
		{"empty", "", ReasonMalformed},
		{"api key", "ra_live_4f9c2b7e8d1a", ReasonMalformed},
		{"oversized", idp.token("rsa1", map[string]any{"pad": strings.Repeat("x", DefaultMaxTokenBytes)}), ReasonOversized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(t.Context(), tc.raw)
			checkReason(t, tc.raw, err, tc.want)
			if err != nil && id != (Identity{}) {
				t.Errorf("Verify returned identity %+v with error %v", id, err)
			}
		})
	}
	t.Run("valid token still verifies", func(t *testing.T) {
		if _, err := v.Verify(t.Context(), valid); err != nil {
			t.Fatalf("Verify(valid) = %v", err)
		}
	})
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encodeSegment(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// reheader replaces the header of raw, keeping payload and signature.
func reheader(t *testing.T, raw string, h map[string]any) string {
	parts := strings.Split(raw, ".")
	return encodeSegment(t, h) + "." + parts[1] + "." + parts[2]
}

// tamper edits the payload of raw, keeping header and signature.
func tamper(t *testing.T, raw string, edits map[string]any) string {
	parts := strings.Split(raw, ".")
	m := decodeSegment(t, parts[1])
	for k, v := range edits {
		m[k] = v
	}
	return parts[0] + "." + encodeSegment(t, m) + "." + parts[2]
}

func withKid(t *testing.T, raw, kid string) string {
	h := decodeSegment(t, strings.Split(raw, ".")[0])
	h["kid"] = kid
	return reheader(t, raw, h)
}

func withoutKid(t *testing.T, raw string) string {
	h := decodeSegment(t, strings.Split(raw, ".")[0])
	delete(h, "kid")
	return reheader(t, raw, h)
}

// unsigned returns an "alg":"none" token with the given signature segment.
func unsigned(t *testing.T, claims jwt.MapClaims, sig string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s + sig
}

// hmacWithPublicKey forges an HS256 token whose HMAC key is the issuer's
// public RSA key, the classic algorithm-confusion attack.
func hmacWithPublicKey(t *testing.T, claims jwt.MapClaims, kid, form string) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(mustKey(t, kid).public())
	if err != nil {
		t.Fatal(err)
	}
	secret := der
	if form == "pem" {
		secret = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyStaticProjectAndRole(t *testing.T) {
	idp := newTestIdP(t, "ec1")
	ic := idp.issuerConfig()
	ic.Project, ic.Role = "pinned", "viewer"
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{ic}})
	// The token's own claims are ignored, and not needed.
	for _, edits := range []map[string]any{
		{"runagent_project": "other", "runagent_role": "owner"},
		{"runagent_project": nil, "runagent_role": nil},
	} {
		got, err := v.Verify(t.Context(), idp.token("ec1", edits))
		if err != nil {
			t.Fatalf("Verify(%v) = %v", edits, err)
		}
		if got.Project != "pinned" || got.Role != "viewer" {
			t.Errorf("Verify(%v) = project %q role %q, want pinned viewer", edits, got.Project, got.Role)
		}
	}
}

func TestVerifyCustomClaimsAndRoles(t *testing.T) {
	idp := newTestIdP(t, "ed1")
	ic := idp.issuerConfig()
	ic.ProjectClaim, ic.RoleClaim = "tenant", "perm"
	ic.Audiences = []string{"api-a", "api-b"}
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{ic}, Roles: []string{"reader", "writer"}})
	raw := idp.token("ed1", map[string]any{"tenant": "t9", "perm": "writer", "aud": []string{"x", "api-b"}, "jti": nil})
	got, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if got.Project != "t9" || got.Role != "writer" || got.TokenID != "" {
		t.Errorf("Verify = %+v, want project t9, role writer, no token ID", got)
	}
	raw = idp.token("ed1", map[string]any{"tenant": "t9", "perm": "user", "aud": "api-a"})
	_, err = v.Verify(t.Context(), raw)
	checkReason(t, raw, err, ReasonInvalidRole)
}

// TestKeyRotation: the issuer publishes a new key and signs with it; a
// token with the unknown kid makes the verifier refetch the JWKS once.
// Tokens of the old key verify while it is published and fail once it is
// removed and the cache has been refreshed.
func TestKeyRotation(t *testing.T) {
	idp := newTestIdP(t, "rsa1")
	v := mustVerifier(t, Config{
		Issuers:                   []IssuerConfig{idp.issuerConfig()},
		RefreshInterval:           time.Hour, // no scheduled refresh during the test
		UnknownKeyRefreshInterval: time.Millisecond,
	})
	oldTok := idp.token("rsa1", nil)
	newTok := idp.token("rsa2", nil)
	mustVerify := func(step, raw string) {
		t.Helper()
		if _, err := v.Verify(t.Context(), raw); err != nil {
			t.Fatalf("%s: Verify = %v", step, err)
		}
	}
	fetches := func() int32 { return idp.jwksHits.Load() }

	mustVerify("before rotation, old key", oldTok)
	if got := fetches(); got != 1 {
		t.Fatalf("JWKS fetched %d times before rotation, want 1", got)
	}

	idp.publish("rsa1", "rsa2")
	mustVerify("after rotation, new key", newTok)
	if got := fetches(); got != 2 {
		t.Errorf("JWKS fetched %d times after the unknown kid, want 2", got)
	}
	mustVerify("after rotation, old key still published", oldTok)
	mustVerify("after rotation, new key again", newTok)
	if got := fetches(); got != 2 {
		t.Errorf("JWKS fetched %d times for known kids, want still 2", got)
	}

	idp.publish("rsa2")
	// Still cached: nothing has refreshed the set yet.
	mustVerify("old key removed, cache not yet refreshed", oldTok)

	// Something refreshes the cache (here a token with an unknown kid).
	time.Sleep(5 * time.Millisecond) // past the unknown-kid rate limit
	probe := idp.token("rsa3", nil)
	_, err := v.Verify(t.Context(), probe)
	checkReason(t, probe, err, ReasonUnknownKey)

	_, err = v.Verify(t.Context(), oldTok)
	checkReason(t, oldTok, err, ReasonUnknownKey)
	mustVerify("old key removed, new key", newTok)
}

// TestScheduledRefreshForgetsRemovedKey: the background refresh alone drops
// a key the issuer no longer publishes.
func TestScheduledRefreshForgetsRemovedKey(t *testing.T) {
	idp := newTestIdP(t, "ec1", "ec2")
	v := mustVerifier(t, Config{
		Issuers:                   []IssuerConfig{idp.issuerConfig()},
		RefreshInterval:           20 * time.Millisecond,
		UnknownKeyRefreshInterval: time.Hour, // only the schedule refreshes
	})
	oldTok := idp.token("ec1", nil)
	if _, err := v.Verify(t.Context(), oldTok); err != nil {
		t.Fatalf("Verify(old) = %v", err)
	}
	idp.publish("ec2")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Verify(t.Context(), oldTok)
		if err != nil {
			checkReason(t, oldTok, err, ReasonUnknownKey)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a token of the removed key still verifies after 10 s of 20 ms refreshes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := v.Verify(t.Context(), idp.token("ec2", nil)); err != nil {
		t.Fatalf("Verify(current key) = %v", err)
	}
}

// TestUnknownKidRefetchIsRateLimited: tokens with made-up key IDs cost the
// issuer at most one JWKS fetch per interval, and are rejected at once,
// even when the next refetch is allowed soon (sooner than the HTTP timeout,
// for which the library's own limiter would wait).
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	idp := newTestIdP(t, "rsa1")
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{idp.issuerConfig()}, UnknownKeyRefreshInterval: 5 * time.Second})
	base := idp.jwksHits.Load()
	signed := idp.token("rsa1", nil)
	for i := range 20 {
		raw := withKid(t, signed, fmt.Sprintf("made-up-%d", i))
		start := time.Now()
		_, err := v.Verify(t.Context(), raw)
		checkReason(t, raw, err, ReasonUnknownKey)
		if d := time.Since(start); d > time.Second {
			t.Errorf("token %d with an unknown kid took %v to reject", i, d)
		}
	}
	if got := idp.jwksHits.Load() - base; got > 1 {
		t.Errorf("20 unknown kids caused %d JWKS fetches, want at most 1", got)
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	idp := newTestIdP(t, "rsa1")
	idp.setDocIssuer(idp.issuer + "/")
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{idp.issuerConfig()}})
	raw := idp.token("rsa1", nil)
	_, err := v.Verify(t.Context(), raw)
	checkReason(t, raw, err, ReasonIssuerUnavailable)
	if e, _ := errors.AsType[*Error](err); e == nil || !strings.Contains(e.Detail, "names issuer") {
		t.Errorf("Verify = %v, want a detail about the issuer mismatch", err)
	}
	if got := idp.jwksHits.Load(); got != 0 {
		t.Errorf("JWKS fetched %d times despite the mismatch, want 0", got)
	}
}

func TestExplicitJWKSURLSkipsDiscovery(t *testing.T) {
	idp := newTestIdP(t, "ed1")
	ic := idp.issuerConfig()
	ic.JWKSURL = idp.srv.URL + "/jwks"
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{ic}})
	if _, err := v.Verify(t.Context(), idp.token("ed1", nil)); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if got := idp.discoveryHits.Load(); got != 0 {
		t.Errorf("discovery fetched %d times, want 0", got)
	}
}

// TestIssuerDownAtStart: New succeeds while the issuer is down; its tokens
// fail fast until the issuer is back and the retry interval has passed.
func TestIssuerDownAtStart(t *testing.T) {
	idp := newTestIdP(t, "rsa1")
	idp.setStatus(http.StatusServiceUnavailable)
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{idp.issuerConfig()}, RetryInterval: 50 * time.Millisecond})
	raw := idp.token("rsa1", nil)
	_, err := v.Verify(t.Context(), raw)
	checkReason(t, raw, err, ReasonIssuerUnavailable)

	idp.setStatus(0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Verify(t.Context(), raw)
		if err == nil {
			break
		}
		checkReason(t, raw, err, ReasonIssuerUnavailable)
		if time.Now().After(deadline) {
			t.Fatalf("Verify still fails 10 s after the issuer recovered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Once fetched, keys stay cached while the issuer is down again.
	idp.setStatus(http.StatusInternalServerError)
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Errorf("Verify with the issuer down again = %v, want the cached keys to verify", err)
	}
}

// TestResponseSizeIsCapped: a JWKS larger than MaxResponseBytes fails the
// fetch, whether the server declares its length or streams it chunked.
func TestResponseSizeIsCapped(t *testing.T) {
	for _, pad := range []int{1500, 8000} {
		t.Run(fmt.Sprint(pad), func(t *testing.T) {
			idp := newTestIdP(t, "rsa1")
			idp.setJWKSOverride([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", pad) + `"}`))
			v := mustVerifier(t, Config{Issuers: []IssuerConfig{idp.issuerConfig()}, MaxResponseBytes: 1024})
			raw := idp.token("rsa1", nil)
			_, err := v.Verify(t.Context(), raw)
			checkReason(t, raw, err, ReasonIssuerUnavailable)
			if e, _ := errors.AsType[*Error](err); e == nil || !strings.Contains(e.Detail, "limit") {
				t.Errorf("Verify = %v, want a detail about the size limit", err)
			}
		})
	}
}

func TestEmptyKeySetIsAFailedFetch(t *testing.T) {
	idp := newTestIdP(t)
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{idp.issuerConfig()}})
	raw := idp.token("rsa1", nil)
	_, err := v.Verify(t.Context(), raw)
	checkReason(t, raw, err, ReasonIssuerUnavailable)
}

func TestVerifyAfterClose(t *testing.T) {
	idp := newTestIdP(t, "rsa1")
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{idp.issuerConfig()}})
	raw := idp.token("rsa1", nil)
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	_, err := v.Verify(t.Context(), raw)
	checkReason(t, raw, err, ReasonClosed)
	if err := v.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestVerifyCanceledWhileFetching(t *testing.T) {
	idp := newTestIdP(t, "rsa1")
	idp.hold()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	// New returns when its context ends, with the fetch still running.
	v, err := New(ctx, Config{Issuers: []IssuerConfig{idp.issuerConfig()}, HTTPTimeout: 5 * time.Second},
		WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: testTLSConfig(t)}}),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	t.Cleanup(func() { v.Close() })

	raw := idp.token("rsa1", nil)
	vctx, vcancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer vcancel()
	start := time.Now()
	_, err = v.Verify(vctx, raw)
	checkReason(t, raw, err, ReasonCanceled)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Verify waited %v past its context", d)
	}
}

// flipChar changes the base64url character at i of s to another one.
func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// TestConcurrentFirstFetchIsShared: tokens arriving while an issuer's keys
// are being fetched wait for that one fetch instead of starting their own.
func TestConcurrentFirstFetchIsShared(t *testing.T) {
	idp := newTestIdP(t, "ec1")
	release := idp.hold()
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // New does not wait
	v, err := New(ctx, Config{Issuers: []IssuerConfig{idp.issuerConfig()}},
		WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: testTLSConfig(t)}}),
		WithLogger(slog.New(slog.DiscardHandler)), WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	t.Cleanup(func() { v.Close() })

	raw := idp.token("ec1", nil)
	errs := make(chan error)
	for range 20 {
		go func() {
			_, err := v.Verify(t.Context(), raw)
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the callers pile up
	release()
	for range 20 {
		if err := <-errs; err != nil {
			t.Errorf("Verify = %v", err)
		}
	}
	if d, j := idp.discoveryHits.Load(), idp.jwksHits.Load(); d != 1 || j != 1 {
		t.Errorf("20 concurrent first tokens made %d discovery and %d JWKS requests, want 1 and 1", d, j)
	}
}
