//go:build linux

package linux

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// nobody is the uid:gid the unprivileged run uses.
const nobody = 65534

// TestUnprivilegedServer reruns the sandbox tests as an unprivileged
// server (uid 65534), where only the server's uid maps into the sandbox.
func TestUnprivilegedServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching to uid 65534 needs root; a run as an unprivileged user is itself this case")
	}
	if testing.Short() {
		t.Skip("-short: this reruns the whole sandbox suite as uid 65534 (several seconds)")
	}
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "runagent-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "linux.test")
	copyFile(t, exe, bin, 0o755)
	if err := os.Mkdir(filepath.Join(dir, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "testdata/hostile.py", filepath.Join(dir, "testdata", "hostile.py"), 0o644)
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run",
		"^(TestHelloEndToEnd|TestHostile.*|TestIdentity|TestFDExhaustion|TestForkBomb|TestDiskFill|TestKillLeavesNothing|TestExitStatusAndLogs|TestStartErrors|TestEgress|TestNoNetworkWithoutEgress|TestNoProcessCreation|TestAgentDirWritable|TestAgentDirDiskLimit|TestEnvAndOutDirs|TestMountinfo|TestStartUndoes|TestMounts|TestMountEscapes|TestMountPointSymlinkRefused)$")
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + tmp, "TMPDIR=" + tmp, "PATH=/usr/bin:/bin", "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tests as uid %d failed: %v\n%s", nobody, err, out)
	}
	t.Logf("as uid %d: %s", nobody, out)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
