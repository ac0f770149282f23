package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCompletion: the completion command is listed; --id of run and
// --agent of secrets complete agent ids from the server; run's flags
// complete by name.
func TestCompletion(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/agents" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"success": true, "data": {"agents": [{"agent_id": "6d2c2f5e-0000-4000-8000-000000000001", "agent_name": "echo"}]}, "error": null, "message": null}`))
	}))
	defer srv.Close()
	t.Setenv("RUNAGENT_BASE_URL", srv.URL)
	t.Setenv("RUNAGENT_API_KEY", "")
	complete := func(args ...string) string {
		t.Helper()
		var out, errs strings.Builder
		if code := Main(t.Context(), append([]string{"__complete"}, args...), strings.NewReader(""), &out, &errs); code != 0 {
			t.Fatalf("__complete %q exited %d: %s", args, code, errs.String())
		}
		return out.String()
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--id", ""}, "6d2c2f5e-0000-4000-8000-000000000001\techo"},
		{[]string{"run-stream", "--tag", "x", "--id="}, "--id=6d2c2f5e-0000-4000-8000-000000000001"},
		{[]string{"run", "--host", "127.0.0.1", "--port", "1", "--id", ""}, ":4\n"}, // unreachable: nothing, no files
		{[]string{"run", "--per"}, "--persistent-memory"},
		{[]string{"run", "--asy"}, "--async"},
		{[]string{"runs", ""}, "wait"},
		{[]string{"runs", "stream", "inv", "--a"}, "--after"},
		{[]string{"secrets", "list", "--agent", ""}, "6d2c2f5e-0000-4000-8000-000000000001"},
		{[]string{"builds", "list", ""}, "6d2c2f5e-0000-4000-8000-000000000001"},
		{[]string{""}, "completion"},
	} {
		if got := complete(tt.args...); !strings.Contains(got, tt.want) {
			t.Errorf("__complete %q = %q, want it to contain %q", tt.args, got, tt.want)
		}
	}
	var out strings.Builder
	Main(t.Context(), []string{"--help"}, strings.NewReader(""), &out, &out)
	if !strings.Contains(out.String(), "completion") {
		t.Errorf("--help does not list the completion command:\n%s", out.String())
	}
}
