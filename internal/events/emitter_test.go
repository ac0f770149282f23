package events

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mustStore opens a SQLite database file that is closed when the test
// ends (after the emitter, whose cleanup is registered later).
func mustStore(t *testing.T) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runagent.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("sqlite.Open = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func mustEmitter(t *testing.T, cfg Config) *Emitter {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(&syncBuffer{}, nil))
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mustFlush(t *testing.T, e *Emitter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("Flush = %v", err)
	}
}

func storedEvents(t *testing.T, s core.EventStore, f core.EventFilter) []core.SecurityEvent {
	t.Helper()
	f.Limit = 1000
	evs, err := s.Events(t.Context(), f)
	if err != nil {
		t.Fatalf("Events(%+v) = %v", f, err)
	}
	return evs
}

func countStored(t *testing.T, s core.EventStore) int64 {
	t.Helper()
	n, err := s.DeleteEventsBefore(t.Context(), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), true)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// recordingSink records the alerts it gets.
type recordingSink struct {
	mu     sync.Mutex
	alerts []Alert
}

func (s *recordingSink) Name() string { return "recording" }

func (s *recordingSink) Send(_ context.Context, a Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alerts = append(s.alerts, a)
	return nil
}

func (s *recordingSink) sources() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range s.alerts {
		out = append(out, a.Rule+" "+a.Source)
	}
	return out
}

func TestEmitterWritesLogAndStore(t *testing.T) {
	db, path := mustStore(t)
	var log syncBuffer
	clock := newClock()
	e := mustEmitter(t, Config{Store: db, Log: &log, Clock: clock.Now})

	key, keyID, _ := apikey.New()
	berlin := time.FixedZone("CET", 3600)
	emitted := []core.SecurityEvent{
		{
			Type: core.EventAuthFailure, IP: "192.0.2.1", Principal: "key:" + keyID, RequestID: "req-1",
			Message: "authentication failed for " + key,
			Details: map[string]string{"reason": "wrong secret", "authorization": "Bearer " + key, "user_agent": "x " + testJWT},
		},
		{ID: "my-id", Time: t0.Add(time.Second).In(berlin), Type: core.EventSandboxViolation, Principal: "alice", AgentID: "agent-1", InvocationID: "inv-1", Message: "ptrace denied", Details: map[string]string{"syscall": "ptrace"}},
		{Type: core.EventKeyCreated, Severity: core.SeverityWarning, Principal: "root", Message: "key created"},
	}
	for _, ev := range emitted {
		e.Emit(ev)
	}
	mustFlush(t, e)

	want := []core.SecurityEvent{
		{Time: t0, Type: core.EventKeyCreated, Severity: core.SeverityWarning, Principal: "root", Message: "key created"},
		{Time: t0, Type: core.EventAuthFailure, Severity: core.SeverityWarning, IP: "192.0.2.1", Principal: "key:" + keyID, RequestID: "req-1",
			Message: "authentication failed for " + Redacted,
			Details: map[string]string{"reason": "wrong secret", "authorization": Redacted, "user_agent": "x " + Redacted}},
		{ID: "my-id", Time: t0.Add(time.Second), Type: core.EventSandboxViolation, Severity: core.SeverityCritical, Principal: "alice", AgentID: "agent-1", InvocationID: "inv-1", Message: "ptrace denied", Details: map[string]string{"syscall": "ptrace"}},
	}
	got := storedEvents(t, db, core.EventFilter{})
	// Newest first; the two at t0 by id, which is random: sort for the
	// comparison.
	sortByType := cmpopts.SortSlices(func(a, b core.SecurityEvent) bool { return a.Type < b.Type })
	if diff := cmp.Diff(got, want, cmpopts.IgnoreFields(core.SecurityEvent{}, "ID"), sortByType); diff != "" {
		t.Errorf("stored events (-got +want):\n%s", diff)
	}
	for _, ev := range got {
		if ev.ID == "my-id" {
			continue
		}
		if u, err := uuid.Parse(ev.ID); err != nil || u.Version() != 7 {
			t.Errorf("event id %q is not a UUIDv7", ev.ID)
		}
	}

	// One JSON line per event, stamped with the event's time.
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("log has %d lines, want 3:\n%s", len(lines), log.String())
	}
	byType := map[string]map[string]any{}
	for _, l := range lines {
		byType[l["type"].(string)] = l
	}
	sb := byType["sandbox_violation"]
	wantLine := map[string]any{
		"time": "2025-03-14T15:09:27Z", "level": "ERROR", "msg": "ptrace denied", "event_id": "my-id",
		"type": "sandbox_violation", "severity": "critical", "principal": "alice", "agent_id": "agent-1",
		"invocation_id": "inv-1", "details": map[string]any{"syscall": "ptrace"},
	}
	if diff := cmp.Diff(sb, wantLine); diff != "" {
		t.Errorf("log line (-got +want):\n%s", diff)
	}
	if l := byType["auth_failure"]; l["level"] != "WARN" || l["ip"] != "192.0.2.1" || l["request_id"] != "req-1" {
		t.Errorf("auth_failure log line = %v", l)
	}

	// No trace of the credentials anywhere on disk: log, database, WAL.
	e.Close()
	for _, where := range []struct {
		name string
		data []byte
	}{{"log", []byte(log.String())}, {"database", readFile(t, path)}, {"WAL", readFile(t, path+"-wal")}} {
		for _, secret := range []string{key[len(key)-30:], testJWT[len(testJWT)-30:]} {
			if bytes.Contains(where.data, []byte(secret)) {
				t.Errorf("the %s holds a credential", where.name)
			}
		}
	}
	if st := e.Stats(); st.Emitted != 3 || st.Stored != 3 || st.Redacted != 3 || st.Dropped != 0 {
		t.Errorf("Stats() = %+v, want 3 emitted, 3 stored, 3 redacted", st)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return b
}

