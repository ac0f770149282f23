package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// TestInvocationWebhooks: who may read an invocation sees its webhook
// deliveries with every attempt, the URL without its query; others get
// 404 as for the invocation; reads are audited.
func TestInvocationWebhooks(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	at := w.now.Add(time.Second).UTC()
	d := &core.WebhookDelivery{ID: "whd_1", InvocationID: w.inv, AgentID: agentP1, ProjectID: "p1", Source: core.WebhookFromRequest,
		URL: "https://hooks.example.com/runagent?token=TOKEN-3c9d", WithOutput: true, Status: core.DeliveryPending, CreatedAt: at}
	if err := w.store.CreateWebhookDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := w.store.RecordWebhookAttempt(ctx, "whd_1", core.WebhookAttempt{N: 1, At: at, DurationMS: 7, StatusCode: 503, Error: "answered 503 Service Unavailable"}, core.DeliveryPending, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := w.store.RecordWebhookAttempt(ctx, "whd_1", core.WebhookAttempt{N: 2, At: at.Add(time.Second), DurationMS: 3, StatusCode: 204}, core.DeliveryDelivered, at); err != nil {
		t.Fatal(err)
	}

	status, body := w.do("viewer", "GET", "/api/v1/invocations/"+w.inv+"/webhooks", "")
	if status != http.StatusOK {
		t.Fatalf("GET webhooks: %d %s", status, body)
	}
	if strings.Contains(string(body), "TOKEN-3c9d") || strings.Contains(string(body), "token=") {
		t.Errorf("the answer shows the URL's query: %s", body)
	}
	var env struct {
		Data struct {
			InvocationID string                  `json:"invocation_id"`
			Count        int                     `json:"count"`
			Deliveries   []*core.WebhookDelivery `json:"deliveries"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	got := env.Data
	if got.InvocationID != w.inv || got.Count != 1 || len(got.Deliveries) != 1 {
		t.Fatalf("answer = %s; want the invocation's one delivery", body)
	}
	del := got.Deliveries[0]
	if del.URL != "https://hooks.example.com/runagent" || del.Status != core.DeliveryDelivered || del.Attempts != 2 ||
		len(del.AttemptLog) != 2 || del.AttemptLog[0].StatusCode != 503 || del.AttemptLog[1].StatusCode != 204 {
		t.Errorf("delivery = %+v", del)
	}
	if reads := w.trail(audit.Filter{Action: "invocation.webhooks", Resource: "invocation/" + w.inv}); len(reads) != 1 || reads[0].Outcome != audit.OutcomeSuccess {
		t.Errorf("invocation.webhooks records: %+v", reads)
	}

	// The owner sees it too.
	if status, body := w.do("owner", "GET", "/api/v1/invocations/"+w.inv+"/webhooks", ""); status != http.StatusOK || !strings.Contains(string(body), `"count":1`) {
		t.Errorf("owner: %d %s", status, body)
	}
	for _, path := range []string{"/api/v1/invocations/" + w.inv + "/webhooks", "/api/v1/invocations/nope/webhooks", "/api/v1/invocations/%2e%2e/webhooks"} {
		cred := "p2admin"
		if !strings.Contains(path, w.inv) {
			cred = "owner"
		}
		if status, body := w.do(cred, "GET", path, ""); status != http.StatusNotFound {
			t.Errorf("GET %s as %s: %d %s, want 404", path, cred, status, body)
		}
	}
}
