package server

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// memoryServer is the part of a Server that persistent memory uses: a
// store, a keyring, an audit trail, in a temporary data directory.
func memoryServer(t *testing.T, mc MemoryConfig, retain time.Duration) *Server {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "runagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kr, err := OpenKeyring(ctx, db, dir, KeyringConfig{Generate: true}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.New(db, kr.MACKey(AuditKeyPurpose), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	cfg := Config{DataDir: dir, Memory: mc, Retention: Retention{Memory: retain}}.WithDefaults()
	if err := cfg.Memory.check(); err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: cfg, log: cfg.Log, store: db, keyring: kr, audit: trail}
	s.memory = newMemoryStores(cfg, db, kr)
	t.Cleanup(func() { s.memory.Close() })
	return s
}

// TestMemoryOff: with --memory off every use fails UNAVAILABLE naming
// the flag; listing (records only) still works.
func TestMemoryOff(t *testing.T) {
	s := memoryServer(t, MemoryConfig{Mode: MemoryOff}, 0)
	_, err := s.memory.Acquire(t.Context(), memory.Key{Project: "p", Agent: "a", User: "u"}, 0)
	if ce, ok := errors.AsType[*core.Error](err); !ok || ce.Code != core.CodeUnavailable || !strings.Contains(ce.Message, "--memory off") {
		t.Errorf("Acquire with memory off = %v, want UNAVAILABLE naming --memory off", err)
	}
	if ms, err := s.memory.List(t.Context(), "p", "a", "", 0); err != nil || len(ms) != 0 {
		t.Errorf("List with memory off = %v, %v", ms, err)
	}
}

// TestMemoryAutoIsLazy: in auto mode nothing is probed or made until a
// store is needed: a list, an export of an unknown user and a retention
// run without stores leave no memory directory.
func TestMemoryAutoIsLazy(t *testing.T) {
	s := memoryServer(t, MemoryConfig{}, 24*time.Hour)
	k := memory.Key{Project: "p", Agent: "a", User: "u"}
	s.memory.List(t.Context(), "p", "a", "", 0)
	if err := s.memory.Export(t.Context(), k, nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Export of an unknown store = %v, want not found", err)
	}
	if n, err := s.purgeMemory(t.Context(), time.Now()); n != 0 || err != nil {
		t.Errorf("purgeMemory without stores = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, "memory")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the memory directory exists before any store was needed: %v", err)
	}
}

// TestMemoryRetention: the retention class "memory" deletes the stores
// unused for longer than it keeps them, and records the purge.
func TestMemoryRetention(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("uid %d may not attach loop devices or mount file systems, which persistent memory needs (the server refuses it without root as well); run as root", os.Geteuid())
	}
	s := memoryServer(t, MemoryConfig{}, 24*time.Hour)
	k := memory.Key{Project: "p", Agent: "a", User: "u"}
	l, err := s.memory.Acquire(t.Context(), k, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.purgeMemory(t.Context(), time.Now()); n != 0 || err != nil {
		t.Errorf("purgeMemory of a store just used = %d, %v; want 0", n, err)
	}
	if n, err := s.purgeMemory(t.Context(), time.Now().Add(25*time.Hour)); n != 1 || err != nil {
		t.Errorf("purgeMemory a day later = %d, %v; want 1", n, err)
	}
	if _, err := s.store.Memory(t.Context(), "p", "a", "u"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("the purged store's record: %v, want not found", err)
	}
	recs, err := audit.Records(t.Context(), s.store, audit.Filter{Action: "retention.purge", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Resource != "memory" || recs[0].Details["memory"] != "1" {
		t.Errorf("retention.purge records = %+v, want one for memory with a count of 1", recs)
	}
}

func TestMemoryConfigCheck(t *testing.T) {
	for _, c := range []MemoryConfig{{Mode: "maybe"}, {DefaultMB: 200, MaxMB: 100}, {DefaultMB: 1}} {
		if err := c.withDefaults().check(); err == nil {
			t.Errorf("check(%+v) accepted", c)
		}
	}
	if err := (MemoryConfig{}).withDefaults().check(); err != nil {
		t.Errorf("the defaults do not check: %v", err)
	}
}
