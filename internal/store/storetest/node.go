package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

// nodeTests pin down, beyond core.NodeStore's documentation:
//
//   - Nodes come back as registered, times to the microsecond, with
//     Running counting only their running invocations.
//   - Registering a stopped or dead node again makes it alive.
//   - Of several sweeps at once, exactly one declares a late node dead.
var nodeTests = []struct {
	name string
	fn   func(t *testing.T, s core.Store)
}{
	{"NodeRegistry", testNodeRegistry},
	{"NodeStop", testNodeStop},
	{"SweepDeadNodes", testSweepDeadNodes},
	{"SweepDeadNodesConcurrently", testSweepConcurrently},
}

func runNodeTests(t *testing.T, open func(t *testing.T) core.Store) {
	for _, tt := range nodeTests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

func mustRegister(t *testing.T, s core.Store, n *core.Node) {
	t.Helper()
	if err := s.RegisterNode(t.Context(), n); err != nil {
		t.Fatalf("RegisterNode(%s) = %v", n.ID, err)
	}
}

func mustNodes(t *testing.T, s core.Store) map[string]*core.Node {
	t.Helper()
	ns, err := s.Nodes(t.Context())
	if err != nil {
		t.Fatalf("Nodes() = %v", err)
	}
	m := map[string]*core.Node{}
	for i, n := range ns {
		if i > 0 && ns[i-1].ID >= n.ID {
			t.Errorf("Nodes() not ordered by id: %s before %s", ns[i-1].ID, n.ID)
		}
		m[n.ID] = n
	}
	return m
}

// nodeInvocation creates a running invocation on node.
func nodeInvocation(t *testing.T, s core.Store, id, node string) *core.Invocation {
	t.Helper()
	inv := invocation(id, "agent-1", base)
	inv.NodeID = node
	mustCreate(t, s, inv)
	return inv
}

func testNodeRegistry(t *testing.T, s core.Store) {
	ctx := t.Context()
	a := &core.Node{ID: "web-1", Version: "1.2.3", Addr: "10.0.0.1:8450", StartedAt: base}
	mustRegister(t, s, a)
	if !a.HeartbeatAt.Equal(base) {
		t.Errorf("RegisterNode set HeartbeatAt = %v, want StartedAt %v", a.HeartbeatAt, base)
	}
	before := time.Now()
	b := &core.Node{ID: "web-0", Version: "1.2.3", Addr: "[::1]:8450"}
	mustRegister(t, s, b)
	if b.StartedAt.Before(before.Add(-time.Second)) || b.StartedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("RegisterNode set StartedAt = %v, want about %v", b.StartedAt, before)
	}
	for _, id := range []string{"", "Web-1", "-web", "web 1", "web/1", "ünï", strings.Repeat("a", core.MaxNodeIDLen+1)} {
		if err := s.RegisterNode(ctx, &core.Node{ID: id}); core.ErrorCode(err) != core.CodeValidation {
			t.Errorf("RegisterNode(%q) = %v, want a validation error", id, err)
		}
	}

	beat := base.Add(5 * time.Second)
	if err := s.NodeHeartbeat(ctx, "web-1", beat); err != nil {
		t.Fatalf("NodeHeartbeat = %v", err)
	}
	if err := s.NodeHeartbeat(ctx, "web-9", beat); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("NodeHeartbeat(unknown) = %v, want ErrNotFound", err)
	}
	nodeInvocation(t, s, "inv-1", "web-1")
	nodeInvocation(t, s, "inv-2", "web-1")
	mustFinish(t, s, finished(nodeInvocation(t, s, "inv-3", "web-1"), core.StatusCompleted, 5))
	nodeInvocation(t, s, "inv-4", "web-0")
	nodeInvocation(t, s, "inv-5", "")

	got := mustNodes(t, s)
	want := map[string]*core.Node{
		"web-0": {ID: "web-0", Version: "1.2.3", Addr: "[::1]:8450", StartedAt: b.StartedAt, HeartbeatAt: b.StartedAt, Running: 1},
		"web-1": {ID: "web-1", Version: "1.2.3", Addr: "10.0.0.1:8450", StartedAt: base, HeartbeatAt: beat, Running: 2},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Nodes() (-got +want):\n%s", diff)
	}
	for _, n := range got {
		if n.State() != core.NodeAlive {
			t.Errorf("node %s is %s, want alive", n.ID, n.State())
		}
	}
}

