package client

import (
	"encoding/json"
	"errors"
	"time"
)

// RunRequest is one call of an agent's entrypoint, for [Client.Run],
// [Client.Stream] and [Client.StreamSSE].
type RunRequest struct {
	// Tag is the entrypoint tag (entrypoint_tag). Streaming entrypoints
	// have tags ending in "_stream".
	Tag string
	// Args are the positional arguments (input_args); nil sends [].
	Args []any
	// Kwargs are the keyword arguments (input_kwargs); nil sends {}.
	Kwargs map[string]any
	// TimeoutSeconds, when positive, asks the server for a shorter
	// deadline than the agent's own (timeout_seconds). It cannot raise
	// the server's maximum.
	TimeoutSeconds float64
	// UserID selects the persistent folders of one user (user_id).
	UserID string
	// PersistentMemory asks for UserID's persistent folders
	// (persistent_memory), as RunAgent's clients send it.
	PersistentMemory bool
	// OnDisconnect is what a stream's run does when its client goes
	// (on_disconnect): [OnDisconnectCancel] (the server's default when
	// empty) or [OnDisconnectContinue], which lets it finish so that
	// [Client.Rejoin] can follow it again. Plain runs ignore it; see
	// [Client.RunAsync] for a run that outlives its request.
	OnDisconnect string
}

// Values of [RunRequest.OnDisconnect].
const (
	// OnDisconnectCancel stops a stream's run when its client goes.
	OnDisconnectCancel = "cancel"
	// OnDisconnectContinue lets a stream's run finish without its client;
	// its events are kept for a while (the server's --stream-keep).
	OnDisconnectContinue = "continue"
)

// wireRunRequest is RunRequest as sent.
type wireRunRequest struct {
	Action         string         `json:"action,omitempty"`
	EntrypointTag  string         `json:"entrypoint_tag"`
	InputArgs      []any          `json:"input_args"`
	InputKwargs    map[string]any `json:"input_kwargs"`
	TimeoutSeconds float64        `json:"timeout_seconds,omitempty"`
	UserID         string         `json:"user_id,omitempty"`
	Persistent     bool           `json:"persistent_memory,omitempty"`
	Async          bool           `json:"async_execution,omitempty"`
	OnDisconnect   string         `json:"on_disconnect,omitempty"`
}

func (r RunRequest) wire(action string) wireRunRequest {
	w := wireRunRequest{
		Action: action, EntrypointTag: r.Tag, InputArgs: r.Args, InputKwargs: r.Kwargs,
		TimeoutSeconds: r.TimeoutSeconds, UserID: r.UserID, Persistent: r.PersistentMemory,
		OnDisconnect: r.OnDisconnect,
	}
	if w.InputArgs == nil {
		w.InputArgs = []any{}
	}
	if w.InputKwargs == nil {
		w.InputKwargs = map[string]any{}
	}
	return w
}

// Result is the outcome of [Client.Run].
type Result struct {
	// Value is the JSON value the agent returned, decoded from the
	// structured string ("null" for None).
	Value json.RawMessage
	// InvocationID names the invocation; see [Client.Invocation].
	InvocationID string
	// RequestID identifies the request in the server's logs.
	RequestID string
}

// Decode unmarshals the result's value into v, as [json.Unmarshal].
func (r *Result) Decode(v any) error {
	if r == nil || len(r.Value) == 0 {
		return errors.New("decode result: no value")
	}
	return json.Unmarshal(r.Value, v)
}

