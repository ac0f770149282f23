package pyenvtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func attrsx(version string) Dist {
	return Dist{
		Name:    "attrsx",
		Version: version,
		Modules: map[string]string{
			"attrsx/__init__.py": fmt.Sprintf("def version():\n    return %q\n", version),
		},
	}
}

var speedups = Dist{
	Name:       "speedups",
	Version:    "1.5",
	Modules:    map[string]string{"speedups/__init__.py": "from speedups._speedups import add, version\n"},
	CExtension: &CExtension{Module: "speedups._speedups"},
}

// app depends on attrsx>=2.0 and reports the version it got.
var app = Dist{
	Name:     "App_Dep",
	Version:  "1.0",
	Modules:  map[string]string{"appdep.py": "import attrsx\ndef main():\n    return 'app uses attrsx ' + attrsx.version()\n"},
	Requires: []string{"attrsx>=2.0"},
}

// platformTag is the wheel tag a C extension built by Debian's Python gets.
func platformTag(t *testing.T) string {
	t.Helper()
	out, err := python(t, nil, "-c", "import sys, platform; print('cp%d%d-cp%d%d-linux_%s' % (sys.version_info[:2] * 2 + (platform.machine(),)))")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return strings.TrimSpace(out)
}

func TestWheelNames(t *testing.T) {
	t.Parallel()
	tag := platformTag(t)
	for _, tc := range []struct {
		d    Dist
		want string
	}{
		{attrsx("1.0"), "attrsx-1.0-py3-none-any.whl"},
		{app, "App_Dep-1.0-py3-none-any.whl"},
		{speedups, "speedups-1.5-" + tag + ".whl"},
	} {
		if got := filepath.Base(BuildWheel(t, "", tc.d)); got != tc.want {
			t.Errorf("BuildWheel(%s %s) = %s, want %s", tc.d.Name, tc.d.Version, got, tc.want)
		}
	}
	if got, want := filepath.Base(BuildSdist(t, "", attrsx("1.0"))), "attrsx-1.0.tar.gz"; got != want {
		t.Errorf("BuildSdist(attrsx 1.0) = %s, want %s", got, want)
	}
}

// TestBuildCached: a Dist built before is not built again, and the same
// Dist gives the same bytes wherever it is written.
func TestBuildCached(t *testing.T) {
	t.Parallel()
	d := attrsx("9.9")
	first := BuildWheel(t, "", d)
	cache.Lock()
	builds := cache.builds
	cache.Unlock()
	start := time.Now()
	second := BuildWheel(t, "", d)
	elapsed := time.Since(start)
	cache.Lock()
	after := cache.builds
	cache.Unlock()
	if after != builds {
		t.Errorf("second BuildWheel(attrsx 9.9) ran setup.py again (%d builds, then %d)", builds, after)
	}
	if first == second {
		t.Fatalf("both builds wrote %s; want two directories", first)
	}
	if got, want := SHA256(second), SHA256(first); got != want {
		t.Errorf("SHA256 of the cached copy = %s, want %s", got, want)
	}
	t.Logf("cached BuildWheel: %v", elapsed)
}

// TestHostileSetupPy: SetupPy goes into the sdist and runs when pip builds
// it, never when BuildSdist makes the archive.
func TestHostileSetupPy(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "setup-py-ran")
	d := Dist{
		Name:    "hostile",
		Version: "1.0",
		Modules: map[string]string{"hostile.py": ""},
		SetupPy: fmt.Sprintf("open(%q, 'w').write('ran')\n", marker),
	}
	sdist := BuildSdist(t, "", d)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("BuildSdist ran SetupPy (stat %s: %v)", marker, err)
	}
	wheelhouse := Wheelhouse(t, sdist)
	// A wheels-only policy never builds it.
	out, err := pip(t, "--target", t.TempDir(), "--only-binary", ":all:", "--no-index", "--find-links", wheelhouse, "hostile==1.0")
	if _, statErr := os.Stat(marker); err == nil || !os.IsNotExist(statErr) {
		t.Fatalf("pip --only-binary :all: with only an sdist: err %v, marker %v, output:\n%s\nwant a failure and no marker", err, statErr, out)
	}
	mustPip(t, "--no-index", "--find-links", wheelhouse, "hostile==1.0")
	if b, err := os.ReadFile(marker); err != nil || string(b) != "ran" {
		t.Errorf("pip built the sdist but SetupPy left %q, %v; want \"ran\"", b, err)
	}
}

// TestPyprojectSdist: an sdist that names a PEP 517 backend builds offline
// with --no-build-isolation, or isolated when the index serves setuptools
// and wheel (BuildBackend), and fails isolated without them.
func TestPyprojectSdist(t *testing.T) {
	t.Parallel()
	d := Dist{Name: "modern", Version: "1.0", Pyproject: true, Modules: map[string]string{"modern.py": "X = 'pep517'\n"}}
	wheelhouse := Wheelhouse(t, BuildSdist(t, "", d))
	target := mustPip(t, "--no-build-isolation", "--no-index", "--find-links", wheelhouse, "modern==1.0")
	if got := run(t, target, "import modern; print(modern.X)"); got != "pep517" {
		t.Errorf("modern.X = %q, want pep517", got)
	}
	out, err := pip(t, "--target", t.TempDir(), "--no-index", "--find-links", wheelhouse, "modern==1.0")
	if err == nil || !strings.Contains(out, "setuptools>=40.8.0") {
		t.Errorf("isolated build with no setuptools to fetch: err %v, output:\n%s\nwant a failure naming setuptools>=40.8.0", err, out)
	}
	ix := NewIndex(t, append(BuildBackend(t, ""), BuildSdist(t, "", d))...)
	target = mustPip(t, "--index-url", ix.URL(), "modern==1.0")
	if got := run(t, target, "import modern; print(modern.X)"); got != "pep517" {
		t.Errorf("isolated build from an index with the backend: modern.X = %q, want pep517", got)
	}
	for _, want := range []string{"/simple/setuptools/", "/simple/wheel/"} {
		if !slices.Contains(ix.Requests(), want) {
			t.Errorf("the isolated build never asked for %s; Requests() = %q", want, ix.Requests())
		}
	}
}

func TestDistRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		d    Dist
	}{
		{"no version", Dist{Name: "x"}},
		{"absolute path", Dist{Name: "x", Version: "1", Modules: map[string]string{"/etc/x.py": ""}}},
		{"escaping path", Dist{Name: "x", Version: "1", Modules: map[string]string{"../x.py": ""}}},
		{"top-level data", Dist{Name: "x", Version: "1", Modules: map[string]string{"README": ""}}},
		{"bad extension name", Dist{Name: "x", Version: "1", CExtension: &CExtension{Module: "a/b"}}},
	} {
		if err := tc.d.validate(); err == nil {
			t.Errorf("%s: validate(%+v) = nil, want an error", tc.name, tc.d)
		}
	}
}
