package api

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/ratelimit"
)

// BenchmarkGuardedRead is the API's own request path without the
// network: routing, API key authentication (cached), the rate limit,
// authorization and the JSON answer of GET .../architecture.
func BenchmarkGuardedRead(b *testing.B) {
	w := newWorld(b)
	w.limited(ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000})
	path := "/api/v1/agents/" + agentP1 + "/architecture"
	key := "Bearer " + w.keys["viewer"]
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = net.JoinHostPort("192.0.2.1", "40000")
		r.Header.Set("Authorization", key)
		rec := httptest.NewRecorder()
		w.api.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkRunPath is POST /run through the API without the network or
// the audit trail (whose durable commit would dominate): routing,
// authentication, the rate limit, decoding and validation of the input,
// the invocation records and the in-process guest.
func BenchmarkRunPath(b *testing.B) {
	w := newWorld(b)
	w.limited(ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000})
	w.api.gw.audit = nil
	path := "/api/v1/agents/" + agentP1 + "/run"
	key := "Bearer " + w.keys["user"]
	const body = `{"entrypoint_tag":"echo","input_args":[1,"two"],"input_kwargs":{"k":true}}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.RemoteAddr = net.JoinHostPort("192.0.2.1", "40000")
		r.Header.Set("Authorization", key)
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		w.api.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