func TestEmitterAlerts(t *testing.T) {
	db, _ := mustStore(t)
	clock := newClock()
	sink := &recordingSink{}
	var opsLog syncBuffer
	logger := slog.New(slog.NewJSONHandler(&opsLog, nil))
	e := mustEmitter(t, Config{Store: db, Clock: clock.Now, Sinks: []Sink{sink, NewLogSink(logger)}, Logger: logger})

	failures := func(ip string, n int) {
		for range n {
			e.Emit(core.SecurityEvent{Type: core.EventAuthFailure, IP: ip, Message: "authentication failed"})
			clock.Advance(time.Second)
		}
		mustFlush(t, e)
	}
	alertsStored := func() []core.SecurityEvent {
		return storedEvents(t, db, core.EventFilter{Type: core.EventAlertFired})
	}

	failures("192.0.2.1", 9)
	if n := len(alertsStored()); n != 0 || e.Stats().Alerts != 0 {
		t.Fatalf("9 failures: %d alerts stored, %d fired; want none", n, e.Stats().Alerts)
	}
	failures("192.0.2.1", 1)
	got := alertsStored()
	if len(got) != 1 || e.Stats().Alerts != 1 {
		t.Fatalf("10 failures: %d alerts stored, %d fired; want 1", len(got), e.Stats().Alerts)
	}
	if a := got[0]; a.IP != "192.0.2.1" || a.Severity != core.SeverityCritical || a.Details["rule"] != "auth_failure" || a.Details["count"] != "10" ||
		a.Time.Before(t0.Add(9*time.Second)) || a.Time.After(t0.Add(10*time.Second)) {
		t.Errorf("alert event = %+v", a)
	}

	// Within the cooldown: no more alerts for this source...
	failures("192.0.2.1", 50)
	// ... but another source is counted on its own.
	failures("192.0.2.2", 10)
	if n := e.Stats().Alerts; n != 2 {
		t.Fatalf("after 50 more failures and 10 from another address, %d alerts fired, want 2", n)
	}
	// After the cooldown, the continuing attack alerts again.
	clock.Advance(DefaultCooldown)
	failures("192.0.2.1", 10)
	if n := len(alertsStored()); n != 3 {
		t.Fatalf("after the cooldown %d alerts are stored, want 3", n)
	}

	if err := e.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	want := []string{"auth_failure ip:192.0.2.1", "auth_failure ip:192.0.2.2", "auth_failure ip:192.0.2.1"}
	if got := sink.sources(); !cmp.Equal(got, want) {
		t.Errorf("sink got %v, want %v", got, want)
	}
	if n := strings.Count(opsLog.String(), `"msg":"security alert: `); n != 3 {
		t.Errorf("log sink wrote %d alerts, want 3:\n%s", n, opsLog.String())
	}
	if st := e.Stats(); st.Alerts != 3 || st.AlertsDelivered != 6 || st.AlertsFailed != 0 || st.AlertsDropped != 0 {
		t.Errorf("Stats() = %+v, want 3 alerts delivered to 2 sinks", st)
	}
}

// hangingReceiver is a webhook receiver that never answers until the test
// ends; arrived gets a value per request.
func hangingReceiver(t *testing.T) (*httptest.Server, chan struct{}) {
	arrived := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for handlers
	return srv, arrived
}

