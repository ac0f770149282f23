package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/runagent/runagent/internal/core"
)

// Defaults of Config.
const (
	DefaultQueueSize     = 4096
	DefaultBatchSize     = 256
	DefaultStoreTimeout  = 5 * time.Second
	DefaultCloseTimeout  = 5 * time.Second
	DefaultSinkQueueSize = 64
)

// dropReportEvery is how often, at most, the emitter logs that it dropped
// events, so that a flood of drops does not become a flood of logs.
const dropReportEvery = 10 * time.Second

// Config configures an Emitter. Zero fields take the defaults.
type Config struct {
	// Store receives the events in batches; nil keeps them only in Log.
	Store core.EventStore
	// Log receives every event as one JSON line; nil writes none. It
	// should not block for long: the writer waits for it (see OpenLogFile).
	Log io.Writer
	// Logger receives the emitter's own troubles: dropped events, store,
	// log and sink failures. Default slog.Default().
	Logger *slog.Logger

	// Rules are the alert rules; nil means DefaultRules() and an empty,
	// non-nil slice disables alerting.
	Rules []Rule
	// Cooldown is how long an alert is not sent again for the same rule
	// and source. Default DefaultCooldown.
	Cooldown time.Duration
	// MaxSources bounds the (rule, source) windows kept in memory.
	// Default DefaultMaxSources.
	MaxSources int
	// Sinks receive every alert, each through its own bounded queue, so a
	// slow sink delays only itself. Alerts are also recorded as
	// core.EventAlertFired events whatever the sinks.
	Sinks []Sink

	QueueSize     int           // events waiting for the writer; more are dropped
	BatchSize     int           // events per store transaction, at most
	StoreTimeout  time.Duration // per store batch
	CloseTimeout  time.Duration // how long Close waits for pending writes and alert deliveries
	SinkQueueSize int           // alerts waiting per sink; more are dropped

	// Clock stamps events that have no Time. Default time.Now.
	Clock func() time.Time
}

// Stats counts what an Emitter did since it was created.
type Stats struct {
	Emitted  uint64 // accepted by Emit
	Dropped  uint64 // refused by Emit: queue full or emitter closed
	Invalid  uint64 // accepted but discarded: unknown event type
	Redacted uint64 // credential-looking values removed
	Stored   uint64 // written to the store
	// StoreFailed counts events the store refused or could not take
	// (they are still in Log); LogFailed events Log could not take.
	StoreFailed, LogFailed uint64

	Alerts          uint64 // fired
	AlertsDelivered uint64 // sent to a sink (counted per sink)
	AlertsFailed    uint64 // a sink gave up on
	AlertsDropped   uint64 // not queued: a sink's queue was full
	// SourcesEvicted counts alert windows forgotten because MaxSources
	// were tracked (many attacking addresses); such a source may alert
	// again before its cooldown ends.
	SourcesEvicted uint64
}

// Emitter records security events: it redacts them, writes them to a log
// and a store in batches, and raises alerts, all on a background
// goroutine, so that Emit never blocks its caller. It is safe for
// concurrent use. A nil *Emitter discards events.
type Emitter struct {
	cfg    Config
	logger *slog.Logger
	log    slog.Handler // nil: no event log
	det    *detector    // owned by the writer goroutine

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan core.SecurityEvent
	flushc chan chan struct{}
	done   chan struct{} // closed by Close
	wrote  chan struct{} // closed when the writer has returned

	sinks []*sinkWorker

	// ctx aborts store writes and alert deliveries when Close gives up.
	ctx    context.Context
	cancel context.CancelFunc

	emitted, dropped, invalid, redacted                  atomic.Uint64
	stored, storeFailed, logFailed                       atomic.Uint64
	alerts, alertsDelivered, alertsFailed, alertsDropped atomic.Uint64

	// Owned by the writer goroutine.
	batch          []core.SecurityEvent
	reportedDrops  uint64
	lastDropReport time.Time
}

var _ core.EventEmitter = (*Emitter)(nil)

