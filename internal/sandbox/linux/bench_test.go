//go:build linux

package linux

import (
	"context"
	"os/exec"
	"testing"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// BenchmarkLinuxStartInvoke measures one whole call of a trivial agent in
// a full sandbox: start, init, invoke, result, wait. Compare with
// BenchmarkBarePython.
func BenchmarkLinuxStartInvoke(b *testing.B) {
	e := mustEnv(b)
	dir := writeAgent(b, map[string]string{"main.py": "def f(x):\n    return x\n"})
	spec := sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: systemPython, Env: quickExit}
	init := guest.Init{AgentDir: AgentMount, Entrypoints: refs("f")}
	ctx := context.Background()
	for b.Loop() {
		sb, err := e.backend.Start(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		c := guest.NewConn(sb.Conn(), 0)
		if _, err := c.Init(ctx, init); err != nil {
			sb.Kill()
			b.Fatal(err, sb.Wait().Logs)
		}
		if err := c.Invoke(guest.Invoke{ID: "i", Tag: "f", Args: []byte(`[1]`)}); err != nil {
			b.Fatal(err)
		}
		if ev, err := c.Next(); err != nil || string(ev.Value) != "1" {
			sb.Kill()
			b.Fatalf("Next = %s, %v", ev.Value, err)
		}
		if exit := sb.Wait(); exit.Code != 0 {
			b.Fatalf("exit %d: %s", exit.Code, exit.Logs)
		}
	}
}

// BenchmarkBarePython is the floor: /usr/bin/python3 -c 'print(1)'.
func BenchmarkBarePython(b *testing.B) {
	for b.Loop() {
		if err := exec.Command(systemPython, "-c", "print(1)").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
