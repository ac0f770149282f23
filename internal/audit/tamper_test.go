package audit_test

import (
	"bytes"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
)

// dropTriggers removes the append-only triggers, as someone with write
// access to the file can.
func dropTriggers(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	raw := mustRaw(tb, path)
	for _, tr := range []string{
		"audit_records_no_update", "audit_records_no_delete", "audit_records_chain",
		"audit_checkpoints_insert", "audit_checkpoints_no_update", "audit_checkpoints_no_delete",
	} {
		mustExec(tb, raw, "DROP TRIGGER "+tr)
	}
	return raw
}

// allColumns are the columns of audit_records other than seq.
const allColumns = `at, principal_id, key_id, subject, action, resource, outcome, ip, user_agent, request_id, details, prev_hash, hash`

// TestVerifyDetectsTampering: every way of changing the records behind
// the store's back is reported at the record where the chain breaks.
func TestVerifyDetectsTampering(t *testing.T) {
	const n = 100
	tests := []struct {
		name   string
		tamper func(t *testing.T, raw *sql.DB, recs []audit.Record)
		seq    int64
		kind   audit.ProblemKind
	}{
		{
			name: "one field of one row changed",
			tamper: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
				mustExec(t, raw, `UPDATE audit_records SET outcome = 'success' WHERE seq = 37 AND outcome != 'success'`)
				mustExec(t, raw, `UPDATE audit_records SET resource = 'agent/other' WHERE seq = 37`)
			},
			seq: 37, kind: audit.ProblemHash,
		},
		{
			name: "time of one row changed",
			tamper: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
				mustExec(t, raw, `UPDATE audit_records SET at = at + 1 WHERE seq = 12`)
			},
			seq: 12, kind: audit.ProblemHash,
		},
		{
			name: "one detail changed",
			tamper: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
				mustExec(t, raw, `UPDATE audit_records SET details = json_set(details, '$.n', 'x') WHERE seq = 80`)
			},
			seq: 80, kind: audit.ProblemHash,
		},
		{
			name: "a row changed and its hash recomputed",
			tamper: func(t *testing.T, raw *sql.DB, recs []audit.Record) {
				r := recs[49] // seq 50
				r.PrincipalID = "prn-attacker"
				mustExec(t, raw, `UPDATE audit_records SET principal_id = ?, hash = ? WHERE seq = 50`, r.PrincipalID, r.ComputeHash())
			},
			seq: 51, kind: audit.ProblemPrevHash,
		},
		{
			name: "middle row deleted",
			tamper: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
				mustExec(t, raw, `DELETE FROM audit_records WHERE seq = 50`)
			},
			seq: 51, kind: audit.ProblemSeqGap,
		},
		{
			name: "first rows deleted",
			tamper: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
				mustExec(t, raw, `DELETE FROM audit_records WHERE seq <= 10`)
			},
			seq: 11, kind: audit.ProblemSeqGap,
		},
		{
			name: "two rows' contents swapped",
			tamper: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
				swap(t, raw, 20, 30, allColumns)
			},
			seq: 20, kind: audit.ProblemHash,
		},
		{
			name: "two rows' data swapped, hashes kept",
			tamper: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
				swap(t, raw, 20, 30, strings.TrimSuffix(allColumns, ", prev_hash, hash"))
			},
			seq: 20, kind: audit.ProblemHash,
		},
		{
			name: "row inserted",
			tamper: func(t *testing.T, raw *sql.DB, recs []audit.Record) {
				// Renumber the tail to make room, as an insert would need.
				mustExec(t, raw, `UPDATE audit_records SET seq = seq + 1000 WHERE seq > 60`)
				mustExec(t, raw, `UPDATE audit_records SET seq = seq - 999 WHERE seq > 1000`)
				r := recs[59]
				r.Seq, r.PrevHash, r.Action = 61, r.Hash, "key.delete"
				r.Hash = r.ComputeHash()
				mustExec(t, raw, `INSERT INTO audit_records (seq, `+allColumns+`)
					SELECT 61, at, principal_id, key_id, subject, ?, resource, outcome, ip, user_agent, request_id, details, ?, ?
					FROM audit_records WHERE seq = 60`, r.Action, r.PrevHash, r.Hash)
			},
			seq: 62, kind: audit.ProblemHash,
		},
		{
			name: "checkpoint forged over deleted rows",
			tamper: func(t *testing.T, raw *sql.DB, recs []audit.Record) {
				mustExec(t, raw, `DELETE FROM audit_records WHERE seq <= 10`)
				mustExec(t, raw, `INSERT INTO audit_checkpoints (purged_through_seq, hash, created_at, signature) VALUES (10, ?, ?, ?)`,
					recs[9].Hash, time.Now().UnixNano(), bytes.Repeat([]byte{0xAA}, 32))
			},
			seq: 10, kind: audit.ProblemCheckpoint,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, path := mustOpen(t)
			l := mustNew(t, db, audit.Options{})
			recs := mustAppendConcurrent(t, l, n)
			if rep := mustVerify(t, db); !rep.OK {
				t.Fatalf("Verify before tampering: %v", rep.Problem)
			}
			raw := dropTriggers(t, path)
			tt.tamper(t, raw, recs)
			rep := mustVerify(t, db)
			if rep.OK || rep.Problem == nil || rep.Problem.Seq != tt.seq || rep.Problem.Kind != tt.kind {
				t.Errorf("Verify after tampering = OK %v, problem %v; want %s at seq %d", rep.OK, rep.Problem, tt.kind, tt.seq)
			}
		})
	}
}

