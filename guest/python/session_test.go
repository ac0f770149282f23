//go:build linux

package python

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// shimSession is the shim running under python3 with the test holding the
// host end of its control channel.
type shimSession struct {
	t      *testing.T
	host   *os.File
	cmd    *exec.Cmd
	stderr *syncBuffer // stdout and stderr
}

// syncBuffer is a strings.Builder that the shim's stderr copier and the
// test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// sessionOptions say how to start the shim.
type sessionOptions struct {
	pre []string // python arguments before the shim's path (a -c script)
	env []string // added to LANG=C.UTF-8
	fd4 *os.File // handed over as fd 4, if set
}

// startShim starts the shim; the test's cleanup kills it.
func startShim(t *testing.T, o sessionOptions) *shimSession {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the tests (scripts/deps.sh installs it)")
	}
	shim, err := WriteShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	host, guestEnd := os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "guest")
	// With pre (a -c script), the shim's path is the script's argv[1].
	args := append(append([]string{"-I", "-B", "-u"}, o.pre...), shim)
	cmd := exec.Command(py, args...)
	cmd.Env = append([]string{"LANG=C.UTF-8"}, o.env...)
	cmd.ExtraFiles = []*os.File{guestEnd}
	if o.fd4 != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, o.fd4)
	}
	s := &shimSession{t: t, host: host, cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = s.stderr, s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	guestEnd.Close()
	if o.fd4 != nil {
		o.fd4.Close()
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		host.Close()
		cmd.Process.Kill()
		cmd.Wait()
		close(done)
	})
	go func() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	}()
	return s
}

// send writes one frame.
func (s *shimSession) send(msg any) {
	s.t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		s.t.Fatal(err)
	}
	var head [4]byte
	binary.BigEndian.PutUint32(head[:], uint32(len(b)))
	if _, err := s.host.Write(append(head[:], b...)); err != nil {
		s.t.Fatalf("sending %s: %v; stderr:\n%s", b, err, s.stderr.String())
	}
}

// recv reads one frame.
func (s *shimSession) recv() map[string]any {
	s.t.Helper()
	var head [4]byte
	if _, err := io.ReadFull(s.host, head[:]); err != nil {
		s.t.Fatalf("reading a frame: %v; stderr:\n%s", err, s.stderr.String())
	}
	b := make([]byte, binary.BigEndian.Uint32(head[:]))
	if _, err := io.ReadFull(s.host, b); err != nil {
		s.t.Fatalf("reading a frame: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

// writeTree writes files (path → content) under a new directory and
// returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
