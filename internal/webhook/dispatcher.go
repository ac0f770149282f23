package webhook

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/egress"
	"github.com/runagent/runagent/internal/events"
)

// Store is what a Dispatcher keeps and reads: deliveries, the finished
// invocations they report, and the agents' signing secrets.
type Store interface {
	core.WebhookStore
	Invocation(ctx context.Context, id string) (*core.Invocation, error)
	SecretValues(ctx context.Context, agentID string) (map[string]string, error)
}

// Resolver looks up the addresses of a host name (net.Resolver does).
type Resolver = egress.Resolver

// Defaults and limits.
const (
	DefaultWorkers = 4
	// MaxAttempts bounds Config.Attempts.
	MaxAttempts = 10
	// resumeMax is how many pending deliveries a Dispatcher resumes.
	resumeMax = 100_000
	// storeRetry is how long a delivery waits after the store failed.
	storeRetry = 30 * time.Second
)

// Config configures a Dispatcher. Zero fields take the defaults noted.
type Config struct {
	Store Store
	// Log receives failed deliveries (slog.Default()); it never sees a
	// URL's query or the secret.
	Log *slog.Logger
	// Workers is how many deliveries are POSTed at once (DefaultWorkers).
	Workers int
	// Timeout bounds one attempt: connecting, sending and the answer's
	// status (events.DefaultWebhookTimeout).
	Timeout time.Duration
	// Attempts is how many POSTs a delivery gets in all, at most
	// MaxAttempts (events.DefaultWebhookAttempts). Network errors, 408,
	// 429 and 5xx are retried; other answers and refusals are not.
	Attempts int
	// Backoff is the wait before the first retry, doubling after each up
	// to MaxBackoff, plus up to half again of random jitter
	// (events.DefaultWebhookBackoff, events.DefaultWebhookMaxBackoff).
	Backoff, MaxBackoff time.Duration
	// AllowPrefixes are addresses the operator allows targets to reach
	// although they are private, loopback, link-local, …: IP-literal
	// targets in them need no allow rule. Empty (the default) refuses
	// them all, as the egress proxy does.
	AllowPrefixes []netip.Prefix
	// Resolver resolves target names (net.DefaultResolver).
	Resolver Resolver
	// RootCAs verifies https targets (nil: the system's roots).
	RootCAs *x509.CertPool
	// Clock is the time (time.Now).
	Clock func() time.Time
}

// Dispatcher delivers completion webhooks from its own workers.
type Dispatcher struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	work   chan string

	mu   sync.Mutex
	due  dueHeap
	wake chan struct{}
}

// New checks cfg, resumes the pending deliveries cfg.Store holds and
// starts the workers. Close stops them.
func New(ctx context.Context, cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("webhook: a dispatcher needs a store")
	}
	if cfg.Attempts < 0 || cfg.Attempts > MaxAttempts {
		return nil, fmt.Errorf("webhook: attempts %d is not between 1 and %d", cfg.Attempts, MaxAttempts)
	}
	if cfg.Timeout < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 || cfg.Workers < 0 {
		return nil, errors.New("webhook: workers and durations must not be negative")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = events.DefaultWebhookTimeout
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = events.DefaultWebhookAttempts
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = events.DefaultWebhookBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = events.DefaultWebhookMaxBackoff
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	pending, err := cfg.Store.PendingWebhookDeliveries(ctx, resumeMax)
	if err != nil {
		return nil, fmt.Errorf("webhook: resume pending deliveries: %w", err)
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Log, work: make(chan string), wake: make(chan struct{}, 1)}
	d.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // never through the environment's proxy
			DialContext:            d.dial,
			TLSClientConfig:        &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    cfg.Timeout,
			DisableKeepAlives:      true, // each attempt dials, and so is checked, afresh
			MaxResponseHeaderBytes: 64 << 10,
		},
		// A redirect is a failed delivery: the signed body goes only
		// where it was meant to go.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, p := range pending {
		d.due = append(d.due, dueItem{at: p.NextAttemptAt, id: p.ID})
	}
	heap.Init(&d.due)
	if len(pending) > 0 {
		d.log.Info("webhooks: resuming pending deliveries", "count", len(pending))
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(1 + cfg.Workers)
	go d.schedule()
	for range cfg.Workers {
		go d.worker()
	}
	return d, nil
}

// Close stops the workers and waits for them. An attempt in flight is
// abandoned unrecorded: its delivery stays pending, as do the others,
// for the next Dispatcher on the store to resume.
func (d *Dispatcher) Close() error {
	if d == nil {
		return nil
	}
	d.cancel()
	d.wg.Wait()
	return nil
}

