package api

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestHealthProbes: GET /api/v1/health is readiness (503 once the store
// does not answer, and while draining); ?probe=live is liveness, 200 in
// both cases, without a credential.
func TestHealthProbes(t *testing.T) {
	for _, tt := range []struct {
		name              string
		breakStore, drain bool
		wantReady         int
		wantReadyStatus   string
	}{
		{"serving", false, false, http.StatusOK, "healthy"},
		{"store down", true, false, http.StatusServiceUnavailable, "unhealthy"},
		{"draining", false, true, http.StatusServiceUnavailable, "draining"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			if tt.drain {
				w.api.runs.draining.Store(true)
			}
			if tt.breakStore {
				w.store.Close()
			}
			probe := func(path string) (int, string) {
				t.Helper()
				code, body := w.do("", "GET", path, "")
				var got struct{ Status string }
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("GET %s: %d %s: %v", path, code, body, err)
				}
				return code, got.Status
			}
			if code, status := probe("/api/v1/health"); code != tt.wantReady || status != tt.wantReadyStatus {
				t.Errorf("GET /api/v1/health = %d %q, want %d %q", code, status, tt.wantReady, tt.wantReadyStatus)
			}
			if code, status := probe("/api/v1/health?probe=live"); code != http.StatusOK || status != "alive" {
				t.Errorf("GET /api/v1/health?probe=live = %d %q, want 200 \"alive\"", code, status)
			}
		})
	}
}
