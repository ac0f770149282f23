package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Identity is who a verified token speaks for.
type Identity struct {
	Issuer    string    // the configured issuer, equal to the token's iss
	Subject   string    // the sub claim
	Project   string    // from the project claim, or the issuer's static project
	Role      string    // from the role claim, or the issuer's static role; one of the valid roles
	ExpiresAt time.Time // the exp claim
	TokenID   string    // the jti claim; empty when the token has none
}

// Verifier verifies JWT access tokens from the configured issuers. It is
// safe for concurrent use.
type Verifier struct {
	cfg     Config
	issuers map[string]*issuer
	roles   map[string]bool
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time

	// base is the lifetime of background work (key fetches and refreshes),
	// ended by Close; it is never a request's context.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // running key fetches
	mu     sync.Mutex     // guards closed
	closed bool
}

// An Option configures a Verifier.
type Option func(*Verifier)

// WithLogger sets where key fetch failures and refreshes are logged
// (default slog.Default()). Tokens are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(v *Verifier) {
		if l != nil {
			v.log = l
		}
	}
}

// WithHTTPClient sets the client for discovery and JWKS requests (for a
// private CA, or a proxy). Its transport is wrapped to cap response sizes;
// a zero Timeout becomes Config.HTTPTimeout.
func WithHTTPClient(c *http.Client) Option {
	return func(v *Verifier) { v.client = c }
}

// WithClock replaces time.Now for checking exp, nbf and iat, for tests.
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) {
		if now != nil {
			v.now = now
		}
	}
}

// New returns a Verifier for cfg. It fails only on an invalid config.
//
// New starts fetching every issuer's discovery document and key set and
// waits for those fetches until they end or ctx is done, whichever comes
// first; it does not fail when an issuer is unreachable. An issuer whose
// keys could not be fetched is tried again by the first token that names
// it after Config.RetryInterval, so the server can start while an
// identity provider is briefly down and its tokens are accepted once it is
// back. Close stops the background work.
func New(ctx context.Context, cfg Config, opts ...Option) (*Verifier, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("oidc config: %w", err)
	}
	v := &Verifier{
		cfg:     cfg,
		issuers: make(map[string]*issuer, len(cfg.Issuers)),
		roles:   make(map[string]bool, len(cfg.Roles)),
		log:     slog.Default(),
		now:     time.Now,
	}
	for _, o := range opts {
		o(v)
	}
	v.client = httpClient(v.client, cfg.HTTPTimeout, cfg.MaxResponseBytes)
	for _, r := range cfg.Roles {
		v.roles[r] = true
	}
	for _, ic := range cfg.Issuers {
		is := &issuer{cfg: ic, algs: map[string]bool{}}
		for _, a := range ic.Algorithms {
			is.algs[a] = true
		}
		is.parser = jwt.NewParser(
			jwt.WithValidMethods(slices.Clone(ic.Algorithms)),
			jwt.WithIssuer(ic.Issuer),
			jwt.WithAudience(ic.Audiences...),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(ic.Leeway),
			jwt.WithTimeFunc(v.now),
			jwt.WithStrictDecoding(),
		)
		v.issuers[ic.Issuer] = is
	}
	v.base, v.cancel = context.WithCancel(context.Background())

	var started []chan struct{}
	for _, is := range v.issuers {
		is.mu.Lock()
		if v.startFetch(is) {
			started = append(started, is.pending)
		}
		is.mu.Unlock()
	}
	for _, done := range started {
		select {
		case <-done:
		case <-ctx.Done():
			return v, nil
		}
	}
	return v, nil
}

// Close stops the background key refreshes and waits for running fetches
// to end. Verify fails with ReasonClosed afterwards. It always returns nil.
func (v *Verifier) Close() error {
	v.mu.Lock()
	already := v.closed
	v.closed = true
	v.mu.Unlock()
	if already {
		return nil
	}
	v.cancel()
	v.wg.Wait()
	for _, is := range v.issuers {
		is.mu.Lock()
		if is.stop != nil {
			is.stop()
		}
		is.mu.Unlock()
	}
	return nil
}

