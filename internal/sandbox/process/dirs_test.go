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
