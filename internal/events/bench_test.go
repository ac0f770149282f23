package events

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// BenchmarkEmit measures the caller's cost of Emit: the writer runs
// concurrently and drops are allowed.
func BenchmarkEmit(b *testing.B) {
	e, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Log: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ev := core.SecurityEvent{Type: core.EventAuthFailure, IP: "192.0.2.1", Message: "authentication failed", Details: map[string]string{"reason": "unknown key"}}
	b.ReportAllocs()
	for b.Loop() {
		e.Emit(ev)
	}
}

// BenchmarkWriter measures how many events per second the writer records
// in a SQLite file and a JSON log, alerts evaluated.
func BenchmarkWriter(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "runagent.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	e, err := New(Config{Store: db, Log: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	evs := make([]core.SecurityEvent, 1000)
	for i := range evs {
		evs[i] = core.SecurityEvent{
			Type: core.EventAuthFailure, IP: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Message: "authentication failed for Bearer abcdefgh12345678",
			Details: map[string]string{"reason": "unknown key", "path": "/api/v1/agents/x/run"},
		}
	}
	b.ResetTimer()
	for b.Loop() {
		for _, ev := range evs {
			e.Emit(ev)
		}
		if err := e.Flush(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
	if st := e.Stats(); st.Dropped > 0 {
		b.Fatalf("dropped %d events", st.Dropped)
	}
}
