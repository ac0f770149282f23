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
	{"./internal/sandbox/linux", []string{"BenchmarkIdleSandboxes"}, "1x", "1x"},
	{"./internal/server", []string{"BenchmarkWarmDispatchLinux", "BenchmarkBareHTTPBaseline", "BenchmarkRequestOverhead", "BenchmarkRequestOverheadAuthenticated"}, "1000x", "30x"},
	{"./internal/server", []string{"BenchmarkGatewayFull", "BenchmarkGatewayNoAudit", "BenchmarkGatewayBare"}, "4000x", "200x"},
	{"./internal/server", []string{"BenchmarkStreamSSE", "BenchmarkStreamSSEBaseline", "BenchmarkStreamWebSocket", "BenchmarkStreamWebSocketBaseline"}, "20x", "2x"},
	{"./internal/server", []string{"BenchmarkServerMemoryStreams"}, "1x", "1x"},
	{"./internal/ratelimit", []string{"BenchmarkMemoryAllow"}, "500000x", "1000x"},
	{"./internal/auth", []string{"BenchmarkAuthenticate"}, "20000x", "100x"},
	{"./internal/audit", []string{"BenchmarkAppendConcurrent", "BenchmarkAppendSerial"}, "1s", "50ms"},
	{"./internal/keyring", []string{"BenchmarkSeal", "BenchmarkOpen"}, "300x", "5x"},
	{"./internal/store/sqlite", []string{"BenchmarkCreateFinishInvocation"}, "500x", "10x"},
	{"./internal/api", []string{"BenchmarkGuardedRead", "BenchmarkRunPath"}, "3000x", "50x"},
	{"./internal/value", []string{"BenchmarkEncode", "BenchmarkDecode"}, "200000x", "1000x"},
	{"./internal/executor", []string{"BenchmarkSpec"}, "100000x", "1000x"},
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
)

var sections = []section{
	{title: "Sandbox (linux backend: namespaces, cgroups, scratch disk, rlimits, seccomp, landlock)", figures: []figure{
		{name: "cold start of a Python hello agent, start to result, as the server runs it", m: metric{linuxPkg, "BenchmarkLinuxStartInvokeServer", "to-result-ns/op"},
			base: &metric{linuxPkg, "BenchmarkBarePython", "ns/op"}, show: dur, ratio: times, target: "≤ 1.5× bare `python3 -c`",
			met: func(_, r float64) bool { return r <= 1.5 }},
		{name: "sandboxes created and destroyed per second per core", m: metric{linuxPkg, "BenchmarkLinuxCreateDestroy", "sandboxes/s/core"},
			base: &metric{linuxPkg, "BenchmarkBarePython", "ns/op"}, show: perSec, showB: startsPerSec, ratio: fraction, target: "≥ 100 /s/core",
			met: func(m, _ float64) bool { return m >= 100 }},
		{name: "warm-pool `POST /run`, request to first byte, p50", m: metric{serverPkg, "BenchmarkWarmDispatchLinux", "p50-ttfb-ns"},
			base: &metric{serverPkg, "BenchmarkBareHTTPBaseline", "ns/op"}, show: dur, ratio: times, target: "p50 ≤ 2 ms",
			met: func(m, _ float64) bool { return m <= 2e6 }},
		{name: "warm-pool `POST /run`, request to first byte, p99", m: metric{serverPkg, "BenchmarkWarmDispatchLinux", "p99-ttfb-ns"},
			base: &metric{serverPkg, "BenchmarkBareHTTPBaseline", "ns/op"}, show: dur, ratio: times, target: "p99 ≤ 10 ms",
			met: func(m, _ float64) bool { return m <= 10e6 }},
		{name: "idle warm sandboxes held at once (started, agent imported, waiting)", m: metric{linuxPkg, "BenchmarkIdleSandboxes", "sandboxes-held"},
			show: count, target: "≥ 200 on 2 cores", met: func(m, _ float64) bool { return m >= 200 }},
		{name: "host memory per idle sandbox (drop in MemAvailable: processes, kernel, mounts)", m: metric{linuxPkg, "BenchmarkIdleSandboxes", "host-MiB/sandbox"},
			show: mib, target: "≤ 3 MiB", met: func(m, _ float64) bool { return m <= 3 }},
		{name: "proportional set size of an idle sandbox's processes (supervisor + Python)", m: metric{linuxPkg, "BenchmarkIdleSandboxes", "pss-MiB/sandbox"},
			show: mib},
	}, note: "The baseline of the sandbox figures is Debian's `/usr/bin/python3 -c 'print(1)'` started bare in the same run; of the warm-pool figures, a bare Go `net/http` handler doing the same JSON round trip over loopback. The linux backend needs root: without it these rows are empty and the notes say so."},
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
		{name: "chunks per second through a WebSocket", m: metric{serverPkg, "BenchmarkStreamWebSocket", "chunks/s"},
			base: &metric{serverPkg, "BenchmarkStreamWebSocketBaseline", "chunks/s"}, show: perSec, ratio: times, target: "≥ 20,000 chunks/s per stream",
			met: func(m, _ float64) bool { return m >= 20000 }},
		{name: "time per chunk, WebSocket", m: metric{serverPkg, "BenchmarkStreamWebSocket", "ns/chunk"},
			base: &metric{serverPkg, "BenchmarkStreamWebSocketBaseline", "ns/chunk"}, show: dur, ratio: times},
	}, note: "Each baseline replays the bytes (SSE) or messages (WebSocket) of one real stream from a bare handler to the same client: the difference is what the platform adds per chunk (guest frame, value encoding, envelope, flush)."},
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

