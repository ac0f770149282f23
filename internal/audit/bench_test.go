package audit_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/runagent/runagent/internal/audit"
)

// countingStore counts the transactions AppendAudit commits.
type countingStore struct {
	audit.Store
	commits atomic.Int64
}

func (s *countingStore) AppendAudit(ctx context.Context, recs []audit.Record) error {
	s.commits.Add(1)
	return s.Store.AppendAudit(ctx, recs)
}

// BenchmarkAppendConcurrent measures records per second from many
// concurrent writers into a SQLite file, each batch commit synced to disk
// (synchronous=FULL); records/commit is the mean batch size.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, writers := range []int{16, 32, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, _ := mustOpen(b)
			s := &countingStore{Store: db}
			l := mustNew(b, s, audit.Options{})
			rec := record(1)
			b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(context.Background(), rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/float64(max(1, s.commits.Load())), "records/commit")
		})
	}
}

// BenchmarkAppendSerial is the baseline: one writer, so one synced commit
// per record.
func BenchmarkAppendSerial(b *testing.B) {
	db, _ := mustOpen(b)
	l := mustNew(b, db, audit.Options{})
	rec := record(1)
	for b.Loop() {
		if _, err := l.Append(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendJournal is BenchmarkAppendConcurrent with the journal:
// each batch synced to the journal file, indexed into SQLite behind.
func BenchmarkAppendJournal(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, path := mustOpen(b)
			l := mustNew(b, db, audit.Options{Journal: path + ".journal"})
			rec := record(1)
			b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(context.Background(), rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
