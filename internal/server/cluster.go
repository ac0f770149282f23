package server

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/runagent/runagent/internal/cluster"
	"github.com/runagent/runagent/internal/metrics"
)

// ClusterKeyPurpose names the MAC key of the cluster bus. Every node of a
// store derives the same key from the store's MAC root.
const ClusterKeyPurpose = "cluster bus"

// openCluster joins the bus between the nodes sharing the store, over
// the server's Redis client rc: cancels, stream rejoins and waits for
// runs another node holds go through it. It is closed with the server,
// before rc.
func (s *Server) openCluster(ctx context.Context, rc *redis.Client, m *metrics.Metrics) (*cluster.Bus, error) {
	bus, err := cluster.Open(ctx, rc, s.keyring.MACKey(ClusterKeyPurpose), cluster.Options{Log: s.log.With("component", "cluster")})
	if err != nil {
		return nil, fmt.Errorf("--redis-url: join the other nodes: %w", err)
	}
	s.cluster = bus
	s.closers = append(s.closers, func() { bus.Close() })
	m.Counter("runagent_cluster_messages_rejected_total", "Messages on the cluster bus dropped as forged, replayed, stale or malformed.",
		func() float64 { return float64(bus.Stats().Rejected) })
	m.Counter("runagent_cluster_end_announcements_dropped_total", "Run ends not announced on the cluster bus (Redis down or too many at once); waiters elsewhere poll the store.",
		func() float64 { return float64(bus.Stats().EndedDropped) })
	s.log.Info("cluster bus joined: cancels, stream rejoins and waits reach runs on other nodes", "node", bus.Node())
	return bus, nil
}