// New starts an Emitter. It fails only for invalid alert rules or
// negative sizes.
func New(cfg Config) (*Emitter, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rules == nil {
		cfg.Rules = DefaultRules()
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"queue size", &cfg.QueueSize, DefaultQueueSize},
		{"batch size", &cfg.BatchSize, DefaultBatchSize},
		{"sink queue size", &cfg.SinkQueueSize, DefaultSinkQueueSize},
		{"max sources", &cfg.MaxSources, DefaultMaxSources},
	} {
		switch {
		case *f.v < 0:
			return nil, fmt.Errorf("events: %s %d is negative", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"store timeout", &cfg.StoreTimeout, DefaultStoreTimeout},
		{"close timeout", &cfg.CloseTimeout, DefaultCloseTimeout},
		{"cooldown", &cfg.Cooldown, DefaultCooldown},
	} {
		switch {
		case *f.v < 0:
			return nil, fmt.Errorf("events: %s %v is negative", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	det, err := newDetector(cfg.Rules, cfg.Cooldown, cfg.MaxSources)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	e := &Emitter{
		cfg:    cfg,
		logger: cfg.Logger,
		det:    det,
		queue:  make(chan core.SecurityEvent, cfg.QueueSize),
		flushc: make(chan chan struct{}),
		done:   make(chan struct{}),
		wrote:  make(chan struct{}),
		batch:  make([]core.SecurityEvent, 0, cfg.BatchSize),
	}
	if cfg.Log != nil {
		e.log = slog.NewJSONHandler(cfg.Log, nil)
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for _, s := range cfg.Sinks {
		w := &sinkWorker{sink: s, queue: make(chan Alert, cfg.SinkQueueSize), done: make(chan struct{})}
		e.sinks = append(e.sinks, w)
		go w.run(e)
	}
	go e.run()
	return e, nil
}

// OpenLogFile opens path for appending security events, creating it
// (mode 0600) and its directory (mode 0700) if needed. The caller closes
// it after closing the Emitter.
func OpenLogFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("events: open log file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("events: open log file: %w", err)
	}
	return f, nil
}

// Emit queues ev to be recorded and returns at once. If the queue is full,
// or the emitter closed, ev is dropped and counted (see Stats). A zero
// Time is set to the current time, an empty ID and Severity are filled in
// later, and Details is copied, so the caller may reuse it.
func (e *Emitter) Emit(ev core.SecurityEvent) {
	if e == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = e.cfg.Clock()
	}
	ev.Details = maps.Clone(ev.Details)
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		e.dropped.Add(1)
		return
	}
	select {
	case e.queue <- ev:
		e.emitted.Add(1)
	default:
		e.dropped.Add(1)
	}
}

// ErrClosed is returned by Flush after Close.
var ErrClosed = errors.New("events: emitter closed")

// Flush waits until the events emitted before it was called are written to
// the log and the store and their alerts handed to the sinks (not
// delivered: a sink may still be retrying).
func (e *Emitter) Flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case e.flushc <- ack:
	case <-e.wrote:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events, writes those queued, and waits for the
// sinks to deliver pending alerts, for at most CloseTimeout in all; then
// it aborts what is left (a hanging webhook, a stuck store) and returns an
// error saying so. Calls after the first return nil.
func (e *Emitter) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	close(e.done)

	deadline := time.NewTimer(e.cfg.CloseTimeout)
	defer deadline.Stop()
	var timedOut bool
	wait := func(c <-chan struct{}) {
		select {
		case <-c:
		case <-deadline.C:
			timedOut = true
			e.cancel() // every store write and delivery returns promptly now
			<-c
		}
	}
	wait(e.wrote)
	// The writer has returned: nothing sends on the sink queues any more.
	for _, w := range e.sinks {
		close(w.queue)
	}
	for _, w := range e.sinks {
		if timedOut {
			<-w.done
		} else {
			wait(w.done)
		}
	}
	e.cancel()
	e.reportDrops(true)
	if timedOut {
		return fmt.Errorf("events: close: gave up on pending writes or alert deliveries after %v", e.cfg.CloseTimeout)
	}
	return nil
}

// Stats returns the emitter's counters.
func (e *Emitter) Stats() Stats {
	return Stats{
		Emitted: e.emitted.Load(), Dropped: e.dropped.Load(), Invalid: e.invalid.Load(), Redacted: e.redacted.Load(),
		Stored: e.stored.Load(), StoreFailed: e.storeFailed.Load(), LogFailed: e.logFailed.Load(),
		Alerts: e.alerts.Load(), AlertsDelivered: e.alertsDelivered.Load(),
		AlertsFailed: e.alertsFailed.Load(), AlertsDropped: e.alertsDropped.Load(),
		SourcesEvicted: e.det.evicted.Load(),
	}
}

// run is the writer goroutine. It takes whatever is queued, up to
// BatchSize events, as one batch: under load batches grow and
// transactions stay few, while a lone event is written at once.
func (e *Emitter) run() {
	defer close(e.wrote)
	for {
		select {
		case ev := <-e.queue:
			e.process(e.fill(append(e.batch[:0], ev), -1))
		case ack := <-e.flushc:
			// Only what is queued now: under a steady stream of events a
			// flush must still end.
			e.drain(len(e.queue))
			close(ack)
		case <-e.done:
			// Emit refuses events once done is closed, so this ends.
			e.drain(-1)
			return
		}
	}
}

// fill adds queued events to batch without waiting, up to BatchSize
// events in all and, unless limit is negative, at most limit more.
func (e *Emitter) fill(batch []core.SecurityEvent, limit int) []core.SecurityEvent {
	for len(batch) < e.cfg.BatchSize && limit != 0 {
		select {
		case ev := <-e.queue:
			batch = append(batch, ev)
			limit--
		default:
			return batch
		}
	}
	return batch
}

// drain processes up to n queued events, or with n < 0 until the queue is
// empty.
func (e *Emitter) drain(n int) {
	for n != 0 {
		batch := e.fill(e.batch[:0], n)
		if len(batch) == 0 {
			return
		}
		if n > 0 {
			n -= len(batch)
		}
		e.process(batch)
	}
}

