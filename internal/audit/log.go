package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// KeySize is the size of the key given to New and Verify.
const KeySize = 32

// Defaults of Options.
const (
	DefaultMaxBatch      = 512
	DefaultQueueSize     = 4096
	DefaultCommitTimeout = 10 * time.Second
)

// gatherWindow is the longest the writer waits to fill a batch when the
// previous one was not alone (see run).
const gatherWindow = 300 * time.Microsecond

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log is closed")

// Options configures a Log. Zero fields take the defaults.
type Options struct {
	// MaxBatch is the most records committed in one transaction.
	MaxBatch int
	// QueueSize is how many Appends may wait for the writer before
	// Append itself waits (or gives up when its context ends).
	QueueSize int
	// CommitTimeout bounds each store call of the writer.
	CommitTimeout time.Duration
	// Clock stamps records that have no Time, and checkpoints. Default
	// time.Now.
	Clock func() time.Time
	// Journal is the path of the journal file: Append then returns once
	// its record is synced there, and the records are indexed into the
	// store behind (see the package doc). Empty: each batch is a synced
	// transaction of the store.
	Journal string
}

// journalPoll is how often the owner of a journal, when idle, looks for
// records that other processes appended to it.
const journalPoll = 20 * time.Millisecond

// Log appends records to the audit trail in a Store. It is safe for
// concurrent use; there must be one Log per trail.
type Log struct {
	store         Store
	valueKey      []byte // HMAC of sensitive values
	checkpointKey []byte // signatures of checkpoints
	maxBatch      int
	commitTimeout time.Duration
	clock         func() time.Time

	mu     sync.RWMutex // held for reading while sending on reqs
	closed bool
	reqs   chan *request
	done   chan struct{} // closed when the writer has stopped

	headMu sync.Mutex
	head   Head // the last committed record

	journal   *journal // nil without Options.Journal
	index     *indexer // for the owner of journal
	broken    error    // the journal failed to sync: nothing more is written (writer only)
	guestLast int64    // the last seq appended to a journal owned by another process (writer only)
	contended bool     // another writer appended before this Log's last batch (writer only)

	purgeMu sync.Mutex // one Purge at a time
}

// request is one Append waiting for the writer.
type request struct {
	ctx  context.Context
	rec  Record
	err  error
	done chan struct{} // closed once rec or err is final
}

// New returns a Log that appends to store, chaining from the head of the
// trail already stored, and starts its writer. macKey (KeySize bytes,
// derived by the caller from the master keyring) keys the HMAC of
// sensitive values and the signatures of checkpoints; the same key must
// be given to Verify.
func New(store Store, macKey []byte, opts Options) (*Log, error) {
	if store == nil {
		return nil, errors.New("audit: new log: nil store")
	}
	valueKey, checkpointKey, err := deriveKeys(macKey)
	if err != nil {
		return nil, fmt.Errorf("audit: new log: %w", err)
	}
	l := &Log{
		store:         store,
		valueKey:      valueKey,
		checkpointKey: checkpointKey,
		maxBatch:      orDefault(opts.MaxBatch, DefaultMaxBatch),
		commitTimeout: orDefault(opts.CommitTimeout, DefaultCommitTimeout),
		clock:         opts.Clock,
		reqs:          make(chan *request, orDefault(opts.QueueSize, DefaultQueueSize)),
		done:          make(chan struct{}),
	}
	if l.clock == nil {
		l.clock = time.Now
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.commitTimeout)
	defer cancel()
	if opts.Journal != "" {
		if l.journal, err = openJournal(opts.Journal); err != nil {
			return nil, fmt.Errorf("audit: new log: %w", err)
		}
		if l.journal.isOwner() {
			l.head, err = recoverJournal(ctx, store, l.journal)
			if err != nil {
				l.journal.Close()
				return nil, fmt.Errorf("audit: new log: %w", err)
			}
			l.index = newIndexer(store, l.head.Seq, l.commitTimeout)
			go l.run()
			return l, nil
		}
	}
	if l.head, err = store.AuditHead(ctx); err != nil {
		if l.journal != nil {
			l.journal.Close()
		}
		return nil, fmt.Errorf("audit: new log: read head: %w", err)
	}
	go l.run()
	return l, nil
}

// orDefault returns v, or def if v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// deriveKeys derives the keys of value HMACs and of checkpoint signatures
// from macKey: HMAC-SHA256(macKey, "runagent.audit.hmac.v1") and
// HMAC-SHA256(macKey, "runagent.audit.checkpoint.v1"). Separate keys mean
// an HMAC of a value, which the trail shows and whose input a client may
// choose, can never be a valid checkpoint signature.
func deriveKeys(macKey []byte) (valueKey, checkpointKey []byte, err error) {
	if len(macKey) != KeySize {
		return nil, nil, fmt.Errorf("audit key is %d bytes, want %d", len(macKey), KeySize)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, macKey)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return derive("runagent.audit.hmac.v1"), derive(checkpointDomain), nil
}

