//go:build linux

package process

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// writerAgent writes beside its code: a new SQLite database, a changed
// file, a file in a folder of the code, a removed file.
const writerAgent = `import os, sqlite3
def write():
    db = sqlite3.connect("memory.sqlite")
    db.execute("create table if not exists m (v text)")
    db.execute("insert into m values ('remembered')")
    db.commit()
    n = db.execute("select count(*) from m").fetchone()[0]
    db.close()
    with open("notes.txt", "a") as f:
        f.write("appended\n")
    with open("data/new.json", "w") as f:
        f.write("{}")
    os.remove("data/old.json")
    return {"rows": n, "cwd": os.getcwd(), "notes": open("notes.txt").read(), "data": sorted(os.listdir("data"))}
`

// TestWritableCopy: the process backend runs a copy of the agent's code,
// so the agent writes beside its files without changing the host's, and
// the copy goes with the sandbox.
func TestWritableCopy(t *testing.T) {
	files := map[string]string{"main.py": writerAgent, "notes.txt": "shipped\n", "data/old.json": "[]"}
	a := startAgent(t, files, refs("write"), options{})
	if err := os.Symlink("notes.txt", filepath.Join(a.hostDir, "link")); err != nil {
		t.Fatal(err)
	}
	before := sandboxtest.Tree(t, a.hostDir)
	if a.dir == a.hostDir || !filepath.IsAbs(a.dir) {
		t.Fatalf("the guest's agent directory is %q, want an absolute copy of %q", a.dir, a.hostDir)
	}
	o := a.run(t, call{tag: "write"})
	if o.err != nil {
		t.Fatalf("write: %v", o.err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(o.result), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"rows": float64(1), "cwd": a.dir, "notes": "shipped\nappended\n", "data": []any{"new.json"}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("write (-got +want):\n%s", diff)
	}
	a.sb.Wait()
	if diff := cmp.Diff(sandboxtest.Tree(t, a.hostDir), before); diff != "" {
		t.Errorf("the host's agent directory changed (-after +before):\n%s", diff)
	}
	if _, err := os.Stat(a.dir); !os.IsNotExist(err) {
		t.Errorf("the copy %s outlived the sandbox (%v)", a.dir, err)
	}
}

// TestEnvAndOutDirs: the process backend shows the environment and the
// output directory at their host paths.
func TestEnvAndOutDirs(t *testing.T) {
	env := t.TempDir()
	writeFiles(t, env, map[string]string{"site-packages/envpkg/__init__.py": "VALUE = 'env'\n"})
	out := t.TempDir()
	const src = `import os, envpkg
def f():
    d = os.environ["RUNAGENT_OUT_DIR"]
    with open(os.path.join(d, "result.txt"), "w") as f:
        f.write("written")
    return [envpkg.VALUE, d]
`
	a := startAgent(t, map[string]string{"main.py": src}, refs("f"), options{envDir: env, outDir: out})
	o := a.run(t, call{tag: "f"})
	if want := fmt.Sprintf(`["env",%q]`, out); o.err != nil || o.result != want {
		t.Fatalf("f = %s, %v; want %s", o.result, o.err, want)
	}
	if b, err := os.ReadFile(filepath.Join(out, "result.txt")); err != nil || string(b) != "written" {
		t.Errorf("the output file on the host: %q, %v", b, err)
	}
}

func TestOutDirMissing(t *testing.T) {
	e := mustEnv(t)
	sb, err := e.backend.Start(context.Background(), sandbox.Spec{
		AgentDir: t.TempDir(), ShimPath: e.shim, Python: e.python,
		OutDir: filepath.Join(t.TempDir(), "absent"),
	})
	if err == nil {
		sb.Kill()
		sb.Wait()
		t.Fatal("Start with a missing output directory succeeded")
	}
	if !strings.Contains(err.Error(), "output directory") {
		t.Errorf("Start: %v, want an error about the output directory", err)
	}
}

// mountAgent reads and writes files by paths relative to its working
// directory or its home.
const mountAgent = `import errno, os
def _path(p):
    return os.path.join(os.environ["HOME"], p[2:]) if p.startswith("~/") else p
def write(path, text):
    try:
        with open(_path(path), "w") as f:
            f.write(text)
        return "ok"
    except OSError as e:
        return "error " + errno.errorcode.get(e.errno, str(e.errno))
def read(path):
    try:
        with open(_path(path)) as f:
            return f.read()
    except OSError as e:
        return "error " + errno.errorcode.get(e.errno, str(e.errno))
`

// TestMounts: a Mount's guest path in the copy of the code (or the home
// directory) leads to its host directory, for the sandboxes given it.
func TestMounts(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	run := func(tag, args string, mounts ...sandbox.Mount) string {
		t.Helper()
		ag := startAgent(t, map[string]string{"main.py": mountAgent, "memory/shipped.txt": "in the code"}, refs("write", "read"), options{mounts: mounts})
		o := ag.run(t, call{tag: tag, args: args})
		if o.err != nil {
			t.Fatalf("%s%s: %v", tag, args, o.err)
		}
		ag.sb.Kill()
		ag.sb.Wait()
		var s string
		if err := json.Unmarshal([]byte(o.result), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	mem := sandbox.Mount{Host: a, Guest: "/agent/memory"}
	if got := run("write", `["memory/note.txt", "from run 1"]`, mem, sandbox.Mount{Host: b, Guest: "/tmp/cache/x"}); got != "ok" {
		t.Fatalf("run 1 writing: %s", got)
	}
	if data, err := os.ReadFile(filepath.Join(a, "note.txt")); err != nil || string(data) != "from run 1" {
		t.Fatalf("the host directory holds %q (%v), want run 1's note", data, err)
	}
	if _, err := os.Stat(filepath.Join(a, "shipped.txt")); err == nil {
		t.Errorf("the code's memory/ was copied into the host directory")
	}
	if got := run("read", `["memory/note.txt"]`, mem); got != "from run 1" {
		t.Errorf("run 2 reads %q, want run 1's note", got)
	}
	if got := run("read", `["memory/note.txt"]`); got != "error ENOENT" {
		t.Errorf("a run without the mount reads %q, want ENOENT", got)
	}
	if got := run("read", `["memory/note.txt"]`, sandbox.Mount{Host: b, Guest: "/agent/memory"}); got != "error ENOENT" {
		t.Errorf("a run with another directory reads %q, want ENOENT", got)
	}
	if got := run("write", `["~/cache/x/home.txt", "in the home"]`, sandbox.Mount{Host: b, Guest: "/tmp/cache/x"}); got != "ok" {
		t.Fatalf("writing below the home: %s", got)
	}
	if data, _ := os.ReadFile(filepath.Join(b, "home.txt")); string(data) != "in the home" {
		t.Errorf("a mount below the home: the host directory holds %q", data)
	}
	// Writes outside the mount vanish with the sandbox; the host
	// directory outlives the link to it.
	if got := run("write", `["outside.txt", "gone"]`, mem); got != "ok" {
		t.Fatal(got)
	}
	if got := run("read", `["outside.txt"]`, mem); got != "error ENOENT" {
		t.Errorf("a write beside the mount outlived its sandbox: %q", got)
	}
	if ents, _ := os.ReadDir(a); len(ents) != 1 {
		t.Errorf("the host directory holds %d entries after the runs, want the note only", len(ents))
	}
}

// TestMountsChecked: the process backend refuses what CheckMounts does.
func TestMountsChecked(t *testing.T) {
	e := mustEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.py": mountAgent})
	_, err := e.backend.Start(context.Background(), sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: e.python,
		Mounts: []sandbox.Mount{{Host: t.TempDir(), Guest: "/agent/../etc"}}})
	if err == nil || !strings.Contains(err.Error(), "not clean") {
		t.Errorf("Start with a mount at /agent/../etc: %v, want refused", err)
	}
}
