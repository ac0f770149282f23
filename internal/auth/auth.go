// Package auth authenticates requests and answers whether an identity may
// do something: the network boundary of the security model.
//
// A request carries one credential, as a bearer token in the
// Authorization header (or, on WebSocket routes only, in the token query
// parameter, as RunAgent's SDKs send it). A token with the API key prefix
// is checked against the key store (form and checksum first, so garbage
// costs no lookup; then the hash in constant time, whether the principal
// or its project was deleted or the principal disabled, and the key's
// revocation and expiry); a token that looks like a JWT goes to the OIDC
// verifier when one is configured. Every failure is the same *Failure to the
// caller — missing, malformed, unknown, expired, revoked, wrong secret —
// with the precise reason kept for the security log, never the token. The
// HTTP layer answers them all with one 401 after the same minimum delay
// (FailureFloor), so their timing does not tell them apart either.
//
// Authorization is deny by default: an Identity grants a permission only
// if its role has it and its key's scopes (if any) include it, and an
// object only if it is in the identity's project (owners: any project)
// and, for a key limited to some agents, is one of them. A run that
// reaches an end user's state (persistent memory) acts for that user only
// if the identity may (MayActForUser): an API key for the users it was
// created with, an OIDC token for its own subject.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/auth/oidc"
	"github.com/runagent/runagent/internal/core"
)

// Methods by which an Identity was established.
const (
	MethodAPIKey    = "api_key"
	MethodOIDC      = "oidc"
	MethodAnonymous = "anonymous" // loopback development, agents with auth_settings none
)

// Identity is who a request acts as.
type Identity struct {
	Method      string
	PrincipalID string // API keys: the key's principal
	KeyID       string // API keys
	Subject     string // OIDC: issuer and subject
	ProjectID   string // "" for an owner
	Role        core.Role
	// Scopes narrow the role's permissions (nil: all of them).
	Scopes []core.Permission
	// Agents limit the identity to these agents (nil: every agent of
	// its project).
	Agents []string
	// RateLimit is the identity's own rate limit (its key's); nil means
	// its project's, else the server's default.
	RateLimit *core.RateLimit
	// RateLimitByOwner: an instance owner set RateLimit, so the project's
	// rate limit is not its ceiling.
	RateLimitByOwner bool
	// Expires is when the credential stops working (API keys); nil for
	// credentials renewed elsewhere (OIDC tokens) or none.
	Expires *time.Time
	// Users are the end users the identity may act for (see
	// MayActForUser): an API key's users entries; nil: nobody.
	Users []string
	// TokenSubject is an OIDC token's own subject (its sub claim, without
	// the issuer): the one end user the token acts for.
	TokenSubject string
	// Session is the id (hash) of the console session the request came
	// with; "" for a request with the credential itself.
	Session string
}

// MayActForUser reports whether id may act for the end user userID where
// a run reaches that user's state (persistent memory, a sandbox kept per
// user), not where a user_id only labels a run:
//
//   - an API key: if one of its users entries admits userID (exactly, by
//     a prefix ending in *, or *); a key without users acts for nobody;
//   - an OIDC token: for its own subject (sub claim) only;
//   - a server without authentication: anyone (its identity holds *);
//     a request without a credential on a server with authentication
//     (loopback development of auth-none agents): nobody.
//
// The empty user id is nobody's.
func (id Identity) MayActForUser(userID string) bool {
	if userID == "" {
		return false
	}
	if id.Method == MethodOIDC {
		return id.TokenSubject != "" && userID == id.TokenSubject
	}
	return core.UsersAdmit(id.Users, userID)
}

// UserEntries is the users list id holds when it hands out a key: its
// key's entries; for an OIDC token its subject as one exact entry, or
// none if the subject cannot be written as one (it holds a *, or is
// longer than a user id may be).
func (id Identity) UserEntries() []string {
	if id.Method == MethodOIDC {
		if core.CheckUserEntry(id.TokenSubject) != nil || strings.HasSuffix(id.TokenSubject, "*") {
			return nil
		}
		return []string{id.TokenSubject}
	}
	return id.Users
}