// HMAC returns "hmac-sha256:" and the hex HMAC-SHA256 of value, as Vault's
// audit devices write secrets: the same value always gives the same
// string, so an operator holding a value can find where it appears (by
// computing HMAC of it), but the trail does not reveal it. The key is
// derived from the Log's key (see New).
func (l *Log) HMAC(value string) string {
	return hmacValue(l.valueKey, value)
}

func hmacValue(key []byte, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
}

// Append adds rec to the trail and returns it as committed, with Seq,
// Time (if it was zero), PrevHash and Hash set. It returns only once the
// record is durably stored, batched with concurrent Appends into one
// transaction.
//
// An error means the record may not be stored, and the action it
// describes must fail: callers fail closed, never performing an action
// whose record could not be written. (When a commit's outcome is unknown,
// say its context ended during COMMIT, the record may be stored although
// Append failed; the trail then shows an action that did not complete,
// never the reverse.)
//
// Before rec is queued, it is checked and made storable: Action and
// Outcome must be names (1 to MaxNameBytes of a-z, 0-9, '.', '_', '-'),
// detail keys likewise (A-Z allowed), at most MaxDetails details in all;
// breaking those is a core.CodeValidation error. String values that are
// not UTF-8 or hold NULs have those bytes replaced with U+FFFD, and values
// longer than MaxFieldBytes (MaxValueBytes for details) are cut to fit and
// end in "…", so that a client cannot make an action fail by sending an
// odd User-Agent. SensitiveDetails are HMAC'd into Details. A zero Time is
// set to the time the writer takes the record; a given one is kept, in
// UTC. Seq, PrevHash and Hash are ignored.
//
// ctx bounds the wait for a place in the queue; once queued, the record is
// either written or refused within Options.CommitTimeout per batch, and
// Append waits for that. A record whose ctx has ended by the time the
// writer takes it is dropped, and Append returns ctx's error.
func (l *Log) Append(ctx context.Context, rec Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("audit: append: %w", err)
	}
	r, err := prepare(rec, l.HMAC)
	if err != nil {
		return Record{}, err
	}
	req := &request{ctx: ctx, rec: r, done: make(chan struct{})}

	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return Record{}, ErrClosed
	}
	select {
	case l.reqs <- req:
	case <-ctx.Done():
		l.mu.RUnlock()
		return Record{}, fmt.Errorf("audit: append: %w", ctx.Err())
	}
	l.mu.RUnlock()

	<-req.done
	if req.err != nil {
		return Record{}, req.err
	}
	return req.rec, nil
}

// Head returns the end of the chain as of the last commit.
func (l *Log) Head() Head {
	l.headMu.Lock()
	defer l.headMu.Unlock()
	return l.head
}

func (l *Log) setHead(h Head) {
	l.headMu.Lock()
	defer l.headMu.Unlock()
	l.head = h
}

// Close stops accepting records, commits those already queued and stops
// the writer. Appends after Close fail with ErrClosed. Calls after the
// first return nil at once.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.reqs)
	l.mu.Unlock()
	<-l.done
	if l.journal == nil {
		return nil
	}
	var err error
	if l.index != nil {
		// Whatever the store lacks now, the next owner recovers.
		err = l.index.close(l.Head().Seq)
	} else if l.guestLast > 0 {
		err = l.awaitOwner(l.guestLast)
	}
	l.journal.Close()
	return err
}

// awaitOwner waits, up to the commit timeout, for the store to hold
// record seq, which this Log appended to a journal another process owns:
// so that a reader started after Close finds it.
func (l *Log) awaitOwner(seq int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.commitTimeout)
	defer cancel()
	for {
		h, err := l.store.AuditHead(ctx)
		if err == nil && h.Seq >= seq {
			return nil
		}
		select {
		case <-time.After(journalPoll / 4):
		case <-ctx.Done():
			return fmt.Errorf("audit: record %d is durable in the journal, but its owner has not indexed it yet: %w", seq, ctx.Err())
		}
	}
}

