package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/deploy"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/pyenv"
	"github.com/runagent/runagent/internal/pyenv/pyenvtest"
	"github.com/runagent/runagent/internal/registry"
	"github.com/runagent/runagent/internal/sandbox/linux/linuxtest"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// redeployPackages is how many small packages the agent with an
// environment requires and imports.
const redeployPackages = 3

// BenchmarkRedeployCachedEnv times registry deploys of a new version of
// two agents, in turn within each iteration so that a shared machine's
// changing load falls on both alike: unpack, config, the real Preparer
// (environment, then a load check importing every entrypoint in a linux
// sandbox set up as the server sets it up), the code installed and the
// version stored in SQLite.
//
//   - env-ns/op: an agent whose requirements (3 small packages, which it
//     imports) have their environment built already: Prepare finds it and
//     the load check mounts it;
//   - no-env-ns/op: the same agent with no requirements and no imports.
//
// Each iteration changes main.py, so each deploy makes a new version;
// packing the project (which the client does) is not timed. ns/op is both
// deploys.
func BenchmarkRedeployCachedEnv(b *testing.B) {
	backend := linuxtest.Server(b)
	ctx := context.Background()
	in, err := pyenv.Probe(ctx, "", pyenvtest.Python)
	if err != nil {
		b.Fatalf("Debian's %s is missing (scripts/deps.sh installs it): %v", pyenvtest.Python, err)
	}
	var whls, reqs, mods []string
	for _, d := range pyenvtest.Small("redeployx", redeployPackages) {
		whls = append(whls, pyenvtest.BuildWheel(b, "", d))
		reqs = append(reqs, d.Name+"=="+d.Version)
		mods = append(mods, d.Name)
	}
	ix := pyenvtest.NewIndex(b, whls...)

	data := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(data, "db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	reg, err := registry.New(db, filepath.Join(data, "code"), bundle.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	runtime := filepath.Join(data, "runtime")
	shim, err := python.WriteShim(runtime)
	if err != nil {
		b.Fatal(err)
	}
	if shim, err = python.CompileShim(ctx, pyenvtest.Python, shim); err != nil {
		b.Fatal(err)
	}
	ex, err := executor.New(executor.Config{Backend: backend,
		Interpreters: []executor.Interpreter{{Name: in.Name, Python: pyenvtest.Python, ShimPath: shim}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ex.Shutdown(context.Background()) })
	script, err := python.WriteBuild(runtime)
	if err != nil {
		b.Fatal(err)
	}
	builder, err := pyenv.NewBuilder(pyenv.Config{Dir: filepath.Join(data, "envs"), Backend: backend, Script: script, Indexes: []string{ix.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	p := deploy.New(deploy.Config{Builder: builder, Pythons: []pyenv.Interpreter{in}, Checker: ex, Builds: db})
	reg.Prepare = p.Prepare
	reg.Environment = p.Environment

	agents := []*redeployAgent{
		{unit: "env-ns/op", dir: agentProject(b, "import "+strings.Join(mods, ", ")+"\n", strings.Join(reqs, "\n")+"\n"), env: true},
		{unit: "no-env-ns/op", dir: agentProject(b, "", "")},
	}
	// The first deploy builds the environment.
	for _, a := range agents {
		a.deploy(ctx, b, reg, 0)
	}
	n := 0
	for b.Loop() {
		n++
		for i := range agents {
			agents[(i+n)%len(agents)].deploy(ctx, b, reg, n) // each goes first in turn
		}
	}
	for _, a := range agents {
		b.ReportMetric(float64(a.took.Nanoseconds())/float64(b.N), a.unit)
	}
}

// redeployAgent is one agent of BenchmarkRedeployCachedEnv.
type redeployAgent struct {
	unit string
	dir  string
	env  bool // it has requirements
	took time.Duration
}

// deploy deploys revision n of a (0: the first, whose environment may be
// built) and adds the time of a later one to a.took.
func (a *redeployAgent) deploy(ctx context.Context, b *testing.B, reg *registry.Registry, n int) {
	b.StopTimer()
	main := filepath.Join(a.dir, "main.py")
	src, err := os.ReadFile(main)
	if err != nil {
		b.Fatal(err)
	}
	src = append(src, fmt.Sprintf("# revision %d\n", n)...)
	if err := os.WriteFile(main, src, 0o644); err != nil {
		b.Fatal(err)
	}
	pkg, _, err := bundle.Pack(a.dir, bundle.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	t0 := time.Now()
	res, err := reg.DeployAs(ctx, pkg, "", registry.DeployOptions{})
	took := time.Since(t0)
	if err != nil {
		b.Fatalf("deploy revision %d: %v", n, err)
	}
	switch build := res.Prepared.Build; {
	case !res.Created:
		b.Fatalf("revision %d was deployed before", n)
	case build == nil:
		b.Fatal("the deploy recorded no build")
	case a.env && (build.EnvKey == "" || n > 0 && !build.Cached):
		b.Fatalf("revision %d: environment %q, cached %v; want the one built before", n, build.EnvKey, build.Cached)
	case !a.env && res.Deployment.EnvDir != "":
		b.Fatalf("an agent without requirements got environment %s", res.Deployment.EnvDir)
	}
	if n > 0 {
		a.took += took
	}
}

// agentProject writes an agent project: main.py is head then f(x), and
// requirements.txt reqs ("" for none).
func agentProject(b *testing.B, head, reqs string) string {
	b.Helper()
	dir := b.TempDir()
	id := uuid.NewString()
	files := map[string]string{
		"runagent.config.json": fmt.Sprintf(`{"agent_name": "redeploy-%s", "framework": "default", "agent_id": %q,
  "agent_architecture": {"entrypoints": [{"file": "main.py", "module": "f", "tag": "f"}]},
  "auth_settings": {"type": "api_key"}}`, id[:8], id),
		"main.py": head + "\n\ndef f(x):\n    return x\n",
	}
	if reqs != "" {
		files[pyenv.RequirementsFile] = reqs
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}
