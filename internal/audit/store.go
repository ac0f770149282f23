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

// ErrMalformed is wrapped by the error a Store yields for a stored record
// it cannot decode, which Verify reports as tampering.
var ErrMalformed = errors.New("malformed audit record")
