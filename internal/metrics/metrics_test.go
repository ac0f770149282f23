package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	m := New()
	m.Request("POST /api/v1/agents/{agent_id}/run", "POST", 200, 3*time.Millisecond)
	m.Request("POST /api/v1/agents/{agent_id}/run", "POST", 200, 3*time.Millisecond)
	m.Invocation("a1", "completed")
	m.SecurityEvent("auth_failure")
	m.LimiterDecision("principal", false)
	n := 7.0
	m.Gauge("runagent_test_gauge", "a test gauge", func() float64 { return n })
	m.HistogramFunc("runagent_test_wait_seconds", "a test histogram", []float64{.1, 1}, func() (uint64, float64, []uint64) {
		return 3, 2.5, []uint64{1, 2}
	})
	out := scrape(t, m)
	for _, want := range []string{
		`runagent_http_requests_total{method="POST",route="POST /api/v1/agents/{agent_id}/run",status="200"} 2`,
		`runagent_http_request_duration_seconds_bucket{route="POST /api/v1/agents/{agent_id}/run",le="0.005"} 2`,
		`runagent_invocations_total{agent="a1",outcome="completed"} 1`,
		`runagent_security_events_total{type="auth_failure"} 1`,
		`runagent_limiter_decisions_total{decision="limited",scope="principal"} 1`,
		`runagent_test_gauge 7`,
		`runagent_test_wait_seconds_bucket{le="0.1"} 1`,
		`runagent_test_wait_seconds_bucket{le="1"} 2`,
		`runagent_test_wait_seconds_bucket{le="+Inf"} 3`,
		`runagent_test_wait_seconds_sum 2.5`,
		`runagent_test_wait_seconds_count 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	// A nil *Metrics records nothing and does not panic (metrics off).
	var off *Metrics
	off.Request("r", "GET", 200, time.Millisecond)
	off.Invocation("a", "failed")
}

func BenchmarkRequest(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.Request("POST /api/v1/agents/{agent_id}/run", "POST", 200, time.Millisecond)
	}
}
