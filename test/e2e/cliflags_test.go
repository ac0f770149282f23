package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
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

// TestServePortFallback: with no port asked for, serve moves off a taken
// default port 8450 to a free one up to 8500 and says so; a port asked
// for that is taken is an error. Run in an agent directory without
// arguments, serve deploys ".".
func TestServePortFallback(t *testing.T) {
	needSandbox(t)
	if ln, err := net.Listen("tcp", "127.0.0.1:8450"); err == nil {
		defer ln.Close()
	}
	data := t.TempDir()
	cmd := exec.Command(binary, "serve", "--data-dir", data, "--drain-timeout", "5s")
	cmd.Dir = "testdata/agent"
	cmd.Env = append(os.Environ(), "RUNAGENT_ADDR=", "RUNAGENT_DATA_DIR=", "RUNAGENT_BOOTSTRAP_KEY_FILE="+ownerKeyFile(t, data))
	var stderr syncBuffer
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			stderr.WriteLine(sc.Text())
			lines <- sc.Text()
		}
		close(lines)
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		pw.Close()
		if t.Failed() {
			t.Logf("serve's output:\n%s", stderr.String())
		}
	}()
	var url string
	timeout := time.After(60 * time.Second)
	for url == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("serve exited during start-up")
			}
			if m := servingRE.FindStringSubmatch(line); m != nil {
				url = m[1]
			}
		case <-timeout:
			t.Fatal("serve did not report its address within 60s")
		}
	}
	out := stderr.String()
	if strings.Contains(url, ":8450") || !strings.Contains(out, "Port 8450 is in use: serving on 127.0.0.1:") {
		t.Errorf("serve with 8450 taken serves on %s", url)
	}
	if !strings.Contains(out, "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5") {
		t.Errorf("serve without arguments in an agent directory did not deploy it")
	}

	explicit := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--port", "8450")
	explicit.Env = append(os.Environ(), "RUNAGENT_ADDR=", "RUNAGENT_DATA_DIR=")
	b, err := explicit.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "address already in use") || !strings.Contains(string(b), "hint: another process listens there") {
		t.Errorf("serve --port 8450 with it taken: err %v\n%s", err, b)
	}
}

// TestServeReload: serve --reload redeploys a changed agent directory, and
// when the change does not load it says why and keeps the old version.
func TestServeReload(t *testing.T) {
	needSandbox(t)
	dir := filepath.Join(t.TempDir(), "agent")
	if err := os.CopyFS(dir, os.DirFS("testdata/agent")); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	cmd := exec.Command(binary, "serve", dir, "--reload", "--addr", "127.0.0.1:0", "--data-dir", data, "--drain-timeout", "5s")
	cmd.Env = append(os.Environ(), "RUNAGENT_DATA_DIR=", "RUNAGENT_BOOTSTRAP_KEY_FILE="+ownerKeyFile(t, data))
	var stderr syncBuffer
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			stderr.WriteLine(sc.Text())
		}
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		pw.Close()
		if t.Failed() {
			t.Logf("serve's output:\n%s", stderr.String())
		}
	}()
	wait := func(what string) string {
		t.Helper()
		for range 600 {
			if s := stderr.String(); strings.Contains(s, what) {
				return s
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("serve never said %q", what)
		return ""
	}
	m := servingRE.FindStringSubmatch(wait("serving on"))
	s := &server{URL: m[1], DataDir: data}
	key, _ := os.ReadFile(ownerKeyFile(t, data))
	s.OwnerKey = strings.TrimSpace(string(key))
	run := func() string {
		out, errOut, _ := cliResult(s, "run", "--id", "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5", "--tag", "raises")
		return out + errOut
	}
	agent := filepath.Join(dir, "agent.py")
	src, _ := os.ReadFile(agent)
	os.WriteFile(agent, []byte(strings.Replace(string(src), `def raises(message="boom")`, `def raises(message="reloaded")`, 1)), 0o644)
	wait("now serves version")
	if out := run(); !strings.Contains(out, "reloaded") {
		t.Errorf("after the reload, raises says %q, want the new default message", out)
	}
	os.WriteFile(agent, append(src, []byte("\nthis is not python\n")...), 0o644)
	wait("redeploy failed (still serving the previous version)")
	if out := run(); !strings.Contains(out, "reloaded") {
		t.Errorf("after a failed reload, raises says %q, want the previous version's message", out)
	}
}

// TestRunPrintsAgentFailure: an exception in the agent reaches the person
// running `runagent run` with its type, message, traceback and invocation
// id.
func TestRunPrintsAgentFailure(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	for _, cmd := range [][]string{
		{"run", "--tag", "raises", "--message=bad input"},
		{"run-stream", "--tag", "raises_stream"},
	} {
		_, errOut, err := cliResult(s, append(cmd, "--id", "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5")...)
		if err == nil {
			t.Errorf("%s succeeded", cmd)
			continue
		}
		for _, want := range []string{"AGENT_ERROR", "exception: ", "Traceback (most recent call last)", "agent.py", "invocation: "} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, errOut)
			}
		}
	}
}