// swap exchanges the given columns of rows a and b.
func swap(tb testing.TB, raw *sql.DB, a, b int64, columns string) {
	tb.Helper()
	mustExec(tb, raw, `CREATE TEMP TABLE swap AS SELECT seq, `+columns+` FROM audit_records WHERE seq IN (?, ?)`, a, b)
	mustExec(tb, raw, `UPDATE audit_records SET (`+columns+`) = (SELECT `+columns+` FROM temp.swap WHERE swap.seq = ? - audit_records.seq)
		WHERE seq IN (?, ?)`, a+b, a, b)
	mustExec(tb, raw, `DROP TABLE temp.swap`)
}

// TestVerifyDetectsForgedCheckpoint: after a purge, a checkpoint changed
// or one added to cover more deleted records is reported.
func TestVerifyDetectsForgedCheckpoint(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	tests := []struct {
		name   string
		tamper func(t *testing.T, raw *sql.DB, recs []audit.Record)
		seq    int64
	}{
		{
			name: "checkpoint hash changed",
			tamper: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
				mustExec(t, raw, `UPDATE audit_checkpoints SET hash = zeroblob(32)`)
			},
			seq: 30,
		},
		{
			name: "checkpoint seq changed",
			tamper: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
				mustExec(t, raw, `UPDATE audit_checkpoints SET purged_through_seq = 29`)
			},
			seq: 29,
		},
		{
			name: "checkpoint added with a copied signature",
			tamper: func(t *testing.T, raw *sql.DB, recs []audit.Record) {
				mustExec(t, raw, `DELETE FROM audit_records WHERE seq <= 40`)
				mustExec(t, raw, `INSERT INTO audit_checkpoints (purged_through_seq, hash, created_at, signature)
					SELECT 40, ?, created_at, signature FROM audit_checkpoints WHERE purged_through_seq = 30`, recs[39].Hash)
			},
			seq: 40,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, path := mustOpen(t)
			l := mustNew(t, db, audit.Options{})
			recs := mustAppend(t, l, 0, 100, at)
			if n, err := l.Purge(t.Context(), at(30), false); err != nil || n != 30 {
				t.Fatalf("Purge = %d, %v; want 30", n, err)
			}
			if rep := mustVerify(t, db); !rep.OK {
				t.Fatalf("Verify after purge: %v", rep.Problem)
			}
			raw := dropTriggers(t, path)
			tt.tamper(t, raw, recs)
			rep := mustVerify(t, db)
			if rep.OK || rep.Problem == nil || rep.Problem.Seq != tt.seq || rep.Problem.Kind != audit.ProblemCheckpoint {
				t.Errorf("Verify after tampering = OK %v, problem %v; want %s at seq %d", rep.OK, rep.Problem, audit.ProblemCheckpoint, tt.seq)
			}
		})
	}
}

// TestTriggersRefuseChanges: without dropping the triggers, SQL cannot
// change or delete a record or a checkpoint, nor add one off the chain.
func TestTriggersRefuseChanges(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	db, path := mustOpen(t)
	l := mustNew(t, db, audit.Options{})
	mustAppend(t, l, 0, 20, at)
	if _, err := l.Purge(t.Context(), at(5), false); err != nil {
		t.Fatal(err)
	}
	raw := mustRaw(t, path)
	tests := []struct {
		query string
		want  string // in the error
	}{
		{`UPDATE audit_records SET outcome = 'success' WHERE seq = 10`, "append-only"},
		{`UPDATE audit_records SET hash = hash WHERE seq = 10`, "append-only"},
		{`DELETE FROM audit_records WHERE seq = 10`, "only by a purge"},
		{`DELETE FROM audit_records`, "only by a purge"},
		{`UPDATE audit_checkpoints SET created_at = 0`, "append-only"},
		{`DELETE FROM audit_checkpoints`, "append-only"},
		{`INSERT INTO audit_checkpoints SELECT seq, hash, at, hash FROM audit_records WHERE seq = 10`, "only by a purge"},
		{`INSERT INTO audit_records (seq, ` + allColumns + `) SELECT seq + 100, ` + allColumns + ` FROM audit_records WHERE seq = 10`, "does not extend the chain"},
		{`DELETE FROM audit_purge_guard`, "permanent"},
		// Setting the guard by hand is not enough: a record must be
		// covered by a checkpoint to be deleted.
		{`UPDATE audit_purge_guard SET active = 1; DELETE FROM audit_records WHERE seq = 10`, "only by a purge"},
	}
	for _, tt := range tests {
		_, err := raw.Exec(`BEGIN; ` + tt.query + `; COMMIT`)
		raw.Exec(`ROLLBACK`)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s = %v, want an error saying %q", tt.query, err, tt.want)
		}
	}
	if rep := mustVerify(t, db); !rep.OK || rep.Checked != 15+1 {
		t.Errorf("Verify = %+v, want OK with 16 records", rep)
	}
}
