package sqlite

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// TestWebhookURLSealed: a delivery's URL, which may hold a token, is
// nowhere in the database files in clear, and reads back; a sealed row
// copied to another delivery id does not open.
func TestWebhookURLSealed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runagent.db")
	db := mustOpenSealed(t, path)
	ctx := t.Context()
	const token = "TOKEN-5e1a9c7d"
	u := "https://hooks.example.com/done?token=" + token
	for _, id := range []string{"d1", "d2"} {
		d := &core.WebhookDelivery{ID: id, InvocationID: "inv-1", AgentID: "a1", Source: core.WebhookFromRequest,
			URL: u, Status: core.DeliveryPending, CreatedAt: time.Now()}
		if err := db.CreateWebhookDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := db.WebhookDelivery(ctx, "d1"); err != nil || got.URL != u {
		t.Fatalf("WebhookDelivery(d1) = %+v, %v; want the URL back", got, err)
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("%s holds the URL's token in clear", filepath.Base(f))
		}
	}
	if _, err := db.write.ExecContext(ctx, `UPDATE webhook_deliveries SET url = (SELECT url FROM webhook_deliveries WHERE id = 'd1') WHERE id = 'd2'`); err != nil {
		t.Fatal(err)
	}
	if got, err := db.WebhookDelivery(ctx, "d2"); err == nil {
		t.Errorf("d2 with d1's sealed URL opened: %q", got.URL)
	}
}

// TestWebhookAttemptsFollowInvocation: retention leaves no attempt rows
// behind (the conformance suite sees only deliveries).
func TestWebhookAttemptsFollowInvocation(t *testing.T) {
	db := mustOpenSealed(t, tempPath(t))
	ctx := t.Context()
	old := time.Now().Add(-time.Hour)
	inv := &core.Invocation{ID: "inv-1", AgentID: "a1", CreatedAt: old}
	if err := db.CreateInvocation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	inv.Status = core.StatusCompleted
	if err := db.FinishInvocation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	d := &core.WebhookDelivery{ID: "d1", InvocationID: "inv-1", AgentID: "a1", Source: core.WebhookFromConfig,
		URL: "https://hooks.example.com/", Status: core.DeliveryPending, CreatedAt: old}
	if err := db.CreateWebhookDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		if err := db.RecordWebhookAttempt(ctx, "d1", core.WebhookAttempt{N: n, At: old, Error: "answered 503"}, core.DeliveryPending, old); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.DeleteInvocationsBefore(ctx, time.Now(), false); err != nil || n != 1 {
		t.Fatalf("DeleteInvocationsBefore = %d, %v; want 1", n, err)
	}
	for _, table := range []string{"webhook_deliveries", "webhook_attempts"} {
		var n int
		if err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after retention: %d rows, %v; want none", table, n, err)
		}
	}
}
