package core

import (
	"encoding/json"
	"strings"
	"time"
)

// StreamSuffix marks a streaming entrypoint tag (RunAgent convention).
const StreamSuffix = "_stream"

// EntrypointKind says how an entrypoint is executed.
type EntrypointKind string

// Entrypoint kinds.
const (
	KindPython  EntrypointKind = "python"
	KindWebhook EntrypointKind = "webhook"
)

// Entrypoint is one callable of an agent, addressed by its tag.
type Entrypoint struct {
	Tag  string         `json:"tag"`
	Kind EntrypointKind `json:"kind"`

	// Python kind: File is a slash-separated path inside the project and
	// Module a dotted attribute path resolved after importing File.
	File   string `json:"file,omitempty"`
	Module string `json:"module,omitempty"`

	// Webhook kind.
	WebhookURL     string  `json:"webhook_url,omitempty"`
	Method         string  `json:"method,omitempty"`
	TimeoutSeconds float64 `json:"timeout,omitempty"`

	// Extractor maps output field → JSONPath (informational).
	Extractor map[string]string `json:"extractor,omitempty"`
	// InputSchema is a JSON Schema for the call's input (project extension).
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
	// Description is informational.
	Description string `json:"description,omitempty"`
}

// Streaming reports whether the entrypoint yields chunks.
func (e Entrypoint) Streaming() bool { return strings.HasSuffix(e.Tag, StreamSuffix) }

// Resources are per-agent sandbox limits requested by the agent (project
// extension). Zero means "server default". The sandbox issue enforces them
// within administrator maxima.
type Resources struct {
	CPU            float64 `json:"cpu,omitempty"`             // cores (1.0 = 100 ms per 100 ms)
	MemoryMB       int64   `json:"memory_mb,omitempty"`       // MiB
	DiskMB         int64   `json:"disk_mb,omitempty"`         // MiB of writable scratch
	Processes      int64   `json:"processes,omitempty"`       // max tasks
	OpenFiles      int64   `json:"open_files,omitempty"`      // RLIMIT_NOFILE
	BandwidthMBps  float64 `json:"bandwidth_mbps,omitempty"`  // egress MB/s
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty"` // wall clock per invocation
	// NoProcessCreation denies fork, vfork, clone (except threads),
	// execve and execveat once the agent's function is called (importing
	// the agent's code may still create processes).
	NoProcessCreation bool `json:"no_process_creation,omitempty"`
	// ReusePerUser keeps an invocation's sandbox after it answers, for the
	// next invocation of the same agent version with the same user_id: its
	// interpreter, imported modules, globals and /tmp carry over. Sandboxes
	// are never shared between user_ids; invocations without a user_id
	// get a fresh sandbox as usual.
	ReusePerUser bool `json:"reuse_per_user,omitempty"`
	// PersistentMB caps each user's persistent memory of the agent (the
	// persistent_folders kept per user_id), in MiB; 0 is the server's
	// default, and more than the server's maximum is refused at the run.
	PersistentMB int64 `json:"persistent_mb,omitempty"`
}

// EgressRule allows connections to Host (exact or "*.suffix") on Ports
// (empty = 80 and 443).
type EgressRule struct {
	Host  string `json:"host"`
	Ports []int  `json:"ports,omitempty"`
}

// NetworkPolicy is the agent's requested network access (project extension).
type NetworkPolicy struct {
	Mode  string       `json:"mode,omitempty"` // "none" (default) or "egress"
	Allow []EgressRule `json:"allow,omitempty"`
}

// Network modes.
const (
	NetworkNone   = "none"
	NetworkEgress = "egress"
)

// Auth types from auth_settings.type.
const (
	AuthNone   = "none"
	AuthAPIKey = "api_key"
)

