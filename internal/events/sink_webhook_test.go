package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

var testSecret = []byte("0123456789abcdef-test-webhook-secret")

// delivery is one request a test receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a webhook receiver on loopback that answers with the
// statuses given in turn (the last one repeating) and records requests.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []delivery
	statuses []int
	calls    atomic.Int32
	arrived  chan struct{} // one value per request, if not full
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses, arrived: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		n := int(r.calls.Add(1))
		r.mu.Lock()
		r.got = append(r.got, delivery{req.Header.Clone(), body})
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
		status := http.StatusNoContent
		if len(r.statuses) > 0 {
			status = r.statuses[min(n, len(r.statuses))-1]
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func mustWebhook(t *testing.T, cfg WebhookConfig) *Webhook {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	w, err := NewWebhook(cfg)
	if err != nil {
		t.Fatalf("NewWebhook = %v", err)
	}
	return w
}

func testAlert() Alert {
	return Alert{
		ID: "alert-1", Rule: "auth_failure", Source: "ip:192.0.2.1", IP: "192.0.2.1",
		Types: []core.EventType{core.EventAuthFailure}, Count: 10, Threshold: 10, Window: time.Minute,
		FirstAt: t0, LastAt: t0.Add(9 * time.Second), FiredAt: t0.Add(9 * time.Second),
		Message: "10 auth_failure events from ip:192.0.2.1 within 1m0s",
	}
}

// checkHMAC verifies a delivery's signature the way a receiver in any
// language would, without this package's code.
func checkHMAC(secret []byte, d delivery) bool {
	sig, ok := strings.CutPrefix(d.header.Get("X-Runagent-Signature"), "sha256=")
	if !ok {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(d.header.Get("X-Runagent-Timestamp") + "." + string(d.body)))
	want := hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(sig), []byte(want))
}

