package pyenv_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/pyenv"
	"github.com/runagent/runagent/internal/pyenv/pyenvtest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/process"
	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

func TestMain(m *testing.M) {
	supervisor.MaybeRun() // this test binary serves the sandboxes' supervisor role
	os.Exit(m.Run())
}

// dist is a pure-Python distribution whose module answers its version.
func dist(name, version string, requires ...string) pyenvtest.Dist {
	return pyenvtest.Dist{Name: name, Version: version, Requires: requires,
		Modules: map[string]string{name + "/__init__.py": "VERSION = " + `"` + version + `"` + "\n"}}
}

// newBuilder returns a builder on backend with indexes.
func newBuilder(t *testing.T, backend sandbox.Backend, indexes []string, findLinks ...string) *pyenv.Builder {
	t.Helper()
	script, err := python.WriteBuild(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := pyenv.NewBuilder(pyenv.Config{Dir: filepath.Join(t.TempDir(), "envs"), Backend: backend, Script: script,
		Indexes: indexes, FindLinks: findLinks})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func interpreter(t *testing.T) pyenv.Interpreter {
	t.Helper()
	in, err := pyenv.Probe(t.Context(), "", pyenvtest.Python)
	if err != nil {
		t.Fatalf("Debian's %s is missing (scripts/deps.sh installs it): %v", pyenvtest.Python, err)
	}
	return in
}

// projectWith writes a project whose requirements.txt is reqs.
func projectWith(t *testing.T, reqs string, wheels ...string) string {
	t.Helper()
	dir := t.TempDir()
	if reqs != "" {
		if err := os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte(reqs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range wheels {
		b, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "wheels"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "wheels", filepath.Base(w)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// importIn imports module with env's site-packages on the path and
// returns what it prints of module.VERSION.
func importIn(t *testing.T, env pyenv.Env, module string) string {
	t.Helper()
	cmd := exec.Command(pyenvtest.Python, "-I", "-c",
		"import site, sys; site.addsitedir(sys.argv[1]); import "+module+" as m; print(m.VERSION)", filepath.Join(env.Dir, "site-packages"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("import %s from the environment: %v\n%s", module, err, out)
	}
	return strings.TrimSpace(string(out))
}

func ensure(t *testing.T, b *pyenv.Builder, project string, in pyenv.Interpreter) (pyenv.Env, error) {
	t.Helper()
	deps, err := pyenv.Read(project)
	if err != nil {
		t.Fatal(err)
	}
	return b.Ensure(t.Context(), "agent-test", project, deps, in, nil)
}

// TestBuildFromIndex builds environments with pip from an index on
// loopback, with the process backend: two versions of one package for
// two projects, a dependency pulled in, a cached second build that asks
// the index nothing, and a build that fails with pip's reason.
func TestBuildFromIndex(t *testing.T) {
	in := interpreter(t)
	ix := pyenvtest.NewIndex(t,
		pyenvtest.BuildWheel(t, "", dist("attrsx", "1.0")),
		pyenvtest.BuildWheel(t, "", dist("attrsx", "2.0")),
		pyenvtest.BuildWheel(t, "", dist("depender", "1.0", "attrsx>=2")))
	b := newBuilder(t, process.New(os.Args[0]), []string{ix.URL()})

	one, err := ensure(t, b, projectWith(t, "attrsx==1.0\n"), in)
	if err != nil {
		t.Fatalf("build attrsx==1.0: %v", err)
	}
	two, err := ensure(t, b, projectWith(t, "depender\n"), in)
	if err != nil {
		t.Fatalf("build depender: %v", err)
	}
	if one.Key == two.Key || one.Cached || two.Cached {
		t.Errorf("two sets: keys %s %s, cached %v %v", one.Key, two.Key, one.Cached, two.Cached)
	}
	if got := importIn(t, one, "attrsx"); got != "1.0" {
		t.Errorf("attrsx in the first environment: %s", got)
	}
	if got := importIn(t, two, "attrsx"); got != "2.0" {
		t.Errorf("attrsx pulled in by depender: %s", got)
	}
	// Sealed: nothing in it is writable.
	filepath.WalkDir(one.Dir, func(p string, d os.DirEntry, err error) error {
		if info, err := d.Info(); err == nil && !d.IsDir() && info.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s is writable (%v)", p, info.Mode())
		}
		return nil
	})

	asked := len(ix.Requests())
	again, err := ensure(t, b, projectWith(t, "attrsx==1.0\n"), in)
	if err != nil || !again.Cached || again.Dir != one.Dir {
		t.Errorf("the same set again: %+v, %v; want the cached environment", again, err)
	}
	if n := len(ix.Requests()); n != asked {
		t.Errorf("a cached build asked the index %d more times", n-asked)
	}

	_, err = ensure(t, b, projectWith(t, "attrsx==9.9\n"), in)
	var be *pyenv.BuildError
	if !errors.As(err, &be) || !strings.Contains(be.Log, "No matching distribution found for attrsx==9.9") {
		t.Fatalf("a build that cannot resolve: %v", err)
	}
	if _, ok := b.Path(pyenv.Key(pyenv.Deps{Lines: []string{"attrsx==9.9"}}, in)); ok {
		t.Error("a failed build was kept")
	}
	if entries, _ := os.ReadDir(filepath.Dir(one.Dir)); len(entries) != 2 {
		t.Errorf("the environments directory holds %d entries, want the 2 built (no staging left)", len(entries))
	}
}

// TestBuildSources: vendored wheels install with no index, a server's
// --find-links folder serves another, and a private index's credentials
// work without ever appearing in the build log.
func TestBuildSources(t *testing.T) {
	in := interpreter(t)
	vendored := pyenvtest.BuildWheel(t, "", dist("vendoredx", "3.0"))
	house := pyenvtest.Wheelhouse(t, pyenvtest.BuildWheel(t, "", dist("housex", "4.0")))
	b := newBuilder(t, process.New(os.Args[0]), nil, house)
	env, err := ensure(t, b, projectWith(t, "housex\n", vendored), in)
	if err != nil {
		t.Fatalf("build from vendored wheels and --find-links: %v", err)
	}
	if importIn(t, env, "vendoredx") != "3.0" || importIn(t, env, "housex") != "4.0" {
		t.Error("a wheel is missing")
	}

	ix := pyenvtest.NewIndex(t, pyenvtest.BuildWheel(t, "", dist("privatex", "5.0"))).WithAuth("builder", "s3cret-index-pass")
	private := newBuilder(t, process.New(os.Args[0]), []string{ix.AuthURL()})
	env, err = ensure(t, private, projectWith(t, "privatex\n"), in)
	if err != nil {
		t.Fatalf("build from a private index: %v", err)
	}
	if importIn(t, env, "privatex") != "5.0" {
		t.Error("privatex is missing")
	}
	if strings.Contains(env.Log, "s3cret-index-pass") {
		t.Error("the build log holds the index's password")
	}
	if n := len(ix.Refused()); n > 1 {
		t.Errorf("the index refused %d requests for lack of credentials", n)
	}
}

// TestBuilderRemovesStaleStaging: a build a crashed server left half done
// is removed when the next one starts.
func TestBuilderRemovesStaleStaging(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "envs")
	stale := filepath.Join(dir, ".staging-123", "env", "site-packages")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := python.WriteBuild(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pyenv.NewBuilder(pyenv.Config{Dir: dir, Backend: process.New(os.Args[0]), Script: script}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".staging-123")); !os.IsNotExist(err) {
		t.Errorf("a stale staging directory survived: %v", err)
	}
}