// Check applies the egress policy to t without DNS: a host name must be
// on t.Allow (the agent's network.allow), an IP address (or "localhost")
// in the operator's AllowPrefixes. The addresses a name resolves to are
// checked when a delivery connects. Its error says how to allow t.
func (d *Dispatcher) Check(t Target) error {
	if d == nil {
		return badTarget("completion webhooks are not enabled on this server")
	}
	if t.host.Host == "" {
		p, err := ParseURL(t.URL)
		if err != nil {
			return err
		}
		t.host = p.host
	}
	if a, ok := t.literal(); ok {
		if !d.allowed(a) {
			return badTarget("targets that are IP addresses or localhost are refused unless the server's operator allows their range; use a host name on the agent's network.allow list")
		}
		return nil
	}
	if !t.AllowedBy(t.Allow) {
		return badTarget("host %s port %d is not on the agent's network.allow list: add {\"host\": %q, \"ports\": [%d]} to network.allow (with \"mode\": \"egress\") in its runagent.config.json",
			t.host.Host, t.host.Port, t.host.Host, t.host.Port)
	}
	return nil
}

// allowed reports whether the operator allowed a.
func (d *Dispatcher) allowed(a netip.Addr) bool {
	a = a.WithZone("")
	for _, p := range d.cfg.AllowPrefixes {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// Enqueue records a pending delivery of inv, which must be finished, to
// t and returns at once; the workers POST it. A target the policy
// (Check) refuses is recorded as a failed delivery saying why, and
// Enqueue returns nil: the refusal is visible with the invocation's
// other deliveries. An error means nothing was recorded.
func (d *Dispatcher) Enqueue(ctx context.Context, inv *core.Invocation, t Target) error {
	if d == nil {
		return errors.New("webhook: completion webhooks are not enabled on this server")
	}
	if inv.Status == core.StatusRunning || inv.Status == "" {
		return fmt.Errorf("webhook: invocation %s has not finished", inv.ID)
	}
	now := d.cfg.Clock().UTC()
	del := &core.WebhookDelivery{
		ID: "whd_" + uuid.NewString(), InvocationID: inv.ID, AgentID: inv.AgentID, ProjectID: inv.ProjectID,
		Source: t.Source, URL: t.URL, WithOutput: t.WithOutput, Status: core.DeliveryPending,
		CreatedAt: now, NextAttemptAt: now,
	}
	if del.Source == "" {
		del.Source = core.WebhookFromRequest
	}
	refusal := d.Check(t)
	if refusal != nil {
		del.Status, del.LastError = core.DeliveryFailed, core.ErrorMessage(refusal)
	}
	if err := d.cfg.Store.CreateWebhookDelivery(ctx, del); err != nil {
		return fmt.Errorf("webhook: record delivery of invocation %s: %w", inv.ID, err)
	}
	if refusal != nil {
		d.log.Info("webhook refused", "delivery_id", del.ID, "invocation_id", inv.ID, "url", ShownURL(t.URL), "reason", del.LastError)
		return nil
	}
	d.push(now, del.ID)
	return nil
}

// push schedules delivery id for at.
func (d *Dispatcher) push(at time.Time, id string) {
	d.mu.Lock()
	heap.Push(&d.due, dueItem{at: at, id: id})
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// schedule hands due deliveries to the workers, soonest first.
func (d *Dispatcher) schedule() {
	defer d.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		var (
			next dueItem
			have bool
		)
		if len(d.due) > 0 {
			next, have = d.due[0], true
		}
		d.mu.Unlock()
		var wait <-chan time.Time
		if have {
			if delay := next.at.Sub(d.cfg.Clock()); delay > 0 {
				timer.Reset(delay)
				wait = timer.C
			} else {
				d.mu.Lock()
				heap.Pop(&d.due)
				d.mu.Unlock()
				select {
				case d.work <- next.id:
					continue
				case <-d.ctx.Done():
					return
				}
			}
		}
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		case <-wait:
		}
		timer.Stop()
	}
}

func (d *Dispatcher) worker() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case id := <-d.work:
			d.deliver(id)
		}
	}
}

// record runs a store write that must not be lost to Close.
func (d *Dispatcher) record(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 10*time.Second)
	defer cancel()
	return f(ctx)
}

