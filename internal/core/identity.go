package core

import (
	"context"
	"slices"
	"time"
)

// Permission is what a route needs: read (see agents, invocations), write
// (invoke), stream (invoke a streaming entrypoint), admin (manage a
// project: deploy agents, keys, principals).
type Permission string

// Permissions.
const (
	PermRead   Permission = "read"
	PermWrite  Permission = "write"
	PermStream Permission = "stream"
	PermAdmin  Permission = "admin"
)

// AllPermissions lists every permission, in order.
var AllPermissions = []Permission{PermRead, PermWrite, PermStream, PermAdmin}

// Valid reports whether p is a known permission.
func (p Permission) Valid() bool { return slices.Contains(AllPermissions, p) }

// Role is a principal's role in its project; RoleOwner is instance-wide.
type Role string

// Roles.
const (
	RoleViewer   Role = "viewer"   // read
	RoleUser     Role = "user"     // read, write and stream: invoking, whatever the transport
	RoleStreamer Role = "streamer" // read, stream: streaming entrypoints only
	RoleAdmin    Role = "admin"    // everything in its project
	RoleOwner    Role = "owner"    // everything, in every project, and projects themselves
)

// AllRoles lists every role, least privileged first.
var AllRoles = []Role{RoleViewer, RoleUser, RoleStreamer, RoleAdmin, RoleOwner}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(AllRoles, r) }

// Permissions returns what r may do in its project.
func (r Role) Permissions() []Permission {
	switch r {
	case RoleViewer:
		return []Permission{PermRead}
	case RoleUser:
		// Invoking is one right whatever the transport: RunAgent's SDKs
		// stream any entrypoint whose tag ends in _stream.
		return []Permission{PermRead, PermWrite, PermStream}
	case RoleStreamer:
		return []Permission{PermRead, PermStream}
	case RoleAdmin, RoleOwner:
		return AllPermissions
	}
	return nil
}

// Has reports whether r grants p.
func (r Role) Has(p Permission) bool { return slices.Contains(r.Permissions(), p) }

// DefaultProject is the project of agents deployed before projects
// existed, and of a fresh server's first deployments.
const DefaultProject = "default"

// Project is a tenant: agents, invocations, principals and keys belong to
// exactly one.
type Project struct {
	ID        string    `json:"project_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// RateLimit is the default rate limit of the project's principals
	// (a key's own limit wins); nil means the server's.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// Principal kinds.
const (
	PrincipalUser    = "user"
	PrincipalService = "service"
)

// Principal is someone or something that acts: a user or a service. An
// owner has no project (ProjectID ""); everyone else has one.
//
// A disabled principal's keys are refused until it is enabled again; a
// deleted one's are revoked. A deleted principal stays in the store as a
// tombstone, so that the audit trail's references to it keep their
// meaning and its id is never reused.
type Principal struct {
	ID         string     `json:"principal_id"`
	ProjectID  string     `json:"project_id,omitempty"`
	Name       string     `json:"name"`
	Kind       string     `json:"kind"`
	Role       Role       `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	DeletedAt  *time.Time `json:"deleted_at,omitempty"`
}

// PrincipalFilter selects principals; empty fields match everything.
// Role RoleOwner selects the owners (who have no project).
type PrincipalFilter struct {
	ProjectID string
	Role      Role
}

// ProjectContents is what deleting a project removes: the ids of its
// agents and principals not yet deleted and of their keys not yet
// revoked.
type ProjectContents struct {
	Agents     []string `json:"agents"`
	Principals []string `json:"principals"`
	Keys       []string `json:"keys"`
}

