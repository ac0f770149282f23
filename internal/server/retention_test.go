package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/sqlite"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "off": 0, "1d": 24 * time.Hour} {
		if d, err := ParseRetention(in); err != nil || d != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, in := range []string{"", "0d", "-1h", "xd", "1y", "30m", "36501d", "1e9h"} {
		if _, err := ParseRetention(in); err == nil {
			t.Errorf("ParseRetention(%q) accepted", in)
		}
	}
}

// FuzzParseRetention: what is accepted is off or between 1 hour and 100
// years.
func FuzzParseRetention(f *testing.F) {
	for _, s := range []string{"90d", "36h", "off", "0d", "1h1m", "9999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseRetention(s)
		if err == nil && d != 0 && (d < time.Hour || d > 100*365*24*time.Hour) {
			t.Fatalf("ParseRetention(%q) = %v", s, d)
		}
	})
}

// TestPurge: each class goes by its own period, batches and all; the
// audit trail keeps verifying and records the purge; a dry run deletes
// nothing.
func TestPurge(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, t.TempDir()+"/runagent.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	kr, err := OpenKeyring(ctx, db, t.TempDir(), KeyringConfig{Generate: true}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	key := kr.MACKey(AuditKeyPurpose)
	now := time.Now().UTC()
	clock := now.Add(-400 * 24 * time.Hour)
	trail, err := audit.New(db, key, audit.Options{Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	// 1200 invocations, events and audit records 400 days old; 3 of each
	// from yesterday.
	add := func(i int, at time.Time) {
		id := fmt.Sprintf("inv-%s-%d", at.Format("20060102"), i)
		inv := &core.Invocation{ID: id, AgentID: "a", CreatedAt: at, InputKwargs: json.RawMessage(`{}`)}
		if err := db.CreateInvocation(ctx, inv); err != nil {
			t.Fatal(err)
		}
		inv.Status = core.StatusCompleted
		if err := db.FinishInvocation(ctx, inv); err != nil {
			t.Fatal(err)
		}
		if err := db.AppendEvents(ctx, []core.SecurityEvent{{ID: id, Type: core.EventAuthFailure, Severity: core.SeverityWarning, Time: at}}); err != nil {
			t.Fatal(err)
		}
		if _, err := trail.Append(ctx, audit.Record{Action: "test.old", Resource: "x", Outcome: "success", Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1200 {
		add(i, now.Add(-400*24*time.Hour))
	}
	for i := range 3 {
		add(i, now.Add(-24*time.Hour))
	}
	clock = now
	dry, err := Purge(ctx, db, trail, DefaultRetention, now, true)
	if err != nil || dry.Invocations != 1200 || dry.Events != 1200 || dry.Audit != 1200 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	rep, err := Purge(ctx, db, trail, DefaultRetention, now, false)
	if err != nil || rep.Invocations != 1200 || rep.Events != 1200 || rep.Audit != 1200 {
		t.Fatalf("purge = %+v, %v", rep, err)
	}
	if left, _ := db.Invocations(ctx, core.InvocationFilter{Limit: 100}); len(left) != 3 {
		t.Errorf("%d invocations left, want 3", len(left))
	}
	if left, _ := db.Events(ctx, core.EventFilter{Limit: 100}); len(left) != 3 {
		t.Errorf("%d events left, want 3", len(left))
	}
	v, err := audit.Verify(ctx, db, key)
	if err != nil || !v.OK || v.Start == nil {
		t.Errorf("Verify after the purge = %+v, %v", v, err)
	}
	recs, _ := audit.Records(ctx, db, audit.Filter{Action: "retention.purge"})
	if len(recs) != 1 || recs[0].Details["audit"] != "1200" || recs[0].Details["invocations"] != "1200" {
		t.Errorf("retention.purge records: %+v", recs)
	}
	// Retention off keeps everything.
	if rep, err := Purge(ctx, db, trail, Retention{}, now.Add(1000*24*time.Hour), false); err != nil || rep.Invocations+rep.Events+rep.Audit != 0 {
		t.Errorf("purge with retention off = %+v, %v", rep, err)
	}
}
