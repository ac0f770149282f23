package pyenvtest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallFromIndex installs each kind of distribution from an Index
// and from a Wheelhouse into a --target directory (which Debian's PEP 668
// marker does not cover) and imports it with Debian's Python.
func TestInstallFromIndex(t *testing.T) {
	t.Parallel()
	files := []string{
		BuildWheel(t, "", attrsx("1.0")),
		BuildWheel(t, "", attrsx("2.0")),
		BuildWheel(t, "", speedups),
		BuildWheel(t, "", app),
		BuildSdist(t, "", Dist{Name: "fromsrc", Version: "0.1", Modules: map[string]string{"fromsrc.py": "def f():\n    return 'built from an sdist'\n"}}),
		BuildSdist(t, "", Dist{Name: "csrc", Version: "3.0", CExtension: &CExtension{Module: "csrc"}}),
	}
	ix := NewIndex(t, files...)
	wheelhouse := Wheelhouse(t, files...)
	for _, tc := range []struct {
		name, req, code, want string
	}{
		{"pure 1.0", "attrsx==1.0", "import attrsx; print(attrsx.version())", "1.0"},
		{"pure 2.0", "attrsx==2.0", "import attrsx; print(attrsx.version())", "2.0"},
		{"pure newest", "attrsx", "import attrsx; print(attrsx.version())", "2.0"},
		{"C extension wheel", "speedups==1.5", "import speedups, speedups._speedups as s; print(s.__file__.endswith('.so'), speedups.add(40, 2), speedups.version())", "True 42 1.5"},
		{"dependency", "app-dep==1.0", "import appdep; print(appdep.main())", "app uses attrsx 2.0"},
		{"sdist", "fromsrc==0.1", "import fromsrc; print(fromsrc.f())", "built from an sdist"},
		{"C extension sdist", "csrc==3.0", "import csrc; print(csrc.add(2, 3), csrc.version())", "5 3.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, src := range []struct {
				name string
				args []string
			}{
				{"index", []string{"--index-url", ix.URL()}},
				{"find-links", []string{"--no-index", "--find-links", wheelhouse}},
			} {
				target := mustPip(t, append(src.args, tc.req)...)
				if got := run(t, target, tc.code); got != tc.want {
					t.Errorf("%s: installed %s, ran %q: got %q, want %q", src.name, tc.req, tc.code, got, tc.want)
				}
			}
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestIndexPages reads the index as PEP 503 describes it.
func TestIndexPages(t *testing.T) {
	t.Parallel()
	old := BuildWheel(t, "", Dist{Name: "Old_Py", Version: "1.0", Modules: map[string]string{"oldpy.py": ""}, RequiresPython: "<3,>=2.7"})
	src := BuildSdist(t, "", Dist{Name: "Old_Py", Version: "1.0", Modules: map[string]string{"oldpy.py": ""}})
	a := BuildWheel(t, "", attrsx("1.0"))
	ix := NewIndex(t, old, src, a)
	host := strings.TrimSuffix(ix.URL(), "/simple/")

	code, body := get(t, ix.URL())
	for _, want := range []string{`<a href="/simple/attrsx/">attrsx</a>`, `<a href="/simple/old-py/">old-py</a>`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /simple/: %d\n%s\nwant 200 with %s", code, body, want)
		}
	}
	code, body = get(t, ix.URL()+"old-py/")
	for _, want := range []string{
		fmt.Sprintf(`<a href="/files/%s#sha256=%s" data-requires-python="&lt;3,&gt;=2.7">`, filepath.Base(old), SHA256(old)),
		fmt.Sprintf(`<a href="/files/%s#sha256=%s">`, filepath.Base(src), SHA256(src)),
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /simple/old-py/: %d\n%s\nwant 200 with %s", code, body, want)
		}
	}
	// Another spelling of the name is redirected to the normalized one.
	if code, body2 := get(t, ix.URL()+"Old.Py/"); code != 200 || body2 != body {
		t.Errorf("GET /simple/Old.Py/: %d\n%s\nwant the page of old-py", code, body2)
	}
	code, body = get(t, host+"/files/"+filepath.Base(a))
	if want, _ := os.ReadFile(a); code != 200 || body != string(want) {
		t.Errorf("GET /files/%s: %d, %d bytes; want 200, the %d bytes of the wheel", filepath.Base(a), code, len(body), len(want))
	}
	for _, p := range []string{"/simple/nope/", "/files/nope.whl", "/other"} {
		if code, _ := get(t, host+p); code != 404 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
	got := strings.Join(ix.Requests(), " ")
	if want := "/simple/ /simple/old-py/ /simple/Old.Py/ /simple/old-py/ /files/" + filepath.Base(a) + " /simple/nope/ /files/nope.whl /other"; got != want {
		t.Errorf("Requests() = %s\nwant %s", got, want)
	}
}

// TestRequiresPython: pip skips a release whose data-requires-python
// excludes the running Python.
func TestRequiresPython(t *testing.T) {
	t.Parallel()
	future := attrsx("3.0")
	future.RequiresPython = ">=4"
	ix := NewIndex(t, BuildWheel(t, "", attrsx("2.0")), BuildWheel(t, "", future))
	target := mustPip(t, "--index-url", ix.URL(), "attrsx")
	if got := run(t, target, "import attrsx; print(attrsx.version())"); got != "2.0" {
		t.Errorf("pip install attrsx with 3.0 needing Python >=4: got %s, want 2.0", got)
	}
}

// TestRequireHashes pins a wheel by SHA256 and proves pip checks it.
func TestRequireHashes(t *testing.T) {
	t.Parallel()
	whl := BuildWheel(t, "", attrsx("1.0"))
	ix := NewIndex(t, whl)
	reqsFor := func(line string) string {
		p := filepath.Join(t.TempDir(), "requirements.txt")
		if err := os.WriteFile(p, []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	reqs := func(hash string) string { return reqsFor("attrsx==1.0 --hash=sha256:" + hash) }
	target := mustPip(t, "--require-hashes", "--index-url", ix.URL(), "-r", reqs(SHA256(whl)))
	if got := run(t, target, "import attrsx; print(attrsx.version())"); got != "1.0" {
		t.Errorf("hash-pinned attrsx: got %s, want 1.0", got)
	}
	// Every requirement, dependencies included, must be pinned and hashed.
	appWhl := BuildWheel(t, "", app)
	ix.Add(t, appWhl, BuildWheel(t, "", attrsx("2.0")))
	out, err := pip(t, "--target", t.TempDir(), "--require-hashes", "--index-url", ix.URL(), "-r", reqsFor("app-dep==1.0 --hash=sha256:"+SHA256(appWhl)))
	if err == nil || !strings.Contains(out, "all requirements must have their versions pinned") {
		t.Errorf("pip --require-hashes with an unpinned dependency: err %v, output:\n%s\nwant a refusal", err, out)
	}

	wrong := strings.Repeat("0", 64)
	out, err = pip(t, "--target", t.TempDir(), "--require-hashes", "--index-url", ix.URL(), "-r", reqs(wrong))
	if err == nil || !strings.Contains(out, "THESE PACKAGES DO NOT MATCH THE HASHES") {
		t.Errorf("pip install with a wrong hash: err %v, output:\n%s\nwant a hash mismatch", err, out)
	}
}

// TestAuth: a private index refuses pip without credentials and serves it
// with them, given in the URL or in a netrc file; pip's output never shows
// the password.
func TestAuth(t *testing.T) {
	t.Parallel()
	const user, pass = "deploy", "s3cret-Index-Pass"
	ix := NewIndex(t, BuildWheel(t, "", attrsx("1.0"))).WithAuth(user, pass)

	// pip names the 401 only at -vv; at the default level it finds "no
	// versions".
	out, err := pip(t, "-vv", "--target", t.TempDir(), "--index-url", ix.URL(), "attrsx==1.0")
	if err == nil || !strings.Contains(out, "401 Client Error") {
		t.Errorf("pip -vv without credentials: err %v, output:\n%s\nwant a failure naming 401 Client Error", err, out)
	}
	if got, want := strings.Join(ix.Refused(), " "), "/simple/attrsx/"; got != want {
		t.Errorf("Refused() = %q, want %q", got, want)
	}
	badURL := strings.Replace(ix.AuthURL(), pass, "wrong", 1)
	if out, err := pip(t, "--target", t.TempDir(), "--index-url", badURL, "attrsx==1.0"); err == nil || !strings.Contains(out, "from versions: none") {
		t.Errorf("pip with a wrong password: err %v, output:\n%s\nwant a failure, no versions found", err, out)
	}
	refused := len(ix.Refused())

	target := t.TempDir()
	out, err = pip(t, "-v", "--target", target, "--index-url", ix.AuthURL(), "attrsx==1.0")
	if err != nil || strings.Contains(out, pass) {
		t.Fatalf("pip -v with credentials in the URL: err %v; output shows the password: %v\n%s", err, strings.Contains(out, pass), out)
	}
	if got := run(t, target, "import attrsx; print(attrsx.version())"); got != "1.0" {
		t.Errorf("credentials in the URL: got %s, want 1.0", got)
	}

	netrc := filepath.Join(t.TempDir(), "netrc")
	host, _, _ := strings.Cut(ix.Host(), ":")
	if err := os.WriteFile(netrc, []byte(fmt.Sprintf("machine %s login %s password %s\n", host, user, pass)), 0o600); err != nil {
		t.Fatal(err)
	}
	target = t.TempDir()
	out, err = python(t, []string{"NETRC=" + netrc}, "-m", "pip", "--isolated", "--no-input", "install", "--no-cache-dir",
		"--target", target, "--index-url", ix.URL(), "attrsx==1.0")
	if err != nil {
		t.Fatalf("pip with credentials in $NETRC: %v\n%s", err, out)
	}
	if got := run(t, target, "import attrsx; print(attrsx.version())"); got != "1.0" {
		t.Errorf("credentials in $NETRC: got %s, want 1.0", got)
	}
	if got := ix.Refused()[refused:]; len(got) != 0 {
		t.Errorf("requests with credentials were refused: %q", got)
	}
}

// TestExternallyManaged records what Debian's PEP 668 marker allows: pip
// refuses to install into the system or user site, but installs into a
// --target directory or a venv without --break-system-packages.
func TestExternallyManaged(t *testing.T) {
	t.Parallel()
	wheelhouse := Wheelhouse(t, BuildWheel(t, "", attrsx("1.0")))
	for _, args := range [][]string{
		{"--dry-run"},
		{"--dry-run", "--user"},
	} {
		out, err := pip(t, append(args, "--no-index", "--find-links", wheelhouse, "attrsx==1.0")...)
		if err == nil || !strings.Contains(out, "externally-managed-environment") {
			t.Errorf("pip install %s: err %v, output:\n%s\nwant externally-managed-environment", strings.Join(args, " "), err, out)
		}
	}
	// A venv without pip takes tens of milliseconds; Debian's pip installs
	// into it with --python.
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := python(t, nil, "-m", "venv", "--without-pip", venv); err != nil {
		t.Fatalf("python3 -m venv --without-pip: %v\n%s", err, out)
	}
	out, err := python(t, nil, "-m", "pip", "--isolated", "--no-input", "--python", filepath.Join(venv, "bin", "python"),
		"install", "--no-cache-dir", "--no-index", "--find-links", wheelhouse, "attrsx==1.0")
	if err != nil {
		t.Fatalf("pip --python venv/bin/python install: %v\n%s", err, out)
	}
	b, err := exec.Command(filepath.Join(venv, "bin", "python"), "-c", "import attrsx; print(attrsx.version())").CombinedOutput()
	if got := strings.TrimSpace(string(b)); err != nil || got != "1.0" {
		t.Errorf("venv python imports attrsx: %q, %v; want 1.0", got, err)
	}
}
