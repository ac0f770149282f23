package server

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// Issue 18's benchmarks: the same load on a server whose store is SQLite
// (the default) and on one whose store is PostgreSQL, and on one node
// against three nodes sharing one PostgreSQL database. The contenders of
// a benchmark all run throughout and are driven in turn, the order
// reversed every round, so that the noise of a shared machine falls on
// all of them: their ratio is the figure.
//
// PostgreSQL runs with its durable defaults (pgtest.Options.Durable:
// fsync, synchronous_commit and full_page_writes on), so every commit,
// an invocation record's as an audit batch's, flushes the WAL with
// fdatasync before it returns. On SQLite the audit records are made
// durable in the audit journal (one fdatasync per batch) before the
// answer, and the invocation records are committed with
// synchronous=NORMAL (not synced at commit): PostgreSQL syncs more.

// gatewayWindow is how long one contender of the gateway benchmarks is
// driven in a round; gatewayWarmup is driven once each, uncounted.
const (
	gatewayWindow = time.Second
	gatewayWarmup = 300 * time.Millisecond
)

// contender is one side of an interleaved benchmark: drive loads it for
// a window, and what it measured adds up in load.
type contender struct {
	drive func(time.Duration) (echoLoad, error)
	load  echoLoad
}

// interleave drives every contender for warmup, uncounted, then, in
// every iteration of b.Loop, each for window in turn, the order reversed
// every round.
func interleave(b *testing.B, warmup, window time.Duration, cs ...*contender) {
	b.Helper()
	for _, c := range cs {
		if _, err := c.drive(warmup); err != nil {
			b.Fatal(err)
		}
	}
	order := slices.Clone(cs)
	b.ResetTimer()
	for b.Loop() {
		for _, c := range order {
			l, err := c.drive(window)
			if err != nil {
				b.Fatal(err)
			}
			c.load.add(l)
		}
		slices.Reverse(order)
	}
	b.StopTimer()
}

// pgNodes starts a durable PostgreSQL cluster and n servers sharing one
// database in it, as nodes of a cluster do (one master key), each with
// cfg otherwise. Everything stops when b ends.
func pgNodes(b *testing.B, n int, cfg Config) []*Server {
	b.Helper()
	c := pgtest.StartWith(b, pgtest.Options{Durable: true})
	cfg.StoreURL = c.NewDatabase(b)
	cfg.Keyring = KeyringConfig{MasterKeyFile: filepath.Join(b.TempDir(), "master.key")}
	nodes := make([]*Server, n)
	for i := range nodes {
		nodes[i] = serve(b, cfg)
	}
	return nodes
}

// gatewayContender reads an invocation record from nodes with
// gatewayParallelism clients per CPU, client i on node i mod len(nodes),
// as benchGateway does on one.
func gatewayContender(b *testing.B, token string, nodes ...*Server) *contender {
	b.Helper()
	c := gatewayClient(token)
	urls := make([]string, len(nodes))
	for i, s := range nodes {
		urls[i] = invocationURL(b, s, c)
	}
	clients := gatewayParallelism * runtime.GOMAXPROCS(0)
	return &contender{drive: func(d time.Duration) (echoLoad, error) {
		return driveClients(clients, d, func(i int) error { return gatewayRead(c, urls[i%len(urls)]) })
	}}
}

// echoContender runs the echo entrypoint on nodes with echoClients
// clients, client i on node i mod len(nodes), as benchEcho does on one.
func echoContender(token string, nodes ...*Server) *contender {
	ts := make([]echoTarget, len(nodes))
	for i, s := range nodes {
		ts[i] = echoTarget{url: s.URL() + "/api/v1/agents/" + helloID + "/run", key: token, c: echoClient()}
	}
	return &contender{drive: func(d time.Duration) (echoLoad, error) {
		return driveClients(echoClients, d, func(i int) error { return ts[i%len(ts)].run() })
	}}
}

