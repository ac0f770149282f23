package storetest

import (
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// webhookTests pin down, beyond core.WebhookStore's documentation:
//
//   - A delivery comes back as created, URL (query included) byte for
//     byte; CreatedAt, UpdatedAt and NextAttemptAt default as documented.
//   - Attempts are numbered from 1 without gaps: RecordWebhookAttempt
//     with another number is CodeConflict, and so is any change to a
//     delivery no longer pending.
//   - PendingWebhookDeliveries orders by NextAttemptAt, then id.
//   - DeleteInvocationsBefore deletes an invocation's deliveries and
//     their attempts with it; the deliveries of kept invocations stay.
var webhookTests = []struct {
	name string
	fn   func(t *testing.T, s core.Store)
}{
	{"WebhookDeliveryRoundTrip", testWebhookRoundTrip},
	{"WebhookDeliveryErrors", testWebhookErrors},
	{"WebhookDeliveriesFollowInvocations", testWebhookRetention},
}

func runWebhookTests(t *testing.T, open func(t *testing.T) core.Store) {
	for _, tt := range webhookTests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

func delivery(id, invocationID string, created time.Time) *core.WebhookDelivery {
	return &core.WebhookDelivery{ID: id, InvocationID: invocationID, AgentID: "agent-1", ProjectID: "p1",
		Source: core.WebhookFromRequest, URL: "https://hooks.example.com/done?token=s3cr3t&x=%00",
		WithOutput: true, Status: core.DeliveryPending, CreatedAt: created}
}

func mustCreateDelivery(t *testing.T, s core.WebhookStore, d *core.WebhookDelivery) {
	t.Helper()
	if err := s.CreateWebhookDelivery(t.Context(), d); err != nil {
		t.Fatalf("CreateWebhookDelivery(%s) = %v", d.ID, err)
	}
}

func mustDeliveries(t *testing.T, s core.WebhookStore, invocationID string) []*core.WebhookDelivery {
	t.Helper()
	ds, err := s.WebhookDeliveries(t.Context(), invocationID)
	if err != nil {
		t.Fatalf("WebhookDeliveries(%s) = %v", invocationID, err)
	}
	return ds
}

func testWebhookRoundTrip(t *testing.T, s core.Store) {
	ctx := t.Context()
	inv := invocation("inv-1", "agent-1", base)
	mustCreate(t, s, inv)
	d1 := delivery("d1", "inv-1", base.Add(time.Second))
	d2 := delivery("d2", "inv-1", base.Add(2*time.Second))
	d2.Source, d2.WithOutput, d2.URL = core.WebhookFromConfig, false, "http://127.0.0.1:8080/hook"
	mustCreateDelivery(t, s, d2)
	mustCreateDelivery(t, s, d1)
	check(t, "d1 defaults", [2]time.Time{d1.UpdatedAt, d1.NextAttemptAt}, [2]time.Time{d1.CreatedAt, d1.CreatedAt})

	got, err := s.WebhookDelivery(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "WebhookDelivery(d1)", got, d1)
	if ds := mustDeliveries(t, s, "other"); len(ds) != 0 {
		t.Errorf("WebhookDeliveries(other) = %d deliveries, want none", len(ds))
	}

	a1 := core.WebhookAttempt{N: 1, At: base.Add(3 * time.Second), DurationMS: 12, StatusCode: 500, Error: "answered 500 Internal Server Error"}
	next := base.Add(time.Minute)
	if err := s.RecordWebhookAttempt(ctx, "d1", a1, core.DeliveryPending, next); err != nil {
		t.Fatalf("RecordWebhookAttempt(d1, 1) = %v", err)
	}
	a2 := core.WebhookAttempt{N: 2, At: base.Add(4 * time.Second), DurationMS: 3, StatusCode: 204}
	if err := s.RecordWebhookAttempt(ctx, "d1", a2, core.DeliveryDelivered, next); err != nil {
		t.Fatalf("RecordWebhookAttempt(d1, 2) = %v", err)
	}
	if err := s.FailWebhookDelivery(ctx, "d2", "no signing secret"); err != nil {
		t.Fatalf("FailWebhookDelivery(d2) = %v", err)
	}
	ds := mustDeliveries(t, s, "inv-1")
	if len(ds) != 2 || ds[0].ID != "d1" || ds[1].ID != "d2" {
		t.Fatalf("WebhookDeliveries(inv-1) = %v, want d1 then d2", ds)
	}
	g := ds[0]
	check(t, "d1 attempts", g.AttemptLog, []core.WebhookAttempt{a1, a2})
	if g.Status != core.DeliveryDelivered || g.Attempts != 2 || g.LastError != "" || g.DeliveredAt == nil {
		t.Errorf("d1 = status %s, %d attempts, last error %q, delivered at %v; want delivered, 2, \"\", set",
			g.Status, g.Attempts, g.LastError, g.DeliveredAt)
	}
	checkUTC(t, "d1 DeliveredAt", *g.DeliveredAt)
	check(t, "d1 URL", g.URL, d1.URL)
	g = ds[1]
	if g.Status != core.DeliveryFailed || g.Attempts != 0 || g.LastError != "no signing secret" || g.AttemptLog != nil || g.DeliveredAt != nil {
		t.Errorf("d2 = %+v; want failed without attempts, saying why", g)
	}
	check(t, "d2 source and URL", [2]string{g.Source, g.URL}, [2]string{core.WebhookFromConfig, "http://127.0.0.1:8080/hook"})

	// Pending: soonest due first.
	for i, due := range []time.Duration{3 * time.Second, time.Second, 2 * time.Second} {
		d := delivery(string(rune('p'+i)), "inv-1", base)
		d.NextAttemptAt = base.Add(due)
		mustCreateDelivery(t, s, d)
	}
	pending, err := s.PendingWebhookDeliveries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range pending {
		ids = append(ids, d.ID)
	}
	check(t, "PendingWebhookDeliveries ids", ids, []string{"q", "r", "p"})
	if pending, err = s.PendingWebhookDeliveries(ctx, 1); err != nil || len(pending) != 1 {
		t.Errorf("PendingWebhookDeliveries(1) = %d, %v; want 1", len(pending), err)
	}
}

func testWebhookErrors(t *testing.T, s core.Store) {
	ctx := t.Context()
	mustCreate(t, s, invocation("inv-1", "agent-1", base))
	for name, mod := range map[string]func(d *core.WebhookDelivery){
		"no id":          func(d *core.WebhookDelivery) { d.ID = "" },
		"no invocation":  func(d *core.WebhookDelivery) { d.InvocationID = "" },
		"no url":         func(d *core.WebhookDelivery) { d.URL = "" },
		"bad status":     func(d *core.WebhookDelivery) { d.Status = "sent" },
		"bad source":     func(d *core.WebhookDelivery) { d.Source = "elsewhere" },
		"time too large": func(d *core.WebhookDelivery) { d.CreatedAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		d := delivery("d", "inv-1", base)
		mod(d)
		checkCode(t, "CreateWebhookDelivery("+name+")", s.CreateWebhookDelivery(ctx, d), core.CodeValidation)
	}
	mustCreateDelivery(t, s, delivery("d1", "inv-1", base))
	checkCode(t, "CreateWebhookDelivery(duplicate)", s.CreateWebhookDelivery(ctx, delivery("d1", "inv-1", base)), core.CodeConflict)

	at := base.Add(time.Second)
	checkNotFound(t, "RecordWebhookAttempt(missing)", s.RecordWebhookAttempt(ctx, "missing", core.WebhookAttempt{N: 1, At: at}, core.DeliveryPending, at))
	checkNotFound(t, "FailWebhookDelivery(missing)", s.FailWebhookDelivery(ctx, "missing", "x"))
	_, err := s.WebhookDelivery(ctx, "missing")
	checkNotFound(t, "WebhookDelivery(missing)", err)
	checkCode(t, "RecordWebhookAttempt(attempt 2 first)",
		s.RecordWebhookAttempt(ctx, "d1", core.WebhookAttempt{N: 2, At: at}, core.DeliveryPending, at), core.CodeConflict)
	checkCode(t, "RecordWebhookAttempt(bad status)",
		s.RecordWebhookAttempt(ctx, "d1", core.WebhookAttempt{N: 1, At: at}, "sent", at), core.CodeValidation)
	if err := s.RecordWebhookAttempt(ctx, "d1", core.WebhookAttempt{N: 1, At: at, Error: "refused"}, core.DeliveryFailed, at); err != nil {
		t.Fatal(err)
	}
	checkCode(t, "RecordWebhookAttempt(after failed)",
		s.RecordWebhookAttempt(ctx, "d1", core.WebhookAttempt{N: 2, At: at}, core.DeliveryDelivered, at), core.CodeConflict)
	checkCode(t, "FailWebhookDelivery(after failed)", s.FailWebhookDelivery(ctx, "d1", "x"), core.CodeConflict)
	if ds := mustDeliveries(t, s, "inv-1"); len(ds) != 1 || len(ds[0].AttemptLog) != 1 || ds[0].Status != core.DeliveryFailed {
		t.Errorf("after refused changes: %+v, want d1 failed with its one attempt", ds)
	}
}

func testWebhookRetention(t *testing.T, s core.Store) {
	ctx := t.Context()
	old := invocation("old", "agent-1", base.Add(-time.Hour))
	kept := invocation("kept", "agent-1", base.Add(time.Hour))
	for _, inv := range []*core.Invocation{old, kept} {
		mustCreate(t, s, inv)
		mustFinish(t, s, finished(inv, core.StatusCompleted, 1))
		d := delivery("d-"+inv.ID, inv.ID, inv.CreatedAt)
		mustCreateDelivery(t, s, d)
		if err := s.RecordWebhookAttempt(ctx, d.ID, core.WebhookAttempt{N: 1, At: inv.CreatedAt, Error: "answered 503"}, core.DeliveryPending, base); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteInvocationsBefore(ctx, base, false); err != nil || n != 1 {
		t.Fatalf("DeleteInvocationsBefore = %d, %v; want 1", n, err)
	}
	if ds := mustDeliveries(t, s, "old"); len(ds) != 0 {
		t.Errorf("deliveries of the deleted invocation: %d, want none", len(ds))
	}
	_, err := s.WebhookDelivery(ctx, "d-old")
	checkNotFound(t, "WebhookDelivery(d-old) after retention", err)
	pending, err := s.PendingWebhookDeliveries(ctx, 0)
	if err != nil || len(pending) != 1 || pending[0].ID != "d-kept" {
		t.Errorf("PendingWebhookDeliveries after retention = %v, %v; want only d-kept", pending, err)
	}
	if ds := mustDeliveries(t, s, "kept"); len(ds) != 1 || len(ds[0].AttemptLog) != 1 {
		t.Errorf("deliveries of the kept invocation: %+v, want one with its attempt", ds)
	}
}
