package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/events"
)

// TestCompletionWebhookE2E: a run that names a completion webhook is
// answered without waiting for it; the receiver, failing twice, gets the
// third try, signed with the agent's RUNAGENT_WEBHOOK_SECRET, and the
// deliveries route shows it delivered after 3 attempts, its URL without
// the token in its query. The run never sees the signing secret.
func TestCompletionWebhookE2E(t *testing.T) {
	needSandbox(t)
	const secret = "whsec-0123456789abcdef0123456789"
	var mu sync.Mutex
	var tries []*http.Request
	var bodies [][]byte
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		tries = append(tries, r)
		bodies = append(bodies, b)
		n := len(tries)
		mu.Unlock()
		switch n {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer rc.Close()

	// A receiver on this host: an address only the operator's
	// --webhook-allow-cidr lets webhooks reach.
	s := startServer(t, "--webhook-allow-cidr", "127.0.0.1/32")
	hook := rc.URL + "/hook?token=s3cr3t-token"
	body := map[string]any{"entrypoint_tag": "secret", "input_kwargs": map[string]any{"name": "RUNAGENT_WEBHOOK_SECRET"}, "webhook": hook}
	// Without the signing secret the run is refused, saying how to set it.
	status, env := s.run(t, body)
	if status != 400 && status != 409 && status != 403 || env.Error == nil || !strings.Contains(env.Error.Message, "RUNAGENT_WEBHOOK_SECRET") {
		t.Fatalf("a webhook without a signing secret: %d %+v, want a refusal naming RUNAGENT_WEBHOOK_SECRET", status, env.Error)
	}
	if _, errOut, err := cliIn(t, s, secret+"\n", "secrets", "set", "--agent", agentID, "RUNAGENT_WEBHOOK_SECRET"); err != nil {
		t.Fatalf("secrets set: %v %s", err, errOut)
	}
	start := time.Now()
	status, env = s.run(t, body)
	if status != 200 {
		t.Fatalf("run with a webhook: %d %+v", status, env.Error)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the run's answer took %s: it must not wait for the webhook", d)
	}
	var structured string
	json.Unmarshal(env.Data, &structured)
	if _, v := decodeStructured(t, structured); v.(map[string]any)["present"] != false {
		t.Errorf("the agent saw the webhook signing secret: %v", v)
	}
	id := env.InvocationID

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(tries)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver got %d tries in 30 s, want 3", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	last, lastBody := tries[2], bodies[2]
	mu.Unlock()
	if err := events.VerifySignature([]byte(secret), last.Header.Get(events.HeaderTimestamp), last.Header.Get(events.HeaderSignature), lastBody, time.Now(), time.Minute); err != nil {
		t.Errorf("the third try's signature: %v", err)
	}
	if !strings.Contains(string(lastBody), `"invocation_id":"`+id+`"`) || !strings.Contains(string(lastBody), `"status":"completed"`) {
		t.Errorf("webhook body %s", lastBody)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, env := s.do(t, "GET", "/api/v1/invocations/"+id+"/webhooks", "", nil)
		var d struct {
			Deliveries []struct {
				URL      string `json:"url"`
				Status   string `json:"status"`
				Attempts int    `json:"attempts"`
			} `json:"deliveries"`
		}
		json.Unmarshal(env.Data, &d)
		if len(d.Deliveries) == 1 && d.Deliveries[0].Status == "delivered" {
			if d.Deliveries[0].Attempts != 3 || strings.Contains(d.Deliveries[0].URL, "token") {
				t.Errorf("delivery %+v, want 3 attempts and the URL without its token", d.Deliveries[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %s, want one delivered", env.Data)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(s.stderr.String(), "s3cr3t-token") {
		t.Error("the webhook URL's token is in the server's log")
	}
}
