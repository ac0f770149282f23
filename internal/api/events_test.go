package api

import (
	"strings"
	"testing"
	"time"

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
