package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"
)

// purgeBatch is how many records Purge deletes per transaction, at most.
const purgeBatch = MaxLimit

// Purge deletes the records older than before, oldest first, and returns
// how many it deleted; with dryRun it deletes nothing and returns how many
// it would delete.
//
// What it deletes is the longest run of records from the start of the
// chain whose times are all before before: a record out of time order (a
// clock step, or a Time given to Append) ends the run, so a purge never
// leaves a hole in the chain.
//
// Records are deleted in batches of up to MaxLimit, each batch in its own
// transaction together with a signed Checkpoint for its last record, so
// the trail verifies after every batch, even if the purge stops half way
// (ctx ended, a crash). Verify starts from the latest checkpoint.
//
// Unless dryRun, Purge then appends an ActionPurge record itself (resource
// "audit", no principal: callers that purge on someone's behalf append
// their own record too) with the details "before", "purged" and, if any
// record was deleted, "through_seq"; its Outcome is OutcomeError if the
// purge failed. Like Append, an error from Purge means the purge must be
// treated as failed, even if some batches were deleted (n says how many).
// One Purge runs at a time.
func (l *Log) Purge(ctx context.Context, before time.Time, dryRun bool) (n int64, err error) {
	l.purgeMu.Lock()
	defer l.purgeMu.Unlock()

	before = before.UTC()
	var through int64
	n, through, err = l.purge(ctx, before, dryRun)
	if dryRun {
		return n, err
	}

	rec := Record{
		Action: ActionPurge, Resource: "audit", Outcome: OutcomeSuccess,
		Details: map[string]string{"before": before.Format(time.RFC3339Nano), "purged": strconv.FormatInt(n, 10)},
	}
	if through > 0 {
		rec.Details["through_seq"] = strconv.FormatInt(through, 10)
	}
	if err != nil {
		rec.Outcome = OutcomeError
	}
	// The purge's own context may be what ended it; the record is still due.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.commitTimeout)
	defer cancel()
	if _, aerr := l.Append(actx, rec); aerr != nil && err == nil {
		err = aerr
	}
	return n, err
}

// purge does Purge's deletions and returns how many records it deleted
// (or, with dryRun, would delete) and the seq of the last one.
func (l *Log) purge(ctx context.Context, before time.Time, dryRun bool) (n, through int64, err error) {
	if err := l.WaitIndexed(ctx); err != nil {
		return 0, 0, fmt.Errorf("audit: purge: %w", err)
	}
	var after int64
	for {
		page, err := l.store.AuditRecords(ctx, Filter{AfterSeq: after, Limit: purgeBatch})
		if err != nil {
			return n, through, fmt.Errorf("audit: purge: %w", err)
		}
		old := 0
		for old < len(page) && page[old].Time.Before(before) {
			old++
		}
		if old == 0 {
			return n, through, nil
		}
		last := page[old-1]
		if dryRun {
			n += int64(old)
		} else {
			cp := Checkpoint{Seq: last.Seq, Hash: last.Hash, Time: l.clock().UTC()}
			cp.Signature = signCheckpoint(l.checkpointKey, &cp)
			deleted, err := l.store.PurgeAudit(ctx, cp)
			if err != nil {
				return n, through, fmt.Errorf("audit: purge through seq %d: %w", cp.Seq, err)
			}
			n += deleted
		}
		through, after = last.Seq, last.Seq
		if old < len(page) || len(page) < purgeBatch {
			return n, through, nil
		}
	}
}

// signCheckpoint returns the signature of cp: HMAC-SHA256 over its
// canonical encoding with the checkpoint key.
func signCheckpoint(key []byte, cp *Checkpoint) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(cp.canonical())
	return m.Sum(nil)
}
