package sqlite

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// BenchmarkCreateFinishInvocation measures recording one invocation: a
// CreateInvocation and a FinishInvocation, each its own transaction.
func BenchmarkCreateFinishInvocation(b *testing.B) {
	record := func(b *testing.B, db *DB, id string) {
		inv := &core.Invocation{
			ID: id, AgentID: "agent-1", AgentVersion: "sha256:aaaa", EntrypointTag: "main",
			Transport: "rest", Caller: "127.0.0.1",
			InputArgs: json.RawMessage(`["hello"]`), InputKwargs: json.RawMessage(`{"temperature":0.2}`),
		}
		if err := db.CreateInvocation(b.Context(), inv); err != nil {
			b.Fatal(err)
		}
		inv.Status = core.StatusCompleted
		inv.Output = json.RawMessage(`{"answer":"hi there"}`)
		inv.Logs = "step 1\nstep 2\n"
		inv.DurationMS = int64(time.Since(inv.CreatedAt) / time.Millisecond)
		if err := db.FinishInvocation(b.Context(), inv); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("serial", func(b *testing.B) {
		db := mustOpen(b, tempPath(b))
		i := 0
		for b.Loop() {
			record(b, db, fmt.Sprintf("inv-%d", i))
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		db := mustOpen(b, tempPath(b))
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				record(b, db, fmt.Sprintf("inv-%d", n.Add(1)))
			}
		})
	})
}