func testNodeStop(t *testing.T, s core.Store) {
	ctx := t.Context()
	mustRegister(t, s, &core.Node{ID: "web-1", Version: "1", StartedAt: base})
	mustRegister(t, s, &core.Node{ID: "web-2", Version: "1", StartedAt: base})
	mine := nodeInvocation(t, s, "inv-mine", "web-1")
	theirs := nodeInvocation(t, s, "inv-theirs", "web-2")

	stop := base.Add(time.Minute)
	const msg = "node web-1 shut down while the invocation was running"
	n, err := s.StopNode(ctx, "web-1", stop, msg)
	if err != nil || n != 1 {
		t.Fatalf("StopNode(web-1) = %d, %v; want 1, nil", n, err)
	}
	if got := mustInvocation(t, s, mine.ID); got.Status != core.StatusFailed || got.ErrorMessage != msg {
		t.Errorf("invocation of the stopped node = %s %q, want failed %q", got.Status, got.ErrorMessage, msg)
	}
	checkInvocation(t, "invocation of the other node", mustInvocation(t, s, theirs.ID), theirs)
	nodes := mustNodes(t, s)
	if got := nodes["web-1"]; got.State() != core.NodeStopped || got.StoppedAt == nil || !got.StoppedAt.Equal(stop) {
		t.Errorf("stopped node = %+v, want stopped at %v", got, stop)
	}
	if got := nodes["web-2"]; got.State() != core.NodeAlive {
		t.Errorf("other node = %s, want alive", got.State())
	}

	checkCode(t, "NodeHeartbeat of a stopped node", s.NodeHeartbeat(ctx, "web-1", stop.Add(time.Second)), core.CodeConflict)
	if n, err := s.StopNode(ctx, "web-1", stop.Add(time.Hour), msg); n != 0 || err != nil {
		t.Errorf("StopNode again = %d, %v; want 0, nil", n, err)
	}
	if got := mustNodes(t, s)["web-1"]; got.StoppedAt == nil || !got.StoppedAt.Equal(stop) {
		t.Errorf("StopNode again moved StoppedAt to %v, want %v", got.StoppedAt, stop)
	}
	if _, err := s.StopNode(ctx, "web-9", stop, msg); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("StopNode(unknown) = %v, want ErrNotFound", err)
	}

	// Coming back: alive again, heartbeats accepted.
	again := stop.Add(time.Hour)
	mustRegister(t, s, &core.Node{ID: "web-1", Version: "2", StartedAt: again})
	got := mustNodes(t, s)["web-1"]
	if got.State() != core.NodeAlive || got.Version != "2" || !got.StartedAt.Equal(again) || got.StoppedAt != nil {
		t.Errorf("node registered again = %+v, want alive, version 2, started %v", got, again)
	}
	if err := s.NodeHeartbeat(ctx, "web-1", again.Add(time.Second)); err != nil {
		t.Errorf("NodeHeartbeat after registering again = %v", err)
	}
}

