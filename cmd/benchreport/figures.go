package main

import (
	"fmt"
	"strings"
)

// pkgRun is one `go test -bench` invocation.
type pkgRun struct {
	pkg       string
	benches   []string // top-level benchmark names; their sub-benchmarks run too
	benchtime string
	quick     string // benchtime with -quick
}

var packages = []pkgRun{
	{"./internal/sandbox/linux", []string{"BenchmarkLinuxStartInvokeServer", "BenchmarkBarePython", "BenchmarkLinuxCreateDestroy"}, "40x", "3x"},
	{"./internal/sandbox/linux", []string{"BenchmarkLinuxColdStartEnv"}, "20x", "2x"}, // 4 cold starts an iteration
	{"./internal/sandbox/linux", []string{"BenchmarkForkCreateDestroy"}, "200x", "10x"},
	{"./internal/sandbox/linux", []string{"BenchmarkForkStartInvoke", "BenchmarkBarePython"}, "40x", "3x"},
	{"./internal/sandbox/linux", []string{"BenchmarkIdleSandboxes", "BenchmarkIdleForkedSandboxes"}, "1x", "1x"},
	{"./internal/sandbox/linux", []string{"BenchmarkNamespaceFloor"}, "2000x", "50x"},
	{"./internal/server", []string{"BenchmarkWarmDispatchLinux"}, "300x", "30x"}, // ~50 ms an iteration: 40 for the pool to refill
	{"./internal/server", []string{"BenchmarkRunStartMemory"}, "60x", "5x"},      // ~130 ms an iteration: three runs and their pauses
	{"./internal/server", []string{"BenchmarkBareHTTPBaseline", "BenchmarkRequestOverhead", "BenchmarkRequestOverheadAuthenticated"}, "1000x", "30x"},
	{"./internal/server", []string{"BenchmarkEchoThroughput"}, "2x", "1x"}, // an iteration is 2 × 1.5 s per backend; ~90 s with -count 5
	{"./internal/server", []string{"BenchmarkGatewayFull", "BenchmarkGatewayNoAudit", "BenchmarkGatewayBare"}, "4000x", "200x"},
	{"./internal/server", []string{"BenchmarkStreamSSE", "BenchmarkStreamSSENoKeep", "BenchmarkStreamSSEBaseline", "BenchmarkStreamWebSocket", "BenchmarkStreamWebSocketBaseline"}, "20x", "2x"},
	{"./internal/server", []string{"BenchmarkServerMemoryStreams"}, "1x", "1x"},
	// Issue 18's: an iteration is a round driving each contender for 1 s
	// (gateway) or 1.5 s (echo); a PostgreSQL cluster is started per run.
	{"./internal/server", []string{"BenchmarkStoreGateway"}, "2x", "1x"},
	{"./internal/server", []string{"BenchmarkStoreEcho"}, "2x", "1x"},
	{"./internal/server", []string{"BenchmarkNodes"}, "2x", "1x"},
	{"./internal/ratelimit", []string{"BenchmarkMemoryAllow"}, "500000x", "1000x"},
	{"./internal/auth", []string{"BenchmarkAuthenticate"}, "20000x", "100x"},
	{"./internal/audit", []string{"BenchmarkAppendConcurrent", "BenchmarkAppendSerial"}, "1s", "50ms"},
	{"./internal/keyring", []string{"BenchmarkSeal", "BenchmarkOpen"}, "300x", "5x"},
	{"./internal/store/sqlite", []string{"BenchmarkCreateFinishInvocation"}, "500x", "10x"},
	{"./internal/api", []string{"BenchmarkGuardedRead", "BenchmarkRunPath"}, "3000x", "50x"},
	{"./internal/store/sqlite", []string{"BenchmarkInvocationPage"}, "2000x", "50x"}, // 2,000 pages of 50: all 100,000 records
	{"./internal/store/sqlite", []string{"BenchmarkInvocationPageOffset"}, "20x", "3x"},
	{"./internal/store/sqlite", []string{"BenchmarkAPIKeysPage", "BenchmarkAgentVersionsPage"}, "300x", "10x"},
	{"./internal/api", []string{"BenchmarkInvocationListHTTP"}, "2000x", "50x"},
	{"./internal/value", []string{"BenchmarkEncode", "BenchmarkDecode"}, "200000x", "1000x"},
	{"./internal/executor", []string{"BenchmarkSpec"}, "100000x", "1000x"},
	{"./internal/deploy", []string{"BenchmarkRedeployCachedEnv"}, "10x", "2x"},
	{"./internal/pyenv", []string{"BenchmarkBuildEnv", "BenchmarkBuildEnvProcess", "BenchmarkBuildEnvPipBaseline", "BenchmarkBuildEnvPipTarget"}, "2x", "1x"},
}

// metric names one measured value.
type metric struct{ pkg, bench, unit string }

// figure is one row of the report.
type figure struct {
	name   string
	m      metric
	base   *metric
	show   func(float64) string // measured (and baseline, unless showBase)
	showB  func(float64) string
	ratio  func(m, b float64) (string, float64)
	target string
	met    func(m, ratio float64) bool // nil: no verdict
}

type section struct {
	title   string
	figures []figure
	note    string
}

const (
	linuxPkg  = "./internal/sandbox/linux"
	serverPkg = "./internal/server"
	deployPkg = "./internal/deploy"
	pyenvPkg  = "./internal/pyenv"
	apiPkg    = "./internal/api"
	sqlitePkg = "./internal/store/sqlite"
)

