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

// seedInvocations records n invocations of three agents, a millisecond
// apart, for ten end users, in one transaction (as CreateInvocation and
// FinishInvocation write them, payloads sealed, but without a commit
// each): every tenth is running, the rest completed with a small output
// and logs.
func seedInvocations(b *testing.B, db *DB, n int) {
	b.Helper()
	ctx := b.Context()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO invocations (`+invocationColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		inv := &core.Invocation{
			ID: fmt.Sprintf("inv-%06d", i), AgentID: fmt.Sprintf("agent-%d", i%3), ProjectID: core.DefaultProject,
			AgentVersion: "sha256:aaaa", EntrypointTag: "main", Transport: "rest", Status: core.StatusCompleted,
			Caller: "key:k1", UserID: fmt.Sprintf("user-%d", i%10),
			InputArgs: json.RawMessage(`["hello"]`), InputKwargs: json.RawMessage(`{"temperature":0.2}`),
			Output: json.RawMessage(`{"answer":"hi there"}`), Logs: "step 1\nstep 2\n", DurationMS: 12,
			CreatedAt: start.Add(time.Duration(i) * time.Millisecond),
		}
		var completed any
		if i%10 == 0 {
			inv.Status, inv.Output, inv.Logs, inv.DurationMS = core.StatusRunning, nil, "", 0
		} else {
			completed = inv.CreatedAt.Add(12 * time.Millisecond).UnixNano()
		}
		p, err := db.sealPayload(inv, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := stmt.ExecContext(ctx, inv.ID, inv.AgentID, inv.ProjectID, inv.AgentVersion, inv.EntrypointTag, false, inv.Transport,
			string(inv.Status), inv.Caller, inv.UserID, p.args, p.kwargs, p.output, 0, p.logs, "", p.errorMessage,
			inv.CreatedAt.UnixNano(), completed, inv.DurationMS, ""); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkInvocationPage pages through 100,000 invocations 50 at a
// time, as the console's invocations view does: each op is one page,
// the next after the last by cursor (from the first again at the end).
func BenchmarkInvocationPage(b *testing.B) {
	const n, size = 100_000, 50
	db := mustOpenSealed(b, tempPath(b))
	seedInvocations(b, db, n)
	walk := func(b *testing.B, f core.InvocationFilter) {
		f.Limit = size
		for b.Loop() {
			page, err := db.Invocations(b.Context(), f)
			if err != nil {
				b.Fatal(err)
			}
			if len(page) < size {
				f.After = nil
				continue
			}
			last := page[len(page)-1]
			f.After = &core.InvocationCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
	}
	b.Run("cursor", func(b *testing.B) { walk(b, core.InvocationFilter{}) })
	b.Run("cursor-agent", func(b *testing.B) { walk(b, core.InvocationFilter{AgentID: "agent-1"}) })
	b.Run("cursor-user-status", func(b *testing.B) {
		walk(b, core.InvocationFilter{UserID: "user-3", Status: core.StatusCompleted})
	})
}

// BenchmarkInvocationPageOffset reads the page 90,000 rows into 100,000
// by offset: what the cursor saves (the rows skipped are read).
func BenchmarkInvocationPageOffset(b *testing.B) {
	db := mustOpenSealed(b, tempPath(b))
	seedInvocations(b, db, 100_000)
	for b.Loop() {
		if _, err := db.Invocations(b.Context(), core.InvocationFilter{Limit: 50, Offset: 90_000}); err != nil {
			b.Fatal(err)
		}
	}
}
