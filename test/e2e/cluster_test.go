package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/ratelimit/redistest"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// cluster is several `runagent serve` nodes on loopback sharing one
// PostgreSQL store, one Redis and one master key, as a team's nodes
// behind a load balancer do.
type cluster struct {
	nodes []*server
	pg    *pgtest.Cluster
	redis string // host:port
	dir   string
	owner string // owner key file, the same for every node
	env   []string
	extra []string
}

// startCluster starts n nodes; extra goes to every node's serve.
func startCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	needSandbox(t)
	c := &cluster{pg: pgtest.Start(t), redis: redistest.Start(t), dir: t.TempDir(), extra: extra}
	storeURL := c.pg.NewDatabase(t)
	c.owner = ownerKeyFile(t, filepath.Join(c.dir, "cluster"))
	c.env = []string{
		"RUNAGENT_STORE_URL=" + storeURL,
		"RUNAGENT_REDIS_URL=redis://" + c.redis + "/0",
		"RUNAGENT_MASTER_KEY_FILE=" + filepath.Join(c.dir, "master.key"),
	}
	for i := range n {
		// The first node creates the master key and the schema; the
		// others start together after it.
		c.nodes = append(c.nodes, c.start(t, i))
	}
	return c
}

// start starts node i (again, after a kill, with its data directory).
func (c *cluster) start(t *testing.T, i int) *server {
	t.Helper()
	data := filepath.Join(c.dir, fmt.Sprintf("node-%d", i))
	args := append([]string{"serve", "testdata/agent", "--addr", "127.0.0.1:0", "--data-dir", data,
		"--drain-timeout", "5s", "--node-id", fmt.Sprintf("node-%c", 'a'+i),
		"--memory-dir", filepath.Join(c.dir, "memory")}, c.extra...) // one memory directory, as on a shared file system
	if !slices.Contains(c.extra, "--rate-limit") {
		args = append(args, "--rate-limit", "1000000/1s")
	}
	return startServerEnv(t, data, c.owner, c.env, args...)
}