func TestWebhookSignsDeliveries(t *testing.T) {
	r := newReceiver(t)
	clock := newClock()
	w := mustWebhook(t, WebhookConfig{URL: r.URL + "/hook?token=abc", Clock: clock.Now})
	if err := w.Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	ds := r.deliveries()
	if len(ds) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(ds))
	}
	d := ds[0]
	if got, want := d.header.Get("X-Runagent-Timestamp"), strconv.FormatInt(t0.Unix(), 10); got != want {
		t.Errorf("timestamp header = %q, want %q", got, want)
	}
	if got := d.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := d.header.Get("X-Runagent-Delivery"); got != "alert-1" {
		t.Errorf("delivery header = %q, want the alert id", got)
	}
	if !checkHMAC(testSecret, d) {
		t.Errorf("signature %q does not verify with the secret", d.header.Get("X-Runagent-Signature"))
	}
	if checkHMAC([]byte("another secret of sufficient size"), d) {
		t.Error("signature verifies with a wrong secret")
	}
	// The timestamp is part of what is signed: a replay with a fresh
	// timestamp fails.
	replay := delivery{d.header.Clone(), d.body}
	replay.header.Set("X-Runagent-Timestamp", strconv.FormatInt(t0.Unix()+600, 10))
	if checkHMAC(testSecret, replay) {
		t.Error("signature verifies with another timestamp")
	}

	if err := VerifySignature(testSecret, d.header.Get(HeaderTimestamp), d.header.Get(HeaderSignature), d.body, t0.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("VerifySignature = %v", err)
	}
	var p struct {
		Version int   `json:"version"`
		Alert   Alert `json:"alert"`
	}
	if err := json.Unmarshal(d.body, &p); err != nil {
		t.Fatalf("body %s: %v", d.body, err)
	}
	if diff := cmp.Diff(p.Alert, testAlert()); p.Version != 1 || diff != "" {
		t.Errorf("body version %d, alert (-got +want):\n%s", p.Version, diff)
	}
	for _, field := range []string{`"alert_id":"alert-1"`, `"window_seconds":60`, `"event_types":["auth_failure"]`, `"source":"ip:192.0.2.1"`} {
		if !strings.Contains(string(d.body), field) {
			t.Errorf("body %s lacks %s", d.body, field)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"version":1}`)
	ts := strconv.FormatInt(t0.Unix(), 10)
	sig := Sign(testSecret, ts, body)
	tests := []struct {
		name          string
		secret        []byte
		ts, sig, body string
		now           time.Time
		want          error
	}{
		{"good", testSecret, ts, sig, string(body), t0, nil},
		{"good, upper-case hex", testSecret, ts, "sha256=" + strings.ToUpper(strings.TrimPrefix(sig, "sha256=")), string(body), t0, nil},
		{"good, a little late", testSecret, ts, sig, string(body), t0.Add(4 * time.Minute), nil},
		{"wrong secret", []byte("another secret of sufficient size"), ts, sig, string(body), t0, ErrBadSignature},
		{"tampered body", testSecret, ts, sig, `{"version":2}`, t0, ErrBadSignature},
		{"replayed later", testSecret, ts, sig, string(body), t0.Add(6 * time.Minute), ErrStale},
		{"from the future", testSecret, ts, sig, string(body), t0.Add(-6 * time.Minute), ErrStale},
		{"timestamp changed", testSecret, strconv.FormatInt(t0.Unix()+1, 10), sig, string(body), t0, ErrBadSignature},
		{"no timestamp", testSecret, "", sig, string(body), t0, ErrStale},
		{"signed timestamp", testSecret, "+" + ts, sig, string(body), t0, ErrStale},
		{"huge timestamp", testSecret, "99999999999999999999", sig, string(body), t0, ErrStale},
		{"no prefix", testSecret, ts, strings.TrimPrefix(sig, "sha256="), string(body), t0, ErrBadSignature},
		{"other algorithm", testSecret, ts, "sha1=" + strings.TrimPrefix(sig, "sha256="), string(body), t0, ErrBadSignature},
		{"short", testSecret, ts, sig[:len(sig)-2], string(body), t0, ErrBadSignature},
		{"not hex", testSecret, ts, sig[:len(sig)-2] + "zz", string(body), t0, ErrBadSignature},
		{"empty", testSecret, ts, "", string(body), t0, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifySignature(tt.secret, tt.ts, tt.sig, []byte(tt.body), tt.now, 5*time.Minute); !errors.Is(err, tt.want) {
				t.Errorf("VerifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWebhookRetriesThenGivesUp(t *testing.T) {
	r := newReceiver(t, http.StatusInternalServerError)
	w := mustWebhook(t, WebhookConfig{URL: r.URL, Attempts: 3})
	err := w.Send(t.Context(), testAlert())
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "500") {
		t.Errorf("Send to a failing receiver = %v, want giving up after 3 attempts on 500", err)
	}
	ds := r.deliveries()
	if len(ds) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(ds))
	}
	for i, d := range ds {
		if !checkHMAC(testSecret, d) || d.header.Get(HeaderDelivery) != "alert-1" {
			t.Errorf("attempt %d: signature or delivery id wrong", i+1)
		}
	}
}

func TestWebhookRetryPolicy(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		wantCalls int32
		wantErr   bool
	}{
		{"ok", []int{200}, 1, false},
		{"accepted", []int{202}, 1, false},
		{"recovers", []int{503, 502, 200}, 3, false},
		{"rate limited", []int{429, 204}, 2, false},
		{"request timeout", []int{408, 204}, 2, false},
		{"bad request is final", []int{400}, 1, true},
		{"unauthorized is final", []int{401}, 1, true},
		{"not found is final", []int{404}, 1, true},
		{"redirect is not followed", []int{307}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, tt.statuses...)
			w := mustWebhook(t, WebhookConfig{URL: r.URL, Attempts: 4})
			err := w.Send(t.Context(), testAlert())
			if (err != nil) != tt.wantErr || r.calls.Load() != tt.wantCalls {
				t.Errorf("Send = %v after %d requests; want error %v after %d", err, r.calls.Load(), tt.wantErr, tt.wantCalls)
			}
		})
	}
}

func TestWebhookBackoff(t *testing.T) {
	r := newReceiver(t, http.StatusServiceUnavailable)
	w := mustWebhook(t, WebhookConfig{URL: r.URL, Attempts: 4, Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	start := time.Now()
	if err := w.Send(t.Context(), testAlert()); err == nil {
		t.Fatal("Send = nil error")
	}
	// Waits of 20, 40 and 50 (capped) ms.
	if d := time.Since(start); d < 110*time.Millisecond || d > 5*time.Second {
		t.Errorf("4 attempts took %v, want about 110ms of backoff", d)
	}
}

func TestWebhookTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	w := mustWebhook(t, WebhookConfig{URL: srv.URL, Timeout: 50 * time.Millisecond, Attempts: 2})
	start := time.Now()
	err := w.Send(t.Context(), testAlert())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send to a hanging receiver = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v", d)
	}
}

func TestWebhookErrorsDoNotNameTheURL(t *testing.T) {
	// Nothing listens on port 1 of loopback: a connection error.
	w := mustWebhook(t, WebhookConfig{URL: "http://127.0.0.1:1/hook?token=s3cr3t-in-url", Attempts: 1})
	err := w.Send(t.Context(), testAlert())
	if err == nil {
		t.Fatal("Send = nil error")
	}
	if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(w.Name(), "s3cr3t") {
		t.Errorf("error %q or name %q holds the URL's token", err, w.Name())
	}
}

func TestNewWebhookChecksConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  WebhookConfig
	}{
		{"no url", WebhookConfig{Secret: testSecret}},
		{"bad url", WebhookConfig{URL: "https://exa mple.com/%zz", Secret: testSecret}},
		{"relative", WebhookConfig{URL: "/hook", Secret: testSecret}},
		{"other scheme", WebhookConfig{URL: "ftp://example.com/", Secret: testSecret}},
		{"plain http", WebhookConfig{URL: "http://example.com/hook", Secret: testSecret}},
		{"user info", WebhookConfig{URL: "https://user:pass@example.com/hook", Secret: testSecret}},
		{"no secret", WebhookConfig{URL: "https://example.com/hook"}},
		{"short secret", WebhookConfig{URL: "https://example.com/hook", Secret: []byte("short")}},
		{"too many attempts", WebhookConfig{URL: "https://example.com/hook", Secret: testSecret, Attempts: 11}},
		{"negative timeout", WebhookConfig{URL: "https://example.com/hook", Secret: testSecret, Timeout: -1}},
	} {
		if _, err := NewWebhook(tt.cfg); err == nil {
			t.Errorf("NewWebhook(%s) = nil error", tt.name)
		} else if strings.Contains(err.Error(), "pass") {
			t.Errorf("NewWebhook(%s) error %q names the password", tt.name, err)
		}
	}
	for _, u := range []string{"https://example.com/hook", "http://127.0.0.1:8080/x", "http://[::1]/x", "http://localhost/x"} {
		if _, err := NewWebhook(WebhookConfig{URL: u, Secret: testSecret}); err != nil {
			t.Errorf("NewWebhook(%s) = %v", u, err)
		}
	}
	if _, err := NewWebhook(WebhookConfig{URL: "http://alerts.internal/x", Secret: testSecret, AllowHTTP: true}); err != nil {
		t.Errorf("NewWebhook(http with AllowHTTP) = %v", err)
	}
}

// FuzzVerifySignature: VerifySignature never panics and accepts exactly
// the signature Sign makes (in either hex case) for a fresh timestamp.
func FuzzVerifySignature(f *testing.F) {
	ts := strconv.FormatInt(t0.Unix(), 10)
	f.Add(ts, Sign(testSecret, ts, []byte("{}")), []byte("{}"))
	f.Add(ts, "sha256=", []byte(""))
	f.Add("", "", []byte(nil))
	f.Add("-1", "sha256=zz", []byte("x"))
	f.Add("1e9", "sha256="+strings.Repeat("0", 64), []byte("x"))
	f.Fuzz(func(t *testing.T, timestamp, signature string, body []byte) {
		err := VerifySignature(testSecret, timestamp, signature, body, t0, 5*time.Minute)
		if err == nil && !strings.EqualFold(signature, Sign(testSecret, timestamp, body)) {
			t.Fatalf("VerifySignature(%q, %q, %q) accepted a signature Sign does not make", timestamp, signature, body)
		}
		if err != nil && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrStale) {
			t.Fatalf("VerifySignature = %v, not one of its errors", err)
		}
		if timestamp == ts && signature == Sign(testSecret, ts, body) && err != nil {
			t.Fatalf("VerifySignature refused a good signature: %v", err)
		}
	})
}
