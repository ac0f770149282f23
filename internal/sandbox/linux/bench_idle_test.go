package linux

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// idleSandboxes is how many warm sandboxes BenchmarkIdleSandboxes holds
// at once (DESIGN: at least 200 on a 2-core machine).
const idleSandboxes = 200

// BenchmarkIdleSandboxes holds idleSandboxes sandboxes as the warm pool
// keeps them — started with real cgroups and a scratch disk, the agent
// imported, waiting for an invoke — and reports what they cost the host:
// the proportional set size of their processes (supervisor and Python;
// pages shared between sandboxes counted once in all) and the drop in the
// host's available memory (kernel objects, mounts and cgroups included),
// per sandbox.
func BenchmarkIdleSandboxes(b *testing.B) {
	e := mustEnv(b)
	e.backend.cfg.Cgroups = realCgroups(b)
	e.backend.cfg.Scratch = realScratch(b)
	dir := writeAgent(b, map[string]string{"main.py": "def f(x):\n    return x\n"})
	spec := sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: systemPython, Env: quickExit,
		Limits: sandbox.DefaultLimits}
	init := guest.Init{AgentDir: AgentMount, Entrypoints: refs("f")}
	holdIdle(b, init,
		func(ctx context.Context) (sandbox.Sandbox, error) { return e.backend.Start(ctx, spec) },
		func(sb sandbox.Sandbox) int64 { return treePSS(sb.(*linuxSandbox).pid) })
}

// BenchmarkIdleForkedSandboxes is BenchmarkIdleSandboxes for runs forked
// from one template (the server's default): each waits as a pooled run
// does (its own namespaces, cgroup and disk; the agent imported in the
// template), and its cost is its processes' (the run and its waiter,
// pages shared with the template counted once in all) and the drop in
// the host's available memory, per run; the template's own is outside.
func BenchmarkIdleForkedSandboxes(b *testing.B) {
	e := mustEnv(b)
	e.backend.cfg.Cgroups = realCgroups(b)
	e.backend.cfg.Scratch = realScratch(b)
	tmpl, _, init := startTemplate(b, e, "def f(x):\n    return x\n", sandbox.Spec{Limits: sandbox.DefaultLimits}, "f")
	holdIdle(b, init,
		func(ctx context.Context) (sandbox.Sandbox, error) { return tmpl.Fork(ctx, "") },
		func(sb sandbox.Sandbox) int64 {
			pid := sb.(*forkedSandbox).pid
			return treePSS(pid) + treePSS(parentPID(pid), pid)
		})
}

// holdIdle holds idleSandboxes sandboxes made by start and initialised
// with init, at once, in each iteration, and reports how many it held,
// their mean proportional set size (pss of one, in KiB) and the mean drop
// in the host's available memory.
func holdIdle(b *testing.B, init guest.Init, start func(context.Context) (sandbox.Sandbox, error), pss func(sandbox.Sandbox) int64) {
	ctx := context.Background()
	var pssSum, host float64
	held := 0
	for b.Loop() {
		before := memAvailable(b)
		sbs := make([]sandbox.Sandbox, 0, idleSandboxes)
		for range idleSandboxes {
			sb, err := start(ctx)
			if err != nil {
				b.Logf("stopped at %d sandboxes: %v", len(sbs), err)
				break
			}
			if _, err := guest.NewConn(sb.Conn(), 0).Init(ctx, init); err != nil {
				sb.Kill()
				b.Logf("stopped at %d sandboxes: %v", len(sbs), err)
				break
			}
			sbs = append(sbs, sb)
		}
		held = len(sbs)
		if held == 0 {
			b.Fatal("no sandbox started")
		}
		after := memAvailable(b)
		var sum float64
		for _, sb := range sbs {
			sum += float64(pss(sb))
		}
		pssSum += sum / float64(held)
		host += float64(before-after) / float64(held)
		for _, sb := range sbs {
			sb.Kill()
		}
		for _, sb := range sbs {
			sb.Wait()
		}
	}
	b.ReportMetric(float64(held), "sandboxes-held")
	b.ReportMetric(pssSum/float64(b.N)/1024, "pss-MiB/sandbox")
	b.ReportMetric(host/float64(b.N)/1024, "host-MiB/sandbox")
}

// parentPID returns the parent of pid, 0 if unknown.
func parentPID(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command (which may hold spaces) start after ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// memAvailable is the host's MemAvailable in KiB.
func memAvailable(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		tb.Fatal(err)
	}
	return meminfoField(b, "MemAvailable:")
}

func meminfoField(b []byte, name string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == name {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// treePSS is the proportional set size, in KiB, of pid and its
// descendants, leaving out the subtrees of skip.
func treePSS(pid int, skip ...int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	total := meminfoField(b, "Pss:")
	kids, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	for _, k := range strings.Fields(string(kids)) {
		if c, err := strconv.Atoi(k); err == nil && !slices.Contains(skip, c) {
			total += treePSS(c, skip...)
		}
	}
	return total
}
