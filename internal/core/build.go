package core

import (
	"context"
	"time"
)

// BuildStatus is how making an agent version ready ended.
type BuildStatus string

// Build statuses.
const (
	BuildSucceeded BuildStatus = "succeeded"
	BuildFailed    BuildStatus = "failed"
)

// Valid reports whether s is a known status.
func (s BuildStatus) Valid() bool { return s == BuildSucceeded || s == BuildFailed }

// Build records one deploy's making of an agent version ready: its
// Python environment (built now, or cached) and its load check.
type Build struct {
	ID        string      `json:"build_id"`
	AgentID   string      `json:"agent_id"`
	ProjectID string      `json:"project_id"`
	Version   string      `json:"version"`
	EnvKey    string      `json:"environment,omitempty"` // "" without dependencies
	Cached    bool        `json:"cached"`                // the environment was built before
	Status    BuildStatus `json:"status"`
	Error     string      `json:"error,omitempty"` // why it failed, for its author
	// Log is the build's log: pip's output (index credentials removed)
	// and the load check's findings.
	Log        string    `json:"log,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// BuildStore keeps build records.
type BuildStore interface {
	// PutBuild inserts b; b.ID must be set and new (CONFLICT otherwise).
	PutBuild(ctx context.Context, b *Build) error
	// Build returns one build, or an error wrapping ErrNotFound.
	Build(ctx context.Context, id string) (*Build, error)
	// Builds lists an agent's builds, newest first, at most limit
	// (0: 20), without their logs.
	Builds(ctx context.Context, agentID string, limit int) ([]*Build, error)
}
