package pyenvtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Python is the interpreter that builds distributions here and that
// runagent's sandboxes run: Debian's, never a pyenv or venv one on PATH.
const Python = "/usr/bin/python3"

// Dist describes a Python distribution to build.
type Dist struct {
	// Name is the project name as written in its metadata ("attrs-x");
	// the index lists it under its PEP 503 normalized form.
	Name    string
	Version string
	// Modules maps a path relative to the project root to its content:
	// "attrsx/__init__.py" makes the package attrsx, "one.py" a top-level
	// module, "attrsx/data.txt" package data installed beside the code.
	Modules map[string]string
	// Requires are PEP 508 requirement strings ("attrsx>=1.0"), written as
	// Requires-Dist; pip installs them from the same index.
	Requires []string
	// RequiresPython is a PEP 440 specifier (">=3.8"), written as
	// Requires-Python and served by an Index as data-requires-python.
	RequiresPython string
	// CExtension, if set, adds a C extension module compiled by gcc; the
	// wheel becomes platform specific (cp311-cp311-linux_x86_64).
	CExtension *CExtension
	// SetupPy is Python code placed at the top of the sdist's setup.py,
	// before the setup() call this package writes: it runs wherever pip
	// builds the sdist (hostile build scripts), never when BuildSdist makes
	// the archive. BuildWheel refuses a Dist that has it, as a wheel runs
	// no code when it is installed.
	SetupPy string
	// EntryPoints maps an entry point group to its "name = module:attr"
	// lines: {"console_scripts": {"hello = attrsx:main"}}.
	EntryPoints map[string][]string
	// Pyproject puts a pyproject.toml naming setuptools.build_meta in the
	// sdist, so pip builds it the PEP 517 way: in an isolated environment
	// whose setuptools and wheel must come from the index or find-links,
	// unless pip runs with --no-build-isolation. Without it, Debian's pip
	// runs the sdist's setup.py with the setuptools pip itself runs with.
	Pyproject bool
}

// CExtension is a C extension module.
type CExtension struct {
	// Module is the dotted import name, "attrsx._speedups".
	Module string
	// Source is the C source. Empty means a module with two functions
	// computed in compiled code: add(a, b) returns a+b and version()
	// returns the Dist's Version.
	Source string
}

// BuildWheel builds d as a wheel into dir (a new temporary directory if
// dir is "") and returns the wheel's path. Builds are cached for the life
// of the test binary: a Dist built before is written out again, not
// rebuilt, so the same Dist gives the same bytes (and SHA256) each time.
func BuildWheel(tb testing.TB, dir string, d Dist) string {
	tb.Helper()
	if d.SetupPy != "" {
		tb.Fatalf("pyenvtest: BuildWheel(%s %s): SetupPy only applies to sdists; a wheel runs no build code", d.Name, d.Version)
	}
	return build(tb, dir, d, "bdist_wheel")
}

// BuildSdist builds d as a source distribution (.tar.gz, with setup.py
// and PKG-INFO) into dir (a new temporary directory if dir is "") and
// returns its path. Cached like BuildWheel.
func BuildSdist(tb testing.TB, dir string, d Dist) string {
	tb.Helper()
	return build(tb, dir, d, "sdist")
}

// built is one cached build: the file's base name and its bytes.
type built struct {
	once sync.Once
	name string
	data []byte
	err  error
}

var cache struct {
	sync.Mutex
	m      map[string]*built
	builds int // runs of setup.py, for the test that the cache works
}

func build(tb testing.TB, dir string, d Dist, command string) string {
	tb.Helper()
	if err := d.validate(); err != nil {
		tb.Fatalf("pyenvtest: %v", err)
	}
	key, err := json.Marshal(struct {
		Command string
		Dist    Dist
	}{command, d})
	if err != nil {
		tb.Fatalf("pyenvtest: %v", err)
	}
	cache.Lock()
	if cache.m == nil {
		cache.m = map[string]*built{}
	}
	b := cache.m[string(key)]
	if b == nil {
		b = &built{}
		cache.m[string(key)] = b
	}
	cache.Unlock()
	b.once.Do(func() {
		cache.Lock()
		cache.builds++
		cache.Unlock()
		b.name, b.data, b.err = runBuild(d, command)
	})
	if b.err != nil {
		tb.Fatalf("pyenvtest: building %s %s (%s): %v", d.Name, d.Version, command, b.err)
	}
	if dir == "" {
		dir = tb.TempDir()
	}
	p := filepath.Join(dir, b.name)
	if err := writeAtomic(p, b.data); err != nil {
		tb.Fatalf("pyenvtest: %v", err)
	}
	return p
}

