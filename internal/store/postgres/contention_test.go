package postgres

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// TestAuditAppendsUnderContention: nodes (each its own DB, pool and
// audit Log on one database) append from many goroutines at once for a
// few seconds, as a cluster under load does. Every Append succeeds on its
// first call (each batch is chained after the head read in its own
// transaction, so no node ever loses a race for the head), and the trail
// is one chain that verifies whole, holding every acknowledged record
// once, at the seq its Append returned. With PostgreSQL stopped an Append
// fails as unavailable (503), and once it is back the same Logs append
// again, without reopening anything.
func TestAuditAppendsUnderContention(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	const (
		nodes   = 4
		writers = 8 // per node
		hammer  = 3 * time.Second
	)
	logs := make([]*audit.Log, nodes)
	for i := range logs {
		l, err := audit.New(mustOpen(t, url), auditKey, audit.Options{})
		if err != nil {
			t.Fatalf("audit.New = %v", err)
		}
		t.Cleanup(func() { l.Close() })
		logs[i] = l
	}

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		acked  = map[string]int64{} // request id -> seq
		failed atomic.Int64
	)
	deadline := time.Now().Add(hammer)
	for n, l := range logs {
		for w := range writers {
			wg.Go(func() {
				for i := 0; time.Now().Before(deadline); i++ {
					id := fmt.Sprintf("node%d-w%d-%d", n, w, i)
					got, err := l.Append(t.Context(), audit.Record{PrincipalID: "prn-1", Action: "invocation.run",
						Resource: "agent/a", Outcome: audit.OutcomeSuccess, RequestID: id})
					if err != nil {
						if failed.Add(1) <= 3 {
							t.Errorf("Append(%s) under contention = %v, want it stored", id, err)
						}
						continue
					}
					mu.Lock()
					acked[id] = got.Seq
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d Appends failed under contention", n, n+int64(len(acked)))
	}
	perNode := map[string]int{}
	for id := range acked {
		perNode[id[:len("node0")]]++
	}
	t.Logf("%d records appended by %d nodes in %s: %v", len(acked), nodes, hammer, perNode)
	if len(perNode) != nodes {
		t.Errorf("records appended per node = %v, want every node's", perNode)
	}

	db := mustOpen(t, url)
	checkTrail(t, db, acked)

	// Fail closed while the database is down; recover once it is back.
	c.Stop(t)
	_, err := logs[0].Append(t.Context(), audit.Record{Action: "invocation.run", Outcome: audit.OutcomeSuccess, RequestID: "down"})
	if core.ErrorCode(err) != core.CodeUnavailable {
		t.Errorf("Append with PostgreSQL stopped = %v, want a %s error", err, core.CodeUnavailable)
	}
	c.Restart(t)
	for n, l := range logs {
		id := fmt.Sprintf("after-restart-%d", n)
		got, err := l.Append(t.Context(), audit.Record{Action: "invocation.run", Outcome: audit.OutcomeSuccess, RequestID: id})
		if err != nil {
			t.Fatalf("Append on node %d after PostgreSQL restarted = %v", n, err)
		}
		acked[id] = got.Seq
	}
	checkTrail(t, db, acked)
}

// checkTrail verifies the trail in db whole and checks that it holds the
// acknowledged records (request id -> seq) and nothing else, each once.
func checkTrail(t *testing.T, db *DB, acked map[string]int64) {
	t.Helper()
	rep, err := audit.Verify(t.Context(), db, auditKey)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	n := int64(len(acked))
	if !rep.OK || rep.Checked != n || rep.FirstSeq != 1 || rep.LastSeq != n {
		t.Errorf("Verify = %+v, want OK with %d records, seq 1 to %d", rep, n, n)
	}
	seen := map[string]int64{}
	for f := (audit.Filter{}); ; {
		page, err := db.AuditRecords(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if _, dup := seen[r.RequestID]; dup {
				t.Errorf("record %s stored twice", r.RequestID)
			}
			seen[r.RequestID] = r.Seq
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
	for id, seq := range acked {
		if seen[id] != seq {
			t.Errorf("acknowledged record %s (seq %d) stored at seq %d", id, seq, seen[id])
		}
	}
	if len(seen) != len(acked) {
		t.Errorf("trail holds %d records, want the %d acknowledged", len(seen), len(acked))
	}
}