// run is the writer: it takes whatever is queued, up to maxBatch records,
// commits it as one transaction, and starts over. Batches form on their
// own: while one commit waits for the disk, the next Appends queue up.
func (l *Log) run() {
	defer close(l.done)
	head := l.Head()
	stale := false // the stored head may differ from head
	batch := make([]*request, 0, l.maxBatch)
	last := 0 // the previous batch's size
	var timer *time.Timer
	var poll <-chan time.Time
	if l.index != nil {
		t := time.NewTicker(journalPoll)
		defer t.Stop()
		poll = t.C
	}
	for {
		var req *request
		select {
		case r, ok := <-l.reqs:
			if !ok {
				return
			}
			req = r
		case <-poll:
			head = l.pollJournal(head)
			continue
		}
		batch = append(batch[:0], req)
		// Under concurrency (the previous batch had company), wait up to
		// gatherWindow for as many records as it had: the writers whose
		// records the last commit answered are about to send their next
		// ones, and one commit for all of them costs one sync instead of
		// several. A lone writer never waits.
		var deadline <-chan time.Time
		if last > 1 {
			if timer == nil {
				timer = time.NewTimer(gatherWindow)
			} else {
				timer.Reset(gatherWindow)
			}
			deadline = timer.C
		}
	fill:
		for len(batch) < l.maxBatch {
			select {
			case req, ok := <-l.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, req)
				continue
			default:
			}
			if deadline == nil || len(batch) >= last {
				break
			}
			select {
			case req, ok := <-l.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, req)
			case <-deadline:
				deadline = nil
				break fill
			}
		}
		if timer != nil {
			timer.Stop() // since Go 1.23, a stopped or reset timer delivers nothing stale
		}
		last = len(batch)
		head, stale = l.commit(batch, head, stale)
		clear(batch) // let the requests go
	}
}

// commit writes the live requests of batch after head and reports the new
// head, and whether it may be stale. After a failed commit the head is
// read again from the store before the next one, so the next batch chains
// from the last record actually committed, whatever the failure was.
func (l *Log) commit(batch []*request, head Head, stale bool) (Head, bool) {
	live := batch[:0:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.err = fmt.Errorf("audit: append: %w", err)
			close(req.done)
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return head, stale
	}
	fail := func(err error) {
		for _, req := range live {
			req.err = err
			close(req.done)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), l.commitTimeout)
	defer cancel()
	if l.journal != nil {
		h, err := l.commitJournal(ctx, live, head)
		if err != nil {
			fail(err)
		}
		return h, false
	}
	now := l.clock().UTC()
	recs := make([]Record, len(live))
	if cs, ok := l.store.(ChainStore); ok {
		if err := l.appendChained(ctx, cs, recs, live, head, stale, now); err != nil {
			fail(err)
			return head, true
		}
	} else if err := l.appendAfter(ctx, recs, live, head, stale, now); err != nil {
		fail(err)
		return head, true
	}
	last := recs[len(recs)-1]
	head = Head{Seq: last.Seq, Hash: last.Hash}
	l.setHead(head)
	for i, req := range live {
		req.rec = recs[i]
		close(req.done)
	}
	return head, false
}

// appendChained stores the records of live, in recs, on a ChainStore.
// While no other writer appends (contended is false; one node), the
// batch is chained after head, this Log's last, and stored with
// AppendAudit: on PostgreSQL one statement that commits on its own, one
// round trip. If the store refuses it for not following the stored chain
// (ErrNotNext: nothing of it was stored), and while other writers
// append, it is chained after the head the store reads in the batch's
// own transaction (AppendAuditChained), which no other append can
// overtake: a batch never fails for having lost a race for the head. Any
// other failure of the first attempt fails the batch: its commit may
// have landed, and chaining it again would store it twice.
func (l *Log) appendChained(ctx context.Context, cs ChainStore, recs []Record, live []*request, head Head, stale bool, now time.Time) error {
	if !stale && !l.contended {
		chain(recs, live, head, now)
		err := cs.AppendAudit(ctx, recs)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNotNext) {
			return fmt.Errorf("audit: append: %w", err)
		}
	}
	err := cs.AppendAuditChained(ctx, func(h Head) []Record {
		// Someone else appended since this Log's last batch: chain in
		// the store's transaction until a batch finds nobody did.
		l.contended = h.Seq != head.Seq || !bytes.Equal(h.Hash, head.Hash)
		chain(recs, live, h, now)
		return recs
	})
	if err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	return nil
}

