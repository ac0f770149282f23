package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// TestAuditMarksDurableCommitFollows: the audit step tells the store that
// a durable commit follows the handler's writes (so that PostgreSQL may
// commit a run's invocation record lazily) exactly for the requests whose
// answer it holds back until their audit record is appended, and that
// record is appended after the handler has returned; never for a stream,
// which is answered before its outcome's record.
func TestAuditMarksDurableCommitFollows(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		kind auditKind
		want bool
	}{
		{auditRead, true},
		{auditChange, true},
		{auditRun, true},
		{auditStream, false},
	}
	for _, tt := range tests {
		var marked bool
		var before int
		h := w.api.gw.auditRecords(audited("test.lazy", tt.kind, fixedRes("test")), func(rw http.ResponseWriter, r *http.Request) error {
			marked = core.DurableCommitFollows(r.Context())
			before = len(w.trail(audit.Filter{Action: "test.lazy"}))
			rw.WriteHeader(http.StatusOK)
			return nil
		})
		rec := httptest.NewRecorder()
		if err := h(rec, httptest.NewRequest(http.MethodPost, "/test", nil)); err != nil {
			t.Fatalf("kind %d: %v", tt.kind, err)
		}
		if marked != tt.want {
			t.Errorf("kind %d: handler's context marked %v, want %v", tt.kind, marked, tt.want)
		}
		if after := len(w.trail(audit.Filter{Action: "test.lazy"})); after <= before {
			t.Errorf("kind %d: no audit record appended after the handler (%d before, %d after)", tt.kind, before, after)
		}
	}
}
