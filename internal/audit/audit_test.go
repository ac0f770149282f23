package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/sqlite"
	_ "modernc.org/sqlite" // the "sqlite" driver, for opening the file as an attacker would
)

var testKey = bytes.Repeat([]byte{0x42}, audit.KeySize)

// mustOpen opens a database file in a temporary directory, closed when
// the test ends, and returns it with its path.
func mustOpen(tb testing.TB) (*sqlite.DB, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "runagent.db")
	db, err := sqlite.Open(tb.Context(), path)
	if err != nil {
		tb.Fatalf("sqlite.Open(%q) = %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, path
}

// mustNew returns a Log on s, closed when the test ends.
func mustNew(tb testing.TB, s audit.Store, opts audit.Options) *audit.Log {
	tb.Helper()
	l, err := audit.New(s, testKey, opts)
	if err != nil {
		tb.Fatalf("audit.New = %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// mustRaw opens the database file directly, as someone with access to the
// file could, closed when the test ends.
func mustRaw(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	tb.Cleanup(func() { raw.Close() })
	return raw
}

func mustExec(tb testing.TB, db *sql.DB, query string, args ...any) {
	tb.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		tb.Fatalf("%s = %v", query, err)
	}
}

func mustVerify(tb testing.TB, s audit.Store) audit.Report {
	tb.Helper()
	rep, err := audit.Verify(tb.Context(), s, testKey)
	if err != nil {
		tb.Fatalf("Verify = %v", err)
	}
	return rep
}

// record returns a record for test number i.
func record(i int) audit.Record {
	outcomes := []string{audit.OutcomeSuccess, audit.OutcomeDenied, audit.OutcomeError}
	actions := []string{"key.create", "invocation.run", "secret.read", "agent.deploy"}
	return audit.Record{
		PrincipalID: fmt.Sprintf("prn-%d", i%7),
		KeyID:       fmt.Sprintf("key-%d", i%5),
		Action:      actions[i%len(actions)],
		Resource:    fmt.Sprintf("agent/a-%d", i%11),
		Outcome:     outcomes[i%len(outcomes)],
		IP:          "192.0.2.1",
		UserAgent:   "runagent-test/1.0",
		RequestID:   fmt.Sprintf("req-%d", i),
		Details:     map[string]string{"n": fmt.Sprint(i)},
	}
}

// mustAppend appends n records with consecutive test numbers from first,
// one at a time, and returns them as committed.
func mustAppend(tb testing.TB, l *audit.Log, first, n int, at func(i int) time.Time) []audit.Record {
	tb.Helper()
	out := make([]audit.Record, 0, n)
	for i := first; i < first+n; i++ {
		r := record(i)
		if at != nil {
			r.Time = at(i)
		}
		got, err := l.Append(tb.Context(), r)
		if err != nil {
			tb.Fatalf("Append(%d) = %v", i, err)
		}
		out = append(out, got)
	}
	return out
}

// TestAppendConcurrentVerifies: thousands of records from concurrent
// writers form one chain, numbered without gaps, that verifies; each
// writer sees its own records in order, as committed and stored.
func TestAppendConcurrentVerifies(t *testing.T) {
	db, _ := mustOpen(t)
	l := mustNew(t, db, audit.Options{})
	const writers, each = 32, 100
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got = map[int64]audit.Record{}
	)
	for w := range writers {
		wg.Go(func() {
			var last int64
			for i := range each {
				r, err := l.Append(t.Context(), record(w*each+i))
				if err != nil {
					t.Errorf("writer %d: Append = %v", w, err)
					return
				}
				if r.Seq <= last {
					t.Errorf("writer %d: seq %d after %d", w, r.Seq, last)
				}
				last = r.Seq
				mu.Lock()
				got[r.Seq] = r
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	const n = writers * each
	for seq := int64(1); seq <= n; seq++ {
		if _, ok := got[seq]; !ok {
			t.Fatalf("no Append returned seq %d", seq)
		}
	}
	if h := l.Head(); h.Seq != n || !bytes.Equal(h.Hash, got[n].Hash) {
		t.Errorf("Head() = %d %x, want %d %x", h.Seq, h.Hash, n, got[n].Hash)
	}

	stored := allRecords(t, db)
	if len(stored) != n {
		t.Fatalf("stored %d records, want %d", len(stored), n)
	}
	for _, s := range stored {
		if diff := cmp.Diff(got[s.Seq], s); diff != "" {
			t.Fatalf("stored record %d differs from Append's (-appended +stored):\n%s", s.Seq, diff)
		}
	}
	rep := mustVerify(t, db)
	want := audit.Report{OK: true, Checked: n, FirstSeq: 1, LastSeq: n, Head: audit.Head{Seq: n, Hash: got[n].Hash}}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("Verify report (-want +got):\n%s", diff)
	}
}

// allRecords reads every stored record, page by page.
func allRecords(tb testing.TB, s audit.Store) []audit.Record {
	tb.Helper()
	var out []audit.Record
	f := audit.Filter{Limit: audit.MaxLimit}
	for {
		page, err := audit.Records(tb.Context(), s, f)
		if err != nil {
			tb.Fatalf("Records = %v", err)
		}
		out = append(out, page...)
		if len(page) < f.PageSize() {
			return out
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
}

// TestAppendChainsAcrossLogs: a new Log continues the stored chain.
func TestAppendChainsAcrossLogs(t *testing.T) {
	db, _ := mustOpen(t)
	l := mustNew(t, db, audit.Options{})
	first := mustAppend(t, l, 0, 3, nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), record(9)); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if first[0].Seq != 1 || !bytes.Equal(first[0].PrevHash, make([]byte, 32)) {
		t.Errorf("first record: seq %d prev %x, want 1 and zeros", first[0].Seq, first[0].PrevHash)
	}

	l2 := mustNew(t, db, audit.Options{})
	next := mustAppend(t, l2, 3, 1, nil)[0]
	if next.Seq != 4 || !bytes.Equal(next.PrevHash, first[2].Hash) {
		t.Errorf("record after reopening: seq %d prev %x, want 4 and %x", next.Seq, next.PrevHash, first[2].Hash)
	}
	if rep := mustVerify(t, db); !rep.OK || rep.Checked != 4 {
		t.Errorf("Verify = %+v, want OK with 4 records", rep)
	}
}

// TestAppendPreparesRecord: names are checked; values are made to fit;
// the caller's maps are not kept; Seq and hashes given are ignored.
func TestAppendPreparesRecord(t *testing.T) {
	db, _ := mustOpen(t)
	clock := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	l := mustNew(t, db, audit.Options{Clock: func() time.Time { return clock }})

	bad := []struct {
		name  string
		rec   audit.Record
		field string
	}{
		{"no action", audit.Record{Outcome: "success"}, "action"},
		{"upper-case action", audit.Record{Action: "Key.Create", Outcome: "success"}, "action"},
		{"no outcome", audit.Record{Action: "key.create"}, "outcome"},
		{"bad detail key", audit.Record{Action: "a", Outcome: "b", Details: map[string]string{"a b": "x"}}, "details"},
		{"sensitive and not", audit.Record{Action: "a", Outcome: "b", Details: map[string]string{"k": "x"}, SensitiveDetails: map[string]string{"k": "y"}}, "details"},
		{"too many details", audit.Record{Action: "a", Outcome: "b", Details: manyDetails(audit.MaxDetails + 1)}, "details"},
		{"time out of range", audit.Record{Action: "a", Outcome: "b", Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, "time"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Append(t.Context(), tt.rec)
			e, ok := errors.AsType[*core.Error](err)
			if !ok || e.Code != core.CodeValidation || e.Field != tt.field {
				t.Errorf("Append = %v, want a validation error on %q", err, tt.field)
			}
		})
	}

	details := map[string]string{"path": "/v1/\xff\x00x"}
	in := audit.Record{
		Seq: 99, Hash: []byte("ignored"), PrevHash: []byte("ignored"),
		Action: "key.create", Outcome: "success",
		UserAgent: strings.Repeat("é", audit.MaxFieldBytes), // 2 bytes each: twice too long
		Details:   details,
	}
	got, err := l.Append(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	details["path"] = "changed by the caller afterwards"
	if got.Seq != 1 || !got.Time.Equal(clock) {
		t.Errorf("Append = seq %d time %v, want 1 and %v", got.Seq, got.Time, clock)
	}
	if !utf8.ValidString(got.UserAgent) || len(got.UserAgent) > audit.MaxFieldBytes || !strings.HasSuffix(got.UserAgent, "…") {
		t.Errorf("UserAgent = %d bytes, valid %v; want it cut to at most %d and ending in …", len(got.UserAgent), utf8.ValidString(got.UserAgent), audit.MaxFieldBytes)
	}
	if want := "/v1/\uFFFD\uFFFDx"; got.Details["path"] != want {
		t.Errorf("Details[path] = %q, want %q", got.Details["path"], want)
	}
	stored := allRecords(t, db)
	if diff := cmp.Diff([]audit.Record{got}, stored); diff != "" {
		t.Errorf("stored (-appended +stored):\n%s", diff)
	}
	if rep := mustVerify(t, db); !rep.OK {
		t.Errorf("Verify: %v", rep.Problem)
	}
}

func manyDetails(n int) map[string]string {
	d := map[string]string{}
	for i := range n {
		d[fmt.Sprintf("k%d", i)] = "v"
	}
	return d
}

// TestHMAC: a sensitive value is stored as its HMAC, never in the clear;
// the HMAC is stable for a key and differs between keys.
func TestHMAC(t *testing.T) {
	db, path := mustOpen(t)
	l := mustNew(t, db, audit.Options{})
	const secret = "ra_live_s3cr3t-t0ken-value"

	a, b := l.HMAC(secret), l.HMAC(secret)
	if a != b {
		t.Errorf("HMAC twice = %q, %q; want equal", a, b)
	}
	if !strings.HasPrefix(a, "hmac-sha256:") || len(a) != len("hmac-sha256:")+64 {
		t.Errorf("HMAC = %q, want hmac-sha256: and 64 hex digits", a)
	}
	if c := l.HMAC(secret + "x"); c == a {
		t.Errorf("HMAC of another value = %q, the same", c)
	}
	other, err := audit.New(db, bytes.Repeat([]byte{1}, audit.KeySize), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if c := other.HMAC(secret); c == a {
		t.Errorf("HMAC under another key = %q, the same", c)
	}

	got, err := l.Append(t.Context(), audit.Record{
		Action: "secret.read", Resource: "agent/a1", Outcome: "success",
		Details:          map[string]string{"name": "OPENAI_API_KEY"},
		SensitiveDetails: map[string]string{"value": secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Details["value"] != a || got.SensitiveDetails != nil {
		t.Errorf("appended details %v, sensitive %v; want value %q and no sensitive details", got.Details, got.SensitiveDetails, a)
	}

	// No column of the stored row holds the secret.
	raw := mustRaw(t, path)
	var row string
	err = raw.QueryRow(`SELECT concat_ws('|', seq, at, principal_id, key_id, subject, action, resource, outcome,
		ip, user_agent, request_id, details, hex(prev_hash), hex(hash), CAST(prev_hash AS TEXT), CAST(hash AS TEXT))
		FROM audit_records WHERE seq = ?`, got.Seq).Scan(&row)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row, secret) || !strings.Contains(row, a) {
		t.Errorf("stored row %q: want the HMAC %q and not the secret", row, a)
	}
}

func TestNewRefusesBadKey(t *testing.T) {
	db, _ := mustOpen(t)
	for _, n := range []int{0, 16, 31, 33, 64} {
		if l, err := audit.New(db, make([]byte, n), audit.Options{}); err == nil {
			l.Close()
			t.Errorf("New with a %d-byte key = nil error", n)
		}
	}
	if _, err := audit.Verify(t.Context(), db, nil); err == nil {
		t.Error("Verify with no key = nil error")
	}
}

// failingStore is a Store whose AppendAudit can be held, can fail, or can
// commit and still fail, to test the Log's error path.
type failingStore struct {
	audit.Store

	mu      sync.Mutex
	gate    chan struct{} // if not nil, the next AppendAudit waits for it to close
	entered chan struct{} // closed when a gated AppendAudit is waiting
	fail    int           // fail this many AppendAudits
	commit  bool          // store the batch before failing
	failed  [][]audit.Record
}

var errInjected = errors.New("injected commit failure")

func (s *failingStore) AppendAudit(ctx context.Context, recs []audit.Record) error {
	// Whether to fail is decided on entry, before waiting at the gate.
	s.mu.Lock()
	gate, entered := s.gate, s.entered
	s.gate = nil
	fail, commit := s.fail > 0, s.commit
	if fail {
		s.fail--
		s.failed = append(s.failed, recs)
	}
	s.mu.Unlock()
	if gate != nil {
		close(entered)
		<-gate
	}
	if !fail || commit {
		if err := s.Store.AppendAudit(ctx, recs); err != nil {
			return err
		}
	}
	if fail {
		return errInjected
	}
	return nil
}

// TestAppendCommitFails: when a batch fails to commit, every Append in it
// gets the error, and the next record chains from the last committed one.
func TestAppendCommitFails(t *testing.T) {
	for _, commit := range []bool{false, true} {
		name := "not stored"
		if commit {
			name = "stored but reported failed"
		}
		t.Run(name, func(t *testing.T) {
			db, _ := mustOpen(t)
			gate, entered := make(chan struct{}), make(chan struct{})
			s := &failingStore{Store: db, gate: gate, entered: entered}
			l := mustNew(t, s, audit.Options{})

			// Hold the writer in the first commit, queue a batch behind
			// it, and make that batch fail.
			firstDone := make(chan audit.Record)
			go func() {
				r, err := l.Append(t.Context(), record(0))
				if err != nil {
					t.Errorf("first Append = %v", err)
				}
				firstDone <- r
			}()
			<-entered
			s.mu.Lock()
			s.fail, s.commit = 1, commit
			s.mu.Unlock()
			const waiters = 10
			errs := make(chan error, waiters)
			for i := range waiters {
				go func() {
					_, err := l.Append(t.Context(), record(1+i))
					errs <- err
				}()
			}
			for audit.QueueLen(l) < waiters {
				time.Sleep(time.Millisecond)
			}
			close(gate)
			first := <-firstDone
			for range waiters {
				if err := <-errs; !errors.Is(err, errInjected) {
					t.Errorf("Append in the failed batch = %v, want %v", err, errInjected)
				}
			}
			if len(s.failed) != 1 || len(s.failed[0]) != waiters {
				t.Fatalf("failed batches %d, want one of %d records", len(s.failed), waiters)
			}

			next, err := l.Append(t.Context(), record(99))
			if err != nil {
				t.Fatalf("Append after the failure = %v", err)
			}
			wantSeq, wantPrev := first.Seq+1, first.Hash
			if commit {
				last := s.failed[0][waiters-1]
				wantSeq, wantPrev = last.Seq+1, last.Hash
			}
			if next.Seq != wantSeq || !bytes.Equal(next.PrevHash, wantPrev) {
				t.Errorf("Append after the failure: seq %d prev %x, want %d %x", next.Seq, next.PrevHash, wantSeq, wantPrev)
			}
			if rep := mustVerify(t, db); !rep.OK || rep.LastSeq != next.Seq {
				t.Errorf("Verify = %+v, want OK through %d", rep, next.Seq)
			}
		})
	}
}

// TestAppendDatabaseClosed: with the database closed under it, Append
// fails rather than hangs.
func TestAppendDatabaseClosed(t *testing.T) {
	db, _ := mustOpen(t)
	l := mustNew(t, db, audit.Options{CommitTimeout: 5 * time.Second})
	mustAppend(t, l, 0, 2, nil)
	db.Close()
	for i := range 3 {
		if _, err := l.Append(t.Context(), record(i)); err == nil {
			t.Errorf("Append %d on a closed database = nil error", i)
		}
	}
}

// TestAppendCancelled: a context that ends before the writer takes the
// record keeps it out of the trail.
func TestAppendCancelled(t *testing.T) {
	db, _ := mustOpen(t)
	l := mustNew(t, db, audit.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Append(ctx, record(0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context = %v, want context.Canceled", err)
	}
	r := mustAppend(t, l, 1, 1, nil)[0]
	if r.Seq != 1 {
		t.Errorf("next record has seq %d, want 1", r.Seq)
	}
}

// TestCloseFlushes: Close commits what is queued.
func TestCloseFlushes(t *testing.T) {
	db, _ := mustOpen(t)
	l, err := audit.New(db, testKey, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := l.Append(t.Context(), record(i)); err == nil {
				ok.Add(1)
			} else if !errors.Is(err, audit.ErrClosed) {
				t.Errorf("Append = %v", err)
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	rep := mustVerify(t, db)
	if !rep.OK || rep.Checked != ok.Load() {
		t.Errorf("Verify = %+v, want OK with the %d records Append accepted", rep, ok.Load())
	}
}
