package e2e

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRunRunAgentFlags: RunAgent's flags of run (--host, --port,
// --persistent-memory, --user-id) choose the server and the call; they
// never reach the agent as inputs, and a bare flag that is none of them
// is refused before anything is sent.
func TestRunRunAgentFlags(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(binary, args...)
		// The server is named only by --host and --port.
		cmd.Env = append(os.Environ(), "RUNAGENT_BASE_URL=http://127.0.0.1:1", "RUNAGENT_API_KEY="+s.OwnerKey)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, errOut, err := run("run", "--id", "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5", "--tag", "echo",
		"--host", u.Hostname(), "--port", u.Port(), "--persistent-memory", "--user-id", "u1", "--message=hi", "--n", "2", "--raw")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut)
	}
	var got struct {
		Kwargs map[string]any `json:"kwargs"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("run printed %q: %v", out, err)
	}
	if len(got.Kwargs) != 2 || got.Kwargs["message"] != "hi" || got.Kwargs["n"] != float64(2) {
		t.Errorf("agent got kwargs %v, want only message=hi and n=2", got.Kwargs)
	}
	_, errOut, err = run("run", "--id", "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5", "--tag", "echo", "--host", u.Hostname(), "--port", u.Port(), "--verbose")
	if err == nil || !strings.Contains(errOut, "--verbose is not a flag of runagent run") {
		t.Errorf("run --verbose: err %v, stderr %q", err, errOut)
	}
}
