package pyenvtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// BuildBackend writes into dir (a new temporary directory if dir is "")
// what pip needs to build a Pyproject sdist in an isolated environment
// with no network: Debian's setuptools wheel (from python3-setuptools-whl)
// and a wheel of the wheel package Debian installed (python3-wheel ships
// no .whl). It returns their paths, to serve beside the sdist from an
// Index or a Wheelhouse.
func BuildBackend(tb testing.TB, dir string) []string {
	tb.Helper()
	backend.once.Do(func() { backend.setuptools, backend.wheel, backend.err = findBackend() })
	if backend.err != nil {
		tb.Fatalf("pyenvtest: BuildBackend: %v", backend.err)
	}
	if dir == "" {
		dir = tb.TempDir()
	}
	data, err := os.ReadFile(backend.setuptools)
	if err != nil {
		tb.Fatalf("pyenvtest: BuildBackend: %v", err)
	}
	st := filepath.Join(dir, filepath.Base(backend.setuptools))
	if err := os.WriteFile(st, data, 0o644); err != nil {
		tb.Fatalf("pyenvtest: BuildBackend: %v", err)
	}
	return []string{st, BuildWheel(tb, dir, backend.wheel)}
}

var backend struct {
	once       sync.Once
	setuptools string // path of Debian's setuptools wheel
	wheel      Dist   // Debian's installed wheel package
	err        error
}

func findBackend() (string, Dist, error) {
	whls, _ := filepath.Glob("/usr/share/python-wheels/setuptools-*-py3-none-any.whl")
	if len(whls) == 0 {
		return "", Dist{}, fmt.Errorf("no /usr/share/python-wheels/setuptools-*.whl (scripts/deps.sh installs python3-setuptools-whl with python3-venv)")
	}
	cmd := exec.Command(Python, "-c", "import os, wheel; print(wheel.__version__); print(os.path.dirname(wheel.__file__))")
	cmd.Env = buildEnv(os.TempDir())
	out, err := cmd.Output()
	if err != nil {
		return "", Dist{}, fmt.Errorf("finding Debian's wheel package (scripts/deps.sh installs python3-wheel): %w", err)
	}
	version, pkgDir, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	d := Dist{
		Name:    "wheel",
		Version: version,
		Modules: map[string]string{},
		EntryPoints: map[string][]string{
			"distutils.commands": {"bdist_wheel = wheel.bdist_wheel:bdist_wheel"},
			"console_scripts":    {"wheel = wheel.cli:main"},
		},
	}
	root := filepath.Dir(pkgDir)
	err = filepath.WalkDir(pkgDir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".py") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		d.Modules[filepath.ToSlash(rel)] = string(src)
		return err
	})
	return whls[len(whls)-1], d, err
}
