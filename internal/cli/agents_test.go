package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/server"
)

// TestResolveVersion: --to takes a whole hash or a unique prefix, with or
// without "sha256:"; an unknown or ambiguous one is refused with what to do.
func TestResolveVersion(t *testing.T) {
	a := "sha256:" + strings.Repeat("ab", 32)
	b := "sha256:" + "abc" + strings.Repeat("0", 61)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"success":true,"data":{"versions":[{"version":"` + b + `"},{"version":"` + a + `"}]}}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ in, want, wantErr string }{
		{in: a, want: a},
		{in: "abab", want: a},
		{in: "sha256:abc", want: b},
		{in: "ab", wantErr: "ambiguous"},
		{in: "ff", wantErr: "no version"},
		{in: "sha256:", wantErr: "empty"},
	} {
		got, err := resolveVersion(t.Context(), c, "agent", tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("resolveVersion(%q) = %q, %v; want an error saying %q", tt.in, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("resolveVersion(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestAgentsVersionsFollowsPages: the server answers an agent's versions
// a page of 100 at a time; `agents versions` follows the cursors and
// lists every version once, newest first.
func TestAgentsVersionsFollowsPages(t *testing.T) {
	s, owner := ownedServer(t, server.Config{RateLimit: ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}})
	c, err := client.New(s.URL(), client.WithAPIKey(owner))
	if err != nil {
		t.Fatal(err)
	}
	const agent, made = "6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b", 105
	dir := t.TempDir()
	cfg := `{"agent_name": "many", "agent_id": "` + agent + `",
  "agent_architecture": {"entrypoints": [{"file": "main.py", "module": "echo", "tag": "echo"}]},
  "auth_settings": {"type": "api_key"}}`
	var deployed []string // oldest first
	for i := range made {
		for f, body := range map[string]string{"runagent.config.json": cfg, "main.py": fmt.Sprintf("X = %d\ndef echo(*a): return a\n", i)} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		pkg, _, err := bundle.Pack(dir, bundle.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Deploy(t.Context(), bytes.NewReader(pkg))
		if err != nil {
			t.Fatalf("deploy %d: %v", i, err)
		}
		deployed = append(deployed, res.Version)
	}
	slices.Reverse(deployed)
	t.Setenv("RUNAGENT_API_KEY", owner)
	var out, errOut strings.Builder
	if code := Main(t.Context(), []string{"agents", "versions", agent, "--json", "--server", s.URL()}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("agents versions: exit %d: %s", code, errOut.String())
	}
	var listed []string // one JSON object a line
	for line := range strings.Lines(out.String()) {
		var v struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil || v.Version == "" {
			t.Fatalf("agents versions --json: line %q: %v", line, err)
		}
		listed = append(listed, v.Version)
	}
	if !slices.Equal(listed, deployed) {
		t.Errorf("agents versions listed %d versions, want the %d deployed, newest first", len(listed), len(deployed))
	}
}
