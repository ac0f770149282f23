package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"sync"
	"time"
)

// IndexStore is a Store that can also take records that are durable
// already (in a Log's journal) without syncing them again, and sync
// later. *sqlite.DB is one. With a journal, a Log uses these methods when
// its store has them, and AppendAudit otherwise.
type IndexStore interface {
	Store
	// IndexAudit stores recs like AppendAudit, but its transaction need
	// not be durable when it returns.
	IndexAudit(ctx context.Context, recs []Record) error
	// SyncAudit makes every record stored so far durable.
	SyncAudit(ctx context.Context) error
}

// indexBatch is the most records the indexer stores in one transaction.
const indexBatch = 4096

// indexPause is how long the indexer lets records gather after a
// transaction, unless a reader waits for them: a commit costs ~160 µs of
// CPU whatever its size (WAL frames of the table and its five indexes),
// the same as ten INSERTs, so under load fewer, larger transactions
// leave more of the CPU to the requests.
const indexPause = 2 * time.Millisecond

// indexer copies the records the journal made durable into the store,
// behind the writer, in transactions of whatever has queued up meanwhile.
type indexer struct {
	store   Store
	timeout time.Duration

	mu       sync.Mutex
	pending  []Record
	indexed  int64         // the store holds every record through this seq
	err      error         // of the last attempt; nil once one succeeds
	progress chan struct{} // closed and replaced when indexed or err change

	wake chan struct{}
	urge chan struct{} // a reader waits: no pause
	stop chan struct{}
	done chan struct{}
}

func newIndexer(store Store, indexed int64, timeout time.Duration) *indexer {
	x := &indexer{
		store: store, timeout: timeout, indexed: indexed,
		progress: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		urge:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go x.run()
	return x
}

// add queues recs, which continue those added before, to be indexed.
func (x *indexer) add(recs []Record) {
	x.mu.Lock()
	x.pending = append(x.pending, recs...)
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

func (x *indexer) run() {
	defer close(x.done)
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-time.After(backoff):
			case <-x.stop:
				return
			}
		} else {
			select {
			case <-x.wake:
			case <-x.stop:
				return
			}
		}
		for {
			x.mu.Lock()
			batch := x.pending[:min(len(x.pending), indexBatch)]
			x.mu.Unlock()
			if len(batch) == 0 {
				backoff = 0
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), x.timeout)
			err := x.index(ctx, batch)
			cancel()
			x.mu.Lock()
			if err == nil {
				x.pending = x.pending[len(batch):]
				if len(x.pending) == 0 {
					x.pending = nil // let the records go
				}
				x.indexed = batch[len(batch)-1].Seq
			}
			x.err = err
			close(x.progress)
			x.progress = make(chan struct{})
			x.mu.Unlock()
			if err != nil {
				// The journal keeps the records: try again, less often.
				backoff = min(max(2*backoff, 10*time.Millisecond), time.Second)
				break
			}
			select {
			case <-time.After(indexPause):
			case <-x.urge:
			case <-x.stop:
			}
		}
	}
}

func (x *indexer) index(ctx context.Context, recs []Record) error {
	if s, ok := x.store.(IndexStore); ok {
		return s.IndexAudit(ctx, recs)
	}
	return x.store.AppendAudit(ctx, recs)
}

// wait returns once the store holds every record through seq, or with
// the error of the indexer's last attempt if it failed.
func (x *indexer) wait(ctx context.Context, seq int64) error {
	for {
		x.mu.Lock()
		indexed, err, progress := x.indexed, x.err, x.progress
		x.mu.Unlock()
		if indexed >= seq {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: index the journal's records: %w", err)
		}
		select {
		case x.urge <- struct{}{}:
		default:
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return fmt.Errorf("audit: wait for the journal's records to be indexed: %w", ctx.Err())
		}
	}
}

// sync returns once the store holds every record through seq durably.
func (x *indexer) sync(ctx context.Context, seq int64) error {
	if err := x.wait(ctx, seq); err != nil {
		return err
	}
	if s, ok := x.store.(IndexStore); ok {
		if err := s.SyncAudit(ctx); err != nil {
			return fmt.Errorf("audit: sync the store: %w", err)
		}
	}
	return nil
}

