package audit

import (
	"context"
	"errors"
	"iter"
)

// Store keeps the audit trail. internal/store/sqlite implements it.
//
// A Store never changes a stored record; the only records it deletes are
// those PurgeAudit covers with a checkpoint, and it never deletes a
// checkpoint.
type Store interface {
	// AppendAudit stores recs, whose Seq, PrevHash and Hash are set and
	// which continue the stored chain, in one transaction that is durable
	// (synced to stable storage) when AppendAudit returns nil: all of them
	// or, on error, none.
	AppendAudit(ctx context.Context, recs []Record) error

	// AuditHead returns the end of the stored chain (see Head).
	AuditHead(ctx context.Context) (Head, error)

	// AuditRecords lists the records matching f in seq order; f is
	// validated and its limit applied as Filter.Validate and
	// Filter.PageSize say.
	AuditRecords(ctx context.Context, f Filter) ([]Record, error)

	// ScanAudit calls fn once with every checkpoint (in seq order) and
	// every stored record (in seq order, read as fn ranges over recs),
	// both from one consistent snapshot of the trail, and returns fn's
	// error. A record that cannot be decoded is yielded with its Seq and
	// an error wrapping ErrMalformed, and the scan goes on.
	ScanAudit(ctx context.Context, fn func(cps []Checkpoint, recs iter.Seq2[Record, error]) error) error

	// PurgeAudit deletes the records up to and including cp.Seq and stores
	// cp, in one transaction, and returns how many records it deleted. It
	// fails, deleting nothing, unless record cp.Seq is stored with hash
	// cp.Hash.
	PurgeAudit(ctx context.Context, cp Checkpoint) (int64, error)

	// AuditCheckpoints returns every checkpoint in seq order.
	AuditCheckpoints(ctx context.Context) ([]Checkpoint, error)
}

// ChainStore is a Store that chains a batch in the transaction that
// stores it: it reads the head of the stored chain after it has made
// sure that no other append can commit before it ends, so the batch
// extends the trail as stored, however many Logs (nodes sharing one
// database) append to it. An append then never loses a race for the head
// and never has to be tried again for it. *sqlite.DB is one, on SQLite
// and on PostgreSQL. Without a journal, a Log appends through it when its
// store has it.
type ChainStore interface {
	Store
	// AppendAuditChained reads the head of the stored chain, calls chain
	// with it and stores the records chain returns, which continue that
	// head, in one transaction that is durable when AppendAuditChained
	// returns nil: all of them or, on error, none. No other append
	// commits between the read and the commit. chain may be called more
	// than once (the transaction run again); the records of its last
	// call are those stored.
	AppendAuditChained(ctx context.Context, chain func(Head) []Record) error
}

// ErrNotNext is wrapped by the error of a Store's AppendAudit that
// refused a batch, storing none of it, because its first record does not
// follow the stored chain: another writer moved the head.
var ErrNotNext = errors.New("audit records do not follow the stored chain")

// ErrMalformed is wrapped by the error a Store yields for a stored record
// it cannot decode, which Verify reports as tampering.
var ErrMalformed = errors.New("malformed audit record")
