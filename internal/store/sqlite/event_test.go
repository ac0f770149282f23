package sqlite

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// TestEventQueriesUseIndexes: every filter of the security log is served
// by an index that also yields the listing order, so a page never sorts
// or scans the whole table.
func TestEventQueriesUseIndexes(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	// Enough rows, and statistics, for the planner to prefer indexes.
	batch := make([]core.SecurityEvent, 2000)
	for i := range batch {
		typ := core.AllEventTypes[i%len(core.AllEventTypes)]
		batch[i] = core.SecurityEvent{
			ID: fmt.Sprintf("ev-%05d", i), Time: time.Unix(int64(i), 0), Type: typ, Severity: typ.DefaultSeverity(),
			Principal: fmt.Sprintf("p-%d", i%97), IP: fmt.Sprintf("192.0.2.%d", i%89), AgentID: fmt.Sprintf("a-%d", i%13),
		}
	}
	if err := db.AppendEvents(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(t.Context(), "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	since := time.Unix(100, 0)
	tests := []struct {
		f     core.EventFilter
		index string
	}{
		{core.EventFilter{}, "security_events_time"},
		{core.EventFilter{Since: since, Until: since.Add(time.Minute)}, "security_events_time"},
		{core.EventFilter{Type: core.EventAuthFailure}, "security_events_type_time"},
		{core.EventFilter{Severity: core.SeverityCritical}, "security_events_severity_time"},
		{core.EventFilter{Principal: "p-1"}, "security_events_principal_time"},
		{core.EventFilter{IP: "192.0.2.1"}, "security_events_ip_time"},
		{core.EventFilter{AgentID: "a-1", Since: since}, "security_events_agent_time"},
	}
	for _, tt := range tests {
		q, args, err := eventQuery(tt.f)
		if err != nil {
			t.Fatalf("eventQuery(%+v) = %v", tt.f, err)
		}
		got := queryPlan(t, db, q, args...)
		if !strings.Contains(got, "INDEX "+tt.index) || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("plan for %+v = %q, want it to use %s without sorting", tt.f, got, tt.index)
		}
	}
}
