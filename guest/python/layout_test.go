//go:build linux

package python

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Tests of how the shim loads an agent's project: entrypoint files as
// modules of the project's package (relative imports), the project root
// and each entrypoint's folder on sys.path, and the agent's environment
// (init.env_dir) ahead of the system's site-packages.

// ref is one entrypoint of an init frame.
type ref struct{ tag, file, module string }

// loaded is a shim that has answered hello for an agent.
type loaded struct {
	s     *shimSession
	dir   string
	hello map[string]any
	calls int
}

// loadAgent starts the shim on the files (path → source) and sends init
// with refs and envDir ("": none).
func loadAgent(t *testing.T, files map[string]string, envDir string, refs ...ref) *loaded {
	t.Helper()
	dir := writeTree(t, files)
	s := startShim(t, sessionOptions{})
	var eps []map[string]string
	for _, r := range refs {
		eps = append(eps, map[string]string{"tag": r.tag, "file": r.file, "module": r.module})
	}
	init := map[string]any{"type": "init", "agent_dir": dir, "entrypoints": eps}
	if envDir != "" {
		init["env_dir"] = envDir
	}
	s.send(init)
	hello := s.recv()
	if hello["type"] != "hello" {
		t.Fatalf("answer to init: %v; stderr:\n%s", hello, s.stderr.String())
	}
	return &loaded{s: s, dir: dir, hello: hello}
}

// status returns the hello's entry for tag.
func (l *loaded) status(t *testing.T, tag string) map[string]any {
	t.Helper()
	for _, e := range l.hello["entrypoints"].([]any) {
		if e := e.(map[string]any); e["tag"] == tag {
			return e
		}
	}
	t.Fatalf("hello %v lacks %s", l.hello, tag)
	return nil
}

// call invokes tag (keeping the guest for the next call) and returns the
// result's value as JSON, or fails the test.
func (l *loaded) call(t *testing.T, tag string) string {
	t.Helper()
	if st := l.status(t, tag); st["ok"] != true {
		t.Fatalf("entrypoint %s failed to load: %v", tag, st["error"])
	}
	l.calls++
	id := fmt.Sprint("c", l.calls)
	l.s.send(map[string]any{"type": "invoke", "id": id, "tag": tag, "keep": true})
	frame := l.s.recv()
	if frame["type"] != "result" || frame["id"] != id {
		t.Fatalf("%s: %v; stderr:\n%s", tag, frame, l.s.stderr.String())
	}
	b, err := json.Marshal(frame["value"])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRelativeImports(t *testing.T) {
	files := map[string]string{
		// RunAgent's default template: main.py imports its sibling
		// relatively, with no __init__.py anywhere.
		"main.py":        "from .email_agent import Client\nfrom . import email_agent\ndef respond(x=''):\n    return [Client().reply(), email_agent.__name__, __name__]\n",
		"email_agent.py": "class Client:\n    def reply(self):\n        return 'mock reply'\n",
		// A subfolder, without __init__.py, importing from itself and
		// from its parent folder.
		"src/agents/chat.py":  "from .tools import tool\nfrom ..common import BASE\ndef chat():\n    return tool(BASE)\n",
		"src/agents/tools.py": "def tool(x):\n    return x + ' via tools'\n",
		"src/common.py":       "BASE = 'common'\n",
		// A folder name that is not an identifier.
		"v1.2/dash-ed.py": "from .util import V\ndef f():\n    return V\n",
		"v1.2/util.py":    "V = 'dotted folder'\n",
		// Going above the project is an error, as in any package.
		"beyond.py": "from .. import nothing\ndef f():\n    pass\n",
	}
	l := loadAgent(t, files, "",
		ref{"root", "main.py", "respond"},
		ref{"sub", "src/agents/chat.py", "chat"},
		ref{"dotted", "v1.2/dash-ed.py", "f"},
		ref{"beyond", "beyond.py", "f"},
	)
	for _, tt := range []struct{ tag, want string }{
		{"root", `["mock reply","_runagent_agent.email_agent","_runagent_agent.main"]`},
		{"sub", `"common via tools"`},
		{"dotted", `"dotted folder"`},
	} {
		if got := l.call(t, tt.tag); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.tag, got, tt.want)
		}
	}
	st := l.status(t, "beyond")
	e, _ := st["error"].(map[string]any)
	if st["ok"] != false || e["type"] != "ImportError" || !strings.Contains(fmt.Sprint(e["message"]), "beyond top-level package") ||
		!strings.HasPrefix(fmt.Sprint(e["traceback"]), "Traceback (most recent call last):\n  File \"beyond.py\", line 1") {
		t.Errorf("relative import above the project: %v, want an ImportError from beyond.py", st)
	}
}

