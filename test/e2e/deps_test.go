package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/pyenv/pyenvtest"
)

// depsAgent writes an agent project: main.py is code, requirements.txt
// reqs ("" for none), and more files (name → content).
func depsAgent(t *testing.T, id, code, reqs string, more map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"agent_name": "deps-%s", "framework": "default", "agent_id": %q,
  "agent_architecture": {"entrypoints": [{"file": "main.py", "module": "versions", "tag": "versions"}]},
  "auth_settings": {"type": "api_key"}}`, id[:4], id)
	files := map[string]string{"runagent.config.json": cfg, "main.py": code}
	if reqs != "" {
		files["requirements.txt"] = reqs
	}
	for k, v := range more {
		files[k] = v
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func pureDist(name, version string, requires ...string) pyenvtest.Dist {
	return pyenvtest.Dist{Name: name, Version: version, Requires: requires,
		Modules: map[string]string{name + "/__init__.py": fmt.Sprintf("VERSION = %q\n", version)}}
}

var envRE = regexp.MustCompile(`environment: ([0-9a-f]{12}) \((built|cached)\)`)

// TestDependenciesE2E: agents' requirements are installed from a package
// index on loopback, in the linux sandbox: two agents with two versions
// of one package side by side, a C extension compiled by gcc imported
// inside the sandbox, a dependency pulled in, a redeploy that reuses the
// environment, a build that fails and an agent that does not import
// (both refused, the previous version serving on), and a hostile sdist
// whose build cannot reach the host nor fill its disk.
func TestDependenciesE2E(t *testing.T) {
	needSandbox(t)
	if _, err := os.Stat(pyenvtest.Python); err != nil {
		t.Fatalf("Debian's %s is missing (scripts/deps.sh installs it)", pyenvtest.Python)
	}
	// A loopback port the hostile build tries to reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	data := t.TempDir()
	hostile := pyenvtest.BuildSdist(t, "", pyenvtest.Dist{Name: "hostilex", Version: "1.0",
		Modules: map[string]string{"hostilex/__init__.py": "VERSION = '1.0'\n"},
		SetupPy: fmt.Sprintf(`
import os, socket
def fill():
    # 6 GiB in files of 1 GiB (each under the build's file size limit).
    out = os.environ.get("RUNAGENT_OUT_DIR", "/out")
    for i in range(6):
        fd = os.open(os.path.join(out, "big%%d" %% i), os.O_CREAT | os.O_WRONLY)
        os.posix_fallocate(fd, 0, 1 << 30)
        os.close(fd)
for what, act in [
    ("write the host", lambda: open("/etc/runagent-hostile", "w").write("x")),
    ("read the data directory", lambda: open(%q).read()),
    ("reach a loopback port", lambda: socket.create_connection(("127.0.0.1", %d), timeout=3)),
    ("fill the host's disk", fill),
]:
    try:
        act()
        print("HOSTILE-SUCCEEDED: " + what, flush=True)
    except Exception as e:
        print("HOSTILE-REFUSED: %%s: %%s" %% (what, type(e).__name__), flush=True)
