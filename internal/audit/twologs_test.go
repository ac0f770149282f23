package audit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// TestTwoWritersOneTrail: two Logs on one database file, as a running
// server and an offline `runagent db cleanup`, append in turns; each
// chains after the other's records (read in its append's own
// transaction: the store is an audit.ChainStore) and the trail verifies.
func TestTwoWritersOneTrail(t *testing.T) {
	db, path := mustOpen(t)
	other, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	a := mustNew(t, db, audit.Options{})
	b := mustNew(t, other, audit.Options{})
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if _, err := l.Append(t.Context(), record(i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if rep := mustVerify(t, db); !rep.OK || rep.Checked != 10 {
		t.Errorf("Verify = %+v, want OK with 10 records", rep)
	}
}

// movingStore is a Store that is not a ChainStore (its embedded Store
// hides AppendAuditChained), on which another Log appends a record just
// before each of the first moves calls of AppendAudit: each of those
// fails, its batch chained after a head that has moved.
type movingStore struct {
	audit.Store
	other *audit.Log
	moves int
	calls int
}

func (s *movingStore) AppendAudit(ctx context.Context, recs []audit.Record) error {
	s.calls++
	if s.moves > 0 {
		s.moves--
		if _, err := s.other.Append(ctx, record(1000+s.moves)); err != nil {
			return err
		}
	}
	return s.Store.AppendAudit(ctx, recs)
}

// TestAppendChasesAMovingHead: on a store that cannot chain in its own
// transaction, a Log whose batch lost the race for the head to another
// writer, again and again, chains after the new head each time until its
// batch is stored; the trail verifies.
func TestAppendChasesAMovingHead(t *testing.T) {
	db, _ := mustOpen(t)
	const moves = 5
	s := &movingStore{Store: db, other: mustNew(t, db, audit.Options{}), moves: moves}
	if _, ok := audit.Store(s).(audit.ChainStore); ok {
		t.Fatal("movingStore is a ChainStore: the test would not test the fallback")
	}
	l := mustNew(t, s, audit.Options{})
	got, err := l.Append(t.Context(), record(1))
	if err != nil {
		t.Fatalf("Append while the head moved %d times = %v", moves, err)
	}
	if got.Seq != moves+1 || s.calls != moves+1 {
		t.Errorf("record stored at seq %d after %d AppendAudit calls, want seq %d after %d", got.Seq, s.calls, moves+1, moves+1)
	}
	if rep := mustVerify(t, db); !rep.OK || rep.Checked != moves+1 {
		t.Errorf("Verify = %+v, want OK with %d records", rep, moves+1)
	}
}

// lostCommitStore is a ChainStore whose first AppendAudit commits but
// reports failure, as a commit whose answer was lost does.
type lostCommitStore struct {
	*sqlite.DB
	lost bool
}

func (s *lostCommitStore) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if err := s.DB.AppendAudit(ctx, recs); err != nil || s.lost {
		return err
	}
	s.lost = true
	return errors.New("connection lost while committing")
}

// TestAppendOutcomeUnknown: on a ChainStore, a batch whose first attempt
// failed otherwise than by the store's refusal (audit.ErrNotNext) fails
// and is not stored again: its commit may have landed, and here it did.
// The next Append chains after it, and the trail verifies.
func TestAppendOutcomeUnknown(t *testing.T) {
	db, _ := mustOpen(t)
	l := mustNew(t, &lostCommitStore{DB: db}, audit.Options{})
	if _, err := l.Append(t.Context(), record(1)); err == nil {
		t.Fatal("Append whose commit was reported lost = nil, want its error")
	}
	got, err := l.Append(t.Context(), record(2))
	if err != nil {
		t.Fatalf("Append after = %v", err)
	}
	if got.Seq != 2 {
		t.Errorf("next record's seq = %d, want 2 (after the landed one, stored once)", got.Seq)
	}
	if rep := mustVerify(t, db); !rep.OK || rep.Checked != 2 {
		t.Errorf("Verify = %+v, want OK with 2 records", rep)
	}
}