func TestSysPath(t *testing.T) {
	files := map[string]string{
		// src/main.py imports its sibling as RunAgent allows: the
		// entrypoint's folder is on sys.path.
		"src/main.py":   "import helper\nimport shared\nimport agent\ndef f():\n    return [helper.NAME, shared.NAME, agent.NAME]\n",
		"src/helper.py": "NAME = 'sibling'\n",
		"shared.py":     "NAME = 'root module'\n",
		// A module called agent is not hidden by the project's package.
		"agent.py": "NAME = 'agent module'\n",
		"paths.py": "import sys\ndef f():\n    return sys.path\n",
	}
	l := loadAgent(t, files, "", ref{"main", "src/main.py", "f"}, ref{"paths", "paths.py", "f"})
	if got, want := l.call(t, "main"), `["sibling","root module","agent module"]`; got != want {
		t.Errorf("main = %s, want %s", got, want)
	}
	var path []string
	if err := json.Unmarshal([]byte(l.call(t, "paths")), &path); err != nil {
		t.Fatal(err)
	}
	if len(path) < 3 || path[0] != l.dir || path[1] != filepath.Join(l.dir, "src") || slices.Contains(path[2:], l.dir) {
		t.Errorf("sys.path = %q, want the project root, then src, then the interpreter's", path)
	}
}

func TestPackageInit(t *testing.T) {
	files := map[string]string{
		// The project root is a package: its __init__.py runs once, first,
		// and may import the entrypoint's module itself.
		"__init__.py":     "print('root init')\nVERSION = '1.0'\nfrom . import main\n",
		"main.py":         "from . import VERSION\nprint('loading main')\ndef f():\n    return VERSION\n",
		"pkg/__init__.py": "print('pkg init')\nfrom .impl import run\n",
		"pkg/impl.py":     "def run():\n    return 'pkg run'\n",
		"pkg/other.py":    "from . import run\ndef g():\n    return run()\n",
	}
	l := loadAgent(t, files, "",
		ref{"main", "main.py", "f"},
		ref{"pkg", "pkg/__init__.py", "run"},
		ref{"other", "pkg/other.py", "g"},
		ref{"root", "__init__.py", "main.f"},
	)
	for _, tt := range []struct{ tag, want string }{
		{"main", `"1.0"`}, {"pkg", `"pkg run"`}, {"other", `"pkg run"`}, {"root", `"1.0"`},
	} {
		if got := l.call(t, tt.tag); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.tag, got, tt.want)
		}
	}
	l.s.host.Close()
	l.s.cmd.Wait()
	logs := l.s.stderr.String()
	for _, line := range []string{"root init", "loading main", "pkg init"} {
		if n := strings.Count(logs, line); n != 1 {
			t.Errorf("%q printed %d times, want once; stderr:\n%s", line, n, logs)
		}
	}
}

func TestImportedOnce(t *testing.T) {
	files := map[string]string{
		"main.py":   "import helper\nprint('loading main')\ndef f():\n    return helper.g()\n",
		"helper.py": "print('loading helper')\ndef g():\n    return 'helper'\n",
	}
	l := loadAgent(t, files, "", ref{"main", "main.py", "f"}, ref{"helper", "helper.py", "g"}, ref{"again", "main.py", "f"})
	for _, tag := range []string{"main", "helper", "again"} {
		if got := l.call(t, tag); got != `"helper"` {
			t.Errorf("%s = %s", tag, got)
		}
	}
	l.s.host.Close()
	l.s.cmd.Wait()
	for _, line := range []string{"loading main", "loading helper"} {
		if n := strings.Count(l.s.stderr.String(), line); n != 1 {
			t.Errorf("%q printed %d times, want once", line, n)
		}
	}
}