- **Cold start (target ≤ 1.5×, measured ~2×).** Python's own start with the shim (~8.5 ms) plus one Go
  start of the in-sandbox supervisor (~2.7 ms) already exceed the budget. What would remove it: a zygote —
  a Python with the shim imported, forked per sandbox into fresh namespaces — and a supervisor that is
  not a fresh Go process per sandbox.
- **Sandboxes per second per core (target ≥ 100, measured ~27).** The same two process starts, plus
  cgroup and scratch set-up and an ext4 unmount at teardown that waits on the host disk. Scratch disks are
  copied from a formatted template and prepared ahead; the zygote is the next step, and tmpfs scratch for
  agents that need no disk quota.
- **Warm-pool first byte (target p50 ≤ 2 ms).** Answered after the invocation is recorded and audited:
  two SQLite writes and one durable audit commit, then HTTP and the guest round trip.
- **Audited requests (target ≥ 50 % of the bare handler).** Authentication and the rate limit cost ~5 %;
  the durable audit record is the rest. pprof (GatewayFull): SQLite parsed every query on every call
  (~17 % of CPU) — hot queries are now prepared once per pool (+20 % bare, +16 % audited). What remains
  is the single audit writer: an fdatasync per commit (~0.3 ms here) and ~30 µs of CPU per record (the
  chain-check trigger and five indexes). The writer now waits up to 300 µs for a fuller batch when the
  previous one had company (16 → 30 records per commit, +17 % in the audit benchmark, +3 % on gateway
  reads). Next: share one commit between an invocation's writes and its audit record, and drop indexes
  the queries do not need.
- **Streams.** ~6 µs per chunk above a bare handler replaying the same bytes: the guest frame decode, the
  structured-string encoding and one JSON envelope and flush per chunk; well above the 20,000 chunks/s
  target.

- **Idle sandboxes (≥ 200 held: met; ≤ 3 MiB each: marginal).** The host's available memory drops by
  ~2.8 MiB per idle sandbox (median; a noisy measure on a shared machine: 2.2–7.5 MiB over the runs);
  their processes' proportional set size is 6.9 MiB, most of it the Python interpreter's pages, which the
  page cache holds once for all. A Go supervisor and a Python with the shim and agent imported per
  sandbox: the zygote (above) would share the interpreter's heap too, and one supervisor per host instead
  of per sandbox would remove a Go runtime from each.

- **Server memory.** ~57 KiB per open stream: the HTTP connection and its buffers, the run's goroutines
  and guest channel, the output recorder (measured after returning freed memory to the OS).
`