// clusterAgent writes an agent whose entrypoint "which" returns which and
// whose "spin" spins for the given seconds.
func clusterAgent(t *testing.T, id, which string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"agent_name": "cluster-agent", "framework": "default", "agent_id": %q,
  "agent_architecture": {"entrypoints": [{"file": "main.py", "module": "which", "tag": "which"}]}}`, id)
	code := fmt.Sprintf("def which():\n    return %q\n", which)
	for name, content := range map[string]string{"runagent.config.json": cfg, "main.py": code} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// callWhich runs id's "which" entrypoint on s and returns its answer.
func (s *server) callWhich(t *testing.T, id string) string {
	t.Helper()
	status, env := s.do(t, http.MethodPost, "/api/v1/agents/"+id+"/run", "application/json", strings.NewReader(`{"entrypoint_tag": "which"}`))
	if status != http.StatusOK || !env.Success {
		t.Fatalf("run %s on %s: status %d error %+v", id, s.URL, status, env.Error)
	}
	var data string
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatalf("run %s: data %s is not a structured string", id, env.Data)
	}
	_, v := decodeStructured(t, data)
	str, _ := v.(string)
	return str
}

// deploy deploys dir on s and returns the new version's hash.
func (s *server) deploy(t *testing.T, dir string) string {
	t.Helper()
	status, env := s.deployPackage(t, dir)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("deploy on %s: %d %+v", s.URL, status, env.Error)
	}
	var d struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(env.Data, &d); d.Version == "" {
		t.Fatalf("deploy answer %s names no version", env.Data)
	}
	return d.Version
}

// TestClusterE2E: three nodes on one PostgreSQL and one Redis. A deploy
// on A runs on B and C, a new version and a rollback reach every node; a
// stream started on B is rejoined on C; a run on A is cancelled from C;
// a background run on A is awaited on B; a rate limit and a block hold
// across nodes.
func TestClusterE2E(t *testing.T) {
	c := startCluster(t, 3, "--rate-limit", "1000000/1s", "--block-after", "3", "--block-for", "1m")
	a, b, cn := c.nodes[0], c.nodes[1], c.nodes[2]

	t.Run("deploy on one node runs on all", func(t *testing.T) {
		const id = "c1a5e7e2-7d4b-4f0e-9a1c-3b2d4e5f6a70"
		v1 := a.deploy(t, clusterAgent(t, id, "one"))
		for _, n := range []*server{b, cn, a} {
			if got := n.callWhich(t, id); got != "one" {
				t.Errorf("%s runs %q, want one (deployed on A)", n.URL, got)
			}
		}
		a.deploy(t, clusterAgent(t, id, "two"))
		for _, n := range []*server{b, cn, a} {
			if got := n.callWhich(t, id); got != "two" {
				t.Errorf("after a new version on A, %s runs %q, want two", n.URL, got)
			}
		}
		body, _ := json.Marshal(map[string]string{"version": v1})
		if status, env := b.do(t, http.MethodPost, "/api/v1/agents/"+id+"/rollback", "application/json", bytes.NewReader(body)); status != http.StatusOK {
			t.Fatalf("rollback on B: %d %+v", status, env.Error)
		}
		for _, n := range []*server{a, cn, b} {
			if got := n.callWhich(t, id); got != "one" {
				t.Errorf("after a rollback on B, %s runs %q, want one", n.URL, got)
			}
		}
	})

	t.Run("stream started on B is rejoined on C", func(t *testing.T) {
		const n = 12
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		id, seen := startDetachedStream(t, ctx, b, n)
		rest := rejoinSSE(t, ctx, cn, id, "2")
		all := append(seen, dataIDs(t, rest)...)
		want := upTo(n)
		if !slices.Equal(all, want) {
			t.Errorf("ids over B then C %v, want each of 0..%d once, in order", all, n-1)
		}
		if len(rest) == 0 || rest[len(rest)-1].f.Status != "stream_completed" {
			t.Errorf("the stream rejoined on C did not end with stream_completed: %+v", rest)
		}
	})

	t.Run("run on A is cancelled from C", func(t *testing.T) {
		// The same cancel on A itself, for comparison.
		id := a.runAsync(t, map[string]any{"entrypoint_tag": "spins", "input_kwargs": map[string]any{"seconds": 60}})
		waitStatus(t, a, id, "running", 15*time.Second)
		time.Sleep(time.Second) // let it start spinning (a first run starts a cold sandbox)
		start := time.Now()
		if status, env := a.do(t, "POST", "/api/v1/invocations/"+id+"/cancel", "", nil); status != 200 {
			t.Fatalf("cancel on A: %d %+v", status, env.Error)
		}
		local := time.Since(start)
		id = a.runAsync(t, map[string]any{"entrypoint_tag": "spins", "input_kwargs": map[string]any{"seconds": 60}})
		waitStatus(t, a, id, "running", 15*time.Second)
		time.Sleep(time.Second)
		start = time.Now()
		status, env := cn.do(t, "POST", "/api/v1/invocations/"+id+"/cancel", "", nil)
		if status != 200 {
			t.Fatalf("cancel on C: %d %+v", status, env.Error)
		}
		var inv invocationRecord
		json.Unmarshal(env.Data, &inv)
		if inv.Status != "cancelled" || !strings.Contains(inv.ErrorMessage, "cancelled by") {
			t.Errorf("record after a cancel from C: %+v, want cancelled, saying by whom", inv)
		}
		took := time.Since(start)
		t.Logf("cancel of a spinning run: %s on its node, %s from another", local.Round(time.Millisecond), took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Errorf("cancel from C took %s", took)
		}
		if _, inv := a.invocation(t, id, ""); inv.Status != "cancelled" {
			t.Errorf("A's view after the cancel: %+v", inv)
		}
	})

	t.Run("background run on A is awaited on B", func(t *testing.T) {
		id := a.runAsync(t, map[string]any{"entrypoint_tag": "sleeps", "input_kwargs": map[string]any{"seconds": 1}})
		start := time.Now()
		status, inv := b.invocation(t, id, "?wait=30s")
		if status != 200 || inv.Status != "completed" {
			t.Fatalf("wait on B: %d %+v, want the completed record", status, inv)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("wait on B answered %s after the start of a 1 s run", took)
		}
	})

	t.Run("a block holds across nodes", func(t *testing.T) {
		// From 127.0.0.2, so that the test's own requests (127.0.0.1)
		// are not blocked.
		other := clientFrom(t, "127.0.0.2")
		for i := range 3 {
			st := statusFrom(t, other, a.URL+"/api/v1/keys", "Bearer ra_wrong_key_"+fmt.Sprint(i))
			if st != http.StatusUnauthorized {
				t.Fatalf("bad key %d on A: %d, want 401", i, st)
			}
		}
		if st := statusFrom(t, other, b.URL+"/api/v1/keys", "Bearer "+b.OwnerKey); st != http.StatusForbidden && st != http.StatusTooManyRequests {
			t.Fatalf("the address blocked on A, on B with a good key: %d, want it refused", st)
		}
		status, env := cn.do(t, http.MethodGet, "/api/v1/blocks", "", nil)
		if status != 200 || !strings.Contains(string(env.Data), `"ip:127.0.0.2"`) {
			t.Fatalf("blocks listed on C: %d %s, want 127.0.0.2", status, env.Data)
		}
		if status, env := cn.do(t, http.MethodDelete, "/api/v1/blocks/ip:127.0.0.2", "", nil); status != 200 {
			t.Fatalf("lift on C: %d %+v", status, env.Error)
		}
		if st := statusFrom(t, other, a.URL+"/api/v1/keys", "Bearer "+a.OwnerKey); st != http.StatusOK {
			t.Errorf("after the lift on C, A answers %d, want 200", st)
		}
	})
}

// TestClusterRateLimitE2E: a principal's rate limit is one budget across
// the nodes.
func TestClusterRateLimitE2E(t *testing.T) {
	c := startCluster(t, 2, "--rate-limit", "6/1m")
	var codes []int
	for i := range 8 {
		n := c.nodes[i%2]
		st, _ := n.do(t, http.MethodGet, "/api/v1/agents", "", nil)
		codes = append(codes, st)
	}
	ok := 0
	for _, st := range codes {
		if st == http.StatusOK {
			ok++
		}
	}
	if ok != 6 || codes[6] != http.StatusTooManyRequests || codes[7] != http.StatusTooManyRequests {
		t.Errorf("statuses alternating between two nodes under 6/1m: %v, want 6 × 200 then 429s", codes)
	}
}

// clientFrom is an HTTP client whose connections come from the loopback
// address src.
func clientFrom(t *testing.T, src string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func statusFrom(t *testing.T, c *http.Client, u, authz string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", authz)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus waits until invocation id shows status on s.
func waitStatus(t *testing.T, s *server, id, status string, within time.Duration) invocationRecord {
	t.Helper()
	var inv invocationRecord
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, inv = s.invocation(t, id, ""); inv.Status == status {
			return inv
		}
	}
	t.Fatalf("invocation %s is %q after %s, want %s", id, inv.Status, within, status)
	return inv
}

// load sends runs round-robin to nodes from several goroutines until
// stop, and keeps the ids of the answered (acknowledged) ones.
type load struct {
	mu     sync.Mutex
	acked  []string
	codes  map[int]int
	errors atomic.Int64
	// refusals are the first few answers other than 200, for the log.
	refusals []string
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(nodes func() []*server, workers int, body string) *load {
	l := &load{codes: map[int]int{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 15 * time.Second}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ns := nodes()
				n := ns[i%len(ns)]
				resp, err := client.Post(n.URL+"/api/v1/agents/"+agentID+"/run", "application/json", strings.NewReader(body))
				if err != nil {
					l.errors.Add(1) // not acknowledged
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var env envelope
				err = json.NewDecoder(resp.Body).Decode(&env)
				resp.Body.Close()
				l.mu.Lock()
				l.codes[resp.StatusCode]++
				if err == nil && resp.StatusCode == http.StatusOK && env.InvocationID != "" {
					l.acked = append(l.acked, env.InvocationID)
				}
				if resp.StatusCode != http.StatusOK && len(l.refusals) < 5 && env.Error != nil {
					l.refusals = append(l.refusals, fmt.Sprintf("%d %s: %s", resp.StatusCode, env.Error.Code, env.Error.Message))
				}
				l.mu.Unlock()
				if resp.StatusCode != http.StatusOK {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

// auditedRuns returns the invocation ids of the trail's invocation.run
// records, read through s.
func auditedRuns(t *testing.T, s *server) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	after := int64(0)
	for {
		q := url.Values{"action": {"invocation.run"}, "limit": {"1000"}, "after": {fmt.Sprint(after)}}
		status, env := s.do(t, http.MethodGet, "/api/v1/audit?"+q.Encode(), "", nil)
		if status != 200 {
			t.Fatalf("audit list: %d %+v", status, env.Error)
		}
		var page struct {
			Records []struct {
				Seq     int64             `json:"seq"`
				Details map[string]string `json:"details"`
			} `json:"records"`
			NextAfter int64 `json:"next_after"`
		}
		if err := json.Unmarshal(env.Data, &page); err != nil {
			t.Fatalf("audit page %s: %v", env.Data, err)
		}
		for _, r := range page.Records {
			got[r.Details["invocation_id"]] = true
		}
		if page.NextAfter == 0 {
			return got
		}
		after = page.NextAfter
	}
}

// verifyTrail asks s to verify the whole trail.
func verifyTrail(t *testing.T, s *server) {
	t.Helper()
	status, env := s.do(t, http.MethodGet, "/api/v1/audit/verify", "", nil)
	var rep struct {
		OK      bool  `json:"ok"`
		Checked int64 `json:"checked"`
	}
	json.Unmarshal(env.Data, &rep)
	if status != 200 || !rep.OK || rep.Checked == 0 {
		t.Errorf("audit verify: %d %s, want a trail that verifies", status, env.Data)
	}
}

// checkAcked asserts every acknowledged invocation has its record, done,
// and its audit entry.
func checkAcked(t *testing.T, s *server, acked []string) {
	t.Helper()
	audited := auditedRuns(t, s)
	missingAudit, notDone := 0, 0
	for _, id := range acked {
		if !audited[id] {
			missingAudit++
		}
		if _, inv := s.invocation(t, id, ""); inv.Status != "completed" {
			notDone++
			if notDone < 4 {
				t.Errorf("acknowledged invocation %s: record %+v, want completed", id, inv)
			}
		}
	}
	if missingAudit > 0 || notDone > 0 {
		t.Errorf("of %d acknowledged invocations, %d have no audit entry and %d no completed record", len(acked), missingAudit, notDone)
	}
}

// TestClusterNodeKilledE2E: kill -9 of a node under load. Every
// acknowledged invocation has its record and audit entry, the trail
// verifies, the dead node's running invocations are failed within 30 s
// and its running-run slots are freed.
func TestClusterNodeKilledE2E(t *testing.T) {
	c := startCluster(t, 3, "--max-runs-per-agent", "50")
	var live atomic.Pointer[[]*server]
	all := slices.Clone(c.nodes)
	live.Store(&all)
	l := startLoad(func() []*server { return *live.Load() }, 6, `{"entrypoint_tag":"value","input_kwargs":{"kind":"string"}}`)
	// A long run on the victim, in flight when it dies.
	victim := c.nodes[1]
	inflight := victim.runAsync(t, map[string]any{"entrypoint_tag": "spins", "input_kwargs": map[string]any{"seconds": 120}})
	waitStatus(t, victim, inflight, "running", 15*time.Second)
	time.Sleep(1500 * time.Millisecond)
	victim.cmd.Process.Kill()
	killed := time.Now()
	survivors := []*server{c.nodes[0], c.nodes[2]}
	live.Store(&survivors)
	time.Sleep(1500 * time.Millisecond)
	l.end()
	t.Logf("load: %d acknowledged, statuses %v, %d transport errors (the killed node's); refusals: %q", len(l.acked), l.codes, l.errors.Load(), l.refusals)
	if len(l.acked) < 20 {
		t.Fatalf("only %d invocations acknowledged", len(l.acked))
	}
	a := c.nodes[0]
	checkAcked(t, a, l.acked)

	inv := waitStatus(t, a, inflight, "failed", 35*time.Second)
	if took := time.Since(killed); took > 30*time.Second {
		t.Errorf("the dead node's run was failed %s after the kill, want within 30 s", took)
	}
	t.Logf("the dead node's run: %+v, failed %s after the kill", inv, time.Since(killed).Round(time.Second))
	status, env := a.do(t, http.MethodGet, "/api/v1/nodes", "", nil)
	if status != 200 || !strings.Contains(string(env.Data), "node-b") {
		t.Errorf("nodes: %d %s", status, env.Data)
	}
	var nodes struct {
		Nodes []struct {
			ID    string `json:"node_id"`
			State string `json:"state"`
		} `json:"nodes"`
	}
	json.Unmarshal(env.Data, &nodes)
	for _, n := range nodes.Nodes {
		want := "alive"
		if n.ID == "node-b" {
			want = "dead"
		}
		if n.State != want {
			t.Errorf("node %s is %q, want %s", n.ID, n.State, want)
		}
	}
	// No slot leaks: the running cap is whole again on the survivors
	// (the victim's slots expired with it).
	rdb := redistest.Client(t, c.redis)
	deadline := time.Now().Add(35 * time.Second)
	for {
		keys, err := rdb.Keys(context.Background(), "runagent:cc:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		held := int64(0)
		for _, k := range keys {
			n, _ := rdb.ZCard(context.Background(), k).Result()
			held += n
		}
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d running-run slots still held in Redis 35 s after the kill with no run in flight", held)
		}
		time.Sleep(500 * time.Millisecond)
	}
	verifyTrail(t, a)

	// The node restarts with its data directory: it cleans up what the
	// kill left, serves again, and touches no other node's runs.
	other := c.nodes[2].runAsync(t, map[string]any{"entrypoint_tag": "sleeps", "input_kwargs": map[string]any{"seconds": 3}})
	waitStatus(t, c.nodes[2], other, "running", 15*time.Second)
	victim.stop()
	b := c.start(t, 1)
	if st, env := b.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "string"}}); st != http.StatusOK {
		t.Errorf("the restarted node: %d %+v", st, env.Error)
	}
	waitStatus(t, c.nodes[2], other, "completed", 15*time.Second)
}

// TestClusterPostgresRestartE2E: PostgreSQL restarted under load.
// While it is down, requests fail closed (503, never an answer without
// its record); after it is back the nodes serve again without a restart;
// every acknowledged invocation has its record and audit entry, and the
// trail verifies.
func TestClusterPostgresRestartE2E(t *testing.T) {
	c := startCluster(t, 2)
	l := startLoad(func() []*server { return c.nodes }, 4, `{"entrypoint_tag":"value","input_kwargs":{"kind":"string"}}`)
	time.Sleep(1500 * time.Millisecond)
	c.pg.Stop(t)
	time.Sleep(2 * time.Second)
	l.mu.Lock()
	during := l.codes[http.StatusServiceUnavailable]
	l.mu.Unlock()
	c.pg.Restart(t)
	// Serving again, with no restart of the nodes.
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.nodes {
		for {
			st, _ := n.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "string"}})
			if st == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still answers %d 30 s after PostgreSQL came back", n.URL, st)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	l.end()
	t.Logf("load: %d acknowledged, statuses %v; refusals: %q", len(l.acked), l.codes, l.refusals)
	for code, n := range l.codes {
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Errorf("%d answers with status %d; while PostgreSQL is down a request must fail closed with 503", n, code)
		}
	}
	if during == 0 {
		t.Errorf("no 503 while PostgreSQL was down: statuses %v", l.codes)
	}
	checkAcked(t, c.nodes[0], l.acked)
	verifyTrail(t, c.nodes[1])
}
