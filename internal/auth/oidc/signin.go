package oidc

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
)

// StateLifetime is how long a started sign-in may take at the issuer:
// the state cookie ends then.
const StateLifetime = 10 * time.Minute

// StateKeySize is the size of the key that seals state cookies.
const StateKeySize = 32

// maxStateCookie bounds an encoded state cookie; a longer one is refused
// before it is decoded.
const maxStateCookie = 1024

// stateAAD binds a sealed state to its use.
var stateAAD = []byte("runagent console oidc state v1")

// Provider is one issuer the console can sign in through, as the
// sign-in page lists it. It holds nothing secret.
type Provider struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// SignIn runs the web console's sign-in through OpenID Connect issuers:
// the authorization code flow with PKCE (RFC 7636, S256), a nonce, and
// a state that the browser carries in a sealed cookie between Start and
// Finish, so any node sharing the state key can finish what another
// started. The access token the issuer returns is verified by the same
// Verifier the API uses, so a session has exactly the authority an API
// call with that token would have. It is safe for concurrent use.
type SignIn struct {
	v       *Verifier
	aead    cipher.AEAD
	clients map[string]*signInClient // by ConsoleID
	list    []Provider

	mu        sync.Mutex
	endpoints map[string]oauth2.Endpoint // discovered, by ConsoleID
}

type signInClient struct {
	id string
	is *issuer
	cc ConsoleClient
}

// NewSignIn returns the sign-in of v's issuers that have a console
// client, with state cookies sealed by stateKey (StateKeySize bytes, the
// same on every node: derive it from the shared keyring). It has no
// providers when no issuer has a console client.
func NewSignIn(v *Verifier, stateKey []byte) (*SignIn, error) {
	if len(stateKey) != StateKeySize {
		return nil, fmt.Errorf("oidc sign-in: the state key is %d bytes, want %d", len(stateKey), StateKeySize)
	}
	block, err := aes.NewCipher(stateKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &SignIn{v: v, aead: aead, clients: map[string]*signInClient{}, endpoints: map[string]oauth2.Endpoint{}}
	for _, ic := range v.cfg.Issuers {
		if ic.Console == nil {
			continue
		}
		id := ConsoleID(ic.Issuer)
		s.clients[id] = &signInClient{id: id, is: v.issuers[ic.Issuer], cc: *ic.Console}
		s.list = append(s.list, Provider{ID: id, Name: ic.Console.Name})
	}
	return s, nil
}

// Providers lists the issuers the console can sign in through, in the
// config's order.
func (s *SignIn) Providers() []Provider { return slices.Clone(s.list) }

// Has reports whether issuer is configured for console sign-in (a
// session signed in through an issuer since removed is refused).
func (s *SignIn) Has(issuer string) bool {
	c := s.clients[ConsoleID(issuer)]
	return c != nil && c.is.cfg.Issuer == issuer
}

// SignInError is why a sign-in failed, for the security log and the
// audit trail. Its text holds no code, token, state or secret.
type SignInError struct {
	Reason string
	Err    error // the cause, for errors.Is/As; its text is not shown
}

func (e *SignInError) Error() string { return "oidc sign-in: " + e.Reason }
func (e *SignInError) Unwrap() error { return e.Err }

func signInFailed(err error, format string, args ...any) *SignInError {
	return &SignInError{Reason: fmt.Sprintf(format, args...), Err: err}
}

// ErrUnknownProvider is Start's error for an id no issuer has.
var ErrUnknownProvider = errors.New("no issuer is configured for console sign-in under that id")

// Start begins a sign-in through the issuer of id: it returns the URL
// to send the browser to and the sealed state for the state cookie,
// which Finish needs back.
func (s *SignIn) Start(ctx context.Context, id string) (authURL, sealedState string, err error) {
	c := s.clients[id]
	if c == nil {
		return "", "", ErrUnknownProvider
	}
	ep, err := s.endpoint(ctx, c)
	if err != nil {
		return "", "", err
	}
	st := state{ID: id, State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(),
		Expires: s.v.now().Add(StateLifetime).Unix()}
	sealed, err := s.seal(st)
	if err != nil {
		return "", "", err
	}
	authURL = c.config(ep).AuthCodeURL(st.State, oauth2.S256ChallengeOption(st.Verifier),
		oauth2.SetAuthURLParam("nonce", st.Nonce))
	return authURL, sealed, nil
}

// Finish completes a sign-in: sealedState is the state cookie Start's
// caller set, state and code the callback's parameters. It checks the
// state, exchanges the code with the PKCE verifier, verifies the access
// token as the API would (Verifier.Verify) and the ID token if the
// issuer returned one (signature, iss, aud = the client, nonce, and the
// same subject), and returns the access token's identity: a session made
// of it must end at its ExpiresAt. Every failure is a *SignInError.
func (s *SignIn) Finish(ctx context.Context, sealedState, state, code string) (Identity, error) {
	st, err := s.open(sealedState)
	if err != nil {
		return Identity{}, signInFailed(err, "state cookie: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(state), []byte(st.State)) != 1 {
		return Identity{}, signInFailed(nil, "state does not match the state cookie")
	}
	c := s.clients[st.ID]
	if c == nil {
		return Identity{}, signInFailed(nil, "the issuer is no longer configured for console sign-in")
	}
	iss := c.is.cfg.Issuer
	if code == "" || len(code) > maxStateCookie*4 {
		return Identity{}, signInFailed(nil, "the callback carries no usable code (issuer %s)", iss)
	}
	ep, err := s.endpoint(ctx, c)
	if err != nil {
		return Identity{}, signInFailed(err, "%v", err)
	}
	tok, err := c.config(ep).Exchange(context.WithValue(ctx, oauth2.HTTPClient, s.v.client), code,
		oauth2.VerifierOption(st.Verifier))
	if err != nil {
		if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			// Only the error code: the description may quote the code.
			return Identity{}, signInFailed(err, "code exchange refused by the issuer %s: status %d, error %q", iss, re.Response.StatusCode, safeCode(re.ErrorCode))
		}
		return Identity{}, signInFailed(err, "code exchange with the issuer %s failed", iss)
	}
	id, err := s.v.Verify(ctx, tok.AccessToken)
	if err != nil {
		return Identity{}, signInFailed(err, "access token: %v", err)
	}
	if id.Issuer != iss {
		return Identity{}, signInFailed(nil, "the access token is from issuer %s, not %s", id.Issuer, iss)
	}
	if raw, ok := tok.Extra("id_token").(string); ok && raw != "" {
		if err := s.verifyIDToken(ctx, c, raw, st.Nonce, id.Subject); err != nil {
			return Identity{}, signInFailed(err, "id token: %v", err)
		}
	}
	return id, nil
}

// safeCode returns an OAuth error code if it looks like one of the
// registered codes (lower-case letters and underscores), else a
// placeholder.
func safeCode(s string) string {
	if len(s) == 0 || len(s) > 64 {
		return "unrecognized"
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' {
			return "unrecognized"
		}
	}
	return s
}

