package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const agentID = "0b5e3d7a-1c2f-4e6a-8b9c-d0e1f2a3b4c5"

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runagent-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "runagent")
	// Servers register their agents in RunAgent's local registry: here,
	// not in the home directory's.
	os.Setenv("RUNAGENT_CACHE_DIR", dir)
	build := exec.Command("go", "build", "-o", binary, "../../cmd/runagent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build runagent:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `runagent serve`.
type server struct {
	URL     string
	DataDir string
	// OwnerKey is the server's first owner key: made with `runagent keys
	// generate` and handed to the server in $RUNAGENT_BOOTSTRAP_KEY_FILE.
	OwnerKey string
	cmd      *exec.Cmd
	stderr   *syncBuffer
	stopOnce sync.Once
	stopFn   func()
}

// stop stops the server (SIGTERM, then SIGKILL after 15 s), once.
func (s *server) stop() { s.stopOnce.Do(s.stopFn) }

var servingRE = regexp.MustCompile(`serving on (http://\S+)`)

// startServer runs `runagent serve` on a free loopback port with a fresh
// data directory and stops it when the test ends, also on failure.
// needSandbox skips t unless it runs as root: on these machines (cgroup
// v1) only root may create the cgroups that limit a sandbox, and the
// server refuses sandboxes it cannot limit (fail closed, see runagent
// doctor), so as another user there is nothing to test.
func needSandbox(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("uid %d may not create cgroups on this host (cgroup v1), so the server refuses to run sandboxes (see runagent doctor); run as root", os.Geteuid())
	}
}

func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	return startServerIn(t, t.TempDir(), extra...)
}

// startServerIn is startServer with a given data directory.
func startServerIn(t testing.TB, data string, extra ...string) *server {
	t.Helper()
	// The rate limit is on but out of reach: these tests send bursts from
	// one address; TestRateLimitE2E checks the limit itself.
	args := append([]string{"serve", "testdata/agent", "--addr", "127.0.0.1:0", "--data-dir", data, "--drain-timeout", "5s", "--rate-limit", "1000000/1s"}, extra...)
	return startServerEnv(t, data, ownerKeyFile(t, data), nil, args...)
}

// startServerEnv runs the runagent command args (a serve) with data
// directory data, the owner key in keyFile and env added to the
// environment, and stops it when the test ends, also on failure.
func startServerEnv(t testing.TB, data, keyFile string, env []string, args ...string) *server {
	t.Helper()
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "RUNAGENT_DATA_DIR=", "RUNAGENT_BOOTSTRAP_KEY_FILE="+keyFile), env...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start runagent serve: %v", err)
	}
	s := &server{DataDir: data, OwnerKey: strings.TrimSpace(string(key)), cmd: cmd, stderr: &syncBuffer{}}
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	s.stopFn = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("runagent serve did not stop within 15s of SIGTERM")
		}
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr.String())
		}
	})
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			s.stderr.WriteLine(line)
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case s.URL = <-urlc:
	case <-exited:
		t.Fatalf("runagent serve exited during start-up:\n%s", s.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("runagent serve did not report its address within 30s:\n%s", s.stderr.String())
	}
	return s
}

// ownerKeyFile returns the file holding the owner key of the server with
// data directory data, generating the key with the CLI the first time (a
// restarted server keeps its first key).
func ownerKeyFile(t testing.TB, data string) string {
	t.Helper()
	path := filepath.Clean(data) + ".owner-key"
	if _, err := os.Stat(path); err == nil {
		return path
	}
	out, err := exec.Command(binary, "keys", "generate").Output()
	if err != nil {
		t.Fatalf("runagent keys generate: %v", err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// envelope is the RunAgent response shape, decoded without project code.
type envelope struct {
	Success      bool            `json:"success"`
	Data         json.RawMessage `json:"data"`
	Message      *string         `json:"message"`
	Error        *apiError       `json:"error"`
	Timestamp    string          `json:"timestamp"`
	RequestID    string          `json:"request_id"`
	InvocationID string          `json:"invocation_id"`
}

type apiError struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details"`
	Field   *string         `json:"field"`
}

// do sends a request and decodes the envelope. It fails the test on a
// transport error or a body that is not an envelope.
func (s *server) do(t testing.TB, method, path, contentType string, body io.Reader) (int, *envelope) {
	t.Helper()
	return s.doWith(t, method, path, contentType, body, nil)
}

// doWith is do with extra request headers ("Host" sets the Host header).
func (s *server) doWith(t testing.TB, method, path, contentType string, body io.Reader, header map[string]string) (int, *envelope) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	// Agent routes of these test agents (auth_settings none) need no key
	// on loopback; the rest do. An explicit Authorization header, even
	// empty, replaces the owner's.
	req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, want application/json; body %.300s", method, path, ct, raw)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s %s: missing X-Content-Type-Options: nosniff", method, path)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v: %.300s", method, path, err, raw)
	}
	return resp.StatusCode, &env
}

func (s *server) run(t testing.TB, body any) (int, *envelope) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return s.do(t, http.MethodPost, "/api/v1/agents/"+agentID+"/run", "application/json", bytes.NewReader(b))
}

// decodeStructured decodes RunAgent's structured string by hand: a JSON
// object {"type": T, "payload": P} where P is the JSON text of the value.
func decodeStructured(t testing.TB, s string) (string, any) {
	t.Helper()
	var st struct {
		Type    string `json:"type"`
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		t.Fatalf("structured string %q is not a JSON object: %v", s, err)
	}
	dec := json.NewDecoder(strings.NewReader(st.Payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("payload %q of structured string is not JSON: %v", st.Payload, err)
	}
	return st.Type, v
}

// expected values of the test agent's VALUES, with the structured type
// each must carry.
var wantValues = []struct {
	kind string
	want string // canonical JSON of the value
}{
	{"string", `"héllo \"world\""`},
	{"integer", `42`},
	{"number", `2.5`},
	{"boolean", `true`},
	{"array", `[1,"two",3.0,null]`},
	{"object", `{"a":1,"nested":{"b":[true,false]}}`},
	{"null", `null`},
}

// checkValue asserts a structured string holds the expected kind and value.
func checkValue(t testing.TB, structured, kind, want string) {
	t.Helper()
	gotType, got := decodeStructured(t, structured)
	if gotType != kind {
		t.Errorf("structured type = %q, want %q (from %s)", gotType, kind, structured)
	}
	gotJSON, _ := json.Marshal(got)
	dec := json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	var w any
	if err := dec.Decode(&w); err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(w)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("value = %s, want %s", gotJSON, wantJSON)
	}
	if kind == "number" && !strings.ContainsAny(structured, ".eE") {
		t.Errorf("number payload lost its fraction: %s", structured)
	}
}

// syncBuffer collects the server's log lines for failure reports.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteLine(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
	b.buf.WriteByte('\n')
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
