package core

import (
	"context"
	"time"
)

// AgentStore keeps agents and their immutable versions.
type AgentStore interface {
	// PutAgentVersion stores v (idempotent for the same AgentID and Hash)
	// and makes it the agent's current version, creating the agent if it
	// is new. It reports whether the version was new.
	PutAgentVersion(ctx context.Context, v *AgentVersion) (created bool, err error)
	// Agent returns an agent by id, or an error wrapping ErrNotFound
	// (also for an agent deleted with its project).
	Agent(ctx context.Context, id string) (*Agent, error)
	// Agents lists all agents but deleted ones, ordered by id.
	Agents(ctx context.Context) ([]*Agent, error)
	// AgentsPage lists the agents f selects, but deleted ones, ordered
	// by id: one page when f.Limit is set, read from an index.
	AgentsPage(ctx context.Context, f AgentFilter) ([]*Agent, error)
	// AgentVersion returns one version with its package, or ErrNotFound.
	AgentVersion(ctx context.Context, agentID, hash string) (*AgentVersion, error)
	// AgentVersions lists an agent's versions, newest first, or wraps
	// ErrNotFound for an unknown or deleted agent.
	AgentVersions(ctx context.Context, agentID string) ([]*VersionInfo, error)
	// AgentVersionsPage lists one page of an agent's versions, newest
	// first, after f.After; an unknown or deleted agent wraps
	// ErrNotFound, an f.After the agent does not have is a
	// CodeValidation error on "cursor".
	AgentVersionsPage(ctx context.Context, agentID string, f VersionFilter) ([]*VersionInfo, error)
	// SetCurrentVersion makes a stored version of an agent its current
	// one; an unknown agent or version wraps ErrNotFound.
	SetCurrentVersion(ctx context.Context, agentID, hash string) error
	// DeleteAgent deletes an agent at t: it is marked deleted (its id
	// stays taken), its versions and secrets are removed, its
	// invocations kept. An unknown or deleted agent wraps ErrNotFound.
	DeleteAgent(ctx context.Context, id string, t time.Time) error
}

// AgentFilter selects agents; empty fields match everything.
type AgentFilter struct {
	// ProjectID keeps the agents of one project.
	ProjectID string
	// IDs, when not nil, keeps only these agents (an empty, non-nil
	// list: none), as a key narrowed to some agents sees them.
	IDs []string
	// Limit, when positive, returns at most that many agents (capped by
	// the store); 0 returns them all.
	Limit int
	// After, when set, lists the agents after this id in the listing's
	// order (by id): keyset paging, which reads only the page.
	After string
}

// VersionFilter selects a page of an agent's versions.
type VersionFilter struct {
	// Limit, when positive, returns at most that many versions (capped by
	// the store); 0 returns them all.
	Limit int
	// After, when set, is the hash of the last version of the page
	// before: the page holds the versions after it, newest first.
	After string
}

// durableCommitFollowsKey marks a context of WithDurableCommitFollows.
type durableCommitFollowsKey struct{}

// WithDurableCommitFollows returns ctx marked as a request that
// acknowledges nothing before a durable commit (its audit record) that
// starts after the invocation-record writes made with ctx have
// returned. A store whose durable commits flush everything committed
// before them (PostgreSQL's WAL is one sequence) may then commit those
// invocation records without waiting for them to reach disk: the later
// durable commit makes them durable before anyone is told. Mark nothing
// that is answered otherwise (streams, background runs, writes after the
// answer).
func WithDurableCommitFollows(ctx context.Context) context.Context {
	return context.WithValue(ctx, durableCommitFollowsKey{}, true)
}

// DurableCommitFollows reports whether ctx was marked by
// WithDurableCommitFollows.
func DurableCommitFollows(ctx context.Context) bool {
	v, _ := ctx.Value(durableCommitFollowsKey{}).(bool)
	return v
}

// InvocationStore records invocations.
type InvocationStore interface {
	// CreateInvocation inserts inv (status running). inv.ID must be set.
	CreateInvocation(ctx context.Context, inv *Invocation) error
	// FinishInvocation records the terminal state of inv: Status, Output,
	// Chunks, Logs, ErrorCode, ErrorMessage, CompletedAt, DurationMS.
	FinishInvocation(ctx context.Context, inv *Invocation) error
	// SetInvocationLogs records the captured logs of a finished
	// invocation (they exist only once its sandbox has ended, which may be
	// after the result was recorded). It wraps ErrNotFound for an unknown
	// id and is a CONFLICT for an invocation still running.
	SetInvocationLogs(ctx context.Context, id, logs string) error
	// Invocation returns one invocation, or an error wrapping ErrNotFound.
	Invocation(ctx context.Context, id string) (*Invocation, error)
	// Invocations lists invocations matching f, newest first.
	Invocations(ctx context.Context, f InvocationFilter) ([]*Invocation, error)
	// InvocationStats summarises the invocations of one agent.
	InvocationStats(ctx context.Context, agentID string) (*InvocationStats, error)
	// DeleteInvocationsBefore deletes finished invocations created before t,
	// with their webhook deliveries, in batches, and returns how many
	// invocations it deleted. With dryRun it only counts them.
	DeleteInvocationsBefore(ctx context.Context, t time.Time, dryRun bool) (int64, error)
}

// Store is everything the server persists.
type Store interface {
	AgentStore
	InvocationStore
	IdentityStore
	EventStore
	SecretStore
	BuildStore
	MemoryStore
	WebhookStore
	NodeStore
	SessionStore
	// Ping checks the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}