// APIKey is the stored side of an API key: its public id and the hash of
// its secret, never the secret.
type APIKey struct {
	ID          string `json:"key_id"`
	PrincipalID string `json:"principal_id"`
	ProjectID   string `json:"project_id,omitempty"` // the principal's
	Name        string `json:"name"`
	Hash        []byte `json:"-"`
	// Scopes narrow the holder's permissions; empty means all of them.
	Scopes []Permission `json:"scopes,omitempty"`
	// Agents limit the key to these agent ids; empty means every agent
	// of the project.
	Agents []string `json:"agents,omitempty"`
	// Users are the end users (a run's user_id) the key may act for
	// where that reaches a user's state, such as persistent memory:
	// exact ids, prefixes ending in *, or * for every user (see
	// CheckUserEntry). Empty means nobody, unlike Scopes and Agents.
	Users      []string   `json:"users,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	LastUsedIP string     `json:"last_used_ip,omitempty"`
	// ReplacedBy is the id of the key that rotated this one out; this one
	// then expires at the end of the overlap.
	ReplacedBy string `json:"replaced_by,omitempty"`
	// RateLimit overrides the server's rate limit for requests made with
	// this key; nil means the default.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// RateLimitByOwner records that an instance owner set RateLimit: only
	// then may it exceed the rate limit of the key's project, which is
	// otherwise its ceiling.
	RateLimitByOwner bool `json:"rate_limit_set_by_owner,omitempty"`
}

// RateLimit is a request rate: Requests per PeriodSeconds.
type RateLimit struct {
	Requests      int `json:"requests"`
	PeriodSeconds int `json:"period_seconds"`
}

// Valid reports whether r is a usable rate: 1 to 1,000,000 requests per
// 1 s to 1 day.
func (r RateLimit) Valid() bool {
	return r.Requests >= 1 && r.Requests <= 1_000_000 && r.PeriodSeconds >= 1 && r.PeriodSeconds <= 86400
}

// Within reports whether r allows no more than o: no higher a sustained
// rate, and no more requests at once (a limit's burst is its Requests).
func (r RateLimit) Within(o RateLimit) bool {
	// r.Requests/r.PeriodSeconds <= o.Requests/o.PeriodSeconds, in
	// integers (both at most 1e6 * 86400, far from overflowing int64).
	return int64(r.Requests)*int64(o.PeriodSeconds) <= int64(o.Requests)*int64(r.PeriodSeconds) &&
		r.Requests <= o.Requests
}

// Usable reports whether k may authenticate at t (and if not, why, for
// the security log).
func (k *APIKey) Usable(t time.Time) (ok bool, reason string) {
	switch {
	case k.RevokedAt != nil && !t.Before(*k.RevokedAt):
		return false, "revoked"
	case k.ExpiresAt != nil && !t.Before(*k.ExpiresAt):
		return false, "expired"
	}
	return true, ""
}

// KeyFilter selects API keys; empty fields match everything.
type KeyFilter struct {
	ProjectID   string
	PrincipalID string
	// Limit, when positive, returns at most that many keys (capped by
	// the store, as invocations' limits are); 0 returns them all.
	Limit int
	// After, when set, lists the keys after this one in the listing's
	// order (newest first): keyset paging, which reads only the page
	// from the store's index however many keys there are.
	After *KeyCursor
}

// KeyCursor is a place in a listing of API keys: the last key of a
// page, by its creation time and id.
type KeyCursor struct {
	CreatedAt time.Time
	ID        string
}

// IdentityStore keeps projects, principals and API keys.
type IdentityStore interface {
	// CreateProject inserts p; an existing id is a CONFLICT.
	CreateProject(ctx context.Context, p *Project) error
	// Project returns a project, or an error wrapping ErrNotFound (also
	// for a deleted one).
	Project(ctx context.Context, id string) (*Project, error)
	// Projects lists all projects but deleted ones, ordered by id.
	Projects(ctx context.Context) ([]*Project, error)
	// SetProjectRateLimit sets (nil: clears) a project's rate limit; an
	// unknown or deleted project wraps ErrNotFound.
	SetProjectRateLimit(ctx context.Context, id string, rl *RateLimit) error
	// DeleteProject deletes a project at t, in one transaction: its
	// agents (with their versions and secrets), its principals and their
	// keys (revoked), and reports what it removed. A project with agents
	// is deleted only with force; without, nothing changes and the error
	// is a CONFLICT whose Details are the ProjectContents it would
	// remove. DefaultProject cannot be deleted (CONFLICT); an unknown or
	// already deleted project wraps ErrNotFound. The id stays taken.
	DeleteProject(ctx context.Context, id string, force bool, t time.Time) (*ProjectContents, error)

	// CreatePrincipal inserts p; its project must exist (and not be
	// deleted) unless p is an owner (ProjectID "").
	CreatePrincipal(ctx context.Context, p *Principal) error
	// Principal returns a principal, or an error wrapping ErrNotFound.
	Principal(ctx context.Context, id string) (*Principal, error)
	// Principals lists the principals matching f, deleted ones included,
	// ordered by id.
	Principals(ctx context.Context, f PrincipalFilter) ([]*Principal, error)
	// CountPrincipals counts all principals (0 on a fresh server).
	CountPrincipals(ctx context.Context) (int, error)
	// DisablePrincipal disables a principal at t: its keys are refused
	// until EnablePrincipal. EnablePrincipal clears that. DeletePrincipal
	// deletes it at t and revokes its keys in one transaction, returning
	// the ids of the keys it revoked. Disabling or deleting again keeps
	// the first time. An unknown principal wraps ErrNotFound; disabling
	// or enabling a deleted one is a CONFLICT, and so is disabling or
	// deleting the last enabled owner with a usable key, so that the
	// instance always keeps one.
	DisablePrincipal(ctx context.Context, id string, t time.Time) error
	EnablePrincipal(ctx context.Context, id string) error
	DeletePrincipal(ctx context.Context, id string, t time.Time) (revokedKeys []string, err error)

	// CreateAPIKey inserts k; its principal must exist and not be deleted.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKey returns a key by id, or an error wrapping ErrNotFound.
	APIKey(ctx context.Context, id string) (*APIKey, error)
	// APIKeys lists keys matching f, newest first (ties: greater id
	// first), one page of them with f.Limit and f.After; a negative
	// Limit is a CodeValidation error.
	APIKeys(ctx context.Context, f KeyFilter) ([]*APIKey, error)
	// RevokeAPIKey marks a key revoked at t (if it is not already).
	RevokeAPIKey(ctx context.Context, id string, t time.Time) error
	// RotateAPIKey inserts next and marks old replaced by it, expiring at
	// oldExpires (the end of the overlap), in one transaction.
	RotateAPIKey(ctx context.Context, oldID string, oldExpires time.Time, next *APIKey) error
	// TouchAPIKey records that a key was used at t from ip.
	TouchAPIKey(ctx context.Context, id string, t time.Time, ip string) error
}
