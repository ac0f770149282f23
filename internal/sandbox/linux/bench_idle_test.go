package linux

import (
	"bufio"
	"bytes"
	"context"
	"os"
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
	ctx := context.Background()
	var pss, host float64
	held := 0
	for b.Loop() {
		before := memAvailable(b)
		sbs := make([]sandbox.Sandbox, 0, idleSandboxes)
		for range idleSandboxes {
			sb, err := e.backend.Start(ctx, spec)
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
			sum += float64(treePSS(sb.(*linuxSandbox).pid))
		}
		pss += sum / float64(held)
		host += float64(before-after) / float64(held)
		for _, sb := range sbs {
			sb.Kill()
		}
		for _, sb := range sbs {
			sb.Wait()
		}
	}
	b.ReportMetric(float64(held), "sandboxes-held")
	b.ReportMetric(pss/float64(b.N)/1024, "pss-MiB/sandbox")
	b.ReportMetric(host/float64(b.N)/1024, "host-MiB/sandbox")
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
// descendants.
func treePSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	total := meminfoField(b, "Pss:")
	kids, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	for _, k := range strings.Fields(string(kids)) {
		if c, err := strconv.Atoi(k); err == nil {
			total += treePSS(c)
		}
	}
	return total
}
