package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"iter"
)

// ProblemKind says what is wrong at a broken link.
type ProblemKind string

// Kinds of Problem.
const (
	// ProblemHash: the record does not match its own hash; a field was
	// changed (or two records' contents were exchanged).
	ProblemHash ProblemKind = "hash_mismatch"
	// ProblemPrevHash: the record does not link to the record (or the
	// checkpoint) before it; records were deleted, inserted or reordered.
	ProblemPrevHash ProblemKind = "prev_hash_mismatch"
	// ProblemSeqGap: the record is not numbered one after the record (or
	// the checkpoint) before it; records were deleted, outside a purge.
	ProblemSeqGap ProblemKind = "seq_gap"
	// ProblemCheckpoint: a checkpoint's signature is not valid; it was
	// forged or changed.
	ProblemCheckpoint ProblemKind = "checkpoint_invalid"
	// ProblemMalformed: a stored record cannot be read back as one.
	ProblemMalformed ProblemKind = "malformed"
)

// Problem is the first broken link Verify found.
type Problem struct {
	Seq    int64 // the record's seq, or the checkpoint's purged-through seq
	Kind   ProblemKind
	Detail string
}

func (p *Problem) String() string {
	return fmt.Sprintf("seq %d: %s: %s", p.Seq, p.Kind, p.Detail)
}

// Report is the outcome of Verify.
type Report struct {
	OK bool
	// Checked counts the records read; Checkpoints the checkpoints whose
	// signatures were checked.
	Checked     int64
	Checkpoints int
	// FirstSeq and LastSeq are the seqs of the first and last records
	// read, 0 if there were none.
	FirstSeq, LastSeq int64
	// Start is the latest checkpoint, from which the chain was checked;
	// nil if there is none and the chain starts at seq 1.
	Start *Checkpoint
	// Head is the end of the chain as stored. Keeping it elsewhere (and
	// comparing) is what detects records deleted from the end, which no
	// chain can show by itself.
	Head Head
	// Problem is the first broken link, nil if OK.
	Problem *Problem
}

// Verify checks the audit trail in s against macKey, the key given to New,
// and reports the first broken link; it returns an error only if it could
// not read the trail.
//
// It checks the signature of every checkpoint, then walks the records in
// seq order from the latest checkpoint (or, if there is none, from seq 1
// and a PrevHash of 32 zero bytes): each record must be numbered one past
// the one before it, match its own Hash (see Record.ComputeHash), and
// carry the previous record's Hash (the checkpoint's, for the first) as
// its PrevHash. The walk goes on past a problem, linking to the hash
// stored in the offending record, to count the records; only the first
// problem is reported.
//
// The chain alone detects a changed, deleted, inserted or reordered record
// anywhere but at the end. It does not detect the removal of the newest
// records, nor a rewrite of every hash after a change by someone who knows
// this format; keep Report.Head (or Log.Head) outside the database and
// compare to detect those. Checkpoints cannot be forged without macKey.
func Verify(ctx context.Context, s Store, macKey []byte) (Report, error) {
	_, checkpointKey, err := deriveKeys(macKey)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	var rep Report
	err = s.ScanAudit(ctx, func(cps []Checkpoint, recs iter.Seq2[Record, error]) error {
		return verify(ctx, &rep, checkpointKey, cps, recs)
	})
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	rep.OK = rep.Problem == nil
	return rep, nil
}

func verify(ctx context.Context, rep *Report, checkpointKey []byte, cps []Checkpoint, recs iter.Seq2[Record, error]) error {
	problem := func(seq int64, kind ProblemKind, format string, args ...any) {
		if rep.Problem == nil {
			rep.Problem = &Problem{Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)}
		}
	}
	for i := range cps {
		cp := &cps[i]
		rep.Checkpoints++
		if !hmac.Equal(cp.Signature, signCheckpoint(checkpointKey, cp)) {
			problem(cp.Seq, ProblemCheckpoint, "checkpoint signature is not valid")
		}
		if i > 0 && cp.Seq <= cps[i-1].Seq {
			problem(cp.Seq, ProblemCheckpoint, "checkpoint follows checkpoint %d", cps[i-1].Seq)
		}
	}

	// next is the seq and prev the PrevHash the next record must have.
	next, prev := int64(1), zeroHash
	if len(cps) > 0 {
		cp := cps[len(cps)-1]
		rep.Start = &cp
		rep.Head = Head{Seq: cp.Seq, Hash: cp.Hash}
		next, prev = cp.Seq+1, cp.Hash
	}
	for r, err := range recs {
		malformed := errors.Is(err, ErrMalformed)
		if err != nil && !malformed {
			return err
		}
		if rep.Checked%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rep.Checked++
		if rep.FirstSeq == 0 {
			rep.FirstSeq = r.Seq
		}
		rep.LastSeq = r.Seq
		rep.Head = Head{Seq: r.Seq, Hash: r.Hash}
		switch {
		case r.Seq < next:
			problem(r.Seq, ProblemSeqGap, "record does not follow seq %d but comes before it", next-1)
		case r.Seq != next:
			problem(r.Seq, ProblemSeqGap, "record follows seq %d; seqs %d to %d are missing", next-1, next, r.Seq-1)
		case malformed:
			problem(r.Seq, ProblemMalformed, "%v", err)
		case len(r.Hash) != HashSize || len(r.PrevHash) != HashSize:
			problem(r.Seq, ProblemMalformed, "hash or prev_hash is not %d bytes", HashSize)
		case !bytes.Equal(r.ComputeHash(), r.Hash):
			problem(r.Seq, ProblemHash, "record does not match its hash")
		case !bytes.Equal(r.PrevHash, prev):
			problem(r.Seq, ProblemPrevHash, "prev_hash is not the hash of seq %d", next-1)
		}
		next, prev = r.Seq+1, r.Hash
	}
	return nil
}
