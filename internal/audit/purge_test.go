package audit_test

import (
	"bytes"
	"cmp"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
)

var purgeBase = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func purgeAt(i int) time.Time { return purgeBase.Add(time.Duration(i) * time.Second) }

// TestPurge: a purge deletes the old records in batches, each with a
// checkpoint, records itself, and leaves a trail that verifies from the
// latest checkpoint.
func TestPurge(t *testing.T) {
	db, _ := mustOpen(t)
	// Every batch a second later than the one before, so that times
	// follow seqs although the records are appended concurrently.
	var tick atomic.Int64
	clock := func() time.Time { return purgeAt(int(tick.Add(1))) }
	l := mustNew(t, db, audit.Options{Clock: clock})
	const n = 2600
	recs := mustAppendConcurrent(t, l, n)
	before := recs[2500].Time // seq 2501's
	old := int64(0)
	for _, r := range recs {
		if r.Time.Before(before) {
			old++
		}
	}
	if old <= 2000 || old > 2500 {
		t.Fatalf("%d records before seq 2501's time, want 2001 to 2500", old)
	}

	got, err := l.Purge(t.Context(), before, true)
	if err != nil || got != old {
		t.Fatalf("Purge dry run = %d, %v; want %d", got, err, old)
	}
	if rep := mustVerify(t, db); !rep.OK || rep.Checked != n || rep.Checkpoints != 0 {
		t.Fatalf("after a dry run Verify = %+v, want all %d records and no checkpoint", rep, n)
	}

	got, err = l.Purge(t.Context(), before, false)
	if err != nil || got != old {
		t.Fatalf("Purge = %d, %v; want %d", got, err, old)
	}
	cps, err := db.AuditCheckpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// One checkpoint per batch of MaxLimit.
	var seqs []int64
	for _, cp := range cps {
		seqs = append(seqs, cp.Seq)
	}
	if len(cps) != 3 || seqs[0] != 1000 || seqs[1] != 2000 || seqs[2] != old {
		t.Fatalf("checkpoints at %v, want 1000, 2000, %d", seqs, old)
	}
	if last := cps[2]; !bytes.Equal(last.Hash, recs[old-1].Hash) || len(last.Signature) != 32 || last.Time.IsZero() {
		t.Errorf("last checkpoint = %+v, want the hash of record %d, a signature and a time", last, old)
	}

	rest := allRecords(t, db)
	if int64(len(rest)) != n-old+1 || rest[0].Seq != old+1 {
		t.Fatalf("after Purge %d records from seq %d, want %d from %d", len(rest), rest[0].Seq, n-old+1, old+1)
	}
	p := rest[len(rest)-1]
	want := map[string]string{"before": before.Format(time.RFC3339Nano), "purged": strconv.FormatInt(old, 10), "through_seq": strconv.FormatInt(old, 10)}
	if p.Action != audit.ActionPurge || p.Outcome != audit.OutcomeSuccess || p.Seq != n+1 || !maps.Equal(p.Details, want) {
		t.Errorf("last record = %s %s seq %d %v, want the purge's, seq %d, %v", p.Action, p.Outcome, p.Seq, p.Details, n+1, want)
	}
	rep := mustVerify(t, db)
	if !rep.OK || rep.Checked != n-old+1 || rep.FirstSeq != old+1 || rep.Start == nil || rep.Start.Seq != old || rep.Checkpoints != 3 {
		t.Errorf("Verify after Purge = %+v, want OK from checkpoint %d", rep, old)
	}

	// Appending goes on after a purge, and a second purge follows the
	// first checkpoint.
	mustAppend(t, l, n, 5, nil)
	if got, err := l.Purge(t.Context(), purgeAt(1<<20), false); err != nil || got != n-old+1+5 {
		t.Errorf("second Purge = %d, %v; want every record: %d", got, err, n-old+1+5)
	}
	rep = mustVerify(t, db)
	if !rep.OK || rep.Checked != 1 || rep.Start == nil || rep.Start.Seq != n+1+5 {
		t.Errorf("Verify after purging all = %+v, want OK with the purge record after the checkpoint at %d", rep, n+1+5)
	}
}