// TestServeLogsRequests: serve logs each request in one line with its
// route pattern, status, duration and invocation, and never the key.
func TestServeLogsRequests(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	cli(t, s, "run", "--id", "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5", "--tag", "echo", "--message=hi")
	cli(t, s, "run-stream", "--id", "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5", "--tag", "values_stream")
	var run, stream string
	for range 100 {
		for line := range strings.Lines(s.stderr.String()) {
			if strings.Contains(line, "msg=request") && strings.Contains(line, `route="POST /api/v1/agents/{agent_id}/run"`) {
				run = line
			}
			if strings.Contains(line, "msg=request") && strings.Contains(line, `route="GET /api/v1/agents/{agent_id}/run-stream"`) {
				stream = line
			}
		}
		if run != "" && stream != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, line := range []string{run, stream} {
		for _, want := range []string{"level=INFO", "status=", "duration=", "invocation_id="} {
			if !strings.Contains(line, want) {
				t.Errorf("request log line lacks %s: %q", want, line)
			}
		}
	}
	if strings.Contains(s.stderr.String(), s.OwnerKey) {
		t.Errorf("the server log shows the API key")
	}
}

// TestSecondInterruptStopsAtOnce: the first SIGINT drains running
// invocations; a second one stops them at once.
func TestSecondInterruptStopsAtOnce(t *testing.T) {
	needSandbox(t)
	s := startServer(t, "--drain-timeout", "60s")
	done := make(chan struct{})
	go func() {
		// Answered or cut: either ends the call.
		body := strings.NewReader(`{"entrypoint_tag": "sleeps", "input_kwargs": {"seconds": 30}}`)
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/agents/0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5/run", body)
		req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		close(done)
	}()
	time.Sleep(700 * time.Millisecond) // the run is under way
	s.cmd.Process.Signal(syscall.SIGINT)
	for range 100 {
		if strings.Contains(s.stderr.String(), "Ctrl-C again") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	s.cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan struct{})
	go func() { s.stop(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("serve still running 10s after a second SIGINT")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("serve took %v to stop after a second SIGINT", took)
	}
	if !strings.Contains(s.stderr.String(), "Stopping now") {
		t.Errorf("serve did not say it stops at once")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("the running call was not answered or cut")
	}
}

// TestListingsPrintJSON: every listing command and deploy print JSON
// with --json: one object per line (doctor and deploy: one object).
func TestListingsPrintJSON(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	const agent = "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5"
	dir := filepath.Join(t.TempDir(), "agent")
	if err := os.CopyFS(dir, os.DirFS("testdata/agent")); err != nil {
		t.Fatal(err)
	}
	out := cli(t, s, "deploy", dir, "--json")
	var res struct {
		AgentID string `json:"agent_id"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.AgentID != agent || res.Version == "" {
		t.Errorf("deploy --json printed %q (%v)", out, err)
	}
	for _, args := range [][]string{
		{"keys", "list"}, {"projects", "list"}, {"principals", "list"},
		{"secrets", "list", "--agent", agent}, {"builds", "list", agent},
		{"events"}, {"audit", "list"},
	} {
		out := cli(t, s, append(args, "--json")...)
		if out == "" && args[0] != "secrets" && args[0] != "builds" && args[0] != "events" {
			t.Errorf("%s --json printed nothing", args)
		}
		for line := range strings.Lines(out) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("%s --json: line %q is not a JSON object: %v", args, line, err)
			}
		}
	}
	out = cli(t, s, "doctor", "--json")
	var doc struct {
		OK     bool `json:"ok"`
		Kernel []struct {
			Name string `json:"name"`
		} `json:"kernel"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.OK || len(doc.Kernel) == 0 {
		t.Errorf("doctor --json printed %q (%v)", out, err)
	}
}

// TestDBInvocationShowsTraceback: the record of a failed invocation, as
// `runagent db invocation` prints it, holds the agent's traceback.
func TestDBInvocationShowsTraceback(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	_, errOut, _ := cliResult(s, "run", "--id", "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5", "--tag", "raises", "--message=bad input")
	m := regexp.MustCompile(`invocation: (\S+)`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("run printed no invocation id:\n%s", errOut)
	}
	var out string
	// The logs are stored with the sandbox's teardown, after the answer.
	for range 100 {
		out = cli(t, s, "db", "invocation", m[1])
		if strings.Contains(out, "logs:") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"status:", "failed", "error:", "AGENT_ERROR", "Traceback (most recent call last)", "ValueError: bad input"} {
		if !strings.Contains(out, want) {
			t.Errorf("db invocation lacks %q:\n%s", want, out)
		}
	}
}
