//go:build linux

package linux

import (
	"os"
	"syscall"
	"testing"
)

// BenchmarkNamespaceFloor measures what the kernel alone charges for the
// fresh namespaces every forked run gets, the floor under any design that
// keeps "a fresh sandbox per run": processes started and reaped on every
// core at once, each /bin/true, once in a new user, mount, network, IPC,
// UTS and PID namespace (RunNamespaces) and once in the caller's. Nothing
// of runagent runs. procs/s is the namespaced rate on the whole machine,
// plain-procs/s the same without namespaces, and ns-ceiling-runs/s the
// rate at which the machine could make those namespace sets (and tear
// them down) if it did nothing else: 1 / (namespaced − plain time per
// process, on all cores together).
func BenchmarkNamespaceFloor(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("creating a user namespace with the others needs root on this machine")
	}
	rate := func(b *testing.B, flags uintptr) float64 {
		attr := &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Cloneflags: flags}}
		var failed error
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				pid, err := syscall.ForkExec("/bin/true", []string{"true"}, attr)
				if err != nil {
					failed = err
					return
				}
				var ws syscall.WaitStatus
				if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
					failed = err
					return
				}
			}
		})
		if failed != nil {
			b.Fatalf("start /bin/true: %v", failed)
		}
		return float64(b.N) / b.Elapsed().Seconds()
	}
	var plain float64
	b.Run("plain", func(b *testing.B) {
		plain = rate(b, 0)
		b.ReportMetric(plain, "procs/s")
	})
	b.Run("namespaced", func(b *testing.B) {
		ns := rate(b, RunNamespaces)
		b.ReportMetric(ns, "procs/s")
		b.ReportMetric(plain, "plain-procs/s")
		if plain > 0 && ns < plain {
			b.ReportMetric(1/(1/ns-1/plain), "ns-ceiling-runs/s")
		}
	})
}
