package core

import (
	"context"
	"fmt"
	"time"
)

// A Node is one runagent server sharing the store with others (or alone,
// on SQLite). Every node registers at start, heartbeats while it runs,
// and is marked stopped when it shuts down gracefully; a node whose
// heartbeat stops is declared dead by whichever node notices first.
type Node struct {
	ID string `json:"node_id"`
	// Version is the runagent version the node runs.
	Version string `json:"version"`
	// Addr is the address it listens on, as it sees it (informational:
	// behind a load balancer or NAT it may not be reachable there).
	Addr        string    `json:"addr"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	// StoppedAt is when it shut down gracefully; nil while it runs.
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	// DeadAt is when it was declared dead for a missing heartbeat; nil
	// unless it was.
	DeadAt *time.Time `json:"dead_at,omitempty"`
	// Running is how many invocations are recorded as running on it
	// (filled by NodeStore.Nodes).
	Running int64 `json:"running_invocations"`
}

// NodeState is what is known of a node: alive, stopped or dead.
type NodeState string

// Node states.
const (
	NodeAlive   NodeState = "alive"
	NodeStopped NodeState = "stopped"
	NodeDead    NodeState = "dead"
)

// State is n's state as recorded: dead or stopped once marked so, alive
// otherwise (a node whose heartbeat is late but not yet declared dead is
// still alive).
func (n *Node) State() NodeState {
	switch {
	case n.DeadAt != nil:
		return NodeDead
	case n.StoppedAt != nil:
		return NodeStopped
	}
	return NodeAlive
}

// DeadMessage is the error message of the invocations of n that are
// failed because n was declared dead.
func (n *Node) DeadMessage() string {
	return fmt.Sprintf("node %s stopped answering at %s (its last heartbeat); the invocation's outcome is unknown",
		n.ID, n.HeartbeatAt.UTC().Format(time.RFC3339))
}

// DeadNode is a node SweepDeadNodes declared dead.
type DeadNode struct {
	Node
	// Failed is how many of its running invocations were marked failed.
	Failed int64
}

// MaxNodeIDLen is the longest node id.
const MaxNodeIDLen = 63

// CheckNodeID checks that id is a node id: 1 to MaxNodeIDLen characters,
// lower-case letters, digits, '.', '_' and '-', starting with a letter
// or a digit (a host name in lower case fits).
func CheckNodeID(id string) error {
	if id == "" {
		return &Error{Code: CodeValidation, Field: "node_id", Message: "node id is empty: use lower-case letters, digits, '.', '_' and '-', like web-1"}
	}
	if len(id) > MaxNodeIDLen {
		return &Error{Code: CodeValidation, Field: "node_id", Message: fmt.Sprintf("node id is %d characters long; the most is %d", len(id), MaxNodeIDLen)}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return &Error{Code: CodeValidation, Field: "node_id",
				Message: fmt.Sprintf("node id %q has %q at position %d: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", id, c, i+1)}
		}
	}
	return nil
}

// NodeStore keeps the registry of nodes sharing the store.
type NodeStore interface {
	// RegisterNode records n as started and alive: a new node, or one
	// coming back under its id (its StoppedAt and DeadAt are cleared).
	// A zero StartedAt is now; HeartbeatAt is set to StartedAt.
	RegisterNode(ctx context.Context, n *Node) error
	// NodeHeartbeat records that node id is alive at t. An unknown node
	// wraps ErrNotFound; a node marked stopped or dead is CodeConflict
	// (it must register again).
	NodeHeartbeat(ctx context.Context, id string, t time.Time) error
	// StopNode marks node id stopped at t and fails the invocations
	// still recorded as running on it with message, in one
	// transaction; it returns how many it failed. An unknown node wraps
	// ErrNotFound; a node already stopped or dead is left as it is.
	StopNode(ctx context.Context, id string, t time.Time, message string) (int64, error)
	// Nodes lists every node, ordered by id, each with the count of its
	// running invocations.
	Nodes(ctx context.Context) ([]*Node, error)
	// SweepDeadNodes declares dead, at t, every node neither stopped nor
	// dead whose last heartbeat is before cutoff, and fails its running
	// invocations with its DeadMessage, in one transaction: of several
	// nodes sweeping at once only one declares a node dead. It returns
	// the nodes it declared (none: an empty list), as they were before.
	SweepDeadNodes(ctx context.Context, cutoff, t time.Time) ([]*DeadNode, error)
	// FailNodeInvocations marks the invocations recorded as running on
	// node (left behind by its crash) as failed with message; with
	// unowned also those recorded without a node (before nodes were
	// recorded). It returns how many it marked.
	FailNodeInvocations(ctx context.Context, node string, unowned bool, message string) (int64, error)
}
