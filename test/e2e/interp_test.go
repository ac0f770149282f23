package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/bundle"
)

// debianPython is the interpreter the linux sandbox can run (a system
// directory); pyenvPython a second one, of another minor version, which
// lives under /root and so runs only with the process backend.
const (
	debianPython = "/usr/bin/python3"
	pyenvPython  = "/root/.pyenv/versions/3.12.1/bin/python3.12"
)

// versionAgent writes an agent whose entrypoint reports sys.version,
// with extra top-level config fields (JSON members, "" for none).
func versionAgent(t *testing.T, id, extra string) string {
	t.Helper()
	dir := t.TempDir()
	if extra != "" {
		extra = ",\n  " + extra
	}
	cfg := fmt.Sprintf(`{"agent_name": "py-%s", "framework": "default", "agent_id": %q,
  "agent_architecture": {"entrypoints": [{"file": "main.py", "module": "version", "tag": "version"}]}%s}`, id[:4], id, extra)
	for name, content := range map[string]string{
		"runagent.config.json": cfg,
		"main.py":              "import sys\ndef version():\n    return sys.version\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// deployPackage posts dir, packaged, to the deploy route.
func (s *server) deployPackage(t *testing.T, dir string) (int, *envelope) {
	t.Helper()
	pkg, _, err := bundle.Pack(dir, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return s.do(t, http.MethodPost, "/api/v1/agents", "application/gzip", bytes.NewReader(pkg))
}

// callVersion runs id's version entrypoint and returns sys.version.
func (s *server) callVersion(t *testing.T, id string) string {
	t.Helper()
	status, env := s.do(t, http.MethodPost, "/api/v1/agents/"+id+"/run", "application/json", strings.NewReader(`{"entrypoint_tag": "version"}`))
	if status != http.StatusOK || !env.Success {
		t.Fatalf("run %s: status %d error %+v", id, status, env.Error)
	}
	var data string
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatalf("run %s: data %s is not a structured string", id, env.Data)
	}
	_, v := decodeStructured(t, data)
	str, _ := v.(string)
	return str
}

// interpreterVersion is sys.version of python.
func interpreterVersion(t *testing.T, python string) string {
	t.Helper()
	out, err := exec.Command(python, "-I", "-c", "import sys; print(sys.version)").Output()
	if err != nil {
		t.Fatalf("%s: %v", python, err)
	}
	return strings.TrimSpace(string(out))
}

// TestInterpretersE2E: a server with two interpreters runs each agent
// with the one its config names (runtime.python, or RunAgent's
// metadata.runtime), the first for an agent naming none, and refuses a
// deploy naming one it lacks with the list of those it has. The pyenv
// build lives under /root, which the linux sandbox does not show its
// guests, so the two-interpreter server uses the process backend; the
// linux sandbox is tested with Debian's interpreter, and refusing the
// pyenv one at start.
func TestInterpretersE2E(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		t.Fatalf("Debian's %s is missing (scripts/deps.sh installs it): %v", debianPython, err)
	}
	v311 := interpreterVersion(t, debianPython)
	if !strings.HasPrefix(v311, "3.11.") {
		t.Fatalf("Debian's interpreter is %q; the test expects 3.11", v311)
	}
	// A second interpreter of another minor version: Debian 12 packages
	// only 3.11, so only a machine with a pyenv build has one.
	_, noSecond := os.Stat(pyenvPython)
	var v312 string
	if noSecond == nil {
		if v312 = interpreterVersion(t, pyenvPython); !strings.HasPrefix(v312, "3.12.") {
			t.Fatalf("the second interpreter is %q; the test expects 3.12", v312)
		}
	}
	two := "3.11=" + debianPython + ",python3.12=" + pyenvPython

	t.Run("process backend, two interpreters", func(t *testing.T) {
		if noSecond != nil {
			t.Skipf("no second Python on this machine (%s; Debian 12 packages only 3.11): the choice between two cannot be run", pyenvPython)
		}
		s := startServer(t, "--sandbox", "process", "--python", two)
		agents := []struct {
			name, extra, want string
		}{
			{"runtime.python 3.12", `"runtime": {"python": "3.12"}`, v312},
			{"metadata.runtime python3.11", `"metadata": {"runtime": "python3.11"}`, v311},
			{"metadata.runtime py3.12", `"metadata": {"runtime": "py3.12", "region": "eu"}`, v312},
			{"none: the default", "", v311},
			{"metadata.runtime python: the default", `"metadata": {"runtime": "python"}`, v311},
		}
		for _, a := range agents {
			id := uuid.NewString()
			if status, env := s.deployPackage(t, versionAgent(t, id, a.extra)); status != http.StatusOK && status != http.StatusCreated {
				t.Fatalf("%s: deploy: status %d error %+v", a.name, status, env.Error)
			}
			got := s.callVersion(t, id)
			t.Logf("%s: %s", a.name, got)
			if got != a.want {
				t.Errorf("%s: sys.version %q, want %q", a.name, got, a.want)
			}
		}
		// Called again: the warm pool keeps each agent's interpreter.
		id := uuid.NewString()
		s.deployPackage(t, versionAgent(t, id, `"runtime": {"python": "3.12"}`))
		for range 3 {
			if got := s.callVersion(t, id); got != v312 {
				t.Errorf("3.12 agent, called again: sys.version %q", got)
			}
		}

		status, env := s.deployPackage(t, versionAgent(t, uuid.NewString(), `"runtime": {"python": "3.13"}`))
		if status != http.StatusBadRequest || env.Error == nil || env.Error.Code != "VALIDATION_ERROR" ||
			!strings.Contains(env.Error.Message, "the agent asks for Python 3.13; this server has 3.11 (default), 3.12") {
			t.Errorf("deploy asking for 3.13: status %d error %+v; want 400 VALIDATION_ERROR listing 3.11 (default), 3.12", status, env.Error)
		}
		// The CLI says the same.
		_, errOut, err := cliResult(s, "deploy", versionAgent(t, uuid.NewString(), `"metadata": {"runtime": "python3.10"}`))
		if err == nil || !strings.Contains(errOut, "asks for Python 3.10; this server has 3.11 (default), 3.12") {
			t.Errorf("runagent deploy asking for 3.10: %v\n%s", err, errOut)
		}
	})

	t.Run("linux sandbox", func(t *testing.T) {
		needSandbox(t)
		// The pyenv build is not under a system directory: refused at start.
		if noSecond == nil {
			out, err := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--python", two).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Python 3.12 cannot run in the linux sandbox") {
				t.Errorf("serve --python %s with the linux sandbox: %v\n%s", two, err, out)
			}
		}
		s := startServer(t, "--python", "3.11="+debianPython)
		id := uuid.NewString()
		if status, env := s.deployPackage(t, versionAgent(t, id, `"runtime": {"python": "3.11"}`)); status != http.StatusOK && status != http.StatusCreated {
			t.Fatalf("deploy: status %d error %+v", status, env.Error)
		}
		if got := s.callVersion(t, id); got != v311 {
			t.Errorf("sys.version %q, want %q", got, v311)
		}
		status, env := s.deployPackage(t, versionAgent(t, uuid.NewString(), `"runtime": {"python": "3.12"}`))
		if status != http.StatusBadRequest || env.Error == nil || !strings.Contains(env.Error.Message, "asks for Python 3.12; this server has 3.11 (default)") {
			t.Errorf("deploy asking for 3.12: status %d error %+v", status, env.Error)
		}
	})
}
