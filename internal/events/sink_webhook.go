package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook request headers. The signature is
//
//	sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>
//
// where timestamp is the X-Runagent-Timestamp header, unix seconds in
// decimal: a receiver that checks the signature and that the timestamp is
// recent (see VerifySignature) refuses both forgeries and replays of old
// deliveries. X-Runagent-Delivery is the alert id, the same on every
// attempt, for receivers that want to drop retried duplicates.
const (
	HeaderSignature = "X-Runagent-Signature"
	HeaderTimestamp = "X-Runagent-Timestamp"
	HeaderDelivery  = "X-Runagent-Delivery"
)

// Webhook defaults and limits.
const (
	DefaultWebhookTimeout    = 5 * time.Second
	DefaultWebhookAttempts   = 4
	DefaultWebhookBackoff    = time.Second
	DefaultWebhookMaxBackoff = 30 * time.Second
	// MinSecretLen is the shortest accepted signing secret, in bytes.
	MinSecretLen = 16
	// maxAttempts bounds WebhookConfig.Attempts.
	maxAttempts = 10
)

// WebhookConfig configures a Webhook. Zero fields take the defaults.
type WebhookConfig struct {
	// URL receives a POST of each alert as JSON. It must be https, or
	// http to a loopback address or with AllowHTTP. It may not hold a
	// user name or password: the secret authenticates.
	URL string
	// Secret signs every delivery; at least MinSecretLen bytes.
	Secret []byte
	// AllowHTTP allows a plain-http URL to a non-loopback host.
	AllowHTTP bool

	Timeout    time.Duration // per attempt
	Attempts   int           // in all, at most 10; retries follow network errors, 408, 429 and 5xx
	Backoff    time.Duration // before the first retry, doubling after each
	MaxBackoff time.Duration // cap on the wait between attempts

	// Client sends the requests. Default: one that follows no redirects
	// (a redirect is a failed delivery: the signed alert goes only where
	// it was configured to go).
	Client *http.Client
	// Clock stamps the timestamp header. Default time.Now.
	Clock func() time.Time
}

// Webhook is a Sink that POSTs alerts, signed, to a URL.
type Webhook struct {
	cfg  WebhookConfig
	url  string
	name string // names the host only: the URL may hold a token
}

var _ Sink = (*Webhook)(nil)

// NewWebhook checks cfg and returns the webhook.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := checkWebhookURL(cfg.URL, cfg.AllowHTTP)
	if err != nil {
		return nil, err
	}
	if len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("events: webhook secret is %d bytes, want at least %d", len(cfg.Secret), MinSecretLen)
	}
	cfg.Secret = bytes.Clone(cfg.Secret)
	if cfg.Attempts < 0 || cfg.Attempts > maxAttempts {
		return nil, fmt.Errorf("events: webhook attempts %d is not between 1 and %d", cfg.Attempts, maxAttempts)
	}
	if cfg.Timeout < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("events: webhook durations must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = DefaultWebhookAttempts
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultWebhookBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultWebhookMaxBackoff
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Webhook{cfg: cfg, url: u.String(), name: "webhook " + u.Host}, nil
}

// checkWebhookURL parses and checks a webhook URL.
func checkWebhookURL(raw string, allowHTTP bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the URL in its error; it may hold a token.
		return nil, errors.New("events: webhook URL does not parse")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("events: webhook URL scheme %q, want https", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("events: webhook URL has no host")
	case u.User != nil:
		return nil, errors.New("events: webhook URL holds user information; the signing secret authenticates deliveries")
	case u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()):
		return nil, errors.New("events: webhook URL must be https (or http to a loopback address)")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Name implements Sink.
func (w *Webhook) Name() string { return w.name }

// webhookPayload is the body of a delivery.
type webhookPayload struct {
	Version int   `json:"version"`
	Alert   Alert `json:"alert"`
}

// Send implements Sink: it POSTs a, retrying network errors, 408, 429 and
// 5xx answers with exponential backoff up to Attempts in all. Each attempt
// is re-stamped and re-signed. Other answers than 2xx are not retried.
func (w *Webhook) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(webhookPayload{Version: 1, Alert: a})
	if err != nil {
		return fmt.Errorf("%s: encode alert: %w", w.name, err)
	}
	wait := w.cfg.Backoff
	for attempt := 1; ; attempt++ {
		retry, err := w.post(ctx, a.ID, body)
		if err == nil {
			return nil
		}
		if !retry || attempt == w.cfg.Attempts {
			return fmt.Errorf("%s: gave up after %d attempts: %w", w.name, attempt, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: gave up after %d attempts: %w (last: %w)", w.name, attempt, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, w.cfg.MaxBackoff)
	}
}

// post makes one attempt and reports whether a failure is worth a retry.
func (w *Webhook) post(ctx context.Context, id string, body []byte) (retry bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("build request")
	}
	ts := strconv.FormatInt(w.cfg.Clock().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "runagent-alerts/1")
	req.Header.Set(HeaderDelivery, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, ts, body))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		// The *url.Error names the URL, which may hold a token.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return true, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	switch c := resp.StatusCode; {
	case 200 <= c && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("answered %s", resp.Status)
	default:
		return false, fmt.Errorf("answered %s", resp.Status)
	}
}

// Sign returns the X-Runagent-Signature value for a delivery of body
// stamped with timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of VerifySignature.
var (
	ErrBadSignature = errors.New("events: webhook signature does not match")
	ErrStale        = errors.New("events: webhook timestamp is missing, malformed or too far from now")
)

// VerifySignature checks a delivery as a receiver should: signature is
// the X-Runagent-Signature header and timestamp the X-Runagent-Timestamp
// header of a request with body, and the timestamp must be within
// tolerance of now. It compares in constant time.
func VerifySignature(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(timestamp) == 0 || len(timestamp) > 19 || strings.Trim(timestamp, "0123456789") != "" {
		return ErrStale
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrStale
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	hexSig, ok := strings.CutPrefix(signature, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || !hmac.Equal(got, mac(secret, timestamp, body)) {
		return ErrBadSignature
	}
	return nil
}