// writeAtomic writes data to p through a rename, so a reader of p (an
// Index serving it to another test that built the same Dist into the same
// directory) never sees it half written.
func writeAtomic(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".pyenvtest-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

func (d Dist) validate() error {
	if d.Name == "" || d.Version == "" {
		return fmt.Errorf("a Dist needs a Name and a Version (got %q %q)", d.Name, d.Version)
	}
	for p := range d.Modules {
		if !filepath.IsLocal(p) || strings.Contains(p, `\`) {
			return fmt.Errorf("%s %s: module path %q is not a relative slash path", d.Name, d.Version, p)
		}
		if path.Dir(p) == "." && !strings.HasSuffix(p, ".py") {
			return fmt.Errorf("%s %s: %q: a top-level file must be a .py module (put data inside a package)", d.Name, d.Version, p)
		}
	}
	if e := d.CExtension; e != nil {
		if e.Module == "" || strings.ContainsAny(e.Module, `/\"' `) {
			return fmt.Errorf("%s %s: CExtension.Module %q is not a dotted module name", d.Name, d.Version, e.Module)
		}
	}
	return nil
}

// runBuild writes d's project into a temporary directory and runs
// setuptools' command (bdist_wheel or sdist) there with Debian's Python.
func runBuild(d Dist, command string) (name string, data []byte, err error) {
	src, err := os.MkdirTemp("", "pyenvtest-build-")
	if err != nil {
		return "", nil, err
	}
	defer os.RemoveAll(src)
	out := filepath.Join(src, "_dist")

	files := map[string]string{}
	for p, s := range d.Modules {
		files[p] = s
	}
	call, err := d.setupCall()
	if err != nil {
		return "", nil, err
	}
	files["setup.py"] = d.SetupPy + "\n" + call
	if e := d.CExtension; e != nil {
		files[e.sourcePath()] = e.source(d.Version)
	}
	if d.Pyproject {
		files["pyproject.toml"] = pyprojectTOML
	}
	for p, s := range files {
		full := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", nil, err
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			return "", nil, err
		}
	}

	// setup.py on disk is what goes into the sdist; the build itself runs
	// only the setup() call, given on the command line, so a hostile
	// SetupPy never runs here. setuptools takes the script's name from
	// sys.argv[0] to know which file is setup.py.
	driver := "import sys; sys.argv[0] = 'setup.py'\n" + call
	cmd := exec.Command(Python, "-c", driver, "-q", command, "--dist-dir", out)
	cmd.Dir = src
	cmd.Env = buildEnv(src)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("%s setup.py %s: %w\n%s%s", Python, command, err, log.String(), hint(log.String()))
	}
	made, err := os.ReadDir(out)
	if err != nil {
		return "", nil, err
	}
	if len(made) != 1 {
		return "", nil, fmt.Errorf("setup.py %s made %d files, want 1\n%s", command, len(made), log.String())
	}
	data, err = os.ReadFile(filepath.Join(out, made[0].Name()))
	return made[0].Name(), data, err
}

// buildEnv is a minimal environment: nothing from a pyenv or virtualenv on
// the developer's PATH leaks into Debian's Python, and SOURCE_DATE_EPOCH
// gives wheels fixed timestamps.
func buildEnv(home string) []string {
	return []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + home,
		"LANG=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1",
		"SOURCE_DATE_EPOCH=" + fmt.Sprint(time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC).Unix()),
	}
}

// hint names the Debian package behind the usual missing-piece failures.
func hint(log string) string {
	switch {
	case strings.Contains(log, "No module named 'setuptools'"):
		return "(scripts/deps.sh installs python3-setuptools)"
	case strings.Contains(log, "invalid command 'bdist_wheel'"):
		return "(scripts/deps.sh installs python3-wheel)"
	case strings.Contains(log, "Python.h"):
		return "(scripts/deps.sh installs python3-dev)"
	case strings.Contains(log, "command 'gcc'") || strings.Contains(log, "command 'x86_64-linux-gnu-gcc'"):
		return "(scripts/deps.sh installs gcc)"
	}
	return ""
}

const pyprojectTOML = `[build-system]
requires = ["setuptools>=40.8.0", "wheel"]
build-backend = "setuptools.build_meta"
`