// appendAfter stores the records of live, chained after head (read again
// from the store first if stale), in recs, for a store that cannot chain
// them in its own transaction (not a ChainStore). While another writer
// moves the stored head between the read and the append, it chains after
// the new head and tries again, until ctx ends.
func (l *Log) appendAfter(ctx context.Context, recs []Record, live []*request, head Head, stale bool, now time.Time) error {
	if stale {
		h, err := l.store.AuditHead(ctx)
		if err != nil {
			return fmt.Errorf("audit: append: read head: %w", err)
		}
		head = h
		l.setHead(h)
	}
	for {
		chain(recs, live, head, now)
		err := l.store.AppendAudit(ctx, recs)
		if err == nil {
			return nil
		}
		h, herr := l.store.AuditHead(ctx)
		if herr != nil || ctx.Err() != nil {
			return fmt.Errorf("audit: append: %w", err)
		}
		// A commit that landed although it reported failure (its
		// durability unknown) is a failure: head then moved to this
		// batch's last record, and the next batch chains from it.
		last := recs[len(recs)-1]
		landed := h.Seq == last.Seq && bytes.Equal(h.Hash, last.Hash)
		if landed || (h.Seq == head.Seq && bytes.Equal(h.Hash, head.Hash)) {
			return fmt.Errorf("audit: append: %w", err)
		}
		// Another writer (another node, an offline purge) appended
		// since the head was read: chain after it and try again.
		head = h
		l.setHead(h)
	}
}

// chain fills recs with the records of live, chained after head; those
// without a Time get now.
func chain(recs []Record, live []*request, head Head, now time.Time) {
	prev := head.prevHash()
	for i, req := range live {
		r := req.rec
		r.Seq = head.Seq + 1 + int64(i)
		if r.Time.IsZero() {
			r.Time = now
		}
		r.PrevHash = prev
		r.Hash = r.ComputeHash()
		prev = r.Hash
		recs[i] = r
	}
}

// commitJournal appends the records of live to the journal after head
// (or after what other processes appended to it meanwhile), syncs them,
// answers their Appends and, as the journal's owner, queues them to be
// indexed. It returns the new head. Under the journal's lock it first
// reads what others appended; when the batch does not fit, the owner
// waits for the store to hold every record durably and resets the
// journal first.
func (l *Log) commitJournal(ctx context.Context, live []*request, head Head) (Head, error) {
	if l.broken != nil {
		return head, l.broken
	}
	j := l.journal
	if err := j.lock(); err != nil {
		return head, fmt.Errorf("audit: append: %w", err)
	}
	defer j.unlock()
	head, err := l.catchUp(ctx, head)
	if err != nil {
		return head, err
	}
	recs := make([]Record, len(live))
	chain(recs, live, head, l.clock().UTC())
	frames := j.encode(recs)
	if j.isOwner() && (!j.valid || j.full(len(frames))) {
		if err := l.index.sync(ctx, head.Seq); err != nil {
			return head, fmt.Errorf("audit: append: start the journal over: %w", err)
		}
		if err := j.reset(); err != nil {
			return head, fmt.Errorf("audit: append: %w", err)
		}
		frames = j.encode(recs)
	}
	if !j.valid {
		return head, errors.New("audit: append: the journal has no valid header, and another process owns it")
	}
	if err := j.append(frames, recs); err != nil {
		// After a failed fsync the kernel may have dropped the pages it
		// could not write: no later sync would tell. Stop writing.
		l.broken = fmt.Errorf("audit: append: %w (no record is written until a restart)", err)
		return head, l.broken
	}
	last := recs[len(recs)-1]
	head = Head{Seq: last.Seq, Hash: last.Hash}
	l.setHead(head)
	if l.index != nil {
		l.index.add(recs)
	} else {
		l.guestLast = last.Seq
	}
	for i, req := range live {
		req.rec = recs[i]
		close(req.done)
	}
	return head, nil
}

// catchUp reads what other processes appended to the journal since this
// Log last looked, queues it to be indexed (as the owner), and returns
// the head of the trail. Call it with the journal's lock held.
func (l *Log) catchUp(ctx context.Context, head Head) (Head, error) {
	j := l.journal
	found, err := j.catchUp()
	if err != nil {
		return head, fmt.Errorf("audit: append: %w", err)
	}
	if len(found) > 0 && l.index != nil {
		l.index.add(found)
	}
	switch {
	case j.last.Seq > 0:
		head = Head{Seq: j.last.Seq, Hash: j.last.Hash}
	case l.index == nil:
		// A guest: the journal holds nothing since its reset, so the
		// store holds every record durably.
		if head, err = l.store.AuditHead(ctx); err != nil {
			return head, fmt.Errorf("audit: append: read head: %w", err)
		}
	}
	l.setHead(head)
	return head, nil
}

// pollJournal has the owner index what other processes appended to the
// journal while it was idle.
func (l *Log) pollJournal(head Head) Head {
	if !l.journal.changed() || l.broken != nil {
		return head
	}
	if err := l.journal.lock(); err != nil {
		return head
	}
	defer l.journal.unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.commitTimeout)
	defer cancel()
	h, err := l.catchUp(ctx, head)
	if err != nil {
		return head
	}
	return h
}
