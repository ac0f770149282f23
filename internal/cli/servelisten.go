package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/runagent/runagent/internal/server"
)

// Ports serve tries, in order, when the default one is taken and no port
// was asked for (RunAgent's local server allocates the same way).
const (
	defaultPort   = 8450
	lastAutoPort  = 8500
	agentConfFile = "runagent.config.json"
)

// listenAddr is the address serve listens on: --addr, or --host and
// --port in its place (either alone keeps the other half of --addr).
func listenAddr(addr, host, port string, addrSet bool) (string, error) {
	if host == "" && port == "" {
		return addr, nil
	}
	if addrSet {
		return "", errors.New("--addr and --host/--port both say where to listen: give one")
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %w", addr, err)
	}
	if host != "" {
		h = host
	}
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
			return "", fmt.Errorf("--port %q: want a port number", port)
		}
		p = port
	}
	return net.JoinHostPort(h, p), nil
}

// freePort returns addr, or, when addr's port is the default and taken,
// the same host on the first free port up to lastAutoPort. moved says
// whether it chose another port.
func freePort(addr string) (_ string, moved bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil || p != strconv.Itoa(defaultPort) {
		return addr, false
	}
	for port := defaultPort; port <= lastAutoPort; port++ {
		try := net.JoinHostPort(h, strconv.Itoa(port))
		ln, err := net.Listen("tcp", try)
		if err == nil {
			ln.Close()
			return try, port != defaultPort
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			// Not a busy port (a host not on this machine, say):
			// let the server report it.
			return addr, false
		}
	}
	return addr, false
}

// defaultAgentDirs is serve's directories when none is given: "." when
// it holds an agent project, as RunAgent's serve, or none.
func defaultAgentDirs(args []string) []string {
	if len(args) == 0 {
		if _, err := os.Stat(agentConfFile); err == nil {
			return []string{"."}
		}
	}
	return args
}

// treeStamp sums up the files of an agent directory (names, sizes and
// modification times), skipping what deploy leaves out anyway, so that
// a change shows as a different stamp.
func treeStamp(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != dir {
			switch d.Name() {
			case ".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache":
				return filepath.SkipDir
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d %d\n", path, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// redeployer is what watchAgentDirs needs of the server.
type redeployer interface {
	Redeploy(ctx context.Context, dir string) (*server.Redeployed, error)
}

// watchAgentDirs redeploys each of dirs when its files change (polled
// every interval), until ctx ends, and says on stderr what it
// redeployed or why that failed; on failure the old version is served.
func (e *env) watchAgentDirs(ctx context.Context, srv redeployer, dirs []string, interval time.Duration) {
	stamps := make([]string, len(dirs))
	for i, d := range dirs {
		stamps[i], _ = treeStamp(d)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i, d := range dirs {
			st, err := treeStamp(d)
			if err != nil || st == stamps[i] {
				continue
			}
			stamps[i] = st
			res, err := srv.Redeploy(ctx, d)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				fmt.Fprintf(e.stderr, "reload: %s changed, but its redeploy failed (still serving the previous version): %v\n", d, err)
			case res.Created:
				fmt.Fprintf(e.stderr, "reload: %s changed: agent %s (%s) now serves version %.12s\n", d, res.AgentID, res.Name, res.Version)
			default:
				fmt.Fprintf(e.stderr, "reload: %s changed, but not what is deployed: agent %s stays at version %.12s\n", d, res.AgentID, res.Version)
			}
		}
	}
}

// hurryOnSecondSignal waits for the first interrupt (ctx done), then for
// a second during the drain, which stops running invocations at once.
// It returns when served is closed.
func (e *env) hurryOnSecondSignal(ctx context.Context, stopFirst func(), served <-chan struct{}, srv interface{ StopNow() }) {
	select {
	case <-ctx.Done():
	case <-served:
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	stopFirst()
	fmt.Fprintln(e.stderr, "Stopping: waiting for running invocations (Ctrl-C again to stop them now).")
	select {
	case <-sig:
		fmt.Fprintln(e.stderr, "Stopping now: running invocations are killed.")
		srv.StopNow()
	case <-served:
	}
}
