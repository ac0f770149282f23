package pyenvtest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// pip runs Debian's pip the way the dependency builder should: isolated
// from the machine's pip configuration (PIP_CONFIG_FILE=/dev/null skips
// every config file, /etc/pip.conf included; --isolated ignores PIP_*
// variables; the environment here has neither), never prompting, never
// caching. It returns pip's combined output.
func pip(t *testing.T, args ...string) (string, error) {
	t.Helper()
	base := []string{"-m", "pip", "--isolated", "--no-input", "--disable-pip-version-check", "install", "--no-cache-dir"}
	return python(t, nil, append(base, args...)...)
}

// python runs Debian's Python with a minimal environment plus env.
func python(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(Python, args...)
	home := t.TempDir()
	cmd.Dir = home
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8", "PIP_CONFIG_FILE=" + os.DevNull}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustPip installs into a new --target directory and returns it.
func mustPip(t *testing.T, args ...string) string {
	t.Helper()
	target := t.TempDir()
	start := time.Now()
	out, err := pip(t, append([]string{"--target", target}, args...)...)
	if err != nil {
		t.Fatalf("pip install %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("pip install %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return target
}

// run runs code with PYTHONPATH=target and returns its trimmed output.
func run(t *testing.T, target, code string) string {
	t.Helper()
	out, err := python(t, []string{"PYTHONPATH=" + target}, "-c", code)
	if err != nil {
		t.Fatalf("python -c %q with PYTHONPATH=%s: %v\n%s", code, target, err, out)
	}
	return strings.TrimSpace(out)
}