// LooksLikeJWT reports whether s has the shape of a compact JWS: three
// base64url segments separated by dots, the first of which encodes a JSON
// object (it starts with 'e', the encoding of '{'). It does no decoding
// and no I/O, so a caller can route a bearer credential to API-key or JWT
// verification cheaply. The signature segment may be empty, so that
// unsigned tokens reach Verify and are logged as such.
func LooksLikeJWT(s string) bool {
	if s == "" || s[0] != 'e' {
		return false
	}
	segments, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if !isBase64URL(s[i]) {
				return false
			}
			continue
		}
		segments++
		if segments > 3 || (segments < 3 && i == start) {
			return false
		}
		start = i + 1
	}
	return segments == 3
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// Verify checks raw, a JWT access token, and returns the identity it
// carries. Every failure is an *Error whose Reason says why.
//
// The unverified iss claim only selects the issuer whose keys to verify
// with; the signature is verified before any claim is trusted, and then
// iss, aud, exp (required), nbf and iat are checked, the two last with the
// issuer's leeway.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if v.base.Err() != nil {
		return Identity{}, reject(ReasonClosed, "", "", nil)
	}
	if len(raw) > v.cfg.MaxTokenBytes {
		return Identity{}, reject(ReasonOversized, "", fmt.Sprintf("%d bytes, limit %d", len(raw), v.cfg.MaxTokenBytes), nil)
	}
	if !LooksLikeJWT(raw) {
		return Identity{}, reject(ReasonMalformed, "", "not a compact JWS", nil)
	}
	h, err := peek(raw)
	if err != nil {
		return Identity{}, err
	}
	is := v.issuers[h.iss]
	if is == nil {
		return Identity{}, reject(ReasonUnknownIssuer, "", "", nil)
	}
	iss := is.cfg.Issuer
	if !is.algs[h.alg] {
		return Identity{}, reject(ReasonAlgNotAllowed, iss, algName(h.alg), nil)
	}
	if h.crit {
		return Identity{}, reject(ReasonUnsupportedHeader, iss, "crit", nil)
	}

	ks, err := v.keys(ctx, is)
	if err != nil {
		switch {
		case errors.Is(err, errClosed):
			return Identity{}, reject(ReasonClosed, iss, "", err)
		case ctx.Err() != nil:
			return Identity{}, reject(ReasonCanceled, iss, "", err)
		}
		return Identity{}, reject(ReasonIssuerUnavailable, iss, err.Error(), err)
	}

	claims := jwt.MapClaims{}
	if _, err := is.parser.ParseWithClaims(raw, claims, ks.keyfunc(ctx)); err != nil {
		return Identity{}, v.classify(ctx, iss, claims, err)
	}
	// Signature and registered claims are verified from here on.
	return v.identity(is, claims)
}

// header is what Verify reads from a token before verifying it.
type header struct {
	alg  string
	crit bool
	iss  string
}

// peek decodes the header and the iss claim of raw without verifying
// anything. Both are decoded into maps, as the jwt library decodes them, so
// that duplicate or differently-cased keys read the same in both places.
func peek(raw string) (header, error) {
	enc := base64.RawURLEncoding.Strict()
	hseg, rest, _ := strings.Cut(raw, ".")
	pseg, _, _ := strings.Cut(rest, ".")

	var h header
	hb, err := enc.DecodeString(hseg)
	if err != nil {
		return h, reject(ReasonMalformed, "", "header is not base64url", nil)
	}
	var hm map[string]any
	if err := json.Unmarshal(hb, &hm); err != nil {
		return h, reject(ReasonMalformed, "", "header is not a JSON object", nil)
	}
	alg, ok := hm["alg"].(string)
	if !ok {
		return h, reject(ReasonMalformed, "", "header has no alg", nil)
	}
	h.alg = alg
	_, h.crit = hm["crit"]

	pb, err := enc.DecodeString(pseg)
	if err != nil {
		return h, reject(ReasonMalformed, "", "payload is not base64url", nil)
	}
	var pm map[string]json.RawMessage
	if err := json.Unmarshal(pb, &pm); err != nil {
		return h, reject(ReasonMalformed, "", "payload is not a JSON object", nil)
	}
	rawIss, ok := pm["iss"]
	if !ok {
		return h, reject(ReasonMissingClaim, "", "iss", nil)
	}
	if err := json.Unmarshal(rawIss, &h.iss); err != nil {
		return h, reject(ReasonInvalidClaim, "", "iss", nil)
	}
	return h, nil
}

// algName returns alg if it is a JWS algorithm name (so it is safe to log),
// or a placeholder for anything an attacker made up.
func algName(alg string) string {
	switch alg {
	case "none", "HS256", "HS384", "HS512":
		return alg
	}
	if slices.Contains(asymmetricAlgs, alg) {
		return alg
	}
	return "unrecognized"
}

