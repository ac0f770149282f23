package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// auditChain returns n records that follow head, as the audit.Log would
// append them.
func auditChain(head audit.Head, n int) []audit.Record {
	prev := head.Hash
	if head.Seq == 0 {
		prev = make([]byte, audit.HashSize)
	}
	recs := make([]audit.Record, n)
	for i := range recs {
		r := audit.Record{
			Seq: head.Seq + 1 + int64(i), Time: time.Unix(1_900_000_000+int64(i), 0).UTC(),
			PrincipalID: fmt.Sprintf("prn-%d", i%5), Action: []string{"key.create", "secret.read"}[i%2],
			Resource: fmt.Sprintf("agent/a-%d", i%3), Outcome: []string{"success", "denied", "error"}[i%3],
			RequestID: fmt.Sprintf("req-%d", i), PrevHash: prev,
		}
		if i%2 == 0 {
			r.Details = map[string]string{"i": fmt.Sprint(i)}
		}
		r.Hash = r.ComputeHash()
		prev = r.Hash
		recs[i] = r
	}
	return recs
}

func mustAppendAudit(tb testing.TB, db *DB, n int) []audit.Record {
	tb.Helper()
	head, err := db.AuditHead(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	recs := auditChain(head, n)
	if err := db.AppendAudit(tb.Context(), recs); err != nil {
		tb.Fatalf("AppendAudit = %v", err)
	}
	return recs
}

// checkpoint returns a checkpoint for r; the store does not check
// signatures.
func checkpoint(r audit.Record) audit.Checkpoint {
	return audit.Checkpoint{Seq: r.Seq, Hash: r.Hash, Time: time.Unix(1_950_000_000, 0).UTC(), Signature: bytes.Repeat([]byte{1}, 32)}
}

// synchronous returns the PRAGMA synchronous setting q's connection has.
func synchronous(tb testing.TB, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int {
	tb.Helper()
	var v int
	if err := q.QueryRowContext(tb.Context(), "PRAGMA synchronous").Scan(&v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// TestDurableTxSynchronous: an audit transaction runs with
// synchronous=FULL (2) and leaves the writer at NORMAL (1), also when it
// fails, so that other writes are not synced.
func TestDurableTxSynchronous(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	if got := synchronous(t, db.write); got != 1 {
		t.Fatalf("writer synchronous = %d before, want 1 (NORMAL)", got)
	}
	for _, fail := range []bool{false, true} {
		var inside int
		err := db.durableTx(t.Context(), "test", func(tx *sql.Tx) error {
			inside = synchronous(t, tx)
			if fail {
				return errors.New("failing on purpose")
			}
			return nil
		})
		if (err != nil) != fail {
			t.Errorf("durableTx (failing %v) = %v", fail, err)
		}
		if inside != 2 {
			t.Errorf("synchronous inside durableTx = %d, want 2 (FULL)", inside)
		}
		if got := synchronous(t, db.write); got != 1 {
			t.Errorf("writer synchronous = %d after durableTx (failing %v), want 1 (NORMAL)", got, fail)
		}
	}
	// The writer still works for everything else.
	if err := db.CreateInvocation(t.Context(), &core.Invocation{ID: "inv-1", AgentID: "a"}); err != nil {
		t.Errorf("CreateInvocation after durableTx = %v", err)
	}
}

func TestAuditHead(t *testing.T) {
	for _, path := range []string{"file", MemoryPath} {
		t.Run(path, func(t *testing.T) {
			if path == "file" {
				path = tempPath(t)
			}
			db := mustOpen(t, path)
			head := func() audit.Head {
				h, err := db.AuditHead(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			if h := head(); h.Seq != 0 || h.Hash != nil {
				t.Errorf("AuditHead of an empty trail = %+v, want zero", h)
			}
			recs := mustAppendAudit(t, db, 3)
			if h := head(); h.Seq != 3 || !bytes.Equal(h.Hash, recs[2].Hash) {
				t.Errorf("AuditHead = %d %x, want 3 %x", h.Seq, h.Hash, recs[2].Hash)
			}
			if n, err := db.PurgeAudit(t.Context(), checkpoint(recs[2])); err != nil || n != 3 {
				t.Fatalf("PurgeAudit = %d, %v; want 3", n, err)
			}
			if h := head(); h.Seq != 3 || !bytes.Equal(h.Hash, recs[2].Hash) {
				t.Errorf("AuditHead with every record purged = %d %x, want the checkpoint: 3 %x", h.Seq, h.Hash, recs[2].Hash)
			}
			more := mustAppendAudit(t, db, 2)
			if more[0].Seq != 4 || !bytes.Equal(more[0].PrevHash, recs[2].Hash) {
				t.Fatalf("records after the checkpoint start at %d", more[0].Seq)
			}
			if h := head(); h.Seq != 5 || !bytes.Equal(h.Hash, more[1].Hash) {
				t.Errorf("AuditHead = %d %x, want 5 %x", h.Seq, h.Hash, more[1].Hash)
			}
			scanned := scanAll(t, db)
			if diff := cmp.Diff(more, scanned); diff != "" {
				t.Errorf("ScanAudit (-appended +scanned):\n%s", diff)
			}
		})
	}
}

func scanAll(tb testing.TB, db *DB) []audit.Record {
	tb.Helper()
	var out []audit.Record
	err := db.ScanAudit(tb.Context(), func(_ []audit.Checkpoint, recs iter.Seq2[audit.Record, error]) error {
		for r, err := range recs {
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestAppendAuditRefuses: a batch with an invalid record, or one that does
// not extend the chain, is refused whole.
func TestAppendAuditRefuses(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	mustAppendAudit(t, db, 2)
	head, err := db.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(recs []audit.Record)
		want   string
	}{
		{"seq gap", func(recs []audit.Record) { recs[1].Seq++ }, "does not extend the chain"},
		{"seq repeated", func(recs []audit.Record) { recs[0].Seq-- }, "does not extend the chain"},
		{"wrong prev hash", func(recs []audit.Record) { recs[1].PrevHash = recs[0].PrevHash }, "does not extend the chain"},
		{"short hash", func(recs []audit.Record) { recs[2].Hash = recs[2].Hash[:8] }, "32 bytes"},
		{"not UTF-8", func(recs []audit.Record) { recs[2].UserAgent = "\xff" }, "user_agent"},
		{"NUL in details", func(recs []audit.Record) { recs[2].Details = map[string]string{"a": "\x00"} }, "details"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := auditChain(head, 3)
			tt.change(recs)
			err := db.AppendAudit(t.Context(), recs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AppendAudit = %v, want an error saying %q", err, tt.want)
			}
			if h, _ := db.AuditHead(t.Context()); h.Seq != 2 {
				t.Errorf("head after a refused batch = %d, want 2", h.Seq)
			}
		})
	}
}

// TestAppendAuditManyRows: a batch larger than one multi-row INSERT is
// stored in order, by both AppendAudit and IndexAudit, and a broken link
// inside a multi-row INSERT refuses the whole batch.
func TestAppendAuditManyRows(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	want := mustAppendAudit(t, db, 2*auditInsertRows+3)
	head := audit.Head{Seq: want[len(want)-1].Seq, Hash: want[len(want)-1].Hash}
	more := auditChain(head, auditInsertRows+1)
	if err := db.IndexAudit(t.Context(), more); err != nil {
		t.Fatalf("IndexAudit = %v", err)
	}
	want = append(want, more...)
	if diff := cmp.Diff(want, scanAll(t, db)); diff != "" {
		t.Errorf("stored records (-want +got):\n%s", diff)
	}

	head = audit.Head{Seq: more[len(more)-1].Seq, Hash: more[len(more)-1].Hash}
	bad := auditChain(head, 2*auditInsertRows)
	bad[auditInsertRows+5].PrevHash = bad[0].Hash
	if err := db.IndexAudit(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "does not extend the chain") {
		t.Errorf("IndexAudit of a broken chain = %v", err)
	}
	if h, _ := db.AuditHead(t.Context()); h.Seq != head.Seq {
		t.Errorf("head after a refused batch = %d, want %d", h.Seq, head.Seq)
	}
	if err := db.SyncAudit(t.Context()); err != nil {
		t.Errorf("SyncAudit = %v", err)
	}
}

// TestPurgeAuditRefusesUnknownRecord: a checkpoint must name a stored
// record with its hash; otherwise nothing is deleted.
func TestPurgeAuditRefusesUnknownRecord(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	recs := mustAppendAudit(t, db, 5)
	for _, cp := range []audit.Checkpoint{
		{Seq: 3, Hash: recs[3].Hash, Time: time.Unix(0, 0), Signature: make([]byte, 32)},
		{Seq: 9, Hash: recs[3].Hash, Time: time.Unix(0, 0), Signature: make([]byte, 32)},
	} {
		if n, err := db.PurgeAudit(t.Context(), cp); err == nil || n != 0 {
			t.Errorf("PurgeAudit(seq %d with another hash) = %d, %v; want an error", cp.Seq, n, err)
		}
	}
	if got := scanAll(t, db); len(got) != 5 {
		t.Errorf("%d records left, want 5", len(got))
	}
	var active int
	if err := db.read.QueryRow(`SELECT active FROM audit_purge_guard`).Scan(&active); err != nil || active != 0 {
		t.Errorf("purge guard = %d, %v; want 0", active, err)
	}
	// A purge of a stored record works, and a second one for the same
	// seq is refused (the record is gone).
	if n, err := db.PurgeAudit(t.Context(), checkpoint(recs[1])); err != nil || n != 2 {
		t.Errorf("PurgeAudit through 2 = %d, %v; want 2", n, err)
	}
	if _, err := db.PurgeAudit(t.Context(), checkpoint(recs[1])); err == nil {
		t.Error("PurgeAudit through 2 again = nil error")
	}
	cps, err := db.AuditCheckpoints(t.Context())
	if err != nil || len(cps) != 1 || !bytes.Equal(cps[0].Hash, recs[1].Hash) || !cps[0].Time.Equal(time.Unix(1_950_000_000, 0)) {
		t.Errorf("AuditCheckpoints = %+v, %v; want the one through 2", cps, err)
	}
}

// TestAuditQueriesUseIndexes: every filter of audit.Filter is served by
// an index, and a page never sorts.
func TestAuditQueriesUseIndexes(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	for range 4 {
		mustAppendAudit(t, db, 500)
	}
	if _, err := db.write.ExecContext(t.Context(), "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	since := time.Unix(1_900_000_100, 0)
	tests := []struct {
		f     audit.Filter
		index string // "" for the table itself, by seq
	}{
		{audit.Filter{}, ""},
		{audit.Filter{AfterSeq: 1000}, ""},
		{audit.Filter{PrincipalID: "prn-1", AfterSeq: 1000}, "audit_records_principal"},
		{audit.Filter{Action: "key.create"}, "audit_records_action"},
		{audit.Filter{Resource: "agent/a-1"}, "audit_records_resource"},
		{audit.Filter{Outcome: "denied"}, "audit_records_outcome"},
		{audit.Filter{Since: since, Until: since.Add(time.Second)}, "audit_records_at"},
	}
	for _, tt := range tests {
		q, args, err := auditQuery(tt.f)
		if err != nil {
			t.Fatal(err)
		}
		plan := queryPlan(t, db, q, args...)
		switch {
		case strings.Contains(plan, "TEMP B-TREE") && tt.index != "audit_records_at":
			t.Errorf("%+v: plan %q sorts", tt.f, plan)
		case tt.index == "" && strings.Contains(plan, "INDEX"):
			t.Errorf("%+v: plan %q uses an index, want the table in seq order", tt.f, plan)
		case tt.index != "" && !strings.Contains(plan, tt.index):
			t.Errorf("%+v: plan %q, want index %s", tt.f, plan, tt.index)
		}
	}
}

// queryPlan is SQLite's plan of q, its steps joined by "; ".
func queryPlan(tb testing.TB, db *DB, q string, args ...any) string {
	tb.Helper()
	rows, err := db.read.QueryContext(tb.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			tb.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// TestScanAuditMalformed: a row whose details do not decode is yielded
// with its seq and ErrMalformed, and the scan goes on.
func TestScanAuditMalformed(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	mustAppendAudit(t, db, 3)
	for _, q := range []string{
		"DROP TRIGGER audit_records_no_update",
		"PRAGMA ignore_check_constraints = 1",
		`UPDATE audit_records SET details = '{"a": 1}' WHERE seq = 2`,
		"PRAGMA ignore_check_constraints = 0",
	} {
		if _, err := db.write.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var seqs []int64
	var bad []int64
	err := db.ScanAudit(t.Context(), func(_ []audit.Checkpoint, recs iter.Seq2[audit.Record, error]) error {
		for r, err := range recs {
			seqs = append(seqs, r.Seq)
			if errors.Is(err, audit.ErrMalformed) {
				bad = append(bad, r.Seq)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(seqs) != 3 || len(bad) != 1 || bad[0] != 2 {
		t.Errorf("ScanAudit = %v; seqs %v, malformed %v; want 1 2 3 with 2 malformed", err, seqs, bad)
	}
}

// FuzzDecodeAuditDetails: the details column, which someone with the file
// can set to anything, never panics the decoder, and what decodes encodes
// back to the same map.
func FuzzDecodeAuditDetails(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b","c":"\u00e9"}`, `null`, `[]`, `{"a":1}`, `{"a":"b","a":"c"}`, `{"\ud800":"x"}`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decodeAuditDetails(s)
		if err != nil {
			return
		}
		enc, err := encodeDetails(d)
		if err != nil {
			t.Fatalf("encodeDetails(%v) = %v", d, err)
		}
		back, err := decodeAuditDetails(enc)
		if err != nil || !maps.Equal(d, back) || (d == nil) != (back == nil) {
			t.Fatalf("decode(%q) = %v; encoded %q decodes to %v, %v", s, d, enc, back, err)
		}
	})
}

// TestAppendAuditChained: AppendAuditChained chains after the head as
// stored when its transaction runs, whoever appended last (another DB on
// the same file, a purge's checkpoint), and stores what chain returns,
// all of it or, if a record is refused, none.
func TestAppendAuditChained(t *testing.T) {
	path := tempPath(t)
	db, other := mustOpen(t, path), mustOpen(t, path)
	appendChained := func(n int) ([]audit.Record, audit.Head, error) {
		var recs []audit.Record
		var got audit.Head
		err := db.AppendAuditChained(t.Context(), func(h audit.Head) []audit.Record {
			got = h
			recs = auditChain(h, n)
			return recs
		})
		return recs, got, err
	}

	first := mustAppendAudit(t, other, 3) // db never read the head
	if err := db.AppendAudit(t.Context(), auditChain(audit.Head{}, 2)); !errors.Is(err, audit.ErrNotNext) {
		t.Errorf("AppendAudit after a head that moved = %v, want audit.ErrNotNext", err)
	}
	recs, h, err := appendChained(20) // one 16-row INSERT and four single ones
	if err != nil {
		t.Fatalf("AppendAuditChained after another writer's 3 records = %v", err)
	}
	if h.Seq != 3 || !bytes.Equal(h.Hash, first[2].Hash) {
		t.Errorf("head given to chain = %d %x, want 3 %x", h.Seq, h.Hash, first[2].Hash)
	}
	if diff := cmp.Diff(append(first, recs...), scanAll(t, db)); diff != "" {
		t.Errorf("stored trail (-want +got):\n%s", diff)
	}

	last := recs[len(recs)-1]
	if _, err := other.PurgeAudit(t.Context(), checkpoint(last)); err != nil {
		t.Fatal(err)
	}
	after, h, err := appendChained(2)
	if err != nil {
		t.Fatalf("AppendAuditChained after a purge of every record = %v", err)
	}
	if h.Seq != last.Seq || !bytes.Equal(h.Hash, last.Hash) {
		t.Errorf("head given to chain after the purge = %d %x, want the checkpoint's %d %x", h.Seq, h.Hash, last.Seq, last.Hash)
	}

	err = db.AppendAuditChained(t.Context(), func(h audit.Head) []audit.Record {
		recs := auditChain(h, 3)
		recs[2].Hash = recs[2].Hash[:5]
		return recs
	})
	if core.ErrorCode(err) != core.CodeValidation {
		t.Errorf("AppendAuditChained of a record with a short hash = %v, want a validation error", err)
	}
	err = db.AppendAuditChained(t.Context(), func(h audit.Head) []audit.Record {
		h.Seq++ // skips a seq: the chain trigger refuses it
		return auditChain(h, 2)
	})
	if err == nil {
		t.Errorf("AppendAuditChained of records that skip a seq = nil, want refused")
	}
	if diff := cmp.Diff(after, scanAll(t, db)); diff != "" {
		t.Errorf("stored trail after refused batches (-want +got):\n%s", diff)
	}
}
