package python

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Shim is the source of the Python shim.
//
//go:embed shim.py
var Shim []byte

// ShimHash is a short hex SHA-256 of Shim; it names the written file, so
// binaries with different shims can share a cache directory.
var ShimHash = func() string {
	sum := sha256.Sum256(Shim)
	return hex.EncodeToString(sum[:6])
}()

// WriteShim writes the shim to dir/shim-<ShimHash>.py (read-only) and
// returns its path. It creates dir (0755) if needed, replaces the file
// atomically, and does nothing when the file already holds the shim, so it
// is safe to call at every start and from concurrent processes.
func WriteShim(dir string) (path string, err error) {
	return writeScript(dir, "shim-"+ShimHash+".py", Shim)
}

// Build is the source of the environment builder that runs pip inside a
// build sandbox (see build.py).
//
//go:embed build.py
var Build []byte

// WriteBuild writes the builder to dir, as WriteShim writes the shim.
func WriteBuild(dir string) (path string, err error) {
	sum := sha256.Sum256(Build)
	return writeScript(dir, "build-"+hex.EncodeToString(sum[:6])+".py", Build)
}

// writeScript writes content to dir/name (read-only) unless it holds it
// already, atomically.
func writeScript(dir, name string, content []byte) (path string, err error) {
	path = filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, content) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s's directory: %w", name, err)
	}
	f, err := os.CreateTemp(dir, ".script-*.tmp")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(content); err != nil {
		f.Close()
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Chmod(0o444); err != nil {
		f.Close()
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	return path, nil
}

// compileScript compiles argv[1] to <argv[1] without .py>.<cache tag>.pyc
// unless that exists, and prints the .pyc's path.
const compileScript = `import os, py_compile, sys
src = sys.argv[1]
tag = sys.implementation.cache_tag
if tag is None:
    sys.exit("this Python does not cache bytecode")
out = os.path.splitext(src)[0] + "." + tag + ".pyc"
if not os.path.isfile(out):
    py_compile.compile(src, cfile=out, dfile=src, doraise=True)
print(out)
`

// CompileShim compiles the shim at shimPath (written by WriteShim) to
// bytecode for the interpreter python and returns the path of the .pyc.
// The supervisor can run that path in place of the source, which spares
// Python compiling the shim at every start (about 3 ms of a ~25 ms start).
// The .pyc sits beside the source, named with the interpreter's cache tag
// (shim-<hash>.cpython-311.pyc), so versions do not collide; it is written
// atomically, and reused when present. Only python may run it.
func CompileShim(ctx context.Context, python, shimPath string) (string, error) {
	cmd := exec.CommandContext(ctx, python, "-I", "-B", "-c", compileScript, shimPath)
	cmd.Env = []string{"LANG=C.UTF-8"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("compiling shim with %s: %w: %s", python, err, bytes.TrimSpace(stderr.Bytes()))
	}
	path := strings.TrimSpace(string(out))
	if !strings.HasSuffix(path, ".pyc") {
		return "", fmt.Errorf("compiling shim with %s: unexpected output %q", python, out)
	}
	return path, nil
}