# pip shows a build's output only when it fails.
raise SystemExit("hostile build done")
`, filepath.Join(data, "master.key"), ln.Addr().(*net.TCPAddr).Port)})
	ix := pyenvtest.NewIndex(t,
		pyenvtest.BuildWheel(t, "", pureDist("attrsx", "1.0")),
		pyenvtest.BuildWheel(t, "", pureDist("attrsx", "2.0")),
		pyenvtest.BuildWheel(t, "", pureDist("depender", "1.0", "attrsx==2.0")),
		pyenvtest.BuildWheel(t, "", pyenvtest.Dist{Name: "speedups", Version: "1.5",
			Modules:    map[string]string{"speedups/__init__.py": "from ._speedups import add\n"},
			CExtension: &pyenvtest.CExtension{Module: "speedups._speedups"}}),
		hostile)
	s := startServerIn(t, data, "--package-index", ix.URL())

	code := "import attrsx, speedups\ndef versions():\n    return {'attrsx': attrsx.VERSION, 'sum': speedups.add(40, 2)}\n"
	idA, idB := uuid.NewString(), uuid.NewString()
	dirA := depsAgent(t, idA, code, "attrsx==1.0\nspeedups==1.5\n", nil)
	dirB := depsAgent(t, idB, "import attrsx\ndef versions():\n    return {'attrsx': attrsx.VERSION}\n", "depender==1.0\n", nil)

	out, errOut, err := cliResult(s, "deploy", dirA)
	if err != nil || !envRE.MatchString(out) || envRE.FindStringSubmatch(out)[2] != "built" || !strings.Contains(errOut, "building environment") {
		t.Fatalf("deploy A: %v\n%s\n%s", err, out, errOut)
	}
	cli(t, s, "deploy", dirB)
	call := func(id string) map[string]any {
		t.Helper()
		status, env := s.do(t, "POST", "/api/v1/agents/"+id+"/run", "application/json", strings.NewReader(`{"entrypoint_tag": "versions"}`))
		if status != 200 {
			t.Fatalf("run %s: %d %+v", id, status, env.Error)
		}
		var data string
		if err := json.Unmarshal(env.Data, &data); err != nil {
			t.Fatalf("run %s: data %s is not a structured string", id, env.Data)
		}
		_, v := decodeStructured(t, data)
		return v.(map[string]any)
	}
	if v := call(idA); v["attrsx"] != "1.0" || fmt.Sprint(v["sum"]) != "42" {
		t.Errorf("agent A: %v", v)
	}
	if v := call(idB); v["attrsx"] != "2.0" {
		t.Errorf("agent B (attrsx pulled in by depender): %v", v)
	}

	// A redeploy with the same requirements reuses the environment.
	os.WriteFile(filepath.Join(dirA, "main.py"), []byte(code+"# changed\n"), 0o644)
	before := len(ix.Requests())
	out = cli(t, s, "deploy", dirA)
	if m := envRE.FindStringSubmatch(out); m == nil || m[2] != "cached" {
		t.Errorf("redeploy with the same requirements:\n%s", out)
	}
	if n := len(ix.Requests()) - before; n != 0 {
		t.Errorf("a cached redeploy asked the index %d times", n)
	}

	// A build that fails and an agent that does not import are refused;
	// version 2 of A keeps serving.
	os.WriteFile(filepath.Join(dirA, "requirements.txt"), []byte("attrsx==9.9\n"), 0o644)
	if _, errOut, err := cliResult(s, "deploy", dirA); err == nil || !strings.Contains(errOut, "No matching distribution found for attrsx==9.9") || !strings.Contains(errOut, "runagent builds show") {
		t.Errorf("deploy with an unknown requirement: %v\n%s", err, errOut)
	}
	os.WriteFile(filepath.Join(dirA, "requirements.txt"), []byte("attrsx==1.0\nspeedups==1.5\n"), 0o644)
	os.WriteFile(filepath.Join(dirA, "main.py"), []byte("import not_installed_anywhere\ndef versions():\n    return 1\n"), 0o644)
	if _, errOut, err := cliResult(s, "deploy", dirA); err == nil || !strings.Contains(errOut, "does not load") || !strings.Contains(errOut, "not_installed_anywhere") {
		t.Errorf("deploy of an agent that does not import: %v\n%s", err, errOut)
	}
	if v := call(idA); v["attrsx"] != "1.0" {
		t.Errorf("agent A after refused deploys: %v", v)
	}
	builds := cli(t, s, "builds", "list", idA)
	if strings.Count(builds, "failed") != 2 || strings.Count(builds, "succeeded") != 2 {
		t.Errorf("builds of A:\n%s", builds)
	}

	// The hostile sdist's build runs in its sandbox, reaches nothing,
	// and fails (so that pip shows what its setup.py printed).
	dirH := depsAgent(t, uuid.NewString(), "import hostilex\ndef versions():\n    return hostilex.VERSION\n", "hostilex==1.0\n", nil)
	out, errOut, err = cliResult(s, "deploy", dirH)
	logs := out + errOut
	if err == nil {
		t.Errorf("the hostile build succeeded:\n%s", logs)
	}
	if strings.Contains(logs, "HOSTILE-SUCCEEDED") {
		t.Errorf("the hostile build escaped:\n%s", logs)
	}
	if _, err := os.Stat("/etc/runagent-hostile"); err == nil {
		os.Remove("/etc/runagent-hostile")
		t.Error("the hostile build wrote /etc/runagent-hostile on the host")
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the hostile build reached the host's loopback port %d times", n)
	}
	if !strings.Contains(logs, "HOSTILE-REFUSED") {
		t.Errorf("the hostile build's setup.py did not run (the test proves nothing):\n%s", logs)
	}
}