func TestEmitterHangingWebhookBlocksNothing(t *testing.T) {
	db, _ := mustStore(t)
	srv, arrived := hangingReceiver(t)
	hook := mustWebhook(t, WebhookConfig{URL: srv.URL, Timeout: time.Hour, Attempts: 10})
	const closeTimeout = 300 * time.Millisecond
	e := mustEmitter(t, Config{Store: db, Sinks: []Sink{hook}, CloseTimeout: closeTimeout, QueueSize: 1 << 16, MaxSources: 1000})

	for range 10 {
		e.Emit(core.SecurityEvent{Type: core.EventAuthFailure, IP: "192.0.2.1"})
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook got no request")
	}

	// The receiver hangs; Emit still returns at once...
	const n = 5000
	var slowest time.Duration
	start := time.Now()
	for i := range n {
		t1 := time.Now()
		e.Emit(core.SecurityEvent{Type: core.EventAuthFailure, IP: fmt.Sprintf("10.0.%d.%d", i/256%256, i%256)})
		slowest = max(slowest, time.Since(t1))
	}
	total := time.Since(start)
	t.Logf("%d Emit calls took %v, the slowest %v", n, total, slowest)
	if total > 5*time.Second || slowest > 250*time.Millisecond {
		t.Errorf("%d Emit calls took %v, the slowest %v, with the webhook hanging", n, total, slowest)
	}
	// ... and the writer keeps storing: alerts queue up for the sink only.
	mustFlush(t, e)
	if got := countStored(t, db); got < 10+n {
		t.Errorf("store holds %d events, want at least %d", got, 10+n)
	}

	// Close gives up on the hanging delivery within its bound.
	start = time.Now()
	err := e.Close()
	if d := time.Since(start); d > closeTimeout+5*time.Second {
		t.Errorf("Close took %v with the webhook hanging, want about %v", d, closeTimeout)
	}
	if err == nil {
		t.Error("Close = nil error, want one saying deliveries were abandoned")
	}
	if st := e.Stats(); st.AlertsFailed == 0 || st.AlertsDelivered != 0 {
		t.Errorf("Stats() = %+v, want failed and no delivered alerts", st)
	}
	// 5001 sources passed through 1000 alert windows.
	if st := e.Stats(); st.SourcesEvicted != 5001-1000 {
		t.Errorf("Stats().SourcesEvicted = %d, want %d", st.SourcesEvicted, 5001-1000)
	}
}

// blockingStore holds its first AppendEvents until released.
type blockingStore struct {
	core.EventStore
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) AppendEvents(ctx context.Context, evs []core.SecurityEvent) error {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return s.EventStore.AppendEvents(ctx, evs)
}

func TestEmitterQueueOverflow(t *testing.T) {
	db, _ := mustStore(t)
	store := &blockingStore{EventStore: db, entered: make(chan struct{}), release: make(chan struct{})}
	var opsLog syncBuffer
	const queue = 8
	e := mustEmitter(t, Config{Store: store, QueueSize: queue, Logger: slog.New(slog.NewTextHandler(&opsLog, nil))})

	ev := core.SecurityEvent{Type: core.EventKeyRevoked, Principal: "root"}
	e.Emit(ev)
	<-store.entered // the writer is stuck in the store with the first event
	for range queue {
		e.Emit(ev)
	}
	// The queue is full: these are dropped, and fast.
	start := time.Now()
	for range 1000 {
		e.Emit(ev)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("1000 Emit calls on a full queue took %v", d)
	}
	if st := e.Stats(); st.Emitted != 1+queue || st.Dropped != 1000 {
		t.Errorf("Stats() = %+v, want %d emitted and 1000 dropped", st, 1+queue)
	}
	close(store.release)
	if err := e.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if got := countStored(t, db); got != 1+queue {
		t.Errorf("store holds %d events, want %d", got, 1+queue)
	}
	if !strings.Contains(opsLog.String(), "security events dropped") || !strings.Contains(opsLog.String(), "dropped_total=1000") {
		t.Errorf("drops not logged:\n%s", opsLog.String())
	}
}

