package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/localreg"
	"github.com/runagent/runagent/internal/server"
)

func TestParseRunArgs(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in.json")
	os.WriteFile(in, []byte(`{"input_args":[1,"x"],"input_kwargs":{"from_file":true,"message":"file"}}`), 0o644)
	ra, err := parseRunArgs([]string{"--id", "A", "--tag=t", "--message=hi", "--n=2", "--flag", "true", "--obj={\"a\":[1]}", "--max-tokens=5", "--input", in, "--sse", "--timeout=3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"message": "hi", "n": float64(2), "flag": true, "obj": map[string]any{"a": []any{float64(1)}}, "max_tokens": float64(5), "from_file": true}
	if diff := cmp.Diff(want, ra.kwargs); diff != "" {
		t.Errorf("kwargs (-want +got):\n%s", diff)
	}
	if ra.id != "A" || ra.tag != "t" || !ra.sse || ra.timeout != 3 || len(ra.kwargsArgs) != 2 {
		t.Errorf("parsed %+v", ra)
	}
}

// TestParseRunArgsRunAgentFlags: RunAgent's flags of run are flags here
// too, never agent inputs; --name value is an input where name is none of
// them.
func TestParseRunArgsRunAgentFlags(t *testing.T) {
	t.Setenv("RUNAGENT_BASE_URL", "http://env.example:1")
	for _, tt := range []struct {
		name       string
		args       []string
		server     string
		kwargs     map[string]any
		persistent bool
	}{
		{"host and port", []string{"--host", "127.0.0.1", "--port", "9999", "--message=hi"}, "http://127.0.0.1:9999", map[string]any{"message": "hi"}, false},
		{"host and port with =", []string{"--host=10.0.0.2", "--port=8080"}, "http://10.0.0.2:8080", map[string]any{}, false},
		{"port alone", []string{"--port", "9000"}, "http://127.0.0.1:9000", map[string]any{}, false},
		{"ipv6 host", []string{"--host", "::1", "--port", "9000"}, "http://[::1]:9000", map[string]any{}, false},
		{"local", []string{"--local", "--message", "hi"}, "http://" + defaultAddr, map[string]any{"message": "hi"}, false},
		{"persistent memory is a switch", []string{"--persistent-memory", "--user-id", "u1", "--n=1"}, "http://env.example:1", map[string]any{"n": float64(1)}, true},
		{"persistent memory false", []string{"--persistent-memory=false"}, "http://env.example:1", map[string]any{}, false},
		{"server", []string{"--server", "http://s:2"}, "http://s:2", map[string]any{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ra, err := parseRunArgs(append([]string{"--id", "A", "--tag", "t"}, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			if ra.server != tt.server {
				t.Errorf("server %q, want %q", ra.server, tt.server)
			}
			if ra.persistent != tt.persistent {
				t.Errorf("persistent %v, want %v", ra.persistent, tt.persistent)
			}
			if diff := cmp.Diff(tt.kwargs, ra.kwargs); diff != "" {
				t.Errorf("kwargs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRunArgsErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--tag", "t"}, "--id and --tag are required"},
		{[]string{"--id", "a", "--tag", "t", "stray"}, "unexpected argument"},
		{[]string{"--id", "a", "--tag"}, "needs a value"},
		{[]string{"--id", "a", "--tag", "t", "--timeout=-1"}, "positive number"},
		{[]string{"--id", "a", "--tag", "t", "--input", "/does/not/exist"}, "--input"},
		{[]string{"--id", "a", "--tag", "t", "--verbose"}, "--verbose is not a flag of runagent run; agent inputs are --name=value"},
		{[]string{"--id", "a", "--tag", "t", "--verbose", "--message=hi"}, "--verbose is not a flag"},
		{[]string{"--id", "a", "--tag", "t", "--port", "http"}, "want a port number"},
		{[]string{"--id", "a", "--tag", "t", "--persistent-memory=maybe"}, "takes no value"},
		{[]string{"--id", "a", "--tag", "t", "--server", "http://x", "--port", "1"}, "give one"},
		{[]string{"--id", "a", "--tag", "t", "--local", "--host", "h"}, "give one"},
	} {
		_, err := parseRunArgs(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseRunArgs(%q) = %v, want error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestHelpTeaches(t *testing.T) {
	var out strings.Builder
	if code := Main(t.Context(), []string{"run", "--help"}, strings.NewReader(""), &out, &out); code != 0 {
		t.Fatalf("run --help exited %d: %s", code, out.String())
	}
	for _, want := range []string{"--id", "--name=value", "--persistent-memory", "--host", "--local", "RUNAGENT_API_KEY", "Example"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("run --help lacks %q", want)
		}
	}
}

// TestServeRefusesPasswordInArgv: a Redis password on the command line is
// refused before anything starts; the message says where to put it and
// does not repeat it.
func TestServeRefusesPasswordInArgv(t *testing.T) {
	var out strings.Builder
	code := Main(t.Context(), []string{"serve", "--data-dir", t.TempDir(), "--redis-url", "redis://:hunter2@127.0.0.1:1/0"}, strings.NewReader(""), &out, &out)
	if code == 0 || !strings.Contains(out.String(), "--redis-url-file") || strings.Contains(out.String(), "hunter2") {
		t.Errorf("serve with a password in argv: exit %d\n%s", code, out.String())
	}
}

// TestServeFlagDefaults: serve's flags default to what the server would
// fill in for a zero setting, so --help shows the values in force and
// --print-config without flags prints the server's defaults (with the
// retention serve passes, DefaultRetention).
func TestServeFlagDefaults(t *testing.T) {
	for _, env := range []string{"RUNAGENT_ADDR", "RUNAGENT_AUTH", "RUNAGENT_SANDBOX", "RUNAGENT_PYTHON", "RUNAGENT_REDIS_URL",
		"RUNAGENT_REDIS_URL_FILE", "RUNAGENT_ALERT_WEBHOOK_SECRET_FILE", server.MasterKeyFileEnv, server.MasterPassphraseEnv,
		server.MasterPassphraseFileEnv, server.BootstrapKeyEnv} {
		t.Setenv(env, "")
	}
	dir := t.TempDir()
	var out, errs strings.Builder
	if code := Main(t.Context(), []string{"serve", "--print-config", "--data-dir", dir}, strings.NewReader(""), &out, &errs); code != 0 {
		t.Fatalf("serve --print-config exited %d: %s", code, errs.String())
	}
	var got, want map[string]any
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(server.Config{DataDir: dir, AgentDirs: []string{}, Retention: server.DefaultRetention}.Effective())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("serve --print-config without flags differs from the server's defaults (-defaults +flags):\n%s", diff)
	}
}

// TestServePythonFlag: --python and $RUNAGENT_PYTHON take one path or a
// list of name=path entries, which --print-config shows; a malformed one
// is refused before anything starts.
func TestServePythonFlag(t *testing.T) {
	printed := func(t *testing.T, args ...string) (map[string]any, string, int) {
		t.Helper()
		var out, errs strings.Builder
		code := Main(t.Context(), append([]string{"serve", "--print-config", "--data-dir", t.TempDir()}, args...), strings.NewReader(""), &out, &errs)
		var m map[string]any
		if code == 0 {
			if err := json.Unmarshal([]byte(out.String()), &m); err != nil {
				t.Fatal(err)
			}
		}
		return m, errs.String(), code
	}
	t.Setenv("RUNAGENT_PYTHON", "")
	m, errs, code := printed(t, "--python", "3.11=/usr/bin/python3.11, python3.12=/opt/py/bin/python3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if diff := cmp.Diff([]any{"3.11=/usr/bin/python3.11", "3.12=/opt/py/bin/python3"}, m["python"]); diff != "" {
		t.Errorf("python (-want +got):\n%s", diff)
	}
	t.Setenv("RUNAGENT_PYTHON", "/usr/bin/python3,3.12=/opt/py/bin/python3")
	if m, errs, code = printed(t); code != 0 {
		t.Fatalf("$RUNAGENT_PYTHON: exit %d: %s", code, errs)
	}
	if diff := cmp.Diff([]any{"/usr/bin/python3", "3.12=/opt/py/bin/python3"}, m["python"]); diff != "" {
		t.Errorf("python from $RUNAGENT_PYTHON (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"3.12=", "latest=/usr/bin/python3", "3.12=/a,3.12=/b", "/a,,/b"} {
		if _, errs, code := printed(t, "--python", bad); code == 0 || !strings.Contains(errs, "--python: ") {
			t.Errorf("--python %q: exit %d, stderr %q; want it refused", bad, code, errs)
		}
	}
}

// TestPrintFailureDetails: an agent failure's details reach the person as
// exception type, limits, traceback and the invocation to look up.
func TestPrintFailureDetails(t *testing.T) {
	var out strings.Builder
	printFailureDetails(&out, &client.Error{Code: "AGENT_ERROR", Message: "boom", InvocationID: "inv-1",
		Details: json.RawMessage(`{"type":"ValueError","traceback":"Traceback (most recent call last):\n  File \"main.py\"\nValueError: boom\n","exit_code":null,"limits_hit":["memory limit (OOM kill)"]}`)})
	want := "exception: ValueError\nlimits hit: memory limit (OOM kill)\nTraceback (most recent call last):\n  File \"main.py\"\nValueError: boom\ninvocation: inv-1 (runagent db invocation inv-1 shows its record)\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestLocalFindsTheRegisteredAddress: --local calls where RunAgent's
// local registry says the agent is served (a server that moved off the
// default port records where it went), and the default otherwise.
func TestLocalFindsTheRegisteredAddress(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(localreg.DirEnv, dir)
	if got := localAddr("a1"); got != defaultAddr {
		t.Errorf("without a registry: %s, want %s", got, defaultAddr)
	}
	r, err := localreg.Open(t.Context(), filepath.Join(dir, localreg.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Register(t.Context(), "127.0.0.1", 8461, []localreg.Agent{{ID: "a1", Name: "one"}, {ID: "a2", Name: "two"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(t.Context(), "127.0.0.1", 8461, []string{"a2"}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"a1": "127.0.0.1:8461", "a2": defaultAddr, "unknown": defaultAddr} {
		if got := localAddr(id); got != want {
			t.Errorf("localAddr(%s) = %s, want %s", id, got, want)
		}
	}
}

// TestServeSessionFlags: --session-idle and --session-max reach the
// configuration (--print-config shows them); lifetimes the console must
// not run with are refused before anything starts, naming the flag.
func TestServeSessionFlags(t *testing.T) {
	tests := []struct {
		args      []string
		idle, max string // printed; "" when refused
		refusal   string
	}{
		{nil, "30m0s", "12h0m0s", ""},
		{[]string{"--session-idle", "5m", "--session-max", "1h"}, "5m0s", "1h0m0s", ""},
		{[]string{"--session-idle", "2h", "--session-max", "2h"}, "2h0m0s", "2h0m0s", ""},
		{[]string{"--session-max", "720h"}, "30m0s", "720h0m0s", ""},
		{[]string{"--session-idle", "-1s"}, "", "", "--session-idle -1s: must be positive"},
		{[]string{"--session-idle", "2h", "--session-max", "1h"}, "", "", "--session-max 1h0m0s is shorter than --session-idle 2h0m0s"},
		{[]string{"--session-max", "721h"}, "", "", "--session-max 721h0m0s: at most 720h0m0s"},
		{[]string{"--session-max", "-1h"}, "", "", "--session-max -1h0m0s is shorter than --session-idle"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errs strings.Builder
			code := Main(t.Context(), append([]string{"serve", "--print-config", "--data-dir", t.TempDir()}, tt.args...), strings.NewReader(""), &out, &errs)
			if tt.refusal != "" {
				if code == 0 || !strings.Contains(errs.String(), tt.refusal) {
					t.Fatalf("exit %d, stderr %q; want it refused with %q", code, errs.String(), tt.refusal)
				}
				return
			}
			var m map[string]any
			if code != 0 || json.Unmarshal([]byte(out.String()), &m) != nil {
				t.Fatalf("exit %d: %s %s", code, errs.String(), out.String())
			}
			if m["session_idle"] != tt.idle || m["session_max"] != tt.max {
				t.Errorf("session_idle %v, session_max %v; want %s, %s", m["session_idle"], m["session_max"], tt.idle, tt.max)
			}
		})
	}
}
