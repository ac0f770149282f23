package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

// TestListNodes: GET /api/v1/nodes shows every node in the store with
// its state, the age of its heartbeat by the API's clock, and its running
// invocations.
func TestListNodes(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	started := w.clock.Add(-time.Hour).Truncate(time.Microsecond)
	for _, id := range []string{"web-1", "web-2", "web-3"} {
		if err := w.store.RegisterNode(ctx, &core.Node{ID: id, Version: "1.0.0", Addr: "10.0.0.1:8450", StartedAt: started}); err != nil {
			t.Fatal(err)
		}
	}
	beat := w.clock.Add(-1500 * time.Millisecond)
	if err := w.store.NodeHeartbeat(ctx, "web-1", beat); err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateInvocation(ctx, &core.Invocation{ID: "inv-on-web-1", AgentID: agentP1, NodeID: "web-1"}); err != nil {
		t.Fatal(err)
	}
	stopped := w.clock.Add(-time.Minute)
	if _, err := w.store.StopNode(ctx, "web-2", stopped, "stopped"); err != nil {
		t.Fatal(err)
	}
	// web-3 never heartbeat: declared dead.
	if _, err := w.store.SweepDeadNodes(ctx, beat, w.clock); err != nil {
		t.Fatal(err)
	}

	status, body := w.do("owner", "GET", "/api/v1/nodes", "")
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/nodes = %d %s", status, body)
	}
	var env struct {
		Data struct {
			Nodes []nodeView `json:"nodes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	ts := func(t time.Time) *string { return timestampPtr(&t) }
	hour := time.Hour.Seconds()
	want := []nodeView{
		{ID: "web-1", State: core.NodeAlive, Version: "1.0.0", Addr: "10.0.0.1:8450", HeartbeatAge: 1.5,
			HeartbeatAt: timestamp(beat), StartedAt: timestamp(started), Running: 1},
		{ID: "web-2", State: core.NodeStopped, Version: "1.0.0", Addr: "10.0.0.1:8450", HeartbeatAge: hour,
			HeartbeatAt: timestamp(started), StartedAt: timestamp(started), StoppedAt: ts(stopped)},
		{ID: "web-3", State: core.NodeDead, Version: "1.0.0", Addr: "10.0.0.1:8450", HeartbeatAge: hour,
			HeartbeatAt: timestamp(started), StartedAt: timestamp(started), DeadAt: ts(w.clock)},
	}
	if diff := cmp.Diff(env.Data.Nodes, want); diff != "" {
		t.Errorf("GET /api/v1/nodes (-got +want):\n%s", diff)
	}
}

// TestRunRecordsNode: an invocation records the node that ran it.
func TestRunRecordsNode(t *testing.T) {
	w := newWorld(t)
	w.api.runs.nodeID = "web-7"
	status, body := w.do("user", http.MethodPost, "/api/v1/agents/"+agentP1+"/run", `{"entrypoint_tag":"echo","input_args":[1]}`)
	if status != http.StatusOK {
		t.Fatalf("run: %d %s", status, body)
	}
	var env struct {
		InvocationID string `json:"invocation_id"`
	}
	json.Unmarshal(body, &env)
	inv, err := w.store.Invocation(t.Context(), env.InvocationID)
	if err != nil {
		t.Fatal(err)
	}
	if inv.NodeID != "web-7" {
		t.Errorf("invocation's NodeID = %q, want web-7, the node that ran it", inv.NodeID)
	}
}