var sections = []section{
	{title: "Sandbox (linux backend: namespaces, cgroups, scratch disk, rlimits, seccomp, landlock)", figures: []figure{
		{name: "cold start of a Python hello agent, start to result, as the server runs it (a sandbox started for it: an agent version's template, or every run with `--fork-server=false`)", m: metric{linuxPkg, "BenchmarkLinuxStartInvokeServer", "to-result-ns/op"},
			base: &metric{linuxPkg, "BenchmarkBarePython", "ns/op"}, show: dur, ratio: times, target: "≤ 1.2× bare `python3 -c`",
			met: func(_, r float64) bool { return r <= 1.2 }},
		{name: "a run's start on the fork server (the default), fork to the result of its call, as the server runs it", m: metric{linuxPkg, "BenchmarkForkStartInvoke", "to-result-ns/op"},
			base: &metric{linuxPkg, "BenchmarkBarePython", "ns/op"}, show: dur, ratio: times, target: "≤ 1.2× bare `python3 -c`",
			met: func(_, r float64) bool { return r <= 1.2 }},
		{name: "sandboxes created and destroyed per second per core", m: metric{linuxPkg, "BenchmarkLinuxCreateDestroy", "sandboxes/s/core"},
			base: &metric{linuxPkg, "BenchmarkBarePython", "ns/op"}, show: perSec, showB: startsPerSec, ratio: fraction, target: "≥ 100 /s/core",
			met: func(m, _ float64) bool { return m >= 100 }},
		{name: "runs forked from a template (the default) created and destroyed per second per core, with real cgroups", m: metric{linuxPkg, "BenchmarkForkCreateDestroy/real-cgroups", "sandboxes/s/core"},
			base: &metric{linuxPkg, "BenchmarkBarePython", "ns/op"}, show: perSec, showB: startsPerSec, ratio: fraction, target: "≥ 100 /s/core",
			met: func(m, _ float64) bool { return m >= 100 }},
		{name: "the same without cgroups (namespaces, layers, landlock, seccomp, Python's fork)", m: metric{linuxPkg, "BenchmarkForkCreateDestroy/fake-cgroups", "sandboxes/s/core"},
			base: &metric{linuxPkg, "BenchmarkBarePython", "ns/op"}, show: perSec, showB: startsPerSec, ratio: fraction},
		{name: "warm-pool `POST /run`, request to first byte, p50", m: metric{serverPkg, "BenchmarkWarmDispatchLinux", "p50-ttfb-ns"},
			base: &metric{serverPkg, "BenchmarkBareHTTPBaseline", "ns/op"}, show: dur, ratio: times, target: "p50 ≤ 1 ms",
			met: func(m, _ float64) bool { return m <= 1e6 }},
		{name: "warm-pool `POST /run`, request to first byte, p99", m: metric{serverPkg, "BenchmarkWarmDispatchLinux", "p99-ttfb-ns"},
			base: &metric{serverPkg, "BenchmarkBareHTTPBaseline", "ns/op"}, show: dur, ratio: times, target: "p99 ≤ 10 ms",
			met: func(m, _ float64) bool { return m <= 10e6 }},
		{name: "a run with persistent memory, request to answer, p50 (its store mounted from the user's last run; a pooled run given its mounts at its invoke), against the same run without memory from the warm pool", m: metric{serverPkg, "BenchmarkRunStartMemory", "memory-p50-ns"},
			base: &metric{serverPkg, "BenchmarkRunStartMemory", "pooled-p50-ns"}, show: dur, ratio: times, target: "≤ 1.2× without memory",
			met: func(_, r float64) bool { return r <= 1.2 }},
		{name: "the same against a run without memory in a sandbox started for it (a server without a warm pool)", m: metric{serverPkg, "BenchmarkRunStartMemory", "memory-p50-ns"},
			base: &metric{serverPkg, "BenchmarkRunStartMemory", "started-p50-ns"}, show: dur, ratio: times},
		{name: "idle warm sandboxes held at once (started, agent imported, waiting)", m: metric{linuxPkg, "BenchmarkIdleSandboxes", "sandboxes-held"},
			show: count, target: "≥ 200 on 2 cores", met: func(m, _ float64) bool { return m >= 200 }},
		{name: "host memory per idle sandbox (drop in MemAvailable: processes, kernel, mounts)", m: metric{linuxPkg, "BenchmarkIdleSandboxes", "host-MiB/sandbox"},
			show: mib, target: "≤ 1 MiB", met: func(m, _ float64) bool { return m <= 1 }},
		{name: "proportional set size of an idle sandbox's processes (supervisor + Python)", m: metric{linuxPkg, "BenchmarkIdleSandboxes", "pss-MiB/sandbox"},
			show: mib},
		{name: "idle runs forked from one template held at once (the default: the agent imported in the template, each run in its own namespaces, cgroup and disk)", m: metric{linuxPkg, "BenchmarkIdleForkedSandboxes", "sandboxes-held"},
			show: count, target: "≥ 200 on 2 cores", met: func(m, _ float64) bool { return m >= 200 }},
		{name: "host memory per idle forked run (drop in MemAvailable)", m: metric{linuxPkg, "BenchmarkIdleForkedSandboxes", "host-MiB/sandbox"},
			show: mib, target: "≤ 1 MiB", met: func(m, _ float64) bool { return m <= 1 }},
		{name: "proportional set size of an idle forked run's processes (the run and its waiter; pages shared with the template counted in proportion)", m: metric{linuxPkg, "BenchmarkIdleForkedSandboxes", "pss-MiB/sandbox"},
			show: mib},
	}, note: "The baseline of the sandbox figures is Debian's `/usr/bin/python3 -c 'print(1)'` started bare in the same run; of the warm-pool figures, a bare Go `net/http` handler doing the same JSON round trip over loopback. The linux backend needs root: without it these rows are empty and the notes say so."},
	{title: "Throughput against FastAPI + uvicorn (16 clients calling an echo entrypoint with an API key)", figures: []figure{
		{name: "echo runs/s, 16 clients, key auth, durable audit, fresh sandbox per run (forked from a template of the agent: the default)", m: metric{serverPkg, "BenchmarkEchoThroughput/linux", "runs/s"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/linux", "fastapi-runs/s"}, show: perSec, ratio: times, target: "≥ 1.0× its throughput",
			met: func(_, r float64) bool { return r >= 1.0 }},
		{name: "p99 of those runs, request to answer", m: metric{serverPkg, "BenchmarkEchoThroughput/linux", "p99-ns"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/linux", "fastapi-p99-ns"}, show: dur, ratio: times, target: "≤ 2× its p99",
			met: func(_, r float64) bool { return r <= 2 }},
		{name: "p50 of those runs", m: metric{serverPkg, "BenchmarkEchoThroughput/linux", "p50-ns"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/linux", "fastapi-p50-ns"}, show: dur, ratio: times},
		{name: "echo runs/s, the same agent asking for `disk_mb` 128 (a forked run's writable layers then fit a tmpfs within half its memory; the default 1 GiB is a scratch disk image per run)", m: metric{serverPkg, "BenchmarkEchoThroughput/linux-smalldisk", "runs/s"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/linux-smalldisk", "fastapi-runs/s"}, show: perSec, ratio: times, target: "≥ 1.0× its throughput",
			met: func(_, r float64) bool { return r >= 1.0 }},
		{name: "p99 of those runs, request to answer", m: metric{serverPkg, "BenchmarkEchoThroughput/linux-smalldisk", "p99-ns"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/linux-smalldisk", "fastapi-p99-ns"}, show: dur, ratio: times, target: "≤ 2× its p99",
			met: func(_, r float64) bool { return r <= 2 }},
		{name: "the kernel's floor: `/bin/true` started and reaped on both cores in the six fresh namespaces a run gets, nothing of runagent (processes/s)", m: metric{linuxPkg, "BenchmarkNamespaceFloor/namespaced", "procs/s"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/linux", "fastapi-runs/s"}, show: perSec, ratio: times},
		{name: "the same namespace sets alone, made and torn down with nothing else on the machine (1 / the time they add to each process)", m: metric{linuxPkg, "BenchmarkNamespaceFloor/namespaced", "ns-ceiling-runs/s"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/linux", "fastapi-runs/s"}, show: perSec, ratio: times},
		{name: "echo runs/s, the same with `--fork-server=false` (a Python and its supervisor started for each run)", m: metric{serverPkg, "BenchmarkEchoThroughput/linux-nofork", "runs/s"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/linux-nofork", "fastapi-runs/s"}, show: perSec, ratio: times},
		{name: "p99 of those runs, request to answer", m: metric{serverPkg, "BenchmarkEchoThroughput/linux-nofork", "p99-ns"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/linux-nofork", "fastapi-p99-ns"}, show: dur, ratio: times},
		{name: "echo runs/s, the same with `--sandbox process` (agents as plain child processes, no isolation)", m: metric{serverPkg, "BenchmarkEchoThroughput/process", "runs/s"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/process", "fastapi-runs/s"}, show: perSec, ratio: times, target: "≥ 1.0× its throughput",
			met: func(_, r float64) bool { return r >= 1.0 }},
		{name: "p99 of those runs, request to answer", m: metric{serverPkg, "BenchmarkEchoThroughput/process", "p99-ns"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/process", "fastapi-p99-ns"}, show: dur, ratio: times, target: "≤ 2× its p99",
			met: func(_, r float64) bool { return r <= 2 }},
		{name: "p50 of those runs", m: metric{serverPkg, "BenchmarkEchoThroughput/process", "p50-ns"},
			base: &metric{serverPkg, "BenchmarkEchoThroughput/process", "fastapi-p50-ns"}, show: dur, ratio: times},
	}, note: echoNote},
	{title: "Agent environments (requirements installed by pip in a build sandbox, mounted read-only at /env)", figures: []figure{
		{name: "redeploy of a new version whose environment is built already: unpack, environment found, load check in a linux sandbox, code installed and stored", m: metric{deployPkg, "BenchmarkRedeployCachedEnv", "env-ns/op"},
			base: &metric{deployPkg, "BenchmarkRedeployCachedEnv", "no-env-ns/op"}, show: dur, ratio: times, target: "≤ 1 s",
			met: func(m, _ float64) bool { return m <= 1e9 }},
		{name: "cold start to first result of an agent importing 20 packages from /env, against the same imports from its own directory", m: metric{linuxPkg, "BenchmarkLinuxColdStartEnv", "env-ns/op"},
			base: &metric{linuxPkg, "BenchmarkLinuxColdStartEnv", "vendored-ns/op"}, show: dur, ratio: times, target: "≤ 1.2× without the environment",
			met: func(_, r float64) bool { return r <= 1.2 }},
		{name: "the same against a hello agent (no imports, no environment): what importing 20 packages costs", m: metric{linuxPkg, "BenchmarkLinuxColdStartEnv", "env-ns/op"},
			base: &metric{linuxPkg, "BenchmarkLinuxColdStartEnv", "no-env-ns/op"}, show: dur, ratio: times},
		{name: "the hello agent with the environment mounted, nothing imported from it: the mount and sys.path alone", m: metric{linuxPkg, "BenchmarkLinuxColdStartEnv", "env-unused-ns/op"},
			base: &metric{linuxPkg, "BenchmarkLinuxColdStartEnv", "no-env-ns/op"}, show: dur, ratio: times},
		{name: "building an environment of 10 small wheels from an index on loopback: Builder.Ensure, pip in a linux build sandbox through the egress proxy, sealed", m: metric{pyenvPkg, "BenchmarkBuildEnv", "ns/op"},
			base: &metric{pyenvPkg, "BenchmarkBuildEnvPipBaseline", "ns/op"}, show: dur, ratio: times, target: "≤ 1.3× a plain venv + pip install",
			met: func(_, r float64) bool { return r <= 1.3 }},
		{name: "the same build with the process backend (pip as a plain child process)", m: metric{pyenvPkg, "BenchmarkBuildEnvProcess", "ns/op"},
			base: &metric{pyenvPkg, "BenchmarkBuildEnvPipBaseline", "ns/op"}, show: dur, ratio: times},
		{name: "the linux build against one plain `pip install --target` of the set (no venv, pip started once)", m: metric{pyenvPkg, "BenchmarkBuildEnv", "ns/op"},
			base: &metric{pyenvPkg, "BenchmarkBuildEnvPipTarget", "ns/op"}, show: dur, ratio: times},
	}, note: "Each redeploy and cold-start figure comes from one benchmark that runs its agents in turn within every iteration, so the load of a shared machine falls on the figure and its baseline alike. The redeploy baseline is the same agent with no requirements and no imports; the cold-start baseline is the same agent with the environment's site-packages copied (bytecode and times kept) into its directory, so the ratio isolates the environment (mount, sys.path) from the cost of importing 20 packages at all (the next row). The build baseline is `python3 -m venv --without-pip` then Debian's pip installing the same set from the same index into it, with the builder's hermetic flags (`PIP_CONFIG_FILE=/dev/null --isolated --no-cache-dir`)."},
	{title: "Request path", figures: []figure{
		{name: "requests/s, 32 clients reading an invocation record with an API key: authenticated, rate-limited, audited (durably, before the answer)", m: metric{serverPkg, "BenchmarkGatewayFull", "req/s"},
			base: &metric{serverPkg, "BenchmarkGatewayBare", "req/s"}, show: perSec, ratio: times, target: "≥ 50 % of the same handler with the middleware removed",
			met: func(_, r float64) bool { return r >= 0.5 }},
		{name: "the same without the audit record (authentication and rate limit only)", m: metric{serverPkg, "BenchmarkGatewayNoAudit", "req/s"},
			base: &metric{serverPkg, "BenchmarkGatewayBare", "req/s"}, show: perSec, ratio: times, target: "≥ 50 %",
			met: func(_, r float64) bool { return r >= 0.5 }},
		{name: "`POST /run` with an API key (authentication, rate limit, audit record, sealed payloads, in-process guest)", m: metric{serverPkg, "BenchmarkRequestOverheadAuthenticated", "ns/op"},
			base: &metric{serverPkg, "BenchmarkRequestOverhead", "ns/op"}, show: dur, ratio: kept, target: "≥ 50 % of the throughput without authentication",
			met: func(_, r float64) bool { return r >= 0.5 }},
		{name: "the same against a bare `net/http` JSON round trip", m: metric{serverPkg, "BenchmarkRequestOverheadAuthenticated", "ns/op"},
			base: &metric{serverPkg, "BenchmarkBareHTTPBaseline", "ns/op"}, show: dur, ratio: kept, target: "(DESIGN: ≥ 50 % for the gateway alone)"},
		{name: "rate-limit decision (memory, one key)", m: metric{"./internal/ratelimit", "BenchmarkMemoryAllow/one_key", "ns/op"}, show: dur},
		{name: "rate-limit decision (memory, 10k keys)", m: metric{"./internal/ratelimit", "BenchmarkMemoryAllow/10k_keys", "ns/op"}, show: dur},
	}, note: "One request at a time: every `POST /run` commits its audit record durably before it is answered, so the serial figures carry one synced commit each; concurrent requests share commits (see the audit rows)."},
	{title: "Streams (one agent stream of 5,000 chunks, in-process guest, read by the Go client)", figures: []figure{
		{name: "chunks per second through Server-Sent Events", m: metric{serverPkg, "BenchmarkStreamSSE", "chunks/s"},
			base: &metric{serverPkg, "BenchmarkStreamSSEBaseline", "chunks/s"}, show: perSec, ratio: times, target: "≥ 20,000 chunks/s per stream",
			met: func(m, _ float64) bool { return m >= 20000 }},
		{name: "time per chunk, SSE", m: metric{serverPkg, "BenchmarkStreamSSE", "ns/chunk"},
			base: &metric{serverPkg, "BenchmarkStreamSSEBaseline", "ns/chunk"}, show: dur, ratio: times},
		{name: "chunks per second through SSE with the events kept for resumption (the default), against a server keeping none (`--stream-keep -1s`)", m: metric{serverPkg, "BenchmarkStreamSSE", "chunks/s"},
			base: &metric{serverPkg, "BenchmarkStreamSSENoKeep", "chunks/s"}, show: perSec, ratio: times, target: "≥ 0.9× (keeping costs ≤ 10 %)",
			met: func(_, r float64) bool { return r >= 0.9 }},
		{name: "chunks per second through a WebSocket", m: metric{serverPkg, "BenchmarkStreamWebSocket", "chunks/s"},
			base: &metric{serverPkg, "BenchmarkStreamWebSocketBaseline", "chunks/s"}, show: perSec, ratio: times, target: "≥ 20,000 chunks/s per stream",
			met: func(m, _ float64) bool { return m >= 20000 }},
		{name: "time per chunk, WebSocket", m: metric{serverPkg, "BenchmarkStreamWebSocket", "ns/chunk"},
			base: &metric{serverPkg, "BenchmarkStreamWebSocketBaseline", "ns/chunk"}, show: dur, ratio: times},
	}, note: "Each baseline replays the bytes (SSE) or messages (WebSocket) of one real stream from a bare handler to the same client: the difference is what the platform adds per chunk (guest frame, value encoding, envelope, flush)."},
	{title: "Several nodes: PostgreSQL beside SQLite, three nodes against one (issue 18)", figures: []figure{
		{name: "requests/s, 32 clients reading an invocation record with an API key, audited durably (the request path's first row), on PostgreSQL against the same on SQLite", m: metric{serverPkg, "BenchmarkStoreGateway", "postgres-req/s"},
			base: &metric{serverPkg, "BenchmarkStoreGateway", "sqlite-req/s"}, show: perSec, ratio: times, target: "≥ 0.8× SQLite",
			met: func(_, r float64) bool { return r >= 0.8 }},
		{name: "p99 of those requests", m: metric{serverPkg, "BenchmarkStoreGateway", "postgres-p99-ns"},
			base: &metric{serverPkg, "BenchmarkStoreGateway", "sqlite-p99-ns"}, show: dur, ratio: times},
		{name: "echo runs/s, 16 clients, in-process guest (the store's share of a run at its largest), on PostgreSQL against SQLite", m: metric{serverPkg, "BenchmarkStoreEcho/inprocess", "postgres-runs/s"},
			base: &metric{serverPkg, "BenchmarkStoreEcho/inprocess", "sqlite-runs/s"}, show: perSec, ratio: times, target: "≥ 0.8× SQLite",
			met: func(_, r float64) bool { return r >= 0.8 }},
		{name: "echo runs/s, 16 clients, fresh linux sandbox per run (the default), on PostgreSQL against SQLite", m: metric{serverPkg, "BenchmarkStoreEcho/linux", "postgres-runs/s"},
			base: &metric{serverPkg, "BenchmarkStoreEcho/linux", "sqlite-runs/s"}, show: perSec, ratio: times, target: "≥ 0.8× SQLite",
			met: func(_, r float64) bool { return r >= 0.8 }},
		{name: "p99 of those runs", m: metric{serverPkg, "BenchmarkStoreEcho/linux", "postgres-p99-ns"},
			base: &metric{serverPkg, "BenchmarkStoreEcho/linux", "sqlite-p99-ns"}, show: dur, ratio: times},
		{name: "three nodes on one PostgreSQL, the audited read (32 clients spread over them), against one of them alone with the same clients, all on this machine's 2 cores", m: metric{serverPkg, "BenchmarkNodes/gateway", "3-node-req/s"},
			base: &metric{serverPkg, "BenchmarkNodes/gateway", "1-node-req/s"}, show: perSec, ratio: times},
		{name: "three nodes on one PostgreSQL, echo runs/s in the linux sandbox (16 clients spread over them), against one of them alone, all on this machine's 2 cores", m: metric{serverPkg, "BenchmarkNodes/echo-linux", "3-node-runs/s"},
			base: &metric{serverPkg, "BenchmarkNodes/echo-linux", "1-node-runs/s"}, show: perSec, ratio: times},
		{name: "p99 of those runs, three nodes against one", m: metric{serverPkg, "BenchmarkNodes/echo-linux", "3-node-p99-ns"},
			base: &metric{serverPkg, "BenchmarkNodes/echo-linux", "1-node-p99-ns"}, show: dur, ratio: times},
	}, note: nodesNote},
	{title: "Server memory", figures: []figure{
		{name: "resident memory at rest (agents deployed, pool ready)", m: metric{serverPkg, "BenchmarkServerMemoryStreams", "rest-MiB"}, show: mib},
		{name: "resident memory with 1,000 SSE streams open", m: metric{serverPkg, "BenchmarkServerMemoryStreams", "streams-MiB"}, show: mib},
		{name: "memory per open stream (connection, run, guest channel, buffers)", m: metric{serverPkg, "BenchmarkServerMemoryStreams", "KiB/stream"}, show: kib},
	}, note: "The 1,000 clients run in another process, so only the server is measured; each stream has sent its first chunk and its agent (in-process guest) waits before the next."},
	{title: "Data at rest and the audit trail", figures: []figure{
		{name: "audit appends, 32 concurrent writers, each commit synced", m: metric{"./internal/audit", "BenchmarkAppendConcurrent/writers=32", "records/s"},
			base: &metric{"./internal/audit", "BenchmarkAppendSerial", "records/s"}, show: perSec, ratio: times, target: "≥ 5,000 records/s",
			met: func(m, _ float64) bool { return m >= 5000 }},
		{name: "audit appends, 64 concurrent writers", m: metric{"./internal/audit", "BenchmarkAppendConcurrent/writers=64", "records/s"},
			base: &metric{"./internal/audit", "BenchmarkAppendSerial", "records/s"}, show: perSec, ratio: times, target: "≥ 5,000 records/s",
			met: func(m, _ float64) bool { return m >= 5000 }},
		{name: "seal 1 KiB (AES-256-GCM, key id, AAD)", m: metric{"./internal/keyring", "BenchmarkSeal/1KiB", "ns/op"}, show: dur},
		{name: "open 1 KiB", m: metric{"./internal/keyring", "BenchmarkOpen/1KiB", "ns/op"}, show: dur},
		{name: "seal 1 MiB", m: metric{"./internal/keyring", "BenchmarkSeal/1MiB", "ns/op"}, show: dur},
		{name: "open 1 MiB", m: metric{"./internal/keyring", "BenchmarkOpen/1MiB", "ns/op"}, show: dur},
	}},
	{title: "Invocation listing (the console's invocations view: 100,000 records, 50 a page, paged by cursor)", figures: []figure{
		{name: "a page over loopback HTTP, `GET /api/v1/invocations` with an owner's API key (authenticated, rate-limited, audited durably before the answer), mean over all 2,000 pages", m: metric{apiPkg, "BenchmarkInvocationListHTTP/all", "ns/op"},
			show: dur, target: "≤ 100 ms a page", met: func(m, _ float64) bool { return m <= 100e6 }},
		{name: "the same, p50 of the pages", m: metric{apiPkg, "BenchmarkInvocationListHTTP/all", "p50-ns"},
			show: dur, target: "≤ 100 ms a page", met: func(m, _ float64) bool { return m <= 100e6 }},
		{name: "the same, p99 of the pages", m: metric{apiPkg, "BenchmarkInvocationListHTTP/all", "p99-ns"},
			show: dur, target: "≤ 100 ms a page", met: func(m, _ float64) bool { return m <= 100e6 }},
		{name: "the same filtered by agent and status, p99 of the pages", m: metric{apiPkg, "BenchmarkInvocationListHTTP/agent-status", "p99-ns"},
			show: dur, target: "≤ 100 ms a page", met: func(m, _ float64) bool { return m <= 100e6 }},
		{name: "a page from the store by cursor (sealed payloads opened)", m: metric{sqlitePkg, "BenchmarkInvocationPage/cursor", "ns/op"}, show: dur},
		{name: "the same, one agent's", m: metric{sqlitePkg, "BenchmarkInvocationPage/cursor-agent", "ns/op"}, show: dur},
		{name: "the same, one end user's completed runs (no index on the user: rows scanned in time order)", m: metric{sqlitePkg, "BenchmarkInvocationPage/cursor-user-status", "ns/op"}, show: dur},
		{name: "a page from the store by offset, 90,000 rows in (what the cursor saves)", m: metric{sqlitePkg, "BenchmarkInvocationPageOffset", "ns/op"}, show: dur},
	}, note: invocationListNote},
	{title: "The console's other lists, paged in the store (a page of 20 from a list of 10,000 rows, beside the same page from a list of 100 in the same run)", figures: []figure{
		{name: "keys of a project", m: metric{sqlitePkg, "BenchmarkAPIKeysPage/keys=10000", "ns/op"}, base: &metric{sqlitePkg, "BenchmarkAPIKeysPage/keys=100", "ns/op"},
			show: dur, ratio: times, target: "≤ 2× (a page reads only its rows)", met: func(_, r float64) bool { return r <= 2 }},
		{name: "versions of an agent", m: metric{sqlitePkg, "BenchmarkAgentVersionsPage/versions=10000", "ns/op"}, base: &metric{sqlitePkg, "BenchmarkAgentVersionsPage/versions=100", "ns/op"},
			show: dur, ratio: times, target: "≤ 2× (a page reads only its rows)", met: func(_, r float64) bool { return r <= 2 }},
		{name: "agents of a project", m: metric{sqlitePkg, "BenchmarkAgentVersionsPage/agents=10000", "ns/op"}, base: &metric{sqlitePkg, "BenchmarkAgentVersionsPage/agents=100", "ns/op"},
			show: dur, ratio: times, target: "≤ 2× (a page reads only its rows)", met: func(_, r float64) bool { return r <= 2 }},
	}, note: "BenchmarkAPIKeysPage and BenchmarkAgentVersionsPage (internal/store/sqlite/paging_test.go) read one page by cursor from the middle or end of each list, " +
		"through the store's own query (the one `GET /api/v1/keys`, `/agents` and `/agents/{id}/versions` run). Blocks (in memory or Redis) and persistent memory " +
		"page the same way at their sources; their tests check that a page reads only its rows."},
	{title: "Hot functions (regression guard: compare with the previous report)", figures: []figure{
		{name: "API request path of a guarded read, no network: routing, key authentication (cached), rate limit, authorization, JSON", m: metric{"./internal/api", "BenchmarkGuardedRead", "ns/op"}, show: dur},
		{name: "allocations of that path", m: metric{"./internal/api", "BenchmarkGuardedRead", "allocs/op"}, show: count},
		{name: "API `POST /run` path without network or audit: input decoding and validation, invocation records, in-process guest", m: metric{"./internal/api", "BenchmarkRunPath", "ns/op"}, show: dur},
		{name: "structured-string encoding of a chunk", m: metric{"./internal/value", "BenchmarkEncode", "ns/op"}, show: dur},
		{name: "structured-string decoding (clients)", m: metric{"./internal/value", "BenchmarkDecode", "ns/op"}, show: dur},
		{name: "sandbox spec of an invocation", m: metric{"./internal/executor", "BenchmarkSpec", "ns/op"}, show: dur},
		{name: "record an invocation (create + finish, sealed payload)", m: metric{"./internal/store/sqlite", "BenchmarkCreateFinishInvocation/serial", "ns/op"}, show: dur},
	}},
}

// invocationListNote says what the listing rows measure.
const invocationListNote = "BenchmarkInvocationListHTTP (internal/api/bench_list_test.go) seeds 100,000 finished invocations of three agents " +
	"in two projects with one INSERT (payloads as plain JSON, which the store also reads), serves the API on loopback with " +
	"`httptest`, and walks every page by `next_cursor`, 50 a page; a page is request sent to body read. Each page also " +
	"commits its audit record with a sync before the answer; the tail (p99) on this shared machine was not profiled. BenchmarkInvocationPage (internal/store/sqlite) walks the same number " +
	"with sealed payloads through the store alone. A cursor page is a range on the `(created_at, id)` indexes the table " +
	"already had, so the last page costs what the first does; an offset reads every row it skips."

// echoNote says what the throughput rows compare.
const echoNote = "BenchmarkEchoThroughput (internal/server/bench_echo_test.go): 16 Go clients over loopback HTTP, each with a keep-alive connection " +
	"and an API key (`Authorization: Bearer`), POST `/api/v1/agents/{id}/run` of examples/hello's `echo` entrypoint " +
	"(`[1, \"two\"]`, `{\"k\": true}`), each sending its next request when the last is answered. runagent runs with its defaults " +
	"(API keys, rate limit, every run in a fresh sandbox from the warm pool, its audit record committed durably before the answer). " +
	"The baseline, started in the same benchmark on its own loopback port, is internal/server/testdata/baseline/fastapi_echo.py: " +
	"Debian's `python3-fastapi` 0.92 on `python3-uvicorn` 0.17 (one process, asyncio loop, h11, access log off) under /usr/bin/python3, " +
	"checking the same header against its key in constant time, parsing the body into a pydantic model, calling the same echo function " +
	"in its own process, then inserting an invocation row into SQLite and committing it (WAL, `synchronous=FULL`: the commit syncs the log, " +
	"as runagent's audit commits do; one commit per run, on the event loop) before answering with RunAgent's envelope and a structured string. " +
	"Both servers run throughout; each round drives one for 1.5 s, then the other, the order swapped each round, 2 rounds per run " +
	"(after 0.5 s of uncounted warm-up each); runs/s is the runs answered over the time from the first request to the last answer, " +
	"latency is request sent to answer read."

// nodesNote says what the rows of issue 18 compare.
const nodesNote = "BenchmarkStoreGateway, BenchmarkStoreEcho and BenchmarkNodes (internal/server/bench_postgres_test.go): the loads of " +
	"BenchmarkGatewayFull and BenchmarkEchoThroughput, with their clients, on servers whose store is PostgreSQL 15 " +
	"(Debian's, started by pgtest on loopback in each run) and, in the same run, SQLite (the default); and on three nodes " +
	"sharing one PostgreSQL database and master key against one of them alone (no Redis: each node limits its own rates). " +
	"The contenders of a benchmark all run throughout and are driven in turn, 1 s (gateway) or 1.5 s (echo) each per round, " +
	"the order reversed every round, 2 rounds per run, after an uncounted warm-up. " +
	"Durability is not traded for speed on either side: PostgreSQL runs with its durable defaults (fsync, synchronous_commit " +
	"and full_page_writes on), so every audit batch flushes the WAL (fdatasync) before it returns; a plain run's invocation " +
	"record's insert and update are committed with synchronous_commit off, made durable by that audit batch's flush before the " +
	"answer (internal/store/postgres/doc.go); on SQLite the audit batch is synced to the audit journal (one fdatasync) before the " +
	"answer, and invocation records are committed with synchronous=NORMAL (synced at the WAL's checkpoints, not at each commit). " +
	"Three nodes here are three servers, PostgreSQL and the clients on the same 2 cores: the row says what nodes cost each " +
	"other on one machine, not what three machines would serve."

func (f figure) row(res results) string {
	med, lo, hi, ok := res.get(f.m)
	measured, baseline, ratio, met := "—", "—", "—", "—"
	if ok {
		measured = fmt.Sprintf("%s (%s–%s)", f.show(med), f.show(lo), f.show(hi))
	}
	if f.base != nil {
		if bmed, _, _, bok := res.get(*f.base); bok {
			show := f.show
			if f.showB != nil {
				show = f.showB
			}
			baseline = show(bmed)
			if ok && f.ratio != nil {
				var r float64
				ratio, r = f.ratio(med, bmed)
				if f.met != nil {
					met = verdict(f.met(med, r))
				}
			}
		}
	} else if ok && f.met != nil {
		met = verdict(f.met(med, 0))
	}
	target := f.target
	if target == "" {
		target = "—"
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s |\n", f.name, measured, baseline, ratio, target, met)
}

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// dur formats nanoseconds.
func dur(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	case ns >= 1e4:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// count formats a whole number.
func count(v float64) string { return thousands(v) }

// kib formats kibibytes.
func kib(v float64) string { return fmt.Sprintf("%.0f KiB", v) }

// mib formats mebibytes.
func mib(v float64) string { return fmt.Sprintf("%.1f MiB", v) }

// perSec formats a rate.
func perSec(v float64) string { return thousands(v) + "/s" }

// startsPerSec formats a baseline in ns/op as starts per second per core.
func startsPerSec(ns float64) string { return thousands(1e9/ns) + " bare starts/s" }

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// times is measured/baseline, "2.1×".
func times(m, b float64) (string, float64) {
	r := m / b
	return fmt.Sprintf("%.2f×", r), r
}

// kept is the throughput kept: baseline time / measured time.
func kept(m, b float64) (string, float64) {
	r := b / m
	return fmt.Sprintf("%.1f %% of the throughput", 100*r), r
}

// fraction compares a rate with the baseline's rate (ns/op).
func fraction(m, b float64) (string, float64) {
	r := m / (1e9 / b)
	return fmt.Sprintf("%.2f× bare starts", r), r
}

// findings is what the profiles said and what stands between a figure
// and its target; kept here so that every generated report has it.
const findings = `## What the profiles showed, and what stands in the way

- **The fork server (issue 16; the default since 2026-12-07).** Each agent version in use has a template — a
  sandbox whose Python imported the agent — and every run is forked from it into fresh namespaces, its own
  cgroup, layers, landlock and filters. Timed inside a run's set-up (phase marks in the shim): unsharing the
  six namespaces and writing the id maps ~0.8 ms, the /tmp and /agent overlays ~0.35 ms, the second fork
  (PID 1 of the run) ~0.35 ms, /proc ~0.2 ms, loopback ~0.3 ms, landlock, capabilities and the filter
  ~1.4 ms at first — ~0.5 ms once the rules on what runs share with the template were opened once in the
  template; on the host, the cgroup (made, joined, removed: ~0.7 ms of a run on cgroup v1's five
  hierarchies) and the checks from /proc. A run's start, fork to result, is ~4 ms: 0.5× a bare
  python3 -c (target ≤ 1.2×: met), and 150–190 runs are made and destroyed per second per core
  (≥ 100: met; a started sandbox makes ~30). The template's own start is the cold start row above (once per
  agent version), still ~1.5× a bare Python: the supervisor's mounts and restrictions (~1.9 ms) and Python
  under seccomp with the shim and the agent's import (~1.8 ms).
- **Sandboxes per second per core with a sandbox started each (no fork server, ~28).** Each starts its own
  Python (~8 ms of CPU here: 125 bare starts/s) and its own Go supervisor: only sharing one interpreter
  could reach 100/s/core, which is what the fork server does.
- **Warm-pool first byte (target p50 ≤ 1 ms, issue 16's: not met, ~1.5–1.9 ms).** Until 2026-12-07 this
  benchmark ran the in-process echo guest, not the sandbox. Through the linux sandbox, with the fork server,
  timed with temporary timers in the handler (2 runs of 300 requests, medians): taking the pooled run
  ~35 µs, the guest round trip of its one call ~360–400 µs (the first call in a fresh fork, its pages copied
  from the template as they are written), recording the invocation ~100 µs and its end ~75 µs (SQLite,
  synchronous=NORMAL: no sync), and the audit record's durable append 390–960 µs, of which the journal's
  fdatasync alone is 240–630 µs on this machine's virtual disk (~110 µs p50, ~570 µs p90 for a lone
  fdatasync with nothing else running). The run's disk made no difference (a tmpfs run measured the same).
  The durable record before the answer and a fresh sandbox's first call already take ~0.6–1.3 ms between
  them, so 1 ms at p50 is out of reach on this disk while every answer waits for its record to be synced.
- **Audited requests (target ≥ 50 % of the bare handler: not met in this report's run, 0.49×; 0.41–0.53×
  across quiet runs, 0.36–0.42× before the journal in the same runs).** Authentication and the rate limit cost ~10–15 %;
  the durable audit record is the rest. The record is
  now made durable in a journal of the audit Log's own (<data dir>/audit.journal, internal/audit): one pwrite
  and one fdatasync per batch into a file filled with zeros ahead, so the sync writes data and no metadata;
  requests are answered then, and an indexer copies the records into SQLite behind them in unsynced
  transactions, 16 rows per INSERT, pausing 2 ms between transactions unless a reader waits (readers, purges
  and shutdown wait for it; a crash is recovered from the journal at the next start or by the CLI's audit
  commands). Measured on the audit writer alone (BenchmarkAppendJournal against BenchmarkAppendConcurrent,
  same run): 32 writers 70,000–129,000 records/s against ~30,000–34,000, one writer 17,000–35,000 against
  ~4,600 (a durable append ~30–55 µs instead of ~215 µs). On the gateway, interleaved runs of the old and new
  binaries (5–6 rounds each, ratio per round): median 0.43 against 0.36; -count 3 runs twice each: 0.45
  against 0.42. pprof (GatewayFull, 40,000 requests): the writer and its fdatasyncs are ~4 % of all CPU
  (~25 % before), the indexer ~15–17 %: per record ~13.5 µs in a 32-record transaction, of which the five
  secondary indexes are ~5.5 µs (7.9 µs with them dropped; the chain trigger and the CHECKs cost little).
  What stands in the way, measured: (1) the indexer's CPU on 2 shared cores — with indexing switched off (an
  experiment, not a mode) Full reached 15,400–18,700 req/s against ~28,000 for Bare in neighbouring
  runs, ~0.55–0.65× — which only fewer secondary indexes
  (a query-speed trade for audit list filters) or a cheaper store would remove; (2) the disk's flush latency,
  which varies here from run to run: an fdatasync takes ~50 µs in isolation but averages 60–900 µs inside the
  benchmark, and with 32 clients the batch (~12 records) waits for it; more syncs in flight (tried: three)
  overlapped them but made smaller batches, more fsyncs and goroutine hand-offs, and the ratio fell to
  0.28; a 100 µs gathering window or a 10 ms indexer pause changed nothing measurable. Not done: the
  invocation's writes in the same journal batch (they are not on this read's path).
- **Echo throughput against FastAPI (targets ≥ 1.0× its runs/s and ≤ 2× its p99: not met, ~0.25×).** With 16
  clients and the fork server runagent answers ~370–390 echo runs/s on a quiet machine (~220–260 while
  other work shares the 2 cores), with the default 1 GiB disk (a recycled, wiped scratch image: before
  recycling each run made its own, a copy, a loop device and a mount, ~12 % of throughput) or 128 MiB (a
  tmpfs) alike, against ~70 with a sandbox started per run (--fork-server=false) and ~1,500–2,000 for
  FastAPI, whose one thread spends ~0.5–0.7 ms per run (h11, pydantic, one synced commit) and starts
  nothing. What each run still costs here, all of it per run by design: six new namespaces, a cgroup on
  five v1 hierarchies, the run's layers and landlock, two Python forks, and the gateway's authentication,
  records and durable audit. At ~1,500 runs/s on 2 cores all of that would have to fit in ~1.3 ms of CPU.
  The namespaces alone do not fit: BenchmarkNamespaceFloor starts /bin/true on both cores in the same six
  fresh namespaces, with nothing of runagent running, and reaches about the FastAPI baseline's rate or less
  (the rows above); the namespace sets by themselves, made and torn down with nothing else on the machine,
  top out at ~1,700–2,000/s (a network namespace's creation and teardown is most of it). A fresh sandbox
  per run in fresh namespaces, which the issue asks for, therefore cannot reach 1.0× an in-process server
  on this machine, whatever runagent does around it. What would: namespaces and cgroups kept and cleaned
  between runs of the same version (a weaker isolation between consecutive runs), or
  a sandbox kept per user (resources.reuse_per_user) at the price of the fresh sandbox per run. The process
  backend (~50 runs/s) has no fork server: each run starts the supervisor binary and a Python and copies
  the agent's directory; it is for development.
- **A run with persistent memory (target ≤ 1.2× the same run without: met, with little to spare).** Its store is
  mounted and its key loaded from the user's last run (Acquire ~0.15-0.2 ms), and it takes a run from the
  warm pool like any other: the pooled run, forked and initialised before anyone knew whose memory it
  would need, gets the store's folders at its invoke, attached by its waiter (the run's parent, which
  holds the capabilities of the run's namespaces; the run has none and never holds the waiter's channel)
  after the run's landlock ruleset and seccomp filter, which landlock's walk across the mount point
  to the rules on /agent and /tmp makes no matter. That costs ~0.2 ms (two folders, three directories
  made, move_mount, one round trip) plus waking the waiter and back. Before, the run was forked on demand
  with its mounts and paid the fork (~4 ms to ready) and joining its cgroup on a quiet node (an RCU grace
  period): 5.7 ms against 2.2 ms (2.6×). Eight runs of the benchmark on the shared 2-core machine gave
  1.17×, 1.12×, 1.16×, 1.17×, 1.08×, 1.19×, 1.16×, 1.14× (p50 ~2.4-3.0 ms against ~2.2-2.6 ms): within
  the target, with little to spare; what is left is the store's Acquire and the attach. A run with
  memory whose pool has no ready forked run (the template down, the pool empty) is still forked on
  demand.
- **Streams.** ~6 µs per chunk above a bare handler replaying the same bytes: the guest frame decode, the
  structured-string encoding and one JSON envelope and flush per chunk; well above the 20,000 chunks/s
  target.

- **Idle sandboxes (≥ 200 held: met; ≤ 1 MiB each, issue 16's: met by forked runs, ~0.1 MiB; not by started
  sandboxes, ~3–9 MiB).** A forked run waiting in the pool shares the template's pages (its interpreter and
  the agent's imports; the template's collector is frozen before forking, so a run's collector does not
  copy them to mark them); what is its own is a few pages, its page tables, its kernel objects and the
  waiter that reports its status. A started sandbox holds a Go supervisor and a Python of its own.

- **Agent environments (all three targets met).**
  A redeploy whose environment is built already takes ~19 ms (median; target ≤ 1 s), the same as the
  same agent with no requirements (1.00×; 0.8–1.2× across runs on a loaded machine): the Preparer
  reads requirements.txt, computes the key and finds the environment with one stat; the rest is the
  load check's cold start (a linux sandbox importing the entrypoint), unpacking, and the synced SQLite
  commits of the version and its build record. A cold start of an agent importing 20 small packages
  from /env is 0.99× the same agent with those packages in its own directory (target ≤ 1.2×; runs
  0.9–1.1×): /env is one read-only bind, and site.addsitedir adds one sys.path entry whose directory
  listing Python's path finder caches, so an import found in the environment costs no more than one
  found in the agent's directory (an overlay over an idmapped bind). Mounted but unused, the
  environment is within noise of none (1.02×). What costs is importing at all: the 20 packages (two
  modules each, bytecode present) make the cold start 1.3× a hello agent's, from /env or not; an
  agent's imports, not its environment, set its cold start. Building an environment of 10 small
  wheels takes ~0.53 s: 0.77× the plain venv + pip --python install (target ≤ 1.3×), which starts
  pip twice (--python re-runs it under the venv's interpreter, ~0.23 s) and makes the venv (~45 ms);
  against one pip install --target (0.55 s) the builder is 0.97×. The linux build sandbox
  (supervisor, mounts, scratch disk, the egress proxy's hop on every index request) costs about as
  much as running pip as a plain child process (0.53 s against 0.54 s here; 30–100 ms more on a
  loaded machine); pip's start-up and resolution are the rest.

- **PostgreSQL beside SQLite, one node against three (issue 18; target ≥ 0.8× SQLite).** On a quiet
  machine: echo runs 1.02× with the in-process guest and 0.94× in the linux sandbox (met); the audited
  read 0.76× (not met; 0.89× in a report taken while other work loaded the 2 cores, its runs spreading
  0.63–1.05×). This report, also quiet (2026-12-07, after the console): 0.96×, 0.95× and 0.78×. Without the audit record (an experiment, two runs, loaded machine)
  PostgreSQL read as fast as SQLite (0.86×, 1.11×): the invocation read's round trip is not the gap; the audit
  append is. pg_stat_statements over 3 s of the audited read showed what an audit batch cost: BEGIN, the
  cluster-wide writer lock, the chain head, a 16-row INSERT and ~6 single-row INSERTs, COMMIT (~12 round
  trips, each a wake-up of a server process), and database/sql kept 2 idle connections, so the others went
  back to the pool after each use and their prepared statements were deallocated and prepared again. Now the
  pool keeps its connections, and a node that knows the head (nobody else appended since its last batch)
  appends its batch with one multi-row INSERT that commits durably on its own: one round trip, ordered
  against every other append by the chain trigger's advisory lock (the writer lock is not needed for it).
  Alternating the binaries before and after, 3 runs each on the loaded machine: 0.31/0.40/0.73× before,
  0.38/0.57/0.66× after. What is left: PostgreSQL syncs more than SQLite does here. Every commit flushes the
  WAL, the invocation record's insert and update too, which SQLite commits with synchronous=NORMAL (unsynced);
  echo runs with the in-process guest make two such commits per run and pay for them (0.69×). Since then
  a plain run's two are committed with synchronous_commit off (a second, smaller pool), as SQLite commits
  them unsynced: the run's audit record, appended durably after them and before the answer, flushes the
  one WAL up to its own commit and so theirs too; no answered run's record is lost to a crash of PostgreSQL
  (TestPostgresCrashKeepsAcknowledgedRuns crashes it under load; streams, background runs' results and logs
  stay synced; internal/store/postgres/doc.go). The two writes alone, 16 writers
  (BenchmarkInvocationWrites): 0.49–0.64 ms synced, 0.12–0.25 ms lazy per run. End to end the change drowned
  in the machine's load (average 15–26 while measured): echo with the in-process guest, binaries alternated,
  6 runs each (the last 3 with the lazy pool at its final size), 0.51–1.38× before and 0.39–1.02× after
  (medians 0.87× and 0.83×): not a measured gain there.
  The chain trigger takes ~20 µs of execution per record (pg_stat_statements; it reads the head for every row); a
  statement-level check would cost less, not done. Three nodes on one machine serve 0.53× the audited
  reads of one: the servers, PostgreSQL and the clients share the 2 cores, and every audited read extends
  the one chain, so with three nodes a batch usually finds that another node moved the head and goes the
  chained way (the writer and chain locks, the head, the INSERT, COMMIT: the chain lock held for three round
  trips and a WAL flush), with smaller batches per node; the chain, serialized cluster-wide, caps the
  cluster's audited requests. Reading the head under the lock in one round trip (a function in a migration)
  or per-node chains with a verifier over all of them would lift it; not done. Echo runs in the sandbox on
  three nodes: 0.87× one node (three servers, their templates and PostgreSQL share the 2 cores; the store
  is not the limit at ~200 runs/s). Audit appends under contention, 4 nodes × 8 writers for 3 s: before, 33,043 of 60,741 appends
  failed (a Log read the head again once, then gave up); now every one succeeds on its first call
  (TestAuditAppendsUnderContention: ~14,000–25,000 appends under -race, the trail verified whole).

- **Server memory.** ~56 KiB per open stream: the HTTP connection and its buffers, the run's goroutines
  and guest channel, the output recorder (measured after returning freed memory to the OS).
`