func TestStdlibNames(t *testing.T) {
	// Entrypoint files named like modules of the standard library that
	// the interpreter has imported already (os, io, site) or not (string)
	// are the agent's own, and the standard library's stay what they are
	// for the shim and the agent. (An absolute "import string" still
	// finds the agent's string.py, the project being first on sys.path,
	// as for any Python script.)
	files := map[string]string{
		"os.py":         "import os as real\ndef f():\n    return ['agent os', real.sep, real.__name__]\n",
		"io.py":         "import sys\ndef f():\n    print('stdout works')\n    return ['agent io', sys.modules['io'].__file__ != __file__]\n",
		"string.py":     "def f():\n    return 'agent string'\n",
		"tools/site.py": "import site\ndef f():\n    return ['agent site', callable(getattr(site, 'addsitedir', None))]\n",
	}
	l := loadAgent(t, files, "", ref{"os", "os.py", "f"}, ref{"io", "io.py", "f"}, ref{"string", "string.py", "f"}, ref{"site", "tools/site.py", "f"})
	for _, tt := range []struct{ tag, want string }{
		{"os", `["agent os","/","os"]`},
		{"io", `["agent io",true]`},
		{"string", `"agent string"`},
		{"site", `["agent site",true]`},
	} {
		if got := l.call(t, tt.tag); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.tag, got, tt.want)
		}
	}
}

func TestEnvironment(t *testing.T) {
	env := writeTree(t, map[string]string{
		"site-packages/envpkg/__init__.py": "VALUE = 'from the environment'\n",
		"site-packages/extra.pth":          "../extra\n",
		"extra/viapth.py":                  "VALUE = 'via a .pth file'\n",
		"bin/tool":                         "#!/bin/sh\n",
	})
	files := map[string]string{
		"src/main.py": "import envpkg, viapth\ndef f():\n    return [envpkg.VALUE, viapth.VALUE]\n",
		"paths.py":    "import sys, site\ndef f():\n    return {'path': sys.path, 'system': site.getsitepackages()}\n",
	}
	l := loadAgent(t, files, env, ref{"main", "src/main.py", "f"}, ref{"paths", "paths.py", "f"})
	if got, want := l.call(t, "main"), `["from the environment","via a .pth file"]`; got != want {
		t.Errorf("main = %s, want %s", got, want)
	}
	var p struct {
		Path   []string `json:"path"`
		System []string `json:"system"`
	}
	if err := json.Unmarshal([]byte(l.call(t, "paths")), &p); err != nil {
		t.Fatal(err)
	}
	at := func(dir string) int { return slices.Index(p.Path, dir) }
	site, extra := at(filepath.Join(env, "site-packages")), at(filepath.Join(env, "extra"))
	stdlib := slices.IndexFunc(p.Path, func(s string) bool { return strings.HasSuffix(s, "/lib-dynload") })
	system := slices.IndexFunc(p.Path, func(s string) bool { return slices.Contains(p.System, s) })
	if system < 0 {
		system = len(p.Path)
	}
	if at(l.dir) != 0 || at(filepath.Join(l.dir, "src")) != 1 || stdlib < 2 || site <= stdlib || extra != site+1 || system <= extra {
		t.Errorf("sys.path = %q (system site-packages %q), want the project, its entrypoint's folder, the standard library, the environment and its .pth path, then the system's site-packages", p.Path, p.System)
	}
}

func TestEnvironmentMissing(t *testing.T) {
	l := loadAgent(t, map[string]string{"main.py": "def f():\n    return 1\n"}, filepath.Join(t.TempDir(), "absent"), ref{"f", "main.py", "f"})
	st := l.status(t, "f")
	e, _ := st["error"].(map[string]any)
	if st["ok"] != false || e["code"] != "ENTRYPOINT_ERROR" || e["type"] != "FileNotFoundError" || !strings.Contains(fmt.Sprint(e["message"]), "environment") {
		t.Errorf("with a missing environment: %v, want ENTRYPOINT_ERROR FileNotFoundError naming the environment", st)
	}
}

func TestBadEnvDir(t *testing.T) {
	s := startShim(t, sessionOptions{})
	s.send(map[string]any{"type": "init", "agent_dir": t.TempDir(), "entrypoints": []any{}, "env_dir": 7})
	frame := s.recv()
	if e, _ := frame["error"].(map[string]any); frame["type"] != "error" || e["code"] != "PROTOCOL_ERROR" || !strings.Contains(fmt.Sprint(e["message"]), "env_dir") {
		t.Errorf("init with a numeric env_dir: %v, want a PROTOCOL_ERROR about env_dir", frame)
	}
}