// deliver makes the next attempt of delivery id.
func (d *Dispatcher) deliver(id string) {
	ctx := d.ctx
	del, err := d.cfg.Store.WebhookDelivery(ctx, id)
	if errors.Is(err, core.ErrNotFound) || (err == nil && del.Status != core.DeliveryPending) {
		return // deleted with its invocation, or done
	}
	if err != nil {
		d.storeFailed(id, err)
		return
	}
	fail := func(reason string) {
		d.log.Info("webhook failed", "delivery_id", id, "invocation_id", del.InvocationID, "url", ShownURL(del.URL), "reason", reason)
		if err := d.record(func(ctx context.Context) error { return d.cfg.Store.FailWebhookDelivery(ctx, id, reason) }); err != nil {
			d.storeFailed(id, err)
		}
	}
	inv, err := d.cfg.Store.Invocation(ctx, del.InvocationID)
	if errors.Is(err, core.ErrNotFound) {
		fail("the invocation was deleted before its webhook was delivered")
		return
	}
	if err != nil {
		d.storeFailed(id, err)
		return
	}
	secrets, err := d.cfg.Store.SecretValues(ctx, del.AgentID)
	if err != nil {
		d.storeFailed(id, err)
		return
	}
	if err := RequireSecret(del.AgentID, secrets); err != nil {
		fail(core.ErrorMessage(err))
		return
	}
	body, err := json.Marshal(newPayload(inv, del.WithOutput))
	if err != nil {
		fail("encode the body: " + err.Error())
		return
	}
	n := del.Attempts + 1
	start := d.cfg.Clock()
	status, retry, err := d.post(ctx, del, []byte(secrets[SecretName]), body)
	if ctx.Err() != nil {
		return // closing: the attempt is not counted, the delivery stays pending
	}
	a := core.WebhookAttempt{N: n, At: start.UTC(), DurationMS: d.cfg.Clock().Sub(start).Milliseconds(), StatusCode: status}
	next, state := time.Time{}, core.DeliveryDelivered
	if err != nil {
		a.Error = err.Error()
		state = core.DeliveryFailed
		if retry && n < d.cfg.Attempts {
			state, next = core.DeliveryPending, d.cfg.Clock().Add(d.backoff(n))
		}
	}
	if next.IsZero() {
		next = a.At
	}
	if err := d.record(func(ctx context.Context) error {
		return d.cfg.Store.RecordWebhookAttempt(ctx, id, a, state, next)
	}); err != nil {
		if !errors.Is(err, core.ErrNotFound) {
			d.storeFailed(id, err)
		}
		return
	}
	switch state {
	case core.DeliveryPending:
		d.push(next, id)
	case core.DeliveryFailed:
		d.log.Info("webhook failed", "delivery_id", id, "invocation_id", del.InvocationID, "url", ShownURL(del.URL), "attempts", n, "err", a.Error)
	}
}

// storeFailed retries a delivery whose store read or write failed later,
// without counting an attempt.
func (d *Dispatcher) storeFailed(id string, err error) {
	if d.ctx.Err() != nil {
		return
	}
	d.log.Warn("webhook delivery: store", "delivery_id", id, "err", err)
	d.push(d.cfg.Clock().Add(storeRetry), id)
}

// backoff is the wait after attempt n failed: Backoff doubled n-1 times,
// capped, plus up to half again of jitter, still within MaxBackoff.
func (d *Dispatcher) backoff(n int) time.Duration {
	w := d.cfg.Backoff
	for i := 1; i < n && w < d.cfg.MaxBackoff; i++ {
		w *= 2
	}
	w = min(w, d.cfg.MaxBackoff)
	if half := int64(w / 2); half > 0 {
		w += time.Duration(rand.Int64N(half))
	}
	return min(w, d.cfg.MaxBackoff)
}

// post makes one attempt. It reports the receiver's status (0 for none)
// and whether a failure is worth a retry; its errors never hold the URL.
func (d *Dispatcher) post(ctx context.Context, del *core.WebhookDelivery, secret, body []byte) (status int, retry bool, err error) {
	t, err := ParseURL(del.URL)
	if err != nil {
		return 0, false, err
	}
	if a, ok := t.literal(); ok && !d.allowed(a) {
		return 0, false, fmt.Errorf("%w: the target is an IP address or localhost outside the operator's allowed ranges", errRefused)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return 0, false, errors.New("build the request")
	}
	ts := strconv.FormatInt(d.cfg.Clock().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "runagent-webhooks/1")
	req.Header.Set(events.HeaderDelivery, del.ID)
	req.Header.Set(events.HeaderTimestamp, ts)
	req.Header.Set(events.HeaderSignature, events.Sign(secret, ts, body))
	resp, err := d.client.Do(req)
	if err != nil {
		// The *url.Error names the URL, which may hold a token.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		if errors.Is(err, errRefused) {
			return 0, false, err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", d.cfg.Timeout)
		}
		return 0, true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case 200 <= c && c < 300:
		return c, false, nil
	case 300 <= c && c < 400:
		return c, false, fmt.Errorf("answered %s: redirects are not followed", resp.Status)
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return c, true, fmt.Errorf("answered %s", resp.Status)
	default:
		return c, false, fmt.Errorf("answered %s", resp.Status)
	}
}

