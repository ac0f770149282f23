package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// DefaultNodeTimeout is how long a node's heartbeat may be missing before
// another node declares it dead and fails its runs. Nodes heartbeat every
// third of it, so a node that dies has its runs failed within about
// 1⅓ of it (20 s).
const DefaultNodeTimeout = 15 * time.Second

// MinNodeTimeout is the shortest --node-timeout: shorter, a busy node
// or a slow database round trip would get a live node declared dead.
const MinNodeTimeout = time.Second

// NodeIDName is the file in the data directory that keeps the node's id
// when --node-id does not give one.
const NodeIDName = "node-id"

// LoadNodeID returns the id of the node serving from dataDir: the one in
// <dataDir>/node-id, or, the first time, a new one (the host name and a
// random suffix, as web-1-3f9a2c) written there, so that the node keeps
// its id across restarts and fails its own leftover runs when it
// restarts.
func LoadNodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, NodeIDName)
	b, err := os.ReadFile(path)
	if err == nil {
		id, err := ParseNodeIDFile(b)
		if err != nil {
			return "", fmt.Errorf("%s: %w (fix or delete the file, or pass --node-id)", path, err)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the node id: %w", err)
	}
	host, _ := os.Hostname()
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", err
	}
	id := HostNodeID(host, hex.EncodeToString(suffix[:]))
	// O_EXCL: of two processes starting on one data directory, the
	// second reads the first's id.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadNodeID(dataDir)
	}
	if err != nil {
		return "", fmt.Errorf("keep the node id: %w", err)
	}
	if _, err := f.WriteString(id + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("keep the node id: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("keep the node id: %w", err)
	}
	return id, nil
}

// ParseNodeIDFile reads a node-id file's contents: one id, surrounding
// white space ignored.
func ParseNodeIDFile(b []byte) (string, error) {
	id := strings.TrimSpace(string(b))
	if err := core.CheckNodeID(id); err != nil {
		return "", err
	}
	return id, nil
}

// HostNodeID makes a node id of a host name and a suffix: the host name's
// first label, lower case, characters a node id cannot have turned into
// '-', shortened to leave room for "-suffix" ("node" for a host name with
// nothing left).
func HostNodeID(host, suffix string) string {
	host, _, _ = strings.Cut(strings.ToLower(host), ".")
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	name := strings.Trim(string(b), "-_")
	if room := core.MaxNodeIDLen - len(suffix) - 1; len(name) > room {
		name = strings.TrimRight(name[:max(room, 0)], "-_")
	}
	if name == "" {
		name = "node"
	}
	return name + "-" + suffix
}

