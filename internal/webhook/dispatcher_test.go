package webhook

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events"
)

// TestDeliverySigned: the receiver gets the finished invocation, signed
// with the agent's secret as the alerts are; the signature verifies with
// events.VerifySignature and the delivery is recorded delivered.
func TestDeliverySigned(t *testing.T) {
	e := newEnv(t, false)
	rc := newReceiver(t, false, status(http.StatusNoContent))
	d := mustDispatcher(t, e.config())
	if err := d.Enqueue(t.Context(), e.inv, mustTarget(t, rc.URL+"/hook?token=abc")); err != nil {
		t.Fatal(err)
	}
	del := e.waitDone(t, 5*time.Second)
	if del.Status != core.DeliveryDelivered || del.Attempts != 1 || del.DeliveredAt == nil {
		t.Fatalf("delivery = %+v, want delivered after 1 attempt", del)
	}
	reqs := rc.got()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	h, body := reqs[0].header, reqs[0].body
	if err := events.VerifySignature([]byte(testSecret), h.Get(events.HeaderTimestamp), h.Get(events.HeaderSignature), body, time.Now(), time.Minute); err != nil {
		t.Errorf("VerifySignature = %v", err)
	}
	if err := events.VerifySignature([]byte("another-secret-of-16+bytes"), h.Get(events.HeaderTimestamp), h.Get(events.HeaderSignature), body, time.Now(), time.Minute); err == nil {
		t.Error("the signature verifies with another secret")
	}
	if got := h.Get(events.HeaderDelivery); got != del.ID {
		t.Errorf("%s = %q, want the delivery id %q", events.HeaderDelivery, got, del.ID)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"event": "invocation.finished",
		"invocation": map[string]any{
			"invocation_id": "inv-1", "agent_id": testAgent, "project_id": "proj-1", "entrypoint_tag": "main",
			"status": "completed", "user_id": "user-7", "output": map[string]any{"answer": float64(42)},
			"created_at": e.inv.CreatedAt.Format(time.RFC3339Nano), "completed_at": e.inv.CompletedAt.Format(time.RFC3339Nano),
			"duration_ms": float64(1500),
		},
	}
	if diff := cmp.Diff(p, want); diff != "" {
		t.Errorf("body (-got +want):\n%s", diff)
	}
}