// dial connects to addr's host only at addresses the policy allows:
// every address a name resolves to must be public or in AllowPrefixes,
// and only those are dialled, so a name that rebinds to an internal
// address between the check and the connection gets nowhere.
func (d *Dispatcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = d.cfg.Resolver.LookupNetIP(ctx, "ip", host); err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("the host name did not resolve")
	}
	// Refuse if ANY answer is forbidden: a name that mixes public and
	// internal answers is a rebinding attempt or a misconfiguration.
	for _, a := range addrs {
		if kind, bad := egress.ForbiddenAddr(a); bad && !d.allowed(a) {
			return nil, fmt.Errorf("%w: the host resolved to a %s, which webhooks do not reach", errRefused, kind)
		}
	}
	var nd net.Dialer
	var lastErr error
	for _, a := range addrs {
		c, err := nd.DialContext(ctx, "tcp", netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// payload is the body of a delivery.
type payload struct {
	Event      string      `json:"event"`
	Invocation invocationV `json:"invocation"`
}

// Event is the body's event name.
const Event = "invocation.finished"

// invocationV is what a delivery says of its invocation: the record less
// its inputs and logs, and its output only if the agent keeps payloads.
type invocationV struct {
	ID            string          `json:"invocation_id"`
	AgentID       string          `json:"agent_id"`
	ProjectID     string          `json:"project_id"`
	EntrypointTag string          `json:"entrypoint_tag"`
	Status        string          `json:"status"`
	UserID        string          `json:"user_id,omitempty"`
	Output        json.RawMessage `json:"output,omitempty"`
	ErrorCode     string          `json:"error_code,omitempty"`
	ErrorMessage  string          `json:"error_message,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	CompletedAt   *time.Time      `json:"completed_at,omitempty"`
	DurationMS    int64           `json:"duration_ms"`
}

func newPayload(inv *core.Invocation, withOutput bool) payload {
	v := invocationV{
		ID: inv.ID, AgentID: inv.AgentID, ProjectID: inv.ProjectID, EntrypointTag: inv.EntrypointTag,
		Status: string(inv.Status), UserID: inv.UserID, ErrorCode: inv.ErrorCode, ErrorMessage: inv.ErrorMessage,
		CreatedAt: inv.CreatedAt, CompletedAt: inv.CompletedAt, DurationMS: inv.DurationMS,
	}
	if withOutput {
		v.Output = inv.Output
	}
	return payload{Event: Event, Invocation: v}
}

// dueItem is a delivery due at a time.
type dueItem struct {
	at time.Time
	id string
}

// dueHeap is a min-heap of deliveries by due time.
type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// Prepare is what a run request does about webhooks before the run
// starts. It returns the run's targets (For), refusing a requested one
// that the policy refuses or that no signing secret can sign (errors
// that say how to fix it, CodeValidation), and secrets without the
// signing secret: what the run's sandbox may see. A config webhook is not
// refused here; its problems are recorded with its delivery.
func (d *Dispatcher) Prepare(agentID string, cfg *core.AgentConfig, requested *Target, secrets map[string]string) ([]Target, map[string]string, error) {
	runSecrets := StripSecret(secrets)
	targets := For(cfg, requested)
	if requested != nil {
		if err := d.Check(targets[len(targets)-1]); err != nil {
			return nil, runSecrets, err
		}
		if err := RequireSecret(agentID, secrets); err != nil {
			return nil, runSecrets, err
		}
	}
	return targets, runSecrets, nil
}

// Finished enqueues inv, which has just been recorded finished, to each
// of targets (Prepare's). It records and returns: a store failure is
// logged, never the run's problem.
func (d *Dispatcher) Finished(inv *core.Invocation, targets []Target) {
	if d == nil || len(targets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, t := range targets {
		if err := d.Enqueue(ctx, inv, t); err != nil {
			d.log.Error("webhook: not recorded", "invocation_id", inv.ID, "url", ShownURL(t.URL), "err", err)
		}
	}
}
