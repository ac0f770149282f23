//go:build linux

package linux

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/pyenv"
	"github.com/runagent/runagent/internal/pyenv/pyenvtest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/process"
)

// envPackages is how many packages the environment benchmarks import.
const envPackages = 20

// envAgent is main.py of the environment benchmarks: it imports every
// package of the environment, then defines f.
var envAgent = func() string {
	var names []string
	for _, d := range pyenvtest.Small("envx", envPackages) {
		names = append(names, d.Name)
	}
	return "import " + strings.Join(names, ", ") + "\n\n\ndef f(x):\n    return x\n"
}()

// BenchmarkLinuxColdStartEnv times cold starts to the first result, as
// BenchmarkLinuxStartInvokeServer does, of four agents, in turn within
// each iteration so that a shared machine's changing load falls on all
// alike:
//
//   - env-ns/op: an agent that imports 20 small packages from its
//     environment, built by pyenv's Builder and mounted read-only at /env;
//   - vendored-ns/op: the same code and imports, with the environment's
//     site-packages copied (bytecode and times kept) into the agent's
//     directory and no /env: the imports resolve from the first entry of
//     sys.path. env/vendored is the cost of the environment itself;
//   - env-unused-ns/op: an agent with no imports and that environment
//     mounted: the mount and the sys.path set-up alone;
//   - no-env-ns/op: that agent without the environment.
//
// ns/op is the four whole calls, their sandboxes' teardown included.
func BenchmarkLinuxColdStartEnv(b *testing.B) {
	e, shim, ready := serverEnv(b)
	env := builtEnv(b)
	vendored := writeAgent(b, map[string]string{"main.py": envAgent})
	if out, err := exec.Command("cp", "-a", filepath.Join(env, "site-packages")+"/.", vendored).CombinedOutput(); err != nil {
		b.Fatalf("copy the environment into the agent: %v\n%s", err, out)
	}
	hello := writeAgent(b, map[string]string{"main.py": "def f(x):\n    return x\n"})
	spec := func(dir, envDir string) sandbox.Spec {
		return sandbox.Spec{AgentDir: dir, EnvDir: envDir, ShimPath: shim, Python: systemPython, Env: quickExit}
	}
	agents := []struct {
		unit string
		run  func() time.Duration
		took time.Duration
	}{
		{unit: "env-ns/op", run: coldStart(b, e, spec(writeAgent(b, map[string]string{"main.py": envAgent}), env))},
		{unit: "vendored-ns/op", run: coldStart(b, e, spec(vendored, ""))},
		{unit: "env-unused-ns/op", run: coldStart(b, e, spec(hello, env))},
		{unit: "no-env-ns/op", run: coldStart(b, e, spec(hello, ""))},
	}
	for _, a := range agents {
		a.run() // each checks its agent loads, and warms the page cache
	}
	n := 0
	for b.Loop() {
		for i := range agents {
			a := &agents[(i+n)%len(agents)] // each goes first in turn
			waitReady(b, ready)
			a.took += a.run()
		}
		n++
	}
	for _, a := range agents {
		b.ReportMetric(float64(a.took.Nanoseconds())/float64(b.N), a.unit)
	}
}

// benchEnv is the environment of the benchmarks, built once per test
// binary under shimDir (removed by TestMain).
var benchEnv struct {
	sync.Mutex
	dir string
}

// builtEnv builds the environment of envPackages small wheels, served
// by an index on loopback, with pyenv's Builder (pip run by the process
// backend: the build is not what these benchmarks time), once.
func builtEnv(b *testing.B) string {
	b.Helper()
	benchEnv.Lock()
	defer benchEnv.Unlock()
	if benchEnv.dir != "" {
		return benchEnv.dir
	}
	in, err := pyenv.Probe(b.Context(), "", systemPython)
	if err != nil {
		b.Fatal(err)
	}
	var whls, lines []string
	for _, d := range pyenvtest.Small("envx", envPackages) {
		whls = append(whls, pyenvtest.BuildWheel(b, "", d))
		lines = append(lines, d.Name)
	}
	ix := pyenvtest.NewIndex(b, whls...)
	script, err := python.WriteBuild(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	builder, err := pyenv.NewBuilder(pyenv.Config{Dir: filepath.Join(shimDir, "envs"), Backend: process.New(os.Args[0]),
		Script: script, Indexes: []string{ix.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	env, err := builder.Ensure(b.Context(), "bench", b.TempDir(), pyenv.Deps{Lines: lines}, in, nil)
	if err != nil {
		if be, ok := err.(*pyenv.BuildError); ok {
			b.Fatalf("%v\n%s", err, be.Log)
		}
		b.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(env.Dir, "site-packages", fmt.Sprintf("envx%02d", envPackages-1))); err != nil {
		b.Fatalf("the environment lacks a package: %v", err)
	}
	benchEnv.dir = env.Dir
	return env.Dir
}