// Can reports whether id has permission p.
func (id Identity) Can(p core.Permission) bool {
	if !id.Role.Has(p) {
		return false
	}
	return id.Scopes == nil || slices.Contains(id.Scopes, p)
}

// Owner reports whether id is an instance owner.
func (id Identity) Owner() bool { return id.Role == core.RoleOwner }

// InProject reports whether id may act in project.
func (id Identity) InProject(project string) bool {
	if project == "" {
		project = core.DefaultProject
	}
	return id.Owner() || id.ProjectID == project
}

// CanAgent reports whether id may act on the agent agentID of project.
func (id Identity) CanAgent(project, agentID string) bool {
	if !id.InProject(project) {
		return false
	}
	return id.Agents == nil || slices.Contains(id.Agents, agentID)
}

// Caller names id in invocation records and logs.
func (id Identity) Caller() string {
	switch id.Method {
	case MethodAPIKey:
		return "key:" + id.KeyID
	case MethodOIDC:
		return "oidc:" + id.Subject
	}
	return "anonymous"
}

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity ctx carries.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Failure is an authentication failure. Callers show none of it: Reason
// is for the security log.
type Failure struct {
	Reason string // "missing", "malformed", "unknown key", "wrong secret", "project deleted", "principal disabled", "expired", "revoked", ...
	KeyID  string // when the credential named a key
}

func (f *Failure) Error() string { return "authentication failed: " + f.Reason }

// TokenClaims are what a verified OIDC token maps to.
type TokenClaims struct {
	Issuer, Subject, Project string
	Role                     core.Role
}

// TokenVerifier verifies JWT access tokens. Its errors are logged by
// their text, which must not hold the token.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (TokenClaims, error)
}

// OIDC adapts an oidc.Verifier.
func OIDC(v *oidc.Verifier) TokenVerifier { return oidcVerifier{v} }

type oidcVerifier struct{ v *oidc.Verifier }

func (o oidcVerifier) Verify(ctx context.Context, raw string) (TokenClaims, error) {
	id, err := o.v.Verify(ctx, raw)
	if err != nil {
		return TokenClaims{}, err
	}
	return TokenClaims{Issuer: id.Issuer, Subject: id.Subject, Project: id.Project, Role: core.Role(id.Role)}, nil
}

// FailureFloor is the least time an authentication failure takes to be
// answered, measured from the start of the check: the failure paths (no
// lookup, a lookup, a lookup and a hash) then take the same time.
const FailureFloor = 5 * time.Millisecond

// Authenticator checks credentials.
type Authenticator struct {
	store  core.IdentityStore
	tokens TokenVerifier // nil: JWTs are not accepted
	log    *slog.Logger
	now    func() time.Time

	// Last-use times are written at most once per touchEvery per key.
	mu      sync.Mutex
	touched map[string]time.Time
	// Keys and their principals read from the store, for cacheFor: two
	// store reads per request cost more than the rest of authentication.
	cache map[string]cachedKey
}

type cachedKey struct {
	key       *core.APIKey
	principal *core.Principal
	at        time.Time
}

// cacheFor is how long a key read from the store is trusted without
// reading it again: a revocation, or a principal or project disabled or
// deleted, on another node (or directly in the store) takes effect within
// it; through this node's API at once (Forget, ForgetAll).
const cacheFor = 2 * time.Second

// maxCached bounds the key cache.
const maxCached = 10000

// Config configures an Authenticator.
type Config struct {
	Store  core.IdentityStore
	Tokens TokenVerifier // optional
	// Log receives one line per failure with its reason (the security
	// log); never a credential.
	Log *slog.Logger
	Now func() time.Time
}

