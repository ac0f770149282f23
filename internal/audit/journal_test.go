package audit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// stalledIndex is a store whose indexing never completes: records reach
// the journal and no further, as if the process died before indexing.
type stalledIndex struct{ *sqlite.DB }

func (s stalledIndex) IndexAudit(ctx context.Context, recs []audit.Record) error {
	<-ctx.Done()
	return ctx.Err()
}

// appendConcurrently appends n records from writers goroutines and
// returns them as committed, by seq.
func appendConcurrently(tb testing.TB, l *audit.Log, writers, n int) map[int64]audit.Record {
	tb.Helper()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got = map[int64]audit.Record{}
	)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				r, err := l.Append(tb.Context(), record(i))
				if err != nil {
					tb.Errorf("Append(%d) = %v", i, err)
					return
				}
				mu.Lock()
				got[r.Seq] = r
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

// checkTrail checks that s holds exactly the records of want, by seq,
// and that the trail verifies through the last of them.
func checkTrail(tb testing.TB, s audit.Store, want map[int64]audit.Record) {
	tb.Helper()
	stored := allRecords(tb, s)
	if len(stored) != len(want) {
		tb.Fatalf("store holds %d records, want %d", len(stored), len(want))
	}
	for _, r := range stored {
		if diff := cmp.Diff(want[r.Seq], r); diff != "" {
			tb.Fatalf("stored record %d (-appended +stored):\n%s", r.Seq, diff)
		}
	}
	rep := mustVerify(tb, s)
	if !rep.OK || rep.Checked != int64(len(want)) {
		tb.Fatalf("Verify = %+v, want OK with %d records", rep, len(want))
	}
}

// TestJournalIndexes: with a journal, concurrent Appends form one chain
// that the Log's Store shows at once, and the store itself after Close.
func TestJournalIndexes(t *testing.T) {
	audit.SetJournalSize(t, 64<<10) // starts over a few times
	db, path := mustOpen(t)
	journal := filepath.Join(filepath.Dir(path), "audit.journal")
	l := mustNew(t, db, audit.Options{Journal: journal})
	got := appendConcurrently(t, l, 16, 2000)
	checkTrail(t, l.Store(), got)
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	checkTrail(t, db, got)

	// A new Log continues the chain.
	l2 := mustNew(t, db, audit.Options{Journal: journal})
	more := mustAppend(t, l2, 2000, 3, nil)
	if more[0].Seq != 2001 {
		t.Errorf("next Log's first seq = %d, want 2001", more[0].Seq)
	}
	for _, r := range more {
		got[r.Seq] = r
	}
	checkTrail(t, l2.Store(), got)
}