// BenchmarkStoreGateway is BenchmarkGatewayFull's load (32 clients
// reading an invocation record with an API key: authenticated,
// rate-limited, audited durably before the answer) on a server on
// PostgreSQL and on one on SQLite, in turn. It reports req/s of both
// (postgres-…, sqlite-…).
func BenchmarkStoreGateway(b *testing.B) {
	token := withOwnerKey(b)
	cfg := Config{AgentDirs: []string{"../../examples/hello"}}
	lite := gatewayContender(b, token, serve(b, cfg))
	pg := gatewayContender(b, token, pgNodes(b, 1, cfg)...)
	interleave(b, gatewayWarmup, gatewayWindow, pg, lite)
	pg.load.reportAs(b, "postgres-", "req/s")
	lite.load.reportAs(b, "sqlite-", "req/s")
}

// BenchmarkStoreEcho is BenchmarkEchoThroughput's load (16 clients
// running the echo entrypoint with an API key) on a server on
// PostgreSQL and on one on SQLite, in turn: with the in-process guest
// (the store's share of a run at its largest) and in the linux sandbox
// (the default). It reports runs/s and latency of both (postgres-…,
// sqlite-…).
func BenchmarkStoreEcho(b *testing.B) {
	b.Run("inprocess", func(b *testing.B) { benchStoreEcho(b, Config{}) })
	b.Run("linux", func(b *testing.B) {
		if os.Geteuid() != 0 {
			b.Skip("the linux sandbox needs root on this machine: no figures for runagent's default backend")
		}
		exe, err := os.Executable()
		if err != nil {
			b.Fatal(err)
		}
		benchStoreEcho(b, Config{Exe: exe, Sandbox: SandboxLinux, Version: "test"})
	})
}

func benchStoreEcho(b *testing.B, cfg Config) {
	token := withOwnerKey(b)
	cfg.AgentDirs = []string{"../../examples/hello"}
	lite := echoContender(token, serve(b, cfg))
	pg := echoContender(token, pgNodes(b, 1, cfg)...)
	interleave(b, echoWarmup, echoWindow, pg, lite)
	pg.load.reportAs(b, "postgres-", "runs/s")
	lite.load.reportAs(b, "sqlite-", "runs/s")
}

// BenchmarkNodes drives three nodes sharing one PostgreSQL database
// (clients spread evenly over them) and, in turn, one of them alone with
// as many clients: the gateway's load and the echo runs in the linux
// sandbox. All of it, the nodes, PostgreSQL and the clients, shares this
// machine's CPUs: the figure says what the nodes cost each other there,
// not what three machines would serve. It reports the rate and latency
// of both (3-node-…, 1-node-…).
func BenchmarkNodes(b *testing.B) {
	b.Run("gateway", func(b *testing.B) {
		token := withOwnerKey(b)
		nodes := pgNodes(b, 3, Config{AgentDirs: []string{"../../examples/hello"}})
		three, one := gatewayContender(b, token, nodes...), gatewayContender(b, token, nodes[0])
		interleave(b, gatewayWarmup, gatewayWindow, three, one)
		three.load.reportAs(b, "3-node-", "req/s")
		one.load.reportAs(b, "1-node-", "req/s")
	})
	b.Run("echo-linux", func(b *testing.B) {
		if os.Geteuid() != 0 {
			b.Skip("the linux sandbox needs root on this machine: no figures for runagent's default backend")
		}
		exe, err := os.Executable()
		if err != nil {
			b.Fatal(err)
		}
		token := withOwnerKey(b)
		nodes := pgNodes(b, 3, Config{AgentDirs: []string{"../../examples/hello"}, Exe: exe, Sandbox: SandboxLinux, Version: "test"})
		three, one := echoContender(token, nodes...), echoContender(token, nodes[0])
		interleave(b, echoWarmup, echoWindow, three, one)
		three.load.reportAs(b, "3-node-", "runs/s")
		one.load.reportAs(b, "1-node-", "runs/s")
	})
}

// reportAs reports l's rate in unit and its p50 and p99 latency, each
// metric's name prefixed.
func (l *echoLoad) reportAs(b *testing.B, prefix, unit string) {
	b.Helper()
	if l.runs == 0 {
		b.Fatalf("%sno requests answered", prefix)
	}
	slices.Sort(l.latency)
	b.ReportMetric(float64(l.runs)/l.elapsed.Seconds(), prefix+unit)
	b.ReportMetric(float64(l.latency[len(l.latency)/2].Nanoseconds()), prefix+"p50-ns")
	b.ReportMetric(float64(l.latency[len(l.latency)*99/100].Nanoseconds()), prefix+"p99-ns")
}