// nodeBeat keeps this node in the registry: it heartbeats every third of
// the timeout and sweeps for nodes whose heartbeat is older than it.
type nodeBeat struct {
	store   Store
	trail   *audit.Log // nil: dead nodes are not audited (benchmarks)
	log     *slog.Logger
	node    core.Node
	timeout time.Duration
	now     func() time.Time

	// healthySince is when the heartbeats began to succeed without a
	// failure since (zero: the last one failed). Only the run's
	// goroutine uses it.
	healthySince time.Time

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// startNode fails what the store records as running on this node (left
// by its last run: with SQLite, where only one server uses the store,
// also what was recorded before nodes were), registers the node and
// starts its heartbeat.
func (s *Server) startNode(ctx context.Context) error {
	unowned := s.cfg.StoreURL == ""
	n, err := s.store.FailNodeInvocations(ctx, s.cfg.NodeID, unowned,
		fmt.Sprintf("the server stopped while the invocation was running (node %s restarted); its outcome is unknown", s.cfg.NodeID))
	if err != nil {
		return fmt.Errorf("close out interrupted invocations: %w", err)
	}
	if n > 0 {
		s.log.Warn("marked interrupted invocations as failed", "count", n, "node_id", s.cfg.NodeID)
	}
	nb := &nodeBeat{store: s.store, log: s.log.With("node_id", s.cfg.NodeID), timeout: s.cfg.NodeTimeout, now: time.Now,
		node: core.Node{ID: s.cfg.NodeID, Version: s.cfg.Version, Addr: s.Addr()}}
	if !s.cfg.noAudit {
		nb.trail = s.audit
	}
	if err := s.store.RegisterNode(ctx, &nb.node); err != nil {
		return fmt.Errorf("register node %s: %w", s.cfg.NodeID, err)
	}
	nb.healthySince = nb.node.StartedAt
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	nb.cancel, nb.done = cancel, make(chan struct{})
	go nb.run(lctx)
	s.node = nb
	return nil
}

// run heartbeats and sweeps until ctx ends.
func (nb *nodeBeat) run(ctx context.Context) {
	defer close(nb.done)
	t := time.NewTicker(nb.timeout / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		nb.beat(ctx)
		nb.sweep(ctx)
	}
}

// beat records the heartbeat. A node declared dead (it did not heartbeat
// in time: paused, cut off from the database) registers again: its runs
// were failed meanwhile, and those still running here finish unrecorded.
func (nb *nodeBeat) beat(ctx context.Context) {
	now := nb.now()
	err := nb.store.NodeHeartbeat(ctx, nb.node.ID, now)
	if err == nil {
		if nb.healthySince.IsZero() {
			nb.healthySince = now
		}
		return
	}
	nb.healthySince = time.Time{}
	if ctx.Err() != nil {
		return
	}
	if core.ErrorCode(err) == core.CodeConflict || errors.Is(err, core.ErrNotFound) {
		nb.log.Error("this node was declared dead or removed from the registry; registering again", "err", err)
		n := nb.node
		n.StartedAt = time.Time{}
		if err := nb.store.RegisterNode(ctx, &n); err != nil {
			nb.log.Error("node registry: registering again", "err", err)
			return
		}
		nb.healthySince = n.StartedAt
		return
	}
	nb.log.Warn("node registry: heartbeat failed", "err", err)
}

// sweep declares dead the nodes whose heartbeat is older than the
// timeout, and records each in the audit trail. A node sweeps only once
// its own heartbeats have succeeded for a whole timeout: after the
// database was out of reach (restarted, cut off) every node's heartbeat
// is late, and the first node back must not declare the others dead
// before they had the time to heartbeat again.
func (nb *nodeBeat) sweep(ctx context.Context) {
	now := nb.now()
	if nb.healthySince.IsZero() || now.Sub(nb.healthySince) < nb.timeout {
		return
	}
	dead, err := nb.store.SweepDeadNodes(ctx, now.Add(-nb.timeout), now)
	if err != nil {
		if ctx.Err() == nil {
			nb.log.Warn("node registry: sweeping for dead nodes failed", "err", err)
		}
		return
	}
	for _, d := range dead {
		nb.log.Error("node declared dead: its heartbeat stopped", "dead_node", d.ID,
			"last_heartbeat", d.HeartbeatAt, "invocations_failed", d.Failed)
		if nb.trail == nil {
			continue
		}
		rec := audit.Record{PrincipalID: "node:" + nb.node.ID, Action: "node.dead", Resource: "node/" + d.ID, Outcome: audit.OutcomeSuccess,
			Details: map[string]string{
				"node_id":            d.ID,
				"version":            d.Version,
				"last_heartbeat":     d.HeartbeatAt.UTC().Format(time.RFC3339Nano),
				"invocations_failed": strconv.FormatInt(d.Failed, 10),
				"declared_by":        nb.node.ID,
				"timeout":            nb.timeout.String(),
			}}
		if _, err := nb.trail.Append(context.WithoutCancel(ctx), rec); err != nil {
			nb.log.Error("audit trail: recording a dead node", "dead_node", d.ID, "err", err)
		}
	}
}

// halt stops the heartbeat and the sweeps, leaving the node as the
// registry has it (what a crash does).
func (nb *nodeBeat) halt() {
	nb.once.Do(func() {
		nb.cancel()
		<-nb.done
	})
}

// stop halts the heartbeat and marks the node stopped, failing what is
// still recorded as running on it.
func (nb *nodeBeat) stop() error {
	nb.halt()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := nb.store.StopNode(ctx, nb.node.ID, nb.now(), fmt.Sprintf("node %s shut down while the invocation was running", nb.node.ID))
	if err != nil {
		return fmt.Errorf("mark node %s stopped: %w", nb.node.ID, err)
	}
	if n > 0 {
		nb.log.Warn("shut down with invocations still recorded as running; marked them failed", "count", n)
	}
	return nil
}
