package server

import (
	"database/sql"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/runagent/runagent/internal/dirlock"
	"github.com/runagent/runagent/internal/localreg"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// TestSecondServerOnDataDirRefused: a second server on a data directory
// in use is refused, naming the first, which keeps serving.
func TestSecondServerOnDataDirRefused(t *testing.T) {
	dir := t.TempDir()
	s, stop := open(t, Config{DataDir: dir, Auth: AuthNone})
	_, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir, Backend: sandboxtest.EchoBackend{}, Auth: AuthNone})
	var held *dirlock.HeldError
	if !errors.As(err, &held) || held.Info == nil || held.Info.Addr != s.Addr() || held.Info.PID != os.Getpid() {
		t.Fatalf("second Open: %v, want a HeldError naming pid %d at %s", err, os.Getpid(), s.Addr())
	}
	if got := get(t, s.URL()+"/api/v1/agents", ""); got != http.StatusOK {
		t.Errorf("the first server after the refused second: %d, want 200", got)
	}
	stop()
	_, stop = open(t, Config{DataDir: dir, Auth: AuthNone})
	stop()
}

func registryRow(t *testing.T, path, id string) (host string, port int, status string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT host, port, status FROM agents WHERE agent_id = ?`, id).Scan(&host, &port, &status); err != nil {
		t.Fatalf("local registry row of %s: %v", id, err)
	}
	return host, port, status
}

func TestLocalRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), localreg.FileName)
	s, stop := open(t, Config{AgentDirs: []string{"../../examples/hello"}, Auth: AuthNone, LocalRegistry: path})
	host, port, status := registryRow(t, path, helloID)
	if want := s.Addr(); host+":"+strconv.Itoa(port) != want || status != localreg.StatusRunning {
		t.Errorf("while serving: %s:%d %s, want %s running", host, port, status, want)
	}
	stop()
	if _, _, status := registryRow(t, path, helloID); status != localreg.StatusStopped {
		t.Errorf("after a clean stop: %s, want %s", status, localreg.StatusStopped)
	}
}

// TestLocalRegistryUnwritable: a registry that cannot be written costs a
// warning, never the server.
func TestLocalRegistryUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, stop := open(t, Config{AgentDirs: []string{"../../examples/hello"}, Auth: AuthNone, LocalRegistry: filepath.Join(file, localreg.FileName)})
	defer stop()
	if got := get(t, s.URL()+"/api/v1/agents", ""); got != http.StatusOK {
		t.Errorf("server with an unwritable local registry: %d, want 200", got)
	}
}

// TestLocalRegistryNonLoopback: a server on every address registers too
// (the registry is this machine's), at the loopback address.
func TestLocalRegistryNonLoopback(t *testing.T) {
	withOwnerKey(t)
	path := filepath.Join(t.TempDir(), localreg.FileName)
	s, stop := open(t, Config{Addr: "0.0.0.0:0", AgentDirs: []string{"../../examples/hello"}, LocalRegistry: path})
	defer stop()
	_, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if host, p, status := registryRow(t, path, helloID); host != "127.0.0.1" || strconv.Itoa(p) != port || status != localreg.StatusRunning {
		t.Errorf("server on 0.0.0.0: registered %s:%d %s, want 127.0.0.1:%s running", host, p, status, port)
	}
}