// config is c's OAuth 2.0 client config at ep.
func (c *signInClient) config(ep oauth2.Endpoint) *oauth2.Config {
	// A public client names itself in the form; a confidential one
	// authenticates with HTTP Basic, which every server supports.
	ep.AuthStyle = oauth2.AuthStyleInParams
	if c.cc.ClientSecret != "" {
		ep.AuthStyle = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{ClientID: c.cc.ClientID, ClientSecret: c.cc.ClientSecret, Endpoint: ep,
		RedirectURL: c.cc.RedirectURL, Scopes: c.cc.Scopes}
}

// endpoint returns c's authorization and token endpoints from its
// issuer's discovery document, fetched once with the Verifier's bounded
// client. Both must be https (http on a loopback host).
func (s *SignIn) endpoint(ctx context.Context, c *signInClient) (oauth2.Endpoint, error) {
	s.mu.Lock()
	ep, ok := s.endpoints[c.id]
	s.mu.Unlock()
	if ok {
		return ep, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.v.cfg.HTTPTimeout)
	defer cancel()
	doc, err := s.v.discover(ctx, c.is.cfg.Issuer)
	if err != nil {
		return ep, fmt.Errorf("issuer %s: %w", c.is.cfg.Issuer, err)
	}
	for name, u := range map[string]string{"authorization_endpoint": doc.AuthorizationEndpoint, "token_endpoint": doc.TokenEndpoint} {
		if u == "" {
			return ep, fmt.Errorf("issuer %s: discovery: no %s", c.is.cfg.Issuer, name)
		}
		if err := checkURL(u); err != nil {
			return ep, fmt.Errorf("issuer %s: discovery: %s: %w", c.is.cfg.Issuer, name, err)
		}
	}
	ep = oauth2.Endpoint{AuthURL: doc.AuthorizationEndpoint, TokenURL: doc.TokenEndpoint}
	s.mu.Lock()
	s.endpoints[c.id] = ep
	s.mu.Unlock()
	return ep, nil
}

// verifyIDToken checks an ID token of c's issuer (OpenID Connect Core
// 3.1.3.7) with the issuer's cached key set: signature with an allowed
// algorithm, iss, aud holding the client (and azp naming it when there
// are several), exp, iat, the nonce of this sign-in, and the subject of
// the access token.
func (s *SignIn) verifyIDToken(ctx context.Context, c *signInClient, raw, nonce, subject string) error {
	ic := c.is.cfg
	if len(raw) > s.v.cfg.MaxTokenBytes || !LooksLikeJWT(raw) {
		return reject(ReasonMalformed, ic.Issuer, "not a compact JWS", nil)
	}
	ks, err := s.v.keys(ctx, c.is)
	if err != nil {
		return reject(ReasonIssuerUnavailable, ic.Issuer, err.Error(), err)
	}
	p := jwt.NewParser(jwt.WithValidMethods(slices.Clone(ic.Algorithms)), jwt.WithIssuer(ic.Issuer),
		jwt.WithAudience(c.cc.ClientID), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(ic.Leeway), jwt.WithTimeFunc(s.v.now), jwt.WithStrictDecoding())
	claims := jwt.MapClaims{}
	if _, err := p.ParseWithClaims(raw, claims, ks.keyfunc(ctx)); err != nil {
		return s.v.classify(ctx, ic.Issuer, claims, err)
	}
	got, _ := claims["nonce"].(string)
	if subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return reject(ReasonInvalidClaim, ic.Issuer, "nonce", nil)
	}
	if sub, _ := claims["sub"].(string); sub != subject {
		return reject(ReasonInvalidClaim, ic.Issuer, "sub differs from the access token's", nil)
	}
	if aud, _ := claims.GetAudience(); len(aud) > 1 {
		if azp, _ := claims["azp"].(string); azp != c.cc.ClientID {
			return reject(ReasonInvalidClaim, ic.Issuer, "azp", nil)
		}
	}
	return nil
}