// mustAppendConcurrent appends n records from 16 writers and returns them
// in seq order.
func mustAppendConcurrent(tb testing.TB, l *audit.Log, n int) []audit.Record {
	tb.Helper()
	const writers = 16
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	out := make([]audit.Record, 0, n)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				r, err := l.Append(tb.Context(), record(i))
				if err != nil {
					tb.Errorf("Append(%d) = %v", i, err)
					return
				}
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
	slices.SortFunc(out, func(a, b audit.Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// TestPurgeStopsAtOutOfOrderRecord: a purge deletes a prefix of the chain
// only, never leaving a hole.
func TestPurgeStopsAtOutOfOrderRecord(t *testing.T) {
	db, _ := mustOpen(t)
	l := mustNew(t, db, audit.Options{})
	mustAppend(t, l, 0, 10, func(i int) time.Time {
		if i == 4 {
			return purgeAt(100) // a record from the future
		}
		return purgeAt(i)
	})
	for _, dry := range []bool{true, false} {
		if got, err := l.Purge(t.Context(), purgeAt(50), dry); err != nil || got != 4 {
			t.Errorf("Purge(dry run %v) = %d, %v; want 4", dry, got, err)
		}
	}
	if rep := mustVerify(t, db); !rep.OK || rep.FirstSeq != 5 {
		t.Errorf("Verify = %+v, want OK from seq 5", rep)
	}
}

// TestPurgeNothing: a purge with nothing to delete writes no checkpoint,
// but is recorded.
func TestPurgeNothing(t *testing.T) {
	db, _ := mustOpen(t)
	l := mustNew(t, db, audit.Options{})
	mustAppend(t, l, 0, 3, purgeAt)
	if got, err := l.Purge(t.Context(), purgeAt(0), false); err != nil || got != 0 {
		t.Errorf("Purge = %d, %v; want 0", got, err)
	}
	cps, err := db.AuditCheckpoints(t.Context())
	if err != nil || len(cps) != 0 {
		t.Errorf("checkpoints = %v, %v; want none", cps, err)
	}
	recs := allRecords(t, db)
	if len(recs) != 4 || recs[3].Action != audit.ActionPurge || recs[3].Details["purged"] != "0" {
		t.Errorf("records after an empty purge: %d, last %+v; want 4, the last the purge", len(recs), recs[len(recs)-1])
	}
}

// TestTamperAfterPurge: the first record after a checkpoint is checked
// against it.
func TestTamperAfterPurge(t *testing.T) {
	tests := []struct {
		name   string
		tamper string
		seq    int64
		kind   audit.ProblemKind
	}{
		{"first remaining record changed", `UPDATE audit_records SET action = 'key.delete' WHERE seq = 21`, 21, audit.ProblemHash},
		{"first remaining record's link changed", `UPDATE audit_records SET prev_hash = zeroblob(32) WHERE seq = 21`, 21, audit.ProblemHash},
		{"first remaining record deleted", `DELETE FROM audit_records WHERE seq = 21`, 22, audit.ProblemSeqGap},
		{"records after the checkpoint deleted", `DELETE FROM audit_records WHERE seq <= 25`, 26, audit.ProblemSeqGap},
		{"checkpoint deleted", `DELETE FROM audit_checkpoints`, 21, audit.ProblemSeqGap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, path := mustOpen(t)
			l := mustNew(t, db, audit.Options{})
			mustAppend(t, l, 0, 50, purgeAt)
			if _, err := l.Purge(t.Context(), purgeAt(20), false); err != nil {
				t.Fatal(err)
			}
			raw := dropTriggers(t, path)
			mustExec(t, raw, tt.tamper)
			rep := mustVerify(t, db)
			if rep.OK || rep.Problem == nil || rep.Problem.Seq != tt.seq || rep.Problem.Kind != tt.kind {
				t.Errorf("Verify = OK %v, problem %v; want %s at seq %d", rep.OK, rep.Problem, tt.kind, tt.seq)
			}
		})
	}
}
