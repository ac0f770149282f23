package python

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteShim(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache", "shims")
	path, err := WriteShim(dir)
	if err != nil {
		t.Fatalf("WriteShim: %v", err)
	}
	if got, want := filepath.Base(path), "shim-"+ShimHash+".py"; got != want {
		t.Errorf("shim file is %q, want %q", got, want)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Shim) {
		t.Errorf("written shim differs from the embedded one")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o444 {
		t.Errorf("shim mode is %v, want 0444", got)
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := dst.Mode().Perm(); got != 0o755 {
		t.Errorf("shim directory mode is %v, want 0755", got)
	}

	// Idempotent: the same path, the file untouched.
	again, err := WriteShim(dir)
	if err != nil || again != path {
		t.Fatalf("second WriteShim = %q, %v; want %q", again, err, path)
	}
	st2, _ := os.Stat(path)
	if !os.SameFile(st, st2) {
		t.Errorf("second WriteShim replaced an intact shim")
	}

	// A damaged file is replaced.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteShim(dir); err != nil {
		t.Fatalf("WriteShim over a damaged shim: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, Shim) {
		t.Errorf("damaged shim not replaced")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("shim directory holds %d entries, want 1 (no temp files left)", len(entries))
	}
}

func TestWriteShimConcurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := WriteShim(dir); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent WriteShim: %v", err)
	}
}

func TestWriteShimError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if path, err := WriteShim(filepath.Join(file, "dir")); err == nil {
		t.Errorf("WriteShim under a regular file = %q, want an error", path)
	}
}

func TestShimHash(t *testing.T) {
	if len(ShimHash) != 12 || strings.Trim(ShimHash, "0123456789abcdef") != "" {
		t.Errorf("ShimHash = %q, want 12 hex digits", ShimHash)
	}
}

// TestShimCompiles checks the shim is valid Python for the interpreter on
// this machine and, if one is installed, for Python 3.8's grammar.
func TestShimCompiles(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the tests (scripts/deps.sh installs it)")
	}
	path, err := WriteShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	script := `import ast, sys
src = open(sys.argv[1]).read()
compile(src, sys.argv[1], "exec")
ast.parse(src, feature_version=(3, 8))
`
	out, err := exec.Command(py, "-I", "-B", "-c", script, path).CombinedOutput()
	if err != nil {
		t.Errorf("shim does not compile: %v\n%s", err, out)
	}
}

func TestShimWithoutControlChannel(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the tests (scripts/deps.sh installs it)")
	}
	path, err := WriteShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-I", "-B", "-u", path)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "fd 3") {
		t.Errorf("shim without fd 3: exit %d (%v), output %q; want exit 2 naming fd 3", code, err, out)
	}
}

func TestCompileShim(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the tests (scripts/deps.sh installs it)")
	}
	src, err := WriteShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pyc, err := CompileShim(t.Context(), py, src)
	if err != nil {
		t.Fatalf("CompileShim: %v", err)
	}
	if dir, base := filepath.Split(pyc); dir != filepath.Dir(src)+"/" || !strings.HasPrefix(base, "shim-"+ShimHash+".") || !strings.HasSuffix(base, ".pyc") {
		t.Errorf("CompileShim wrote %q, want shim-%s.<tag>.pyc beside %s", pyc, ShimHash, src)
	}
	st, err := os.Stat(pyc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := CompileShim(t.Context(), py, src)
	if err != nil || again != pyc {
		t.Fatalf("second CompileShim = %q, %v; want %q", again, err, pyc)
	}
	if st2, _ := os.Stat(pyc); !os.SameFile(st, st2) {
		t.Errorf("second CompileShim rewrote the bytecode")
	}
	// The bytecode runs as the shim does.
	cmd := exec.Command(py, "-I", "-B", "-u", pyc)
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "fd 3") {
		t.Errorf("compiled shim without fd 3: exit %d, output %q; want exit 2 naming fd 3", code, out)
	}
}

func TestCompileShimErrors(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the tests (scripts/deps.sh installs it)")
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.py")
	if err := os.WriteFile(bad, []byte("def f(:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, python, shim string
	}{
		{"missing interpreter", "/nonexistent/python3", bad},
		{"missing shim", py, filepath.Join(dir, "absent.py")},
		{"syntax error", py, bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := CompileShim(t.Context(), tt.python, tt.shim); err == nil {
				t.Errorf("CompileShim(%q, %q) = %q, want an error", tt.python, tt.shim, got)
			}
		})
	}
}

// TestShimUnit runs the Python unit tests of the shim's internals
// (testdata/shim_test.py).
func TestShimUnit(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the tests (scripts/deps.sh installs it)")
	}
	path, err := WriteShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-I", "-B", filepath.Join("testdata", "shim_test.py"), path).CombinedOutput()
	if err != nil {
		t.Errorf("shim unit tests failed: %v\n%s", err, out)
	}
}