// process records one batch: prepare each event, evaluate the alert
// rules, write the log, then the store, then hand alerts to the sinks.
func (e *Emitter) process(batch []core.SecurityEvent) {
	kept := batch[:0]
	var alerts []Alert
	for _, ev := range batch {
		if !ev.Type.Valid() {
			e.invalid.Add(1)
			e.logger.Warn("security event of unknown type discarded", "type", sanitizeLabel(string(ev.Type)))
			continue
		}
		e.prepare(&ev)
		kept = append(kept, ev)
		if ev.Type != core.EventAlertFired {
			alerts = append(alerts, e.det.observe(ev, e.cfg.Clock)...)
		}
	}
	for _, a := range alerts {
		kept = append(kept, a.event())
	}
	e.batch = kept[:0]
	e.writeLog(kept)
	e.writeStore(kept)
	for _, a := range alerts {
		e.alerts.Add(1)
		for _, w := range e.sinks {
			select {
			case w.queue <- a:
			default:
				e.alertsDropped.Add(1)
				e.logger.Error("security alert not delivered: sink queue full", "sink", w.sink.Name(), "alert_id", a.ID, "rule", a.Rule)
			}
		}
	}
	e.reportDrops(false)
}

// prepare fills in ev's ID and Severity and makes it safe to write:
// credentials removed, strings valid and bounded.
func (e *Emitter) prepare(ev *core.SecurityEvent) {
	clean(ev) // first: a NUL or a bad byte must not split a credential
	if n := Redact(ev); n > 0 {
		e.redacted.Add(uint64(n))
	}
	limit(ev)
	if ev.ID == "" {
		ev.ID = newID()
	}
	if !ev.Severity.Valid() {
		ev.Severity = ev.Type.DefaultSeverity()
	}
	ev.Time = ev.Time.UTC()
}

// newID returns a UUIDv7: unique, and ordered by time like the log.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// writeLog writes each event as one JSON line through slog, stamped with
// the event's time rather than the time of writing.
func (e *Emitter) writeLog(evs []core.SecurityEvent) {
	if e.log == nil {
		return
	}
	var failed uint64
	var lastErr error
	for _, ev := range evs {
		r := slog.NewRecord(ev.Time, level(ev.Severity), ev.Message, 0)
		r.AddAttrs(
			slog.String("event_id", ev.ID),
			slog.String("type", string(ev.Type)),
			slog.String("severity", string(ev.Severity)),
		)
		for _, f := range []struct{ k, v string }{
			{"principal", ev.Principal}, {"ip", ev.IP}, {"agent_id", ev.AgentID},
			{"invocation_id", ev.InvocationID}, {"request_id", ev.RequestID},
		} {
			if f.v != "" {
				r.AddAttrs(slog.String(f.k, f.v))
			}
		}
		if len(ev.Details) > 0 {
			attrs := make([]any, 0, len(ev.Details))
			for _, k := range slices.Sorted(maps.Keys(ev.Details)) {
				attrs = append(attrs, slog.String(k, ev.Details[k]))
			}
			r.AddAttrs(slog.Group("details", attrs...))
		}
		if err := e.log.Handle(e.ctx, r); err != nil {
			failed++
			lastErr = err
		}
	}
	if failed > 0 {
		e.logFailed.Add(failed)
		e.logger.Error("writing security events to the log failed", "events", failed, "err", lastErr)
	}
}

func level(s core.Severity) slog.Level {
	switch s {
	case core.SeverityCritical:
		return slog.LevelError
	case core.SeverityWarning:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// writeStore appends evs in one transaction. If the store refuses the
// batch for one bad event (a duplicate ID a caller chose), the others are
// appended one by one so that it alone is lost.
func (e *Emitter) writeStore(evs []core.SecurityEvent) {
	if e.cfg.Store == nil || len(evs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.StoreTimeout)
	defer cancel()
	err := e.cfg.Store.AppendEvents(ctx, evs)
	if err == nil {
		e.stored.Add(uint64(len(evs)))
		return
	}
	if code := core.ErrorCode(err); len(evs) == 1 || (code != core.CodeValidation && code != core.CodeConflict) {
		e.storeFailed.Add(uint64(len(evs)))
		e.logger.Error("storing security events failed", "events", len(evs), "err", err)
		return
	}
	var failed uint64
	for i := range evs {
		if err := e.cfg.Store.AppendEvents(ctx, evs[i:i+1]); err != nil {
			failed++
			e.logger.Error("storing security event failed", "event_id", evs[i].ID, "type", evs[i].Type, "err", err)
		}
	}
	e.stored.Add(uint64(len(evs)) - failed)
	e.storeFailed.Add(failed)
}

// reportDrops logs how many events Emit dropped since the last report,
// at most every dropReportEvery unless final.
func (e *Emitter) reportDrops(final bool) {
	d := e.dropped.Load()
	if d == e.reportedDrops {
		return
	}
	now := e.cfg.Clock()
	if !final && now.Sub(e.lastDropReport) < dropReportEvery {
		return
	}
	e.logger.Warn("security events dropped: queue full or emitter closed", "dropped", d-e.reportedDrops, "dropped_total", d)
	e.reportedDrops, e.lastDropReport = d, now
}
