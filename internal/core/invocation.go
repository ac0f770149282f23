package core

import (
	"encoding/json"
	"time"
)

// InvocationStatus is the lifecycle state of an invocation.
type InvocationStatus string

// Invocation states. Running is the only non-terminal state.
const (
	StatusRunning   InvocationStatus = "running"
	StatusCompleted InvocationStatus = "completed"
	StatusFailed    InvocationStatus = "failed"
	StatusTimeout   InvocationStatus = "timeout"
	StatusCancelled InvocationStatus = "cancelled"
)

// Valid reports whether s is a known status.
func (s InvocationStatus) Valid() bool {
	switch s {
	case StatusRunning, StatusCompleted, StatusFailed, StatusTimeout, StatusCancelled:
		return true
	}
	return false
}

// Invocation is the record of one call of an entrypoint.
type Invocation struct {
	ID            string           `json:"invocation_id"`
	AgentID       string           `json:"agent_id"`
	ProjectID     string           `json:"project_id"` // the agent's; "" is DefaultProject
	AgentVersion  string           `json:"agent_version"`
	EntrypointTag string           `json:"entrypoint_tag"`
	Streaming     bool             `json:"streaming"`
	Transport     string           `json:"transport"` // "rest", "websocket", "sse"
	Status        InvocationStatus `json:"status"`
	Caller        string           `json:"caller"` // principal, or client address until auth exists
	UserID        string           `json:"user_id,omitempty"`
	// NodeID is the node that runs it ("" for invocations recorded
	// before nodes were).
	NodeID string `json:"node_id,omitempty"`

	InputArgs   json.RawMessage `json:"input_args"`   // JSON array
	InputKwargs json.RawMessage `json:"input_kwargs"` // JSON object
	// Output is the JSON result of a plain call, or for a stream the JSON
	// array of its chunks. Nil until completed.
	Output json.RawMessage `json:"output,omitempty"`
	Chunks int             `json:"total_chunks"`
	// Logs is the agent's captured stdout/stderr, size-capped.
	Logs string `json:"logs,omitempty"`

	ErrorCode    string `json:"error_code,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`

	CreatedAt   time.Time  `json:"created_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	DurationMS  int64      `json:"duration_ms"`
}

// InvocationFilter selects invocations for listing. Zero values mean "any".
type InvocationFilter struct {
	AgentID   string
	ProjectID string
	// AgentIDs, when not nil, keeps only these agents (an empty, non-nil
	// list matches nothing): a caller limited to some agents.
	AgentIDs []string
	Status   InvocationStatus
	// UserID is the end user the run was for; Caller who made it.
	UserID string
	Caller string
	// Since and Until bound CreatedAt: Since <= CreatedAt < Until; zero
	// is unbounded.
	Since, Until time.Time
	Limit        int // capped by the store; 0 means the default (50)
	Offset       int
	// After, when set, lists the invocations after this one in the
	// listing's order (newest first): keyset paging, as fast on the
	// thousandth page as on the first. It is used with Offset 0.
	After *InvocationCursor
}

// InvocationCursor is a place in a listing of invocations: the last one
// of a page, by its creation time and id.
type InvocationCursor struct {
	CreatedAt time.Time
	ID        string
}

// InvocationStats summarises an agent's invocations.
type InvocationStats struct {
	AgentID       string                     `json:"agent_id"`
	Total         int64                      `json:"total_invocations"`
	ByStatus      map[InvocationStatus]int64 `json:"by_status"`
	AvgDurationMS float64                    `json:"avg_duration_ms"`
	LastAt        *time.Time                 `json:"last_invocation_at"`
}
