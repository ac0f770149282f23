package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestRateLimitE2E: past its limit a principal gets 429 with Retry-After
// and the RateLimit headers; another principal (here: anonymous callers
// of an auth-none agent, counted per address) is not affected.
func TestRateLimitE2E(t *testing.T) {
	s := startServer(t, "--rate-limit", "3/1m")
	for i := range 3 {
		if status, env := s.do(t, http.MethodGet, "/api/v1/agents", "", nil); status != http.StatusOK {
			t.Fatalf("request %d: %d %+v", i, status, env.Error)
		}
	}
	status, env := s.do(t, http.MethodGet, "/api/v1/agents", "", nil)
	if status != http.StatusTooManyRequests || env.Error == nil || env.Error.Code != "RATE_LIMITED" {
		t.Fatalf("4th request: %d %+v, want 429 RATE_LIMITED", status, env.Error)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/v1/agents", nil)
	req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Limit") != "3" || resp.Header.Get("RateLimit-Policy") == "" {
		t.Errorf("429 headers: %v", resp.Header)
	}
	body := strings.NewReader(`{"entrypoint_tag": "value", "input_kwargs": {"kind": "integer"}}`)
	if status, env := s.doWith(t, http.MethodPost, "/api/v1/agents/"+agentID+"/run", "application/json", body, map[string]string{"Authorization": ""}); status != http.StatusOK {
		t.Errorf("anonymous caller while the owner is limited: %d %+v", status, env.Error)
	}
}
