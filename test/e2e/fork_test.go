package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// TestForkServerE2E: by default the linux sandbox forks each run from a
// template of its agent version — runs answer, and the metrics count
// forks and one template; with --fork-server=false every run starts a
// sandbox of its own and nothing is forked.
func TestForkServerE2E(t *testing.T) {
	needSandbox(t)
	for _, tc := range []struct {
		name  string
		args  []string
		forks bool
	}{{"default", nil, true}, {"off", []string{"--fork-server=false"}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.args...)
			for i := range 4 {
				status, env := s.run(t, map[string]any{"entrypoint_tag": "echo", "input_args": []any{i}})
				if status != http.StatusOK || !env.Success {
					t.Fatalf("run %d: status %d, error %+v", i, status, env.Error)
				}
			}
			forks, templates := metric(t, s, "runagent_sandbox_forks_total"), metric(t, s, "runagent_sandbox_templates")
			if tc.forks && (forks < 4 || templates != 1) {
				t.Errorf("forks %v, templates %v: want every run forked from one template", forks, templates)
			}
			if !tc.forks && (forks != 0 || templates != 0) {
				t.Errorf("forks %v, templates %v with --fork-server=false", forks, templates)
			}
		})
	}
}

// metric returns the value of an unlabelled series from the server's
// Prometheus metrics.
func metric(t *testing.T, s *server, name string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/api/v1/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("metrics lack %s:\n%s", name, b)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