func testSweepDeadNodes(t *testing.T, s core.Store) {
	ctx := t.Context()
	if dead, err := s.SweepDeadNodes(ctx, base, base); err != nil || len(dead) != 0 {
		t.Fatalf("SweepDeadNodes on an empty registry = %v, %v; want none", dead, err)
	}
	// late stopped heartbeating; fresh did not; stopped shut down long ago.
	late := &core.Node{ID: "late", Version: "1", StartedAt: base}
	mustRegister(t, s, late)
	mustRegister(t, s, &core.Node{ID: "fresh", Version: "1", StartedAt: base})
	mustRegister(t, s, &core.Node{ID: "stopped", Version: "1", StartedAt: base})
	lateInvs := []*core.Invocation{nodeInvocation(t, s, "late-1", "late"), nodeInvocation(t, s, "late-2", "late")}
	lateDone := finished(nodeInvocation(t, s, "late-done", "late"), core.StatusCompleted, 3)
	mustFinish(t, s, lateDone)
	freshInv := nodeInvocation(t, s, "fresh-1", "fresh")
	unowned := nodeInvocation(t, s, "unowned-1", "")
	if _, err := s.StopNode(ctx, "stopped", base.Add(time.Second), "stopped"); err != nil {
		t.Fatal(err)
	}
	now := base.Add(time.Minute)
	if err := s.NodeHeartbeat(ctx, "fresh", now.Add(-5*time.Second)); err != nil {
		t.Fatal(err)
	}

	cutoff := now.Add(-15 * time.Second)
	dead, err := s.SweepDeadNodes(ctx, cutoff, now)
	if err != nil {
		t.Fatalf("SweepDeadNodes = %v", err)
	}
	want := []*core.DeadNode{{Node: core.Node{ID: "late", Version: "1", StartedAt: base, HeartbeatAt: base}, Failed: 2}}
	if diff := cmp.Diff(dead, want); diff != "" {
		t.Errorf("SweepDeadNodes (-got +want):\n%s", diff)
	}
	msg := late.DeadMessage()
	for _, inv := range lateInvs {
		got := mustInvocation(t, s, inv.ID)
		if got.Status != core.StatusFailed || got.ErrorCode != core.CodeInternal || got.ErrorMessage != msg ||
			got.CompletedAt == nil || !got.CompletedAt.Equal(now) {
			t.Errorf("invocation %s of the dead node = %s %s %q completed %v, want failed %s %q at %v",
				inv.ID, got.Status, got.ErrorCode, got.ErrorMessage, got.CompletedAt, core.CodeInternal, msg, now)
		}
	}
	checkInvocation(t, "finished invocation of the dead node", mustInvocation(t, s, lateDone.ID), lateDone)
	checkInvocation(t, "invocation of the live node", mustInvocation(t, s, freshInv.ID), freshInv)
	checkInvocation(t, "invocation of no node", mustInvocation(t, s, unowned.ID), unowned)

	nodes := mustNodes(t, s)
	if got := nodes["late"]; got.State() != core.NodeDead || got.DeadAt == nil || !got.DeadAt.Equal(now) || got.Running != 0 {
		t.Errorf("dead node = %+v, want dead at %v with nothing running", got, now)
	}
	for id, st := range map[string]core.NodeState{"fresh": core.NodeAlive, "stopped": core.NodeStopped} {
		if got := nodes[id].State(); got != st {
			t.Errorf("node %s is %s after the sweep, want %s", id, got, st)
		}
	}
	// Declared once; it must register again to heartbeat.
	if dead, err := s.SweepDeadNodes(ctx, now, now.Add(time.Minute)); err != nil || len(dead) != 1 || dead[0].ID != "fresh" {
		t.Errorf("later SweepDeadNodes = %v, %v; want only fresh (late was declared before, stopped is stopped)", dead, err)
	}
	checkCode(t, "NodeHeartbeat of a dead node", s.NodeHeartbeat(ctx, "late", now), core.CodeConflict)
	mustRegister(t, s, &core.Node{ID: "late", Version: "1", StartedAt: now})
	if got := mustNodes(t, s)["late"]; got.State() != core.NodeAlive || got.DeadAt != nil {
		t.Errorf("dead node registered again = %+v, want alive", got)
	}
}

func testSweepConcurrently(t *testing.T, s core.Store) {
	const nodes, sweepers = 3, 8
	for i := range nodes {
		id := fmt.Sprintf("node-%d", i)
		mustRegister(t, s, &core.Node{ID: id, Version: "1", StartedAt: base})
		nodeInvocation(t, s, "inv-"+id, id)
	}
	now := base.Add(time.Minute)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		declared = map[string]int{}
		failed   int64
	)
	for range sweepers {
		wg.Go(func() {
			dead, err := s.SweepDeadNodes(t.Context(), now.Add(-15*time.Second), now)
			if err != nil {
				t.Errorf("SweepDeadNodes = %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, d := range dead {
				declared[d.ID]++
				failed += d.Failed
			}
		})
	}
	wg.Wait()
	for i := range nodes {
		if id := fmt.Sprintf("node-%d", i); declared[id] != 1 {
			t.Errorf("node %s declared dead %d times by %d sweeps at once, want once", id, declared[id], sweepers)
		}
	}
	if failed != nodes {
		t.Errorf("sweeps failed %d invocations in all, want %d", failed, nodes)
	}
}