// close stops the indexer once it has indexed through seq, or failed to.
func (x *indexer) close(seq int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), x.timeout)
	defer cancel()
	err := x.wait(ctx, seq)
	close(x.stop)
	<-x.done
	return err
}

// indexedStore is a Log's store for readers: each read first waits for
// the records appended before it to be indexed.
type indexedStore struct {
	Store
	l *Log
}

// Store returns the Log's store for reading. With a journal, every read
// first waits until the store holds each record appended before it (see
// the package doc); without, it is the store itself.
func (l *Log) Store() Store {
	if l.index == nil {
		return l.store
	}
	return indexedStore{Store: l.store, l: l}
}

// WaitIndexed returns once the store holds every record appended before
// the call, or with why not. Without a journal, or for a Log that does
// not own its journal, it returns nil at once.
func (l *Log) WaitIndexed(ctx context.Context) error {
	if l.index == nil {
		return nil
	}
	return l.index.wait(ctx, l.Head().Seq)
}

func (s indexedStore) AuditHead(ctx context.Context) (Head, error) {
	if err := s.l.WaitIndexed(ctx); err != nil {
		return Head{}, err
	}
	return s.Store.AuditHead(ctx)
}

func (s indexedStore) AuditRecords(ctx context.Context, f Filter) ([]Record, error) {
	if err := s.l.WaitIndexed(ctx); err != nil {
		return nil, err
	}
	return s.Store.AuditRecords(ctx, f)
}

func (s indexedStore) ScanAudit(ctx context.Context, fn func(cps []Checkpoint, recs iter.Seq2[Record, error]) error) error {
	if err := s.l.WaitIndexed(ctx); err != nil {
		return err
	}
	return s.Store.ScanAudit(ctx, fn)
}

func (s indexedStore) AuditCheckpoints(ctx context.Context) ([]Checkpoint, error) {
	if err := s.l.WaitIndexed(ctx); err != nil {
		return nil, err
	}
	return s.Store.AuditCheckpoints(ctx)
}

// Recover copies into store, durably, the records that the journal at
// path holds and store lacks (a Log that owned the journal stopped before
// it indexed them: a crash), unless another process owns the journal (a
// running server, which indexes them itself). Readers of a store without
// a Log of their own call it first. A missing journal is nothing to do.
func Recover(ctx context.Context, store Store, path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	j, err := openJournal(path)
	if err != nil {
		return err
	}
	defer j.Close()
	if !j.isOwner() {
		return nil
	}
	_, err = recoverJournal(ctx, store, j)
	return err
}

// recoverJournal stores, durably, the journal's records that store lacks,
// then resets the journal, and returns the head of the trail. j must be
// owned.
func recoverJournal(ctx context.Context, store Store, j *journal) (Head, error) {
	if err := j.lock(); err != nil {
		return Head{}, err
	}
	defer j.unlock()
	recs, err := j.catchUp()
	if err != nil {
		return Head{}, fmt.Errorf("audit: recover the journal: %w", err)
	}
	head, err := store.AuditHead(ctx)
	if err != nil {
		return Head{}, fmt.Errorf("audit: recover the journal: read head: %w", err)
	}
	var missing []Record
	for _, r := range recs {
		switch {
		case r.Seq > head.Seq:
			missing = append(missing, r)
		case r.Seq == head.Seq && !bytes.Equal(r.Hash, head.Hash):
			return Head{}, fmt.Errorf("audit: recover the journal: its record %d differs from the store's: the two trails have forked", r.Seq)
		}
	}
	for len(missing) > 0 {
		n := min(len(missing), DefaultMaxBatch)
		if err := store.AppendAudit(ctx, missing[:n]); err != nil {
			return Head{}, fmt.Errorf("audit: recover the journal: store records %d to %d: %w", missing[0].Seq, missing[n-1].Seq, err)
		}
		last := missing[n-1]
		head = Head{Seq: last.Seq, Hash: last.Hash}
		missing = missing[n:]
	}
	if len(recs) > 0 {
		// Records a previous owner indexed without a sync may not be
		// durable in the store yet.
		if s, ok := store.(IndexStore); ok {
			if err := s.SyncAudit(ctx); err != nil {
				return Head{}, fmt.Errorf("audit: recover the journal: %w", err)
			}
		}
	}
	if len(recs) > 0 || !j.valid {
		if err := j.reset(); err != nil {
			return Head{}, err
		}
	}
	return head, nil
}