// New returns an Authenticator.
func New(cfg Config) *Authenticator {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authenticator{store: cfg.Store, tokens: cfg.Tokens, log: cfg.Log, now: cfg.Now, touched: map[string]time.Time{}, cache: map[string]cachedKey{}}
}

// touchEvery bounds how often a key's last use is written.
const touchEvery = time.Minute

// maxTouched bounds the memory of last-use writes.
const maxTouched = 10000

// Credential returns the bearer token of r: the Authorization header, or
// with allowQuery the token query parameter. ok is false if there is
// none; a malformed Authorization header is a credential that will fail.
func Credential(r *http.Request, allowQuery bool) (token string, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			return "\x00", true // present but not a bearer token
		}
		return strings.TrimSpace(tok), true
	}
	if allowQuery {
		if t := r.URL.Query().Get("token"); t != "" {
			return t, true
		}
	}
	return "", false
}

// Authenticate checks token, presented from client address ip. Errors
// are *Failure.
func (a *Authenticator) Authenticate(ctx context.Context, token, ip string) (Identity, error) {
	switch {
	case apikey.LooksLikeKey(token):
		return a.apiKey(ctx, token, ip)
	case a.tokens != nil && oidc.LooksLikeJWT(token):
		c, err := a.tokens.Verify(ctx, token)
		if err != nil {
			return Identity{}, &Failure{Reason: "token rejected: " + err.Error()}
		}
		return TokenIdentity(c)
	}
	return Identity{}, &Failure{Reason: "malformed"}
}

// TokenIdentity is the identity of an access token with the verified
// claims c: the same for a bearer token and for a console session signed
// in through the token's issuer. Errors are *Failure.
func TokenIdentity(c TokenClaims) (Identity, error) {
	if !c.Role.Valid() || (c.Role != core.RoleOwner && c.Project == "") {
		return Identity{}, &Failure{Reason: "token maps to no valid role and project"}
	}
	id := Identity{Method: MethodOIDC, Subject: c.Issuer + "#" + c.Subject, TokenSubject: c.Subject, ProjectID: c.Project, Role: c.Role}
	if c.Role == core.RoleOwner {
		id.ProjectID = ""
	}
	return id, nil
}

func (a *Authenticator) apiKey(ctx context.Context, token, ip string) (Identity, error) {
	k, err := apikey.Parse(token)
	if err != nil {
		return Identity{}, &Failure{Reason: "malformed"}
	}
	now := a.now()
	stored, p, err := a.lookup(ctx, k.ID, now)
	if err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return Identity{}, &Failure{Reason: "unknown key", KeyID: k.ID}
		}
		return Identity{}, &Failure{Reason: "key lookup failed: " + err.Error(), KeyID: k.ID}
	}
	if !k.Verify(stored.Hash) {
		return Identity{}, &Failure{Reason: "wrong secret", KeyID: k.ID}
	}
	return a.keyIdentity(ctx, stored, p, now, ip)
}

// KeyIdentity is the identity of API key keyID as Authenticate would
// establish it from the key's secret, without the secret: for a console
// session (package session) signed in with the key, which acts as the
// key does at each request. A revoked or expired key, or a disabled or
// deleted principal or project, fails as it would for Authenticate.
// Errors are *Failure.
func (a *Authenticator) KeyIdentity(ctx context.Context, keyID, ip string) (Identity, error) {
	now := a.now()
	stored, p, err := a.lookup(ctx, keyID, now)
	if err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return Identity{}, &Failure{Reason: "unknown key", KeyID: keyID}
		}
		return Identity{}, &Failure{Reason: "key lookup failed: " + err.Error(), KeyID: keyID}
	}
	return a.keyIdentity(ctx, stored, p, now, ip)
}

