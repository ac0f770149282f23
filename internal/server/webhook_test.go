package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// TestWebhooksWiredAndResumed: a server delivers the completion webhooks
// it finds pending at start (left by the previous process), signed with
// the agent's secret, to a loopback receiver that --webhook-allow-cidr
// lets it reach, and serves the deliveries at
// /api/v1/invocations/{id}/webhooks.
func TestWebhooksWiredAndResumed(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- r:
			bodies <- b
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)

	dir := t.TempDir()
	cfg := Config{AgentDirs: []string{"../../examples/hello"}, DataDir: dir, Backend: sandboxtest.EchoBackend{}, Auth: AuthNone,
		WebhookAllowPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	s, stop := open(t, cfg)
	postRun(t, http.DefaultClient, s.URL()+"/api/v1/agents/"+helloID+"/run", echoBody)
	ctx := t.Context()
	invs, err := s.store.Invocations(ctx, core.InvocationFilter{AgentID: helloID})
	if err != nil || len(invs) != 1 {
		t.Fatalf("invocations: %v, %v", invs, err)
	}
	inv := invs[0]
	if err := s.store.PutSecret(ctx, &core.Secret{AgentID: helloID, Name: core.WebhookSecretName, UpdatedBy: "test"}, secret); err != nil {
		t.Fatal(err)
	}
	// Recorded but never handed to this process's dispatcher: what a
	// crash between Enqueue and the first attempt leaves.
	if err := s.store.CreateWebhookDelivery(ctx, &core.WebhookDelivery{ID: "whd_left", InvocationID: inv.ID, AgentID: helloID,
		Source: core.WebhookFromRequest, URL: rc.URL + "/hook?token=t0k", Status: core.DeliveryPending}); err != nil {
		t.Fatal(err)
	}
	stop()

	s, stop = open(t, cfg)
	defer stop()
	select {
	case r := <-got:
		body := <-bodies
		if err := events.VerifySignature([]byte(secret), r.Header.Get(events.HeaderTimestamp), r.Header.Get(events.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		if !strings.Contains(string(body), `"invocation_id":"`+inv.ID+`"`) {
			t.Errorf("body = %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pending delivery was not resumed")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(s.URL() + "/api/v1/invocations/" + inv.ID + "/webhooks")
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Data struct {
				Deliveries []core.WebhookDelivery `json:"deliveries"`
			} `json:"data"`
		}
		json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		ds := env.Data.Deliveries
		if len(ds) == 1 && ds[0].Status == core.DeliveryDelivered {
			if ds[0].URL != rc.URL+"/hook" {
				t.Errorf("shown URL %q, want it without its query", ds[0].URL)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %+v, want one delivered", ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
