//go:build linux

package cgroup

import (
	"fmt"
	"testing"

	"github.com/runagent/runagent/internal/sandbox"
)

// BenchmarkNewDestroy measures one sandbox cgroup's life: create with the
// default limits, destroy.
func BenchmarkNewDestroy(b *testing.B) {
	h := mustHost(b)
	i := 0
	for b.Loop() {
		i++
		cg, err := h.New(fmt.Sprintf("b%d", i), sandbox.Limits{}.WithDefaults())
		if err != nil {
			b.Fatal(err)
		}
		if err := cg.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}