// keyIdentity checks the state of a key whose secret was checked (or
// that a session stands for) and returns its identity.
func (a *Authenticator) keyIdentity(ctx context.Context, stored *core.APIKey, p *core.Principal, now time.Time, ip string) (Identity, error) {
	// The principal before the key: deleting a principal or a project
	// also revokes its keys, and the log should say which it was.
	if p.DeletedAt != nil {
		return Identity{}, &Failure{Reason: a.deleted(ctx, p), KeyID: stored.ID}
	}
	if p.DisabledAt != nil {
		return Identity{}, &Failure{Reason: "principal disabled", KeyID: stored.ID}
	}
	if ok, why := stored.Usable(now); !ok {
		return Identity{}, &Failure{Reason: why, KeyID: stored.ID}
	}
	a.touch(stored.ID, now, ip)
	id := Identity{
		Method: MethodAPIKey, PrincipalID: p.ID, KeyID: stored.ID, ProjectID: p.ProjectID,
		Role: p.Role, Scopes: stored.Scopes, Agents: stored.Agents, RateLimit: stored.RateLimit,
		RateLimitByOwner: stored.RateLimitByOwner, Expires: stored.ExpiresAt, Users: stored.Users,
	}
	if len(id.Scopes) == 0 {
		id.Scopes = nil
	}
	if len(id.Agents) == 0 {
		id.Agents = nil
	}
	return id, nil
}

// deleted names why the deleted principal p's key is refused: its project
// was deleted (which deletes its principals), or it was. Only refused
// keys cost this read.
func (a *Authenticator) deleted(ctx context.Context, p *core.Principal) string {
	if p.ProjectID != "" {
		if _, err := a.store.Project(ctx, p.ProjectID); errors.Is(err, core.ErrNotFound) {
			return "project deleted"
		}
	}
	return "principal deleted"
}

// lookup returns key id and its principal, from the cache if they were
// read less than cacheFor ago.
func (a *Authenticator) lookup(ctx context.Context, id string, now time.Time) (*core.APIKey, *core.Principal, error) {
	a.mu.Lock()
	c, ok := a.cache[id]
	a.mu.Unlock()
	if ok && now.Sub(c.at) < cacheFor && now.Sub(c.at) >= 0 {
		return c.key, c.principal, nil
	}
	k, err := a.store.APIKey(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	p, err := a.store.Principal(ctx, k.PrincipalID)
	if err != nil {
		return nil, nil, fmt.Errorf("principal of key %s: %w", id, err)
	}
	a.mu.Lock()
	if len(a.cache) >= maxCached {
		clear(a.cache)
	}
	a.cache[id] = cachedKey{k, p, now}
	a.mu.Unlock()
	return k, p, nil
}

// Forget drops key id from the cache: call it when the key changes
// (revoked, rotated) so that this node sees the change at once.
func (a *Authenticator) Forget(id string) {
	a.mu.Lock()
	delete(a.cache, id)
	a.mu.Unlock()
}

// ForgetAll empties the cache: call it when principals or projects change
// (disabled, deleted), which touches keys that are not named, so that
// this node sees the change at once. Every key is read again on its next
// use.
func (a *Authenticator) ForgetAll() {
	a.mu.Lock()
	clear(a.cache)
	a.mu.Unlock()
}

// touch records a key's use, at most once per touchEvery, in the
// background: a failed write costs the caller nothing.
func (a *Authenticator) touch(id string, t time.Time, ip string) {
	a.mu.Lock()
	if last, ok := a.touched[id]; ok && t.Sub(last) < touchEvery {
		a.mu.Unlock()
		return
	}
	if len(a.touched) >= maxTouched {
		clear(a.touched)
	}
	a.touched[id] = t
	a.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.store.TouchAPIKey(ctx, id, t, ip); err != nil {
			a.log.Warn("record api key use", "key_id", id, "err", err)
		}
	}()
}

// LogFailure writes f to the security log with the request's context.
func (a *Authenticator) LogFailure(f *Failure, ip, method, path string) {
	a.log.Warn("authentication failed", "event", "auth_failure", "reason", f.Reason, "key_id", f.KeyID, "ip", ip, "method", method, "path", path)
}