// classify turns an error of the jwt library into an *Error. claims holds
// what the parser decoded; it is read only to name a missing claim after
// the signature was found valid (the library checks claims only then).
func (v *Verifier) classify(ctx context.Context, iss string, claims jwt.MapClaims, err error) *Error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return reject(ReasonMalformed, iss, "", err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// The key lookup failed: no published key has the token's kid, or
		// the refetch that looked for it was rate-limited or failed.
		if ctx.Err() != nil {
			return reject(ReasonCanceled, iss, "", err)
		}
		detail := "no usable key for the token's kid"
		if errors.Is(err, jwkset.ErrKeyNotFound) {
			detail = "kid not in the issuer's key set"
		}
		return reject(ReasonUnknownKey, iss, detail, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return reject(ReasonBadSignature, iss, "", err)
	}
	// Claims validation errors, after a valid signature. The library joins
	// them all; report the most telling.
	for _, c := range []struct {
		target error
		reason Reason
	}{
		{jwt.ErrTokenExpired, ReasonExpired},
		{jwt.ErrTokenNotValidYet, ReasonNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, ReasonIssuedInFuture},
		{jwt.ErrTokenInvalidIssuer, ReasonWrongIssuer},
		{jwt.ErrTokenInvalidAudience, ReasonWrongAudience},
	} {
		if errors.Is(err, c.target) {
			return reject(c.reason, iss, "", err)
		}
	}
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		for _, name := range []string{"exp", "aud", "iss"} {
			if !hasClaim(claims, name) {
				return reject(ReasonMissingClaim, iss, name, err)
			}
		}
		return reject(ReasonMissingClaim, iss, "", err)
	}
	if errors.Is(err, jwt.ErrInvalidType) {
		for _, name := range []string{"exp", "nbf", "iat", "aud", "iss"} {
			if invalidClaim(claims, name) {
				return reject(ReasonInvalidClaim, iss, name, err)
			}
		}
		return reject(ReasonInvalidClaim, iss, "", err)
	}
	return reject(ReasonInvalidClaim, iss, "", err)
}

func hasClaim(claims jwt.MapClaims, name string) bool {
	switch name {
	case "exp":
		d, err := claims.GetExpirationTime()
		return d != nil || err != nil
	case "aud":
		a, err := claims.GetAudience()
		return len(a) > 0 && a[0] != "" || err != nil
	}
	_, ok := claims[name]
	return ok
}

func invalidClaim(claims jwt.MapClaims, name string) bool {
	var err error
	switch name {
	case "exp":
		_, err = claims.GetExpirationTime()
	case "nbf":
		_, err = claims.GetNotBefore()
	case "iat":
		_, err = claims.GetIssuedAt()
	case "aud":
		_, err = claims.GetAudience()
	case "iss":
		_, err = claims.GetIssuer()
	}
	return err != nil
}

// identity maps the verified claims of a token from is to an Identity.
func (v *Verifier) identity(is *issuer, claims jwt.MapClaims) (Identity, error) {
	iss := is.cfg.Issuer
	// The library checked iss against the selected issuer; check again here
	// so that the identity can never name an issuer other than the one
	// whose keys verified the token.
	if got, _ := claims["iss"].(string); got != iss {
		return Identity{}, reject(ReasonWrongIssuer, iss, "", nil)
	}
	id := Identity{Issuer: iss}

	sub, ok := claims["sub"]
	if !ok {
		return Identity{}, reject(ReasonMissingClaim, iss, "sub", nil)
	}
	if id.Subject, ok = sub.(string); !ok || !validText(id.Subject) {
		return Identity{}, reject(ReasonInvalidClaim, iss, "sub", nil)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return Identity{}, reject(ReasonMissingClaim, iss, "exp", err)
	}
	id.ExpiresAt = exp.Time
	if jti, ok := claims["jti"]; ok {
		if id.TokenID, ok = jti.(string); !ok || len(id.TokenID) > maxIdentityBytes {
			return Identity{}, reject(ReasonInvalidClaim, iss, "jti", nil)
		}
	}

	id.Project = is.cfg.Project
	if id.Project == "" {
		p, ok := claims[is.cfg.ProjectClaim]
		if !ok {
			return Identity{}, reject(ReasonMissingProject, iss, is.cfg.ProjectClaim, nil)
		}
		if id.Project, ok = p.(string); !ok || !validText(id.Project) {
			return Identity{}, reject(ReasonInvalidClaim, iss, is.cfg.ProjectClaim, nil)
		}
	}
	id.Role = is.cfg.Role
	if id.Role == "" {
		r, ok := claims[is.cfg.RoleClaim]
		if !ok {
			return Identity{}, reject(ReasonMissingRole, iss, is.cfg.RoleClaim, nil)
		}
		if id.Role, ok = r.(string); !ok || !v.roles[id.Role] {
			return Identity{}, reject(ReasonInvalidRole, iss, is.cfg.RoleClaim, nil)
		}
	}
	return id, nil
}