// AgentConfig is a validated runagent.config.json.
type AgentConfig struct {
	AgentName         string            `json:"agent_name"`
	Description       string            `json:"description,omitempty"`
	Framework         string            `json:"framework,omitempty"`
	Version           string            `json:"version,omitempty"`
	AgentID           string            `json:"agent_id"`
	Entrypoints       []Entrypoint      `json:"entrypoints"`
	EnvVars           map[string]string `json:"env_vars,omitempty"`
	AuthType          string            `json:"auth_type,omitempty"`
	PersistentFolders []string          `json:"persistent_folders,omitempty"`
	Resources         Resources         `json:"resources,omitempty"`
	// RateLimit caps the calls of this agent, from all callers together
	// (project extension); nil: only the callers' own limits apply.
	RateLimit *RateLimit    `json:"rate_limit,omitempty"`
	Network   NetworkPolicy `json:"network,omitempty"`
	// StorePayloads says whether invocation records keep inputs, outputs
	// and logs (encrypted at rest); nil means yes (project extension).
	StorePayloads *bool `json:"store_payloads,omitempty"`
	// Runtime is the Python version the agent asks for, as PythonVersion
	// returns it ("3.12"); "" takes the server's default interpreter.
	Runtime string `json:"runtime,omitempty"`
	// Webhook receives a signed POST when a run of the agent ends
	// (project extension); nil: none.
	Webhook *WebhookConfig `json:"webhook,omitempty"`
}

// WebhookConfig is an agent's completion webhook.
type WebhookConfig struct {
	URL string `json:"url"`
}

// PythonVersion reads how an agent or an operator names a Python —
// "3.12", "python3.12", "py3.12", "Python 3.12", "cpython3.12" — as its
// major.minor version ("3.12"). A name that asks for no version in
// particular ("python", "python3", "py3", "3") gives "". ok is false for
// anything else, a patch level ("3.12.1") or another major version
// ("python2") included.
func PythonVersion(name string) (version string, ok bool) {
	s := strings.ToLower(strings.TrimSpace(name))
	prefixed := false
	for _, p := range []string{"cpython", "python", "py"} {
		if rest, found := strings.CutPrefix(s, p); found {
			s, prefixed = strings.TrimPrefix(rest, " "), true
			break
		}
	}
	if (s == "" && prefixed) || s == "3" {
		return "", true
	}
	major, minor, found := strings.Cut(s, ".")
	if !found || !number(major, 1) || !number(minor, 3) || major != "3" {
		return "", false
	}
	return s, true
}

// number reports whether s is a decimal of at most n digits without a
// leading zero.
func number(s string, n int) bool {
	if s == "" || len(s) > n || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// KeepsPayloads reports whether the agent's invocation records keep
// their inputs, outputs and logs.
func (c *AgentConfig) KeepsPayloads() bool { return c.StorePayloads == nil || *c.StorePayloads }

// Entrypoint returns the entrypoint with the given tag.
func (c *AgentConfig) Entrypoint(tag string) (Entrypoint, bool) {
	for _, e := range c.Entrypoints {
		if e.Tag == tag {
			return e, true
		}
	}
	return Entrypoint{}, false
}

// Agent is a deployed agent and the version it currently serves.
type Agent struct {
	ID             string    `json:"agent_id"`
	ProjectID      string    `json:"project_id"`
	Name           string    `json:"agent_name"`
	CurrentVersion string    `json:"current_version"` // content hash
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// VersionInfo is an agent version as listed: what it is, without its
// config or package.
type VersionInfo struct {
	Hash      string    `json:"version"` // "sha256:<hex>"
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	Current   bool      `json:"current"`
}

// AgentVersion is one immutable, content-addressed upload of an agent
// project: its parsed config and its packaged files.
type AgentVersion struct {
	AgentID string `json:"agent_id"`
	// ProjectID is the project the agent is created in ("" is
	// DefaultProject); a version for an agent of another project is a
	// CONFLICT.
	ProjectID string      `json:"project_id"`
	Hash      string      `json:"hash"` // "sha256:<hex>" of Package
	Config    AgentConfig `json:"config"`
	Package   []byte      `json:"-"` // tar.gz produced by internal/bundle
	Size      int64       `json:"size"`
	CreatedAt time.Time   `json:"created_at"`
}