func TestEmitterClose(t *testing.T) {
	db, _ := mustStore(t)
	e := mustEmitter(t, Config{Store: db, BatchSize: 7})
	const n = 1000
	for i := range n {
		e.Emit(core.SecurityEvent{Type: core.EventConfigChanged, Message: fmt.Sprint(i)})
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if got := countStored(t, db); got != n {
		t.Errorf("after Close the store holds %d events, want all %d", got, n)
	}
	e.Emit(core.SecurityEvent{Type: core.EventConfigChanged})
	if st := e.Stats(); st.Dropped != 1 || st.Stored != n {
		t.Errorf("Stats() = %+v, want the event emitted after Close dropped", st)
	}
	if err := e.Flush(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}

	var nilEmitter *Emitter
	nilEmitter.Emit(core.SecurityEvent{Type: core.EventAuthFailure}) // must not panic
}

func TestEmitterKeepsGoodEventsOfABadBatch(t *testing.T) {
	db, _ := mustStore(t)
	if err := db.AppendEvents(t.Context(), []core.SecurityEvent{{ID: "taken", Time: t0, Type: core.EventKeyCreated, Severity: core.SeverityInfo}}); err != nil {
		t.Fatal(err)
	}
	store := &blockingStore{EventStore: db, entered: make(chan struct{}), release: make(chan struct{})}
	e := mustEmitter(t, Config{Store: store})
	e.Emit(core.SecurityEvent{Type: core.EventKeyCreated})
	<-store.entered
	// These three are queued together and make one batch.
	e.Emit(core.SecurityEvent{Type: core.EventKeyRotated})
	e.Emit(core.SecurityEvent{ID: "taken", Type: core.EventKeyRevoked})
	e.Emit(core.SecurityEvent{Type: "no_such_type"})
	e.Emit(core.SecurityEvent{Type: core.EventKeyRevoked})
	close(store.release)
	mustFlush(t, e)
	if st := e.Stats(); st.Stored != 3 || st.StoreFailed != 1 || st.Invalid != 1 {
		t.Errorf("Stats() = %+v, want 3 stored, 1 failed, 1 invalid", st)
	}
	if got := countStored(t, db); got != 4 {
		t.Errorf("store holds %d events, want 4", got)
	}
}

func TestEmitterSinkQueueFull(t *testing.T) {
	db, _ := mustStore(t)
	srv, _ := hangingReceiver(t)
	hook := mustWebhook(t, WebhookConfig{URL: srv.URL, Timeout: time.Hour})
	e := mustEmitter(t, Config{Store: db, Sinks: []Sink{hook}, SinkQueueSize: 1, CloseTimeout: 100 * time.Millisecond})
	for i := range 5 {
		for range 10 {
			e.Emit(core.SecurityEvent{Type: core.EventAuthFailure, IP: fmt.Sprintf("192.0.2.%d", i)})
		}
	}
	mustFlush(t, e)
	e.Close()
	st := e.Stats()
	if st.Alerts != 5 || st.AlertsDropped < 3 || st.AlertsDropped+st.AlertsFailed != 5 {
		t.Errorf("Stats() = %+v, want 5 alerts, at least 3 dropped, the rest failed", st)
	}
	if n := len(storedEvents(t, db, core.EventFilter{Type: core.EventAlertFired})); n != 5 {
		t.Errorf("%d alert events stored, want 5 whatever the sinks", n)
	}
}

func TestEmitterConcurrentEmit(t *testing.T) {
	db, _ := mustStore(t)
	e := mustEmitter(t, Config{Store: db, QueueSize: 8192, Rules: []Rule{}})
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			details := map[string]string{"g": fmt.Sprint(g)}
			for i := range each {
				details["i"] = fmt.Sprint(i) // the emitter copies Details
				e.Emit(core.SecurityEvent{Type: core.EventInputRejected, Principal: fmt.Sprint("p", g), Details: details})
			}
		})
	}
	wg.Wait()
	mustFlush(t, e)
	if got := countStored(t, db); got != goroutines*each {
		t.Errorf("store holds %d events, want %d", got, goroutines*each)
	}
	if st := e.Stats(); st.Alerts != 0 || st.Dropped != 0 {
		t.Errorf("Stats() = %+v, want no alerts (rules disabled) and no drops", st)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"negative queue":   {QueueSize: -1},
		"negative timeout": {CloseTimeout: -time.Second},
		"bad rule":         {Rules: []Rule{{Name: "x", Threshold: 1, Window: time.Second}}},
	} {
		if e, err := New(cfg); err == nil {
			e.Close()
			t.Errorf("New(%s) = nil error", name)
		}
	}
}

func TestOpenLogFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	path := filepath.Join(dir, "security.jsonl")
	for i := range 2 {
		f, err := OpenLogFile(path)
		if err != nil {
			t.Fatalf("OpenLogFile = %v", err)
		}
		e := mustEmitter(t, Config{Log: f})
		e.Emit(core.SecurityEvent{Type: core.EventConfigChanged, Message: fmt.Sprint("change ", i)})
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	b := readFile(t, path)
	if n := bytes.Count(b, []byte("\n")); n != 2 || !bytes.Contains(b, []byte(`"msg":"change 0"`)) || !bytes.Contains(b, []byte(`"msg":"change 1"`)) {
		t.Errorf("log file after two emitters:\n%s", b)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700 | os.ModeDir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Errorf("mode of %s = %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}
}
