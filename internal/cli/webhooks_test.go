package cli

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/server"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// TestDBWebhooks: `runagent db webhooks` shows an invocation's deliveries
// from the local store — each attempt, the URL without its query — and
// says when there are none.
func TestDBWebhooks(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("RUNAGENT_MASTER_PASSPHRASE", "")
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "runagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.OpenKeyring(ctx, db, dir, server.KeyringConfig{Generate: true}, nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	for _, id := range []string{"inv-1", "inv-2"} {
		if err := db.CreateInvocation(ctx, &core.Invocation{ID: id, AgentID: "a1", CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateWebhookDelivery(ctx, &core.WebhookDelivery{ID: "whd_1", InvocationID: "inv-1", AgentID: "a1",
		Source: core.WebhookFromConfig, URL: "https://hooks.example.com/done?token=TOKEN-77", Status: core.DeliveryPending, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	for n, code := range []int{503, 204} {
		state, msg := core.DeliveryPending, "answered 503 Service Unavailable"
		if code == 204 {
			state, msg = core.DeliveryDelivered, ""
		}
		if err := db.RecordWebhookAttempt(ctx, "whd_1", core.WebhookAttempt{N: n + 1, At: at, DurationMS: 9, StatusCode: code, Error: msg}, state, at); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	code, out := runCLI(t, "db", "webhooks", "--data-dir", dir, "inv-1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"whd_1  delivered  https://hooks.example.com/done (config webhook)", "#1", "HTTP 503", "answered 503", "#2", "HTTP 204"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TOKEN-77") {
		t.Errorf("output shows the URL's query:\n%s", out)
	}
	code, out = runCLI(t, "db", "webhooks", "--data-dir", dir, "--json", "inv-1")
	var d core.WebhookDelivery
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &d); code != 0 || err != nil || d.Attempts != 2 || len(d.AttemptLog) != 2 || d.URL != "https://hooks.example.com/done" {
		t.Errorf("--json: exit %d, %v, %+v:\n%s", code, err, d, out)
	}
	if code, out := runCLI(t, "db", "webhooks", "--data-dir", dir, "inv-2"); code != 0 || !strings.Contains(out, "has no completion webhooks") {
		t.Errorf("none: exit %d: %s", code, out)
	}
	if code, out := runCLI(t, "db", "webhooks", "--data-dir", dir, "missing"); code == 0 || !strings.Contains(out, "not found") {
		t.Errorf("unknown invocation: exit %d: %s", code, out)
	}
}

// TestDBWebhooksRemote: with --server the deliveries come through the
// API, with the key from the environment.
func TestDBWebhooksRemote(t *testing.T) {
	var gotAuth, gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotPath = r.Header.Get("Authorization"), r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"success":true,"data":{"invocation_id":"inv-9","count":1,"deliveries":[{"delivery_id":"whd_9","invocation_id":"inv-9",
"source":"request","url":"https://hooks.example.com/x","status":"failed","attempts":0,"last_error":"agent a1 has no webhook signing secret"}]}}`)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("RUNAGENT_API_KEY", "ra_test_key")
	code, out := runCLI(t, "db", "webhooks", "--server", srv.URL, "inv-9")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if gotPath != "/api/v1/invocations/inv-9/webhooks" || gotAuth != "Bearer ra_test_key" {
		t.Errorf("request: %s with %q", gotPath, gotAuth)
	}
	if !strings.Contains(out, "whd_9  failed  https://hooks.example.com/x (request webhook)") || !strings.Contains(out, "not sent: agent a1 has no webhook signing secret") {
		t.Errorf("output:\n%s", out)
	}
}

func TestWebhooksHelpTeaches(t *testing.T) {
	code, out := runCLI(t, "db", "webhooks", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"RUNAGENT_WEBHOOK_SECRET", "runagent secrets set --agent", "X-Runagent-Signature", "--webhook-allow-cidr", "network.allow", "Example"} {
		if !strings.Contains(out, want) {
			t.Errorf("db webhooks --help lacks %q", want)
		}
	}
}

// TestWebhooksCmdServerOnly: hung under a group without a local store
// (runs), the command asks the server and its example says so.
func TestWebhooksCmdServerOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"success":true,"data":{"invocation_id":"inv-9","count":0,"deliveries":[]}}`)
	}))
	t.Cleanup(srv.Close)
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut}
	base := srv.URL
	cmd := e.webhooksCmd(&base, nil)
	if !strings.Contains(cmd.Example, "runagent runs webhooks") {
		t.Errorf("example: %s", cmd.Example)
	}
	cmd.SetArgs([]string{"inv-9"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "invocation inv-9 has no completion webhooks") {
		t.Errorf("stderr: %q, stdout: %q", errOut.String(), out.String())
	}
}
