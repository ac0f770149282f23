package python

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// MinVersion is the oldest Python the shim supports.
const MinVersion = "3.8"

// Interpreter is a resolved Python interpreter.
type Interpreter struct {
	Path    string // the real executable (sys.executable), not a wrapper
	Version string // e.g. "3.11.2"
	// Prefix is the installation the interpreter runs from
	// (sys.base_prefix, e.g. /usr): a sandbox must make it readable.
	Prefix string
}

// Resolve finds the interpreter named python (a path or a name on PATH),
// asks it for its real executable — version managers such as pyenv put a
// shell-script wrapper on PATH that costs tens of milliseconds per start —
// and checks its version.
func Resolve(ctx context.Context, python string) (Interpreter, error) {
	p, err := exec.LookPath(python)
	if err != nil {
		return Interpreter{}, fmt.Errorf("find the Python interpreter %q: %w (install python3 or pass --python)", python, err)
	}
	cmd := exec.CommandContext(ctx, p, "-I", "-c", "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3]); print(sys.base_prefix)")
	cmd.Env = []string{"LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Interpreter{}, fmt.Errorf("run the Python interpreter %s: %w: %s", p, err, bytes.TrimSpace(stderr.Bytes()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || lines[0] == "" {
		return Interpreter{}, fmt.Errorf("the Python interpreter %s gave unexpected output %q", p, out)
	}
	in := Interpreter{Path: strings.TrimSpace(lines[0]), Version: strings.TrimSpace(lines[1]), Prefix: strings.TrimSpace(lines[2])}
	if !atLeast(in.Version, MinVersion) {
		return Interpreter{}, fmt.Errorf("the Python interpreter %s is version %s; agents need Python %s or newer", in.Path, in.Version, MinVersion)
	}
	return in, nil
}

// atLeast compares dotted versions numerically.
func atLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := range b {
		if i >= len(a) {
			return false
		}
		x, err1 := strconv.Atoi(a[i])
		y, err2 := strconv.Atoi(b[i])
		if err1 != nil || err2 != nil {
			return false
		}
		if x != y {
			return x > y
		}
	}
	return true
}