// setupCall is the setup() call for d, its arguments written as JSON,
// which Python reads as the same literals.
func (d Dist) setupCall() (string, error) {
	pyModules := []string{}
	packages := map[string]bool{}
	packageData := map[string][]string{}
	for p := range d.Modules {
		dir, file := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if dir == "" {
			pyModules = append(pyModules, strings.TrimSuffix(file, ".py"))
			continue
		}
		// Every directory on the way is a package (a namespace package
		// if it has no __init__.py).
		for q := dir; q != "."; q = path.Dir(q) {
			packages[strings.ReplaceAll(q, "/", ".")] = true
		}
		if !strings.HasSuffix(file, ".py") {
			pkg := strings.ReplaceAll(dir, "/", ".")
			packageData[pkg] = append(packageData[pkg], file)
		}
	}
	if e := d.CExtension; e != nil {
		for q := path.Dir(e.sourcePath()); q != "."; q = path.Dir(q) {
			packages[strings.ReplaceAll(q, "/", ".")] = true
		}
	}
	pkgs := make([]string, 0, len(packages))
	for p := range packages {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	slices.Sort(pyModules)
	for _, files := range packageData {
		slices.Sort(files)
	}
	args := []struct {
		name  string
		value any
	}{
		{"name", d.Name},
		{"version", d.Version},
		{"packages", pkgs},
		{"py_modules", pyModules},
		{"package_data", packageData},
		{"install_requires", nonNil(d.Requires)},
	}
	if d.RequiresPython != "" {
		args = append(args, struct {
			name  string
			value any
		}{"python_requires", d.RequiresPython})
	}
	if len(d.EntryPoints) > 0 {
		args = append(args, struct {
			name  string
			value any
		}{"entry_points", d.EntryPoints})
	}
	var b strings.Builder
	b.WriteString("from setuptools import setup, Extension\nsetup(\n")
	for _, a := range args {
		v, err := json.Marshal(a.value)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "    %s=%s,\n", a.name, v)
	}
	if e := d.CExtension; e != nil {
		m, _ := json.Marshal(e.Module)
		s, _ := json.Marshal(e.sourcePath())
		fmt.Fprintf(&b, "    ext_modules=[Extension(%s, [%s])],\n", m, s)
	}
	b.WriteString(")\n")
	return b.String(), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sourcePath is where the extension's C file lives in the project:
// "attrsx._speedups" → "attrsx/_speedups.c".
func (e *CExtension) sourcePath() string {
	return strings.ReplaceAll(e.Module, ".", "/") + ".c"
}

func (e *CExtension) source(version string) string {
	if e.Source != "" {
		return e.Source
	}
	leaf := e.Module[strings.LastIndex(e.Module, ".")+1:]
	v, _ := json.Marshal(version) // a JSON string of ASCII is a C string literal
	return strings.NewReplacer("LEAF", leaf, "VERSION", string(v)).Replace(defaultCSource)
}

const defaultCSource = `#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *add(PyObject *self, PyObject *args) {
	long a, b;
	if (!PyArg_ParseTuple(args, "ll", &a, &b))
		return NULL;
	return PyLong_FromLong(a + b);
}

static PyObject *version(PyObject *self, PyObject *unused) {
	return PyUnicode_FromString(VERSION);
}

static PyMethodDef methods[] = {
	{"add", add, METH_VARARGS, "a + b, computed in C"},
	{"version", version, METH_NOARGS, "the version this module was compiled for"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "LEAF", NULL, -1, methods};

PyMODINIT_FUNC PyInit_LEAF(void) {
	return PyModule_Create(&module);
}
`

// Small returns n small pure-Python distributions for benchmarks,
// prefix00 to prefix<n-1>, version 1.0: each a package of two modules,
// its __init__ importing the other, which defines a constant, a class
// and a function.
func Small(prefix string, n int) []Dist {
	ds := make([]Dist, n)
	for i := range ds {
		name := fmt.Sprintf("%s%02d", prefix, i)
		ds[i] = Dist{Name: name, Version: "1.0", Modules: map[string]string{
			name + "/__init__.py": "from .core import VERSION, Thing, double\n",
			name + "/core.py": "VERSION = \"1.0\"\n\n\nclass Thing:\n    def __init__(self, x):\n        self.x = x\n\n" +
				"    def __repr__(self):\n        return \"Thing(%r)\" % (self.x,)\n\n\ndef double(x):\n    return 2 * x\n",
		}}
	}
	return ds
}