// TestJournalRecovers: records that are durable only in the journal (the
// indexer stalled, the process stopped without Close) go into the store
// when the next Log or a reader's Recover takes the journal.
func TestJournalRecovers(t *testing.T) {
	for _, via := range []string{"New", "Recover"} {
		t.Run(via, func(t *testing.T) {
			db, path := mustOpen(t)
			journal := filepath.Join(filepath.Dir(path), "audit.journal")
			crashed, err := audit.New(stalledIndex{db}, testKey, audit.Options{Journal: journal, CommitTimeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			got := appendConcurrently(t, crashed, 8, 300)
			if n := len(allRecords(t, db)); n != 0 {
				t.Fatalf("store holds %d records before recovery, want 0", n)
			}
			// The crash: the process's files close, and its locks go.
			audit.Abandon(crashed)

			if via == "New" {
				l := mustNew(t, db, audit.Options{Journal: journal})
				if h := l.Head(); h.Seq != 300 {
					t.Errorf("Head after recovery = %d, want 300", h.Seq)
				}
			} else if err := audit.Recover(t.Context(), db, journal); err != nil {
				t.Fatalf("Recover = %v", err)
			}
			checkTrail(t, db, got)
		})
	}
}

// TestJournalTornTail: a journal whose last frame was cut short by a
// crash (its batch never acknowledged) recovers every record before it.
func TestJournalTornTail(t *testing.T) {
	db, path := mustOpen(t)
	journal := filepath.Join(filepath.Dir(path), "audit.journal")
	crashed, err := audit.New(stalledIndex{db}, testKey, audit.Options{Journal: journal, CommitTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	recs := mustAppend(t, crashed, 0, 5, nil)
	audit.Abandon(crashed)

	// Cut the last frame: zero its second half, as a write the crash
	// interrupted leaves it.
	b, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	end := audit.JournalEnd(t, b)
	for i := end - 40; i < end; i++ {
		b[i] = 0
	}
	if err := os.WriteFile(journal, b, 0o600); err != nil {
		t.Fatal(err)
	}

	l := mustNew(t, db, audit.Options{Journal: journal})
	want := map[int64]audit.Record{}
	for _, r := range recs[:4] {
		want[r.Seq] = r
	}
	checkTrail(t, db, want)
	// The chain goes on from the last whole record.
	r := mustAppend(t, l, 10, 1, nil)[0]
	if r.Seq != 5 {
		t.Errorf("seq after the torn record = %d, want 5", r.Seq)
	}
	want[r.Seq] = r
	checkTrail(t, l.Store(), want)
}

// TestJournalCorruptFrame: a frame whose checksum matches but whose
// record does not match its hash is an error, not the end of the journal.
func TestJournalCorruptFrame(t *testing.T) {
	db, path := mustOpen(t)
	journal := filepath.Join(filepath.Dir(path), "audit.journal")
	crashed, err := audit.New(stalledIndex{db}, testKey, audit.Options{Journal: journal, CommitTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, crashed, 0, 3, nil)
	audit.Abandon(crashed)
	audit.TamperJournal(t, journal)
	if _, err := audit.New(db, testKey, audit.Options{Journal: journal}); err == nil {
		t.Fatal("New over a tampered journal succeeded")
	}
}

// TestJournalGuest: a second process's Log (a CLI beside the server)
// appends to the journal the first owns; the owner indexes its records
// into the one chain, and the guest's Close waits until it has.
func TestJournalGuest(t *testing.T) {
	db, path := mustOpen(t)
	other, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	journal := filepath.Join(filepath.Dir(path), "audit.journal")
	owner := mustNew(t, db, audit.Options{Journal: journal})
	guest := mustNew(t, other, audit.Options{Journal: journal})
	got := map[int64]audit.Record{}
	for i := range 10 {
		l := owner
		if i%3 == 1 {
			l = guest
		}
		r := mustAppend(t, l, i, 1, nil)[0]
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d got seq %d", i, r.Seq)
		}
		got[r.Seq] = r
	}
	if err := guest.Close(); err != nil {
		t.Fatalf("guest Close = %v", err)
	}
	// The guest's last record is indexed; the owner's Store waits for
	// the owner's own too.
	if h, err := other.AuditHead(t.Context()); err != nil || h.Seq < 8 {
		t.Errorf("store head after the guest's Close = %d, %v; want at least 8", h.Seq, err)
	}
	checkTrail(t, owner.Store(), got)
}

// The crash test's child: it appends records for ever, from several
// goroutines, and prints each seq once Append has returned it.
func TestMain(m *testing.M) {
	if dir := os.Getenv("AUDIT_CRASH_CHILD"); dir != "" {
		crashChild(dir, os.Getenv("AUDIT_CRASH_STALL") != "")
		return
	}
	os.Exit(m.Run())
}

func crashChild(dir string, stall bool) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "runagent.db"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var store audit.Store = db
	if stall {
		store = stalledIndex{db}
	}
	l, err := audit.New(store, testKey, audit.Options{Journal: filepath.Join(dir, "audit.journal"), CommitTimeout: time.Minute})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range 8 {
		go func() {
			for i := w; ; i += 8 {
				r, err := l.Append(ctx, record(i))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(out, r.Seq, i)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestJournalKill: a process appending records is killed (SIGKILL) in
// the middle; every record whose Append returned is in the store after
// the next Log opens the journal, and the trail verifies. With the
// indexer stalled, the journal alone holds them.
func TestJournalKill(t *testing.T) {
	for _, stall := range []bool{false, true} {
		t.Run(fmt.Sprintf("stalled=%v", stall), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "AUDIT_CRASH_CHILD="+dir)
			if stall {
				cmd.Env = append(cmd.Env, "AUDIT_CRASH_STALL=1")
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[int64]int{}
			sc := bufio.NewScanner(stdout)
			for len(acked) < 500 && sc.Scan() {
				var seq int64
				var i int
				if _, err := fmt.Sscan(sc.Text(), &seq, &i); err != nil {
					t.Fatalf("child wrote %q", sc.Text())
				}
				acked[seq] = i
			}
			cmd.Process.Signal(syscall.SIGKILL)
			// Whatever it acknowledged while being killed counts too.
			for sc.Scan() {
				var seq int64
				var i int
				if _, err := fmt.Sscan(sc.Text(), &seq, &i); err == nil {
					acked[seq] = i
				}
			}
			err = cmd.Wait()
			if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed", err)
			}
			if len(acked) < 500 {
				t.Fatalf("child acknowledged %d records", len(acked))
			}

			db, err := sqlite.Open(t.Context(), filepath.Join(dir, "runagent.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			l, err := audit.New(db, testKey, audit.Options{Journal: filepath.Join(dir, "audit.journal")})
			if err != nil {
				t.Fatalf("New after the kill = %v", err)
			}
			defer l.Close()
			stored := allRecords(t, db)
			byRequest := map[string]int64{}
			for _, r := range stored {
				byRequest[r.RequestID] = r.Seq
			}
			for seq, i := range acked {
				if got, ok := byRequest["req-"+strconv.Itoa(i)]; !ok || got != seq {
					t.Fatalf("acknowledged record %d (req-%d) is not in the store after recovery (found at %d, %v)", seq, i, got, ok)
				}
			}
			if rep := mustVerify(t, db); !rep.OK {
				t.Fatalf("Verify after the kill = %+v", rep)
			}
			t.Logf("%d acknowledged, %d stored", len(acked), len(stored))
		})
	}
}