// TestNoOutputWithoutPayloads: an agent that keeps no payloads gets no
// output in its webhook.
func TestNoOutputWithoutPayloads(t *testing.T) {
	e := newEnv(t, false)
	rc := newReceiver(t, false, status(http.StatusOK))
	d := mustDispatcher(t, e.config())
	keep := false
	cfg := &core.AgentConfig{StorePayloads: &keep}
	req := mustTarget(t, rc.URL)
	ts := For(cfg, &req)
	if len(ts) != 1 || ts[0].WithOutput {
		t.Fatalf("For = %+v, want one target without output", ts)
	}
	if err := d.Enqueue(t.Context(), e.inv, ts[0]); err != nil {
		t.Fatal(err)
	}
	e.waitDone(t, 5*time.Second)
	// Decoded, not searched: "42" may be in a timestamp.
	b := rc.got()[0].body
	var body struct {
		Invocation map[string]json.RawMessage `json:"invocation"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.Invocation == nil {
		t.Fatalf("body %s: %v", b, err)
	}
	if out, ok := body.Invocation["output"]; ok {
		t.Errorf("body holds the output %s: %s", out, b)
	}
}

// TestFailsTwiceThenDelivered: a receiver that answers 500, then drops
// the connection, gets a third try, and the delivery is recorded
// delivered after 3 attempts, each in the log.
func TestFailsTwiceThenDelivered(t *testing.T) {
	e := newEnv(t, false)
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			reset(w)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	d := mustDispatcher(t, e.config())
	if err := d.Enqueue(t.Context(), e.inv, mustTarget(t, rc.URL)); err != nil {
		t.Fatal(err)
	}
	del := e.waitDone(t, 10*time.Second)
	if del.Status != core.DeliveryDelivered || del.Attempts != 3 {
		t.Fatalf("delivery = %s after %d attempts, want delivered after 3", del.Status, del.Attempts)
	}
	ds, _ := e.store.WebhookDeliveries(t.Context(), e.inv.ID)
	log := ds[0].AttemptLog
	if len(log) != 3 || log[0].StatusCode != 500 || log[1].StatusCode != 0 || log[1].Error == "" || log[2].StatusCode != 204 || log[2].Error != "" {
		t.Errorf("attempt log = %+v; want 500, a dropped connection, 204", log)
	}
	if n := len(rc.got()); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
	ids := map[string]bool{}
	for _, r := range rc.got() {
		ids[r.header.Get(events.HeaderDelivery)] = true
	}
	if len(ids) != 1 {
		t.Errorf("delivery ids over the attempts: %v, want one", ids)
	}
}

// TestSilentReceiverBounded: a receiver that never answers costs each
// attempt its timeout, and the delivery ends failed after Attempts.
func TestSilentReceiverBounded(t *testing.T) {
	e := newEnv(t, false)
	release := make(chan struct{})
	rc := newReceiver(t, false, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	cfg := e.config()
	cfg.Timeout, cfg.Attempts = 150*time.Millisecond, 3
	d := mustDispatcher(t, cfg)
	start := time.Now()
	if err := d.Enqueue(t.Context(), e.inv, mustTarget(t, rc.URL)); err != nil {
		t.Fatal(err)
	}
	del := e.waitDone(t, 10*time.Second)
	took := time.Since(start)
	if del.Status != core.DeliveryFailed || del.Attempts != 3 {
		t.Fatalf("delivery = %s after %d attempts, want failed after 3", del.Status, del.Attempts)
	}
	if took < 3*cfg.Timeout || took > 3*cfg.Timeout+2*time.Second {
		t.Errorf("took %s; want about 3 timeouts of %s", took, cfg.Timeout)
	}
	ds, _ := e.store.WebhookDeliveries(t.Context(), e.inv.ID)
	for _, a := range ds[0].AttemptLog {
		if a.DurationMS < 140 || a.DurationMS > 1500 || !strings.Contains(a.Error, "no answer within") {
			t.Errorf("attempt %d: %d ms, %q; want about the timeout, saying so", a.N, a.DurationMS, a.Error)
		}
	}
}

// TestEnqueueDoesNotBlock: with the receiver hanging and every worker
// busy, Enqueue still only records and returns.
func TestEnqueueDoesNotBlock(t *testing.T) {
	e := newEnv(t, false)
	release := make(chan struct{})
	rc := newReceiver(t, false, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	cfg := e.config()
	cfg.Workers, cfg.Timeout = 1, time.Minute
	d := mustDispatcher(t, cfg)
	tg := mustTarget(t, rc.URL)
	if err := d.Enqueue(t.Context(), e.inv, tg); err != nil {
		t.Fatal(err)
	}
	<-rc.hits // the only worker now waits on the receiver
	for i := range 20 {
		start := time.Now()
		if err := d.Enqueue(t.Context(), e.inv, tg); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Fatalf("Enqueue %d took %s with the receiver hanging", i, took)
		}
	}
	ds, _ := e.store.WebhookDeliveries(t.Context(), e.inv.ID)
	if len(ds) != 21 {
		t.Errorf("%d deliveries recorded, want 21", len(ds))
	}
	// Close is prompt although an attempt hangs, and loses nothing.
	start := time.Now()
	d.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s", took)
	}
	ds, _ = e.store.WebhookDeliveries(t.Context(), e.inv.ID)
	for _, del := range ds {
		if del.Status != core.DeliveryPending || del.Attempts != 0 {
			t.Errorf("after Close: %s is %s after %d attempts, want pending after 0", del.ID, del.Status, del.Attempts)
		}
	}
}

// TestResumeAfterRestart: a delivery pending when the server stopped
// (its attempt cut off by Close) is made by the next dispatcher on the
// reopened store.
func TestResumeAfterRestart(t *testing.T) {
	e := newEnv(t, false)
	var up atomic.Bool
	rc := newReceiver(t, false, func(_ int, w http.ResponseWriter, r *http.Request) {
		if up.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		<-r.Context().Done() // down: hangs until the client gives up
	})
	cfg := e.config()
	cfg.Timeout = time.Minute
	d, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(t.Context(), e.inv, mustTarget(t, rc.URL)); err != nil {
		t.Fatal(err)
	}
	<-rc.hits
	d.Close()
	e.store.Close()

	up.Store(true)
	e.store = mustStore(t, e.dir, e.master)
	cfg.Store = e.store
	mustDispatcher(t, cfg)
	del := e.waitDone(t, 5*time.Second)
	if del.Status != core.DeliveryDelivered || del.Attempts != 1 {
		t.Errorf("after restart: %s after %d attempts, want delivered after 1 (the cut-off one is not counted)", del.Status, del.Attempts)
	}
	if n := len(rc.got()); n != 2 {
		t.Errorf("receiver got %d requests, want 2 (the cut-off one and the resumed one)", n)
	}
}

// TestNoRedirectFollowed: a receiver that redirects fails the delivery
// at once; the redirect's target is never contacted.
func TestNoRedirectFollowed(t *testing.T) {
	e := newEnv(t, false)
	elsewhere := newReceiver(t, false, status(http.StatusOK))
	rc := newReceiver(t, false, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/stolen", http.StatusTemporaryRedirect)
	})
	d := mustDispatcher(t, e.config())
	if err := d.Enqueue(t.Context(), e.inv, mustTarget(t, rc.URL)); err != nil {
		t.Fatal(err)
	}
	del := e.waitDone(t, 5*time.Second)
	if del.Status != core.DeliveryFailed || del.Attempts != 1 || !strings.Contains(del.LastError, "redirects are not followed") {
		t.Errorf("delivery = %s after %d attempts, %q; want failed after 1, saying redirects are not followed", del.Status, del.Attempts, del.LastError)
	}
	if n := len(elsewhere.got()); n != 0 {
		t.Errorf("the redirect's target got %d requests", n)
	}
}

// TestHTTPSNamedTarget: a host name on the agent's allow list, over
// https, resolved (here to loopback, which the operator allowed) and
// verified against its certificate.
func TestHTTPSNamedTarget(t *testing.T) {
	e := newEnv(t, false)
	rc := newReceiver(t, true, status(http.StatusAccepted))
	u, _ := url.Parse(rc.URL)
	port := u.Port()
	p, _ := strconv.Atoi(port)
	cfg := e.config()
	cfg.Resolver = fakeResolver{"example.com": {"127.0.0.1"}}
	cfg.RootCAs = x509.NewCertPool()
	cfg.RootCAs.AddCert(rc.Certificate())
	d := mustDispatcher(t, cfg)
	tg := mustTarget(t, "https://example.com:"+port+"/hooks/runagent", core.EgressRule{Host: "example.com", Ports: []int{p}})
	if err := d.Check(tg); err != nil {
		t.Fatalf("Check = %v", err)
	}
	if err := d.Enqueue(t.Context(), e.inv, tg); err != nil {
		t.Fatal(err)
	}
	if del := e.waitDone(t, 5*time.Second); del.Status != core.DeliveryDelivered {
		t.Errorf("delivery = %+v, want delivered", del)
	}
}

// TestRefusals: targets the egress policy refuses are never contacted
// and end failed, saying why; refusals are not retried.
func TestRefusals(t *testing.T) {
	rc := newReceiver(t, false, status(http.StatusOK))
	u, _ := url.Parse(rc.URL)
	port := u.Port()
	p, _ := strconv.Atoi(port)
	allow := func(host string) []core.EgressRule { return []core.EgressRule{{Host: host, Ports: []int{p}}} }
	resolver := fakeResolver{
		"hooks.example.com":    {"127.0.0.1"},                 // rebinds to loopback
		"private.example.com":  {"10.1.2.3"},                  // private
		"metadata.example.com": {"169.254.169.254"},           // cloud metadata
		"mixed.example.com":    {"93.184.216.34", "10.0.0.1"}, // public and private
		"mapped.example.com":   {"::ffff:127.0.0.1"},          // loopback in IPv6 clothing
	}
	tests := []struct {
		name     string
		url      string
		allow    []core.EgressRule
		prefixes bool   // operator allows loopback
		check    string // Check's error, "" for none
		want     string // the recorded reason
	}{
		{"loopback literal without the operator's switch", rc.URL, nil, false, "IP addresses or localhost", "IP addresses or localhost"},
		{"localhost without the operator's switch", "http://localhost:" + port, nil, false, "IP addresses or localhost", "IP addresses or localhost"},
		{"host not on the allow list", "https://hooks.example.com:" + port, allow("other.example.com"), true, "not on the agent's network.allow", "not on the agent's network.allow"},
		{"port not on the allow list", "https://hooks.example.com:" + port, []core.EgressRule{{Host: "hooks.example.com"}}, true, "not on the agent's network.allow", "not on the agent's network.allow"},
		{"name resolving to loopback without the switch", "https://hooks.example.com:" + port, allow("hooks.example.com"), false, "", "loopback address"},
		{"name resolving to a private address", "https://private.example.com:" + port, allow("private.example.com"), true, "", "private address"},
		{"name resolving to the metadata address", "https://metadata.example.com:" + port, allow("metadata.example.com"), true, "", "link-local address"},
		{"name with a public and a private answer", "https://mixed.example.com:" + port, allow("mixed.example.com"), true, "", "private address"},
		{"name resolving to mapped loopback", "https://mapped.example.com:" + port, allow("mapped.example.com"), false, "", "loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, false)
			cfg := e.config()
			cfg.Resolver = resolver
			if !tt.prefixes {
				cfg.AllowPrefixes = nil
			}
			d := mustDispatcher(t, cfg)
			before := len(rc.got())
			tg := mustTarget(t, tt.url, tt.allow...)
			err := d.Check(tg)
			if tt.check == "" && err != nil || tt.check != "" && (err == nil || !strings.Contains(err.Error(), tt.check)) {
				t.Errorf("Check = %v, want %q", err, tt.check)
			}
			if err := d.Enqueue(t.Context(), e.inv, tg); err != nil {
				t.Fatal(err)
			}
			del := e.waitDone(t, 5*time.Second)
			if del.Status != core.DeliveryFailed || del.Attempts > 1 || !strings.Contains(del.LastError, tt.want) {
				t.Errorf("delivery = %s after %d attempts, %q; want failed at once, saying %q", del.Status, del.Attempts, del.LastError, tt.want)
			}
			if n := len(rc.got()) - before; n != 0 {
				t.Errorf("the receiver got %d requests", n)
			}
		})
	}
}

// TestNoSecret: without RUNAGENT_WEBHOOK_SECRET a config webhook is
// recorded failed, saying which command sets one; nothing is sent.
func TestNoSecret(t *testing.T) {
	e := newEnv(t, true)
	rc := newReceiver(t, false, status(http.StatusOK))
	d := mustDispatcher(t, e.config())
	cfg := &core.AgentConfig{Webhook: &core.WebhookConfig{URL: rc.URL}}
	ts := For(cfg, nil)
	if len(ts) != 1 || ts[0].Source != core.WebhookFromConfig {
		t.Fatalf("For = %+v, want the config's target", ts)
	}
	if err := d.Enqueue(t.Context(), e.inv, ts[0]); err != nil {
		t.Fatal(err)
	}
	del := e.waitDone(t, 5*time.Second)
	if del.Status != core.DeliveryFailed || del.Attempts != 0 || !strings.Contains(del.LastError, "runagent secrets set --agent "+testAgent+" "+SecretName) {
		t.Errorf("delivery = %s after %d attempts, %q; want failed, naming the command", del.Status, del.Attempts, del.LastError)
	}
	if n := len(rc.got()); n != 0 {
		t.Errorf("receiver got %d requests", n)
	}
}

// TestSecretNowhere: the signing secret and the URL's token appear in no
// delivery record, attempt error or log line, whatever happened.
func TestSecretNowhere(t *testing.T) {
	e := newEnv(t, false)
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			reset(w)
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	d := mustDispatcher(t, e.config())
	const token = "tok-9f8e7d6c5b"
	if err := d.Enqueue(t.Context(), e.inv, mustTarget(t, rc.URL+"/h?token="+token)); err != nil {
		t.Fatal(err)
	}
	// A refused one too, whose reason is recorded without an attempt.
	if err := d.Enqueue(t.Context(), e.inv, mustTarget(t, "https://nowhere.example.com/h?token="+token)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var ds []*core.WebhookDelivery
	for {
		ds, _ = e.store.WebhookDeliveries(t.Context(), e.inv.ID)
		if len(ds) == 2 && ds[0].Status != core.DeliveryPending && ds[1].Status != core.DeliveryPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still pending: %+v", ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, del := range ds {
		del.URL = "" // the record keeps the URL sealed; the API shows ShownURL
	}
	rec, _ := json.Marshal(ds)
	for what, s := range map[string]string{"records": string(rec), "logs": e.logs.String()} {
		if strings.Contains(s, testSecret) {
			t.Errorf("the %s hold the signing secret", what)
		}
		if strings.Contains(s, token) {
			t.Errorf("the %s hold the URL's token: %s", what, s)
		}
	}
	if !strings.Contains(e.logs.String(), "webhook failed") {
		t.Errorf("nothing logged of the failures: %s", e.logs.String())
	}
}

// TestPrepareAndFinished: the calls a run makes. A requested target the
// policy refuses, or that no secret can sign, refuses the run; the run
// never sees the signing secret; Finished records and sends each target.
func TestPrepareAndFinished(t *testing.T) {
	e := newEnv(t, false)
	rc := newReceiver(t, false, status(http.StatusNoContent))
	d := mustDispatcher(t, e.config())
	cfg := &core.AgentConfig{Webhook: &core.WebhookConfig{URL: rc.URL + "/config"}}
	secrets := map[string]string{"API_KEY": "k", SecretName: testSecret}

	req, err := ParseTarget(json.RawMessage(`{"url": "https://elsewhere.example.com/"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, run, err := d.Prepare(testAgent, cfg, &req, secrets); err == nil || !strings.Contains(err.Error(), "network.allow") || run[SecretName] != "" {
		t.Errorf("Prepare(refused target) = %v, secrets %v; want a refusal naming network.allow, no signing secret", err, run)
	}
	req, _ = ParseTarget(json.RawMessage(strconv.Quote(rc.URL + "/request")))
	if _, _, err := d.Prepare(testAgent, cfg, &req, map[string]string{"API_KEY": "k"}); err == nil || !strings.Contains(err.Error(), "runagent secrets set") {
		t.Errorf("Prepare(no secret) = %v; want a refusal naming the command", err)
	}
	targets, run, err := d.Prepare(testAgent, cfg, &req, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(run, map[string]string{"API_KEY": "k"}); diff != "" {
		t.Errorf("run secrets (-got +want):\n%s", diff)
	}
	if targets, _, err := d.Prepare(testAgent, cfg, nil, nil); err != nil || len(targets) != 1 {
		t.Errorf("Prepare(config only, no secret) = %d targets, %v; want the config's, no refusal", len(targets), err)
	}
	var none *Dispatcher
	if _, _, err := none.Prepare(testAgent, cfg, &req, secrets); err == nil {
		t.Error("a server without webhooks accepted a requested one")
	}
	none.Finished(e.inv, targets) // nothing, no panic

	d.Finished(e.inv, targets)
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, _ := e.store.WebhookDeliveries(t.Context(), e.inv.ID)
		if len(ds) == 2 && ds[0].Status == core.DeliveryDelivered && ds[1].Status == core.DeliveryDelivered {
			if ds[0].Source != core.WebhookFromConfig || ds[1].Source != core.WebhookFromRequest {
				t.Errorf("sources %s, %s; want config then request", ds[0].Source, ds[1].Source)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %+v", ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
