//go:build linux

package process

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// BenchmarkStartInvoke measures one whole call of a trivial agent: start
// the sandbox, init, invoke, result, wait. Compare with BenchmarkBarePython.
func BenchmarkStartInvoke(b *testing.B) {
	e := mustEnv(b)
	for _, bm := range []struct{ name, shim string }{
		{"source", e.shim},
		{"compiled", e.shimPyc},
	} {
		b.Run(bm.name, func(b *testing.B) {
			benchmarkStartInvoke(b, e, bm.shim)
		})
	}
}

func benchmarkStartInvoke(b *testing.B, e env, shim string) {
	dir := b.TempDir()
	writeFiles(b, dir, map[string]string{"main.py": "def f(x):\n    return x\n"})
	spec := sandbox.Spec{AgentDir: dir, ShimPath: shim, Python: e.python, Env: quickExit}
	init := guest.Init{AgentDir: dir, Entrypoints: refs("f")}
	ctx := context.Background()
	var toHello time.Duration
	for b.Loop() {
		start := time.Now()
		sb, err := e.backend.Start(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		c := guest.NewConn(sb.Conn(), 0)
		if _, err := c.Init(ctx, init); err != nil {
			sb.Kill()
			b.Fatal(err, sb.Wait().Logs)
		}
		toHello += time.Since(start)
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
	b.ReportMetric(float64(toHello.Nanoseconds())/float64(b.N), "ns-to-hello/op")
}

// BenchmarkBarePython is the floor: start the interpreter, print, exit.
func BenchmarkBarePython(b *testing.B) {
	e := mustEnv(b)
	for _, bm := range []struct {
		name string
		args []string
	}{
		{"plain", []string{"-c", "print(1)"}},
		{"isolated", []string{"-I", "-B", "-u", "-c", "print(1)"}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				if err := exec.Command(e.python, bm.args...).Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