// state is what a state cookie carries from Start to Finish.
type state struct {
	ID       string `json:"i"` // the provider's ConsoleID
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"` // the PKCE code verifier
	Expires  int64  `json:"e"` // Unix seconds
}

// random returns 256 random bits in base64url.
func random() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// seal encrypts st (AES-GCM, random nonce) into a cookie value.
func (s *SignIn) seal(st state) (string, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, stateAAD)), nil
}

// open decrypts and checks a state cookie: sealed with this key, well
// formed, and not expired.
func (s *SignIn) open(v string) (state, error) {
	var st state
	if v == "" {
		return st, errors.New("missing (the sign-in was not started in this browser, or took longer than 10 minutes)")
	}
	if len(v) > maxStateCookie {
		return st, errors.New("too long")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil {
		return st, errors.New("not base64url")
	}
	ns := s.aead.NonceSize()
	if len(b) < ns+s.aead.Overhead() {
		return st, errors.New("too short")
	}
	plain, err := s.aead.Open(nil, b[:ns], b[ns:], stateAAD)
	if err != nil {
		return st, errors.New("not sealed by this server")
	}
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return state{}, errors.New("malformed")
	}
	if st.ID == "" || st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return state{}, errors.New("incomplete")
	}
	if !s.v.now().Before(time.Unix(st.Expires, 0)) {
		return state{}, errors.New("expired (the sign-in took longer than 10 minutes)")
	}
	return st, nil
}

// StateCookieName is the name of the cookie that carries a sign-in's
// sealed state from Start to the callback.
const StateCookieName = "runagent_oidc_state"

// StateCookie is the cookie that carries sealed from Start to the
// callback: HttpOnly, limited to CallbackPath, ending with the state,
// Secure when served over TLS. It is SameSite=Lax, not Strict: the
// callback is a top-level navigation from the issuer's site, which is
// cross-site, and a Strict cookie would not be sent with it. Lax sends
// it with top-level GET navigations only, which is all the callback is.
func StateCookie(sealed string, secure bool) *http.Cookie {
	return &http.Cookie{Name: StateCookieName, Value: sealed, Path: CallbackPath,
		MaxAge: int(StateLifetime / time.Second), HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
}

// ClearStateCookie removes the state cookie: a state is used once.
func ClearStateCookie(secure bool) *http.Cookie {
	return &http.Cookie{Name: StateCookieName, Value: "", Path: CallbackPath, MaxAge: -1,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
}
