package pyenv_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/pyenv"
	"github.com/runagent/runagent/internal/pyenv/pyenvtest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/linux/linuxtest"
	"github.com/runagent/runagent/internal/sandbox/process"
)

// buildSetSize is how many small wheels the build benchmarks install.
const buildSetSize = 10

// buildSet serves buildSetSize small wheels from an index on loopback
// and returns it with the requirement lines that name them.
func buildSet(b *testing.B) (*pyenvtest.Index, []string) {
	b.Helper()
	var whls, lines []string
	for _, d := range pyenvtest.Small("buildx", buildSetSize) {
		whls = append(whls, pyenvtest.BuildWheel(b, "", d))
		lines = append(lines, d.Name)
	}
	return pyenvtest.NewIndex(b, whls...), lines
}

// BenchmarkBuildEnv builds a fresh environment of buildSetSize small
// wheels from an index on loopback with Builder.Ensure, as a deploy does:
// pip in a build sandbox of the linux backend (set up as the server sets
// it up: cgroups, scratch disk, egress proxy to the index only), then
// sealing. The environment is removed, untimed, after each build, so each
// builds anew. Compare with BenchmarkBuildEnvPipBaseline.
func BenchmarkBuildEnv(b *testing.B) { benchBuild(b, linuxtest.Server(b)) }

// BenchmarkBuildEnvProcess is BenchmarkBuildEnv with the process
// backend (pip as a plain child process, no sandbox): the difference to
// BenchmarkBuildEnv is the sandbox's.
func BenchmarkBuildEnvProcess(b *testing.B) { benchBuild(b, process.New(os.Args[0])) }

func benchBuild(b *testing.B, backend sandbox.Backend) {
	in, err := pyenv.Probe(b.Context(), "", pyenvtest.Python)
	if err != nil {
		b.Fatalf("Debian's %s is missing (scripts/deps.sh installs it): %v", pyenvtest.Python, err)
	}
	ix, lines := buildSet(b)
	script, err := python.WriteBuild(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	builder, err := pyenv.NewBuilder(pyenv.Config{Dir: filepath.Join(b.TempDir(), "envs"), Backend: backend, Script: script, Indexes: []string{ix.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	project := b.TempDir()
	os.Chmod(project, 0o755)
	if err := os.WriteFile(filepath.Join(project, pyenv.RequirementsFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	deps, err := pyenv.Read(project)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		env, err := builder.Ensure(ctx, "bench", project, deps, in, nil)
		if err != nil {
			if be, ok := err.(*pyenv.BuildError); ok {
				b.Fatalf("%v\n%s", err, be.Log)
			}
			b.Fatal(err)
		}
		b.StopTimer()
		if env.Cached {
			b.Fatal("the environment was found built: each iteration must build it")
		}
		if _, err := os.Stat(filepath.Join(env.Dir, "site-packages", "buildx00", "core.py")); err != nil {
			b.Fatalf("the environment lacks buildx00: %v", err)
		}
		removeEnv(b, env.Dir)
		b.StartTimer()
	}
}

// removeEnv removes a sealed (read-only) environment.
func removeEnv(b *testing.B, dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBuildEnvPipBaseline installs the same set from the same index
// the plain way: a venv without pip, then Debian's pip installing into it
// (offline and hermetic, with the flags the builder gives pip), as
// subprocesses of the host. pip --python runs pip a second time, under the
// venv's interpreter.
func BenchmarkBuildEnvPipBaseline(b *testing.B) { benchPip(b, true) }

// BenchmarkBuildEnvPipTarget is BenchmarkBuildEnvPipBaseline without the
// venv: one pip run installing with --target, as the builder's script
// does inside the sandbox. The floor of any build with this pip.
func BenchmarkBuildEnvPipTarget(b *testing.B) { benchPip(b, false) }

func benchPip(b *testing.B, venv bool) {
	if _, err := os.Stat(pyenvtest.Python); err != nil {
		b.Fatalf("Debian's %s is missing (scripts/deps.sh installs it): %v", pyenvtest.Python, err)
	}
	ix, lines := buildSet(b)
	work := b.TempDir()
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + work, "LANG=C.UTF-8", "PIP_CONFIG_FILE=" + os.DevNull}
	run := func(args ...string) {
		cmd := exec.Command(pyenvtest.Python, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dir := filepath.Join(work, "env")
	pip := []string{"-m", "pip", "--isolated", "--no-input", "--disable-pip-version-check"}
	if venv {
		pip = append(pip, "--python", filepath.Join(dir, "bin", "python"))
	}
	pip = append(pip, "install", "--no-cache-dir", "--progress-bar", "off", "--index-url", ix.URL())
	site := filepath.Join(dir, "lib", "python3*", "site-packages")
	if !venv {
		pip = append(pip, "--target", filepath.Join(dir, "site-packages"))
		site = filepath.Join(dir, "site-packages")
	}
	for b.Loop() {
		if venv {
			run("-m", "venv", "--without-pip", dir)
		}
		run(append(pip, lines...)...)
		b.StopTimer()
		if m, _ := filepath.Glob(filepath.Join(site, "buildx00", "core.py")); len(m) != 1 {
			b.Fatal("the install lacks buildx00")
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
