package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events/eventstest"
	"github.com/runagent/runagent/internal/ratelimit"
)

// TestSecurityEvents: the gateway records what the security log needs —
// with the principal, address and request id, never a credential.
func TestSecurityEvents(t *testing.T) {
	w := newWorld(t)
	rec := &eventstest.Recorder{}
	w.api.setEvents(rec)
	w.limited(ratelimit.Limit{Rate: 1, Period: time.Minute, Burst: 1})

	w.do("wrong-secret", "GET", "/api/v1/agents", "")
	w.do("viewer", "GET", "/api/v1/agents", "")
	w.do("viewer", "GET", "/api/v1/agents", "") // over the limit
	w.do("admin", "POST", "/api/v1/agents/"+agentP1+"/run", `{"entrypoint_tag": 5}`)
	w.do("owner", "POST", "/api/v1/keys", `{"name":"n","role":"viewer"}`)

	fails := rec.OfType(core.EventAuthFailure)
	if len(fails) != 1 || fails[0].Details["reason"] != "wrong secret" || fails[0].IP != "192.0.2.1" || fails[0].RequestID == "" ||
		!strings.HasPrefix(fails[0].Principal, "key:") {
		t.Errorf("auth_failure events: %+v", fails)
	}
	if got := rec.OfType(core.EventRateLimitExceeded); len(got) != 1 || !strings.HasPrefix(got[0].Principal, "key:") {
		t.Errorf("rate_limit_exceeded events: %+v", got)
	}
	if got := rec.OfType(core.EventInputRejected); len(got) != 1 || got[0].AgentID != agentP1 {
		t.Errorf("input_rejected events: %+v", got)
	}
	if got := rec.OfType(core.EventKeyCreated); len(got) != 1 || got[0].Details["key_id"] == "" {
		t.Errorf("key_created events: %+v", got)
	}
	for _, ev := range rec.Events() {
		for _, k := range w.keys {
			if len(k) > 8 && (strings.Contains(ev.Message, k[20:]) || strings.Contains(ev.Principal, k[20:])) {
				t.Errorf("event %s holds a key's secret", ev.Type)
			}
		}
	}
}

// TestCountEvents: GET /api/v1/events/counts answers counts per type and
// bucket from the store, with the filters of the list, and refuses a
// time it cannot count or a bucket too narrow for it.
func TestCountEvents(t *testing.T) {
	w := newWorld(t)
	at := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)
	evs := []core.SecurityEvent{
		{ID: "e1", Time: at, Type: core.EventAuthFailure, Severity: core.SeverityWarning, IP: "192.0.2.7"},
		{ID: "e2", Time: at.Add(10 * time.Second), Type: core.EventAuthFailure, Severity: core.SeverityWarning, IP: "192.0.2.7"},
		{ID: "e3", Time: at.Add(70 * time.Second), Type: core.EventKeyCreated, Severity: core.SeverityInfo},
	}
	if err := w.store.AppendEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		Data struct {
			Since         time.Time         `json:"since"`
			BucketSeconds int               `json:"bucket_seconds"`
			Counts        []core.EventCount `json:"counts"`
		} `json:"data"`
	}
	tests := []struct {
		name, query string
		want        []core.EventCount
	}{
		{"by the minute", "since=2026-11-24T20:00:00Z&until=2026-11-24T20:05:00Z&bucket=60", []core.EventCount{
			{Start: at, Type: core.EventAuthFailure, Count: 2}, {Start: at.Add(time.Minute), Type: core.EventKeyCreated, Count: 1}}},
		{"one type", "since=2026-11-24T20:00:00Z&until=2026-11-24T20:05:00Z&bucket=60&type=key_created", []core.EventCount{
			{Start: at.Add(time.Minute), Type: core.EventKeyCreated, Count: 1}}},
		{"default bucket (a 24th)", "since=2026-11-24T20:00:00Z&until=2026-11-24T20:24:00Z", []core.EventCount{
			{Start: at, Type: core.EventAuthFailure, Count: 2}, {Start: at.Add(time.Minute), Type: core.EventKeyCreated, Count: 1}}},
		{"another address", "since=2026-11-24T20:00:00Z&until=2026-11-24T20:05:00Z&bucket=60&ip=192.0.2.8", []core.EventCount{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := w.do("owner", "GET", "/api/v1/events/counts?"+tt.query, "")
			if status != 200 {
				t.Fatalf("GET counts?%s: %d %s", tt.query, status, body)
			}
			var got answer
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Data.BucketSeconds != 60 || !got.Data.Since.Equal(at) {
				t.Errorf("GET counts?%s: bucket %d s from %s, want 60 s from %s", tt.query, got.Data.BucketSeconds, got.Data.Since, at)
			}
			if diff := cmp.Diff(tt.want, got.Data.Counts, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("GET counts?%s (-want +got):\n%s", tt.query, diff)
			}
		})
	}
	for _, q := range []string{
		"since=2026-11-24T20:05:00Z&until=2026-11-24T20:00:00Z",           // until before since
		"since=2026-11-24T20:00:00Z&until=2026-11-25T20:00:00Z&bucket=60", // 1440 buckets
		"bucket=0", "bucket=x", "type=nope", "since=yesterday",
	} {
		if status, body := w.do("owner", "GET", "/api/v1/events/counts?"+q, ""); status != 400 || !strings.Contains(string(body), "VALIDATION_ERROR") {
			t.Errorf("GET counts?%s: %d %s, want 400 VALIDATION_ERROR", q, status, body)
		}
	}
	// Without since and until: the last day.
	if status, body := w.do("owner", "GET", "/api/v1/events/counts", ""); status != 200 || !strings.Contains(string(body), `"bucket_seconds":3600`) {
		t.Errorf("GET counts: %d %s, want 200 with hour buckets", status, body)
	}
}
