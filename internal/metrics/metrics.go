// Package metrics keeps runagent's Prometheus metrics
// (github.com/prometheus/client_golang) in one registry of its own — not
// the global default, so tests and several servers in one process do not
// collide — and serves them in the text exposition format. Label values
// are bounded: routes are mux patterns, never raw paths; agents are
// deployed agent ids; outcomes, event types and limiter scopes are fixed
// sets chosen by the code.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's metrics.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	invocations *prometheus.CounterVec
	events      *prometheus.CounterVec
	limiter     *prometheus.CounterVec
}

// New returns the metrics with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runagent_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "runagent_http_request_duration_seconds", Help: "Time to handle an HTTP request (streams: until they end), by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runagent_invocations_total", Help: "Finished invocations by agent and outcome (completed, failed, timeout, cancelled).",
		}, []string{"agent", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runagent_security_events_total", Help: "Security events by type.",
		}, []string{"type"}),
		limiter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runagent_limiter_decisions_total", Help: "Rate and concurrency limiter decisions by scope and decision (allowed, limited).",
		}, []string{"scope", "decision"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.invocations, m.events, m.limiter,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request records one handled request.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// Invocation records a finished invocation.
func (m *Metrics) Invocation(agent, outcome string) {
	if m == nil {
		return
	}
	m.invocations.WithLabelValues(agent, outcome).Inc()
}

// SecurityEvent records a security event.
func (m *Metrics) SecurityEvent(typ string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(typ).Inc()
}

// LimiterDecision records a limiter decision.
func (m *Metrics) LimiterDecision(scope string, allowed bool) {
	if m == nil {
		return
	}
	d := "limited"
	if allowed {
		d = "allowed"
	}
	m.limiter.WithLabelValues(scope, d).Inc()
}

// Gauge registers a gauge whose value fn reports at each scrape (pool
// sizes, running invocations, open connections).
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// Counter registers a counter whose value fn reports at each scrape
// (counts kept elsewhere, such as sandbox starts).
func (m *Metrics) Counter(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}

// HistogramFunc registers a histogram whose counts fn reports at each
// scrape (observations kept elsewhere, such as the executor's queue
// waits): the count, the sum and, per upper bound in bounds, the
// cumulative count of observations at most that bound.
func (m *Metrics) HistogramFunc(name, help string, bounds []float64, fn func() (count uint64, sum float64, cumulative []uint64)) {
	m.reg.MustRegister(&histogramFunc{desc: prometheus.NewDesc(name, help, nil, nil), bounds: bounds, fn: fn})
}

type histogramFunc struct {
	desc   *prometheus.Desc
	bounds []float64
	fn     func() (uint64, float64, []uint64)
}

func (h *histogramFunc) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *histogramFunc) Collect(ch chan<- prometheus.Metric) {
	count, sum, cum := h.fn()
	buckets := make(map[float64]uint64, len(h.bounds))
	for i, b := range h.bounds {
		if i < len(cum) {
			buckets[b] = cum[i]
		}
	}
	ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets)
}
