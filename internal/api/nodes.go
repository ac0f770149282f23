package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// nodeView is one node as GET /api/v1/nodes shows it.
type nodeView struct {
	ID      string         `json:"node_id"`
	State   core.NodeState `json:"state"`
	Version string         `json:"version"`
	Addr    string         `json:"addr"`
	// HeartbeatAge is how long ago its last heartbeat was, in seconds
	// (by this node's clock).
	HeartbeatAge float64 `json:"heartbeat_age_seconds"`
	HeartbeatAt  string  `json:"heartbeat_at"`
	StartedAt    string  `json:"started_at"`
	StoppedAt    *string `json:"stopped_at,omitempty"`
	DeadAt       *string `json:"dead_at,omitempty"`
	Running      int64   `json:"running_invocations"`
}

// listNodes serves GET /api/v1/nodes: every node that shares the store,
// alive, stopped or dead, with its running invocations.
func (h *opsHandlers) listNodes(w http.ResponseWriter, r *http.Request) error {
	nodes, err := h.store.Nodes(r.Context())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	now := h.now()
	out := make([]nodeView, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, nodeView{
			ID: n.ID, State: n.State(), Version: n.Version, Addr: n.Addr,
			HeartbeatAge: max(0, now.Sub(n.HeartbeatAt).Round(time.Millisecond).Seconds()),
			HeartbeatAt:  timestamp(n.HeartbeatAt), StartedAt: timestamp(n.StartedAt),
			StoppedAt: timestampPtr(n.StoppedAt), DeadAt: timestampPtr(n.DeadAt),
			Running: n.Running,
		})
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"nodes": out})
	return nil
}

func timestampPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timestamp(*t)
	return &s
}