// Health is the answer of GET /api/v1/health. Fields a server does not
// send are zero.
type Health struct {
	Status string `json:"status"` // "healthy", "unhealthy" or "draining"
	Server string `json:"server"`
	// Timestamp is the server's clock as sent (ISO 8601), kept as text
	// because RunAgent servers differ in whether they add a time zone.
	Timestamp     string  `json:"timestamp"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Version       string  `json:"version"`
	Agents        int     `json:"agents"`
	ActiveRuns    int     `json:"active_runs"`
}

// Entrypoint describes one callable of an agent.
type Entrypoint struct {
	Tag         string `json:"tag"`
	Kind        string `json:"kind"` // "python" or "webhook"
	File        string `json:"file,omitempty"`
	Module      string `json:"module,omitempty"`
	Streaming   bool   `json:"streaming"`
	Description string `json:"description,omitempty"`
}

// Architecture is an agent's name and entrypoints.
type Architecture struct {
	AgentID     string       `json:"agent_id"`
	AgentName   string       `json:"agent_name"`
	Framework   string       `json:"framework"`
	Version     string       `json:"version"`
	Entrypoints []Entrypoint `json:"entrypoints"`
}

// ListOptions selects invocations for [Client.Invocations]. Zero values
// leave the server's defaults (limit 50, offset 0, any status).
type ListOptions struct {
	Limit  int
	Offset int
	// Status is one of running, completed, failed, timeout, cancelled.
	Status string
}

// Invocation is the record of one call of an entrypoint.
type Invocation struct {
	ID      string `json:"invocation_id"`
	AgentID string `json:"agent_id"`
	// AgentName is the name of the agent the invocation ran, as the
	// server sends it on the invocation list and detail; empty for an
	// agent since deleted (or a server that does not send it).
	AgentName     string `json:"agent_name,omitempty"`
	AgentVersion  string `json:"agent_version"`
	EntrypointTag string `json:"entrypoint_tag"`
	Streaming     bool   `json:"streaming"`
	Transport     string `json:"transport"` // "rest", "websocket" or "sse"
	Status        string `json:"status"`
	Caller        string `json:"caller"`
	UserID        string `json:"user_id,omitempty"`
	// InputArgs is a JSON array, InputKwargs a JSON object.
	InputArgs   json.RawMessage `json:"input_args"`
	InputKwargs json.RawMessage `json:"input_kwargs"`
	// Output is the JSON result of a plain call, or the JSON array of a
	// stream's chunks; nil until completed.
	Output       json.RawMessage `json:"output,omitempty"`
	TotalChunks  int             `json:"total_chunks"`
	Logs         string          `json:"logs,omitempty"`
	ErrorCode    string          `json:"error_code,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	CompletedAt  *time.Time      `json:"completed_at,omitempty"`
	DurationMS   int64           `json:"duration_ms"`
}

// Ended reports whether the invocation has finished: any status but
// "running".
func (inv *Invocation) Ended() bool {
	return inv != nil && inv.Status != "" && inv.Status != "running"
}

// InvocationList is one page of an agent's invocations, newest first.
type InvocationList struct {
	AgentID     string       `json:"agent_id"`
	Invocations []Invocation `json:"invocations"`
	Count       int          `json:"count"`
	Limit       int          `json:"limit"`
	Offset      int          `json:"offset"`
}

// InvocationStats summarises an agent's invocations.
type InvocationStats struct {
	AgentID          string           `json:"agent_id"`
	TotalInvocations int64            `json:"total_invocations"`
	ByStatus         map[string]int64 `json:"by_status"`
	AvgDurationMS    float64          `json:"avg_duration_ms"`
	LastInvocationAt *time.Time       `json:"last_invocation_at"`
}

// Agent is a deployed agent and the version it serves.
type Agent struct {
	ID             string    `json:"agent_id"`
	Name           string    `json:"agent_name"`
	CurrentVersion string    `json:"current_version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// DeployResult is the outcome of [Client.Deploy].
type DeployResult struct {
	AgentID   string `json:"agent_id"`
	AgentName string `json:"agent_name"`
	// Version is the package's content hash, "sha256:…".
	Version string `json:"version"`
	// Created is false when this exact package was already deployed.
	Created     bool         `json:"created"`
	Entrypoints []Entrypoint `json:"entrypoints"`
	// Warnings are the server's remarks on the project's config.
	Warnings []string `json:"warnings"`
	// Build is what making the version ready took (nil from servers that
	// record no builds).
	Build *DeployBuild `json:"build,omitempty"`
}
