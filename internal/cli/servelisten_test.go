package cli

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/server"
)

func TestListenAddr(t *testing.T) {
	for _, tt := range []struct {
		addr, host, port string
		addrSet          bool
		want, err        string
	}{
		{addr: "127.0.0.1:8450", want: "127.0.0.1:8450"},
		{addr: "127.0.0.1:8450", port: "9000", want: "127.0.0.1:9000"},
		{addr: "127.0.0.1:8450", host: "0.0.0.0", want: "0.0.0.0:8450"},
		{addr: "127.0.0.1:8450", host: "::1", port: "0", want: "[::1]:0"},
		{addr: "127.0.0.1:9", port: "1", addrSet: true, err: "give one"},
		{addr: "127.0.0.1:8450", port: "http", err: "want a port number"},
	} {
		got, err := listenAddr(tt.addr, tt.host, tt.port, tt.addrSet)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("listenAddr(%q, %q, %q) = %q, %v; want error %q", tt.addr, tt.host, tt.port, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("listenAddr(%q, %q, %q) = %q, %v; want %q", tt.addr, tt.host, tt.port, got, err, tt.want)
		}
	}
}

// TestFreePort: a taken default port moves to a free one in range; any
// other port is left alone, taken or not.
func TestFreePort(t *testing.T) {
	def := "127.0.0.1:" + strconv.Itoa(defaultPort)
	ln, err := net.Listen("tcp", def)
	if err != nil {
		t.Logf("port %d is taken already: %v", defaultPort, err)
	} else {
		defer ln.Close()
	}
	got, moved := freePort(def)
	_, p, _ := net.SplitHostPort(got)
	n, _ := strconv.Atoi(p)
	if !moved || n <= defaultPort || n > lastAutoPort {
		t.Errorf("freePort(%s) with it taken = %s, %v; want a port in %d-%d", def, got, moved, defaultPort+1, lastAutoPort)
	}
	if got, moved := freePort("127.0.0.1:9"); got != "127.0.0.1:9" || moved {
		t.Errorf("freePort of a non-default port = %s, %v", got, moved)
	}
}

func TestDefaultAgentDirs(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if got := defaultAgentDirs([]string{}); len(got) != 0 {
		t.Errorf("without a config: %q", got)
	}
	os.WriteFile(filepath.Join(dir, agentConfFile), []byte("{}"), 0o644)
	if got := defaultAgentDirs([]string{}); len(got) != 1 || got[0] != "." {
		t.Errorf("with a config in .: %q", got)
	}
	if got := defaultAgentDirs([]string{"a"}); len(got) != 1 || got[0] != "a" {
		t.Errorf("with a dir given: %q", got)
	}
}

type fakeRedeployer struct {
	mu   sync.Mutex
	dirs []string
	err  error
}

func (f *fakeRedeployer) Redeploy(_ context.Context, dir string) (*server.Redeployed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirs = append(f.dirs, dir)
	if f.err != nil {
		return nil, f.err
	}
	return &server.Redeployed{AgentID: "A", Name: "n", Version: "0123456789abcdef", Created: true}, nil
}

func (f *fakeRedeployer) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dirs)
}

// TestWatchAgentDirs: a changed file redeploys its directory and says
// so; a failed redeploy says why; an unchanged tree is left alone.
func TestWatchAgentDirs(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.py")
	os.WriteFile(main, []byte("x = 1\n"), 0o644)
	var out syncWriter
	e := &env{stdout: &out, stderr: &out}
	f := &fakeRedeployer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { e.watchAgentDirs(ctx, f, []string{dir}, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)
	if n := f.calls(); n != 0 {
		t.Fatalf("%d redeploys of an unchanged tree", n)
	}
	os.WriteFile(main, []byte("x = 22\n"), 0o644)
	waitFor(t, func() bool { return f.calls() == 1 })
	waitFor(t, func() bool { return strings.Contains(out.String(), "now serves version 0123456789ab") })
	f.mu.Lock()
	f.err = errors.New("main.py: syntax error")
	f.mu.Unlock()
	os.WriteFile(filepath.Join(dir, "new.py"), []byte("y = 2\n"), 0o644)
	waitFor(t, func() bool {
		return strings.Contains(out.String(), "redeploy failed (still serving the previous version): main.py: syntax error")
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
