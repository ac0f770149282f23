package deploy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var nodeRE = regexp.MustCompile(`^\s+node (\d)\s+(http://\S+)`)

// clusterEnv is the environment of scripts/cluster.sh for a test: its own
// directory (under /tmp, which the postgres user can reach, unlike
// t.TempDir's parent), free ports, and the binary under test.
func clusterEnv(t *testing.T) (dir string, env []string) {
	t.Helper()
	parent, err := os.MkdirTemp("", "cluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	dir = filepath.Join(parent, "cluster")
	return dir, append(os.Environ(),
		"RUNAGENT_CLUSTER_DIR="+dir,
		"RUNAGENT_BIN="+binary,
		fmt.Sprintf("RUNAGENT_CLUSTER_PORTS=%d %d %d", freePort(t), freePort(t), freePort(t)),
		fmt.Sprintf("RUNAGENT_CLUSTER_PG_PORT=%d", freePort(t)),
		fmt.Sprintf("RUNAGENT_CLUSTER_REDIS_PORT=%d", freePort(t)),
		"RUNAGENT_API_KEY=", "RUNAGENT_STORE_URL=", "RUNAGENT_REDIS_URL=", "RUNAGENT_DATA_DIR=",
	)
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S …: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// readPid reads the first line of a pid file.
func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("pid file %s: %q", path, line)
	}
	return pid
}

// cluster is a running scripts/cluster.sh.
type cluster struct {
	dir    string
	env    []string
	start  *exec.Cmd
	nodes  map[string]string // "1" -> its URL
	exited chan error
	// stopped: the test stopped the cluster itself; otherwise cleanup does.
	stopped bool
}

// startCluster runs scripts/cluster.sh until it reports the cluster
// ready. It stops the cluster when t ends unless the test did.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{nodes: map[string]string{}, exited: make(chan error, 1)}
	c.dir, c.env = clusterEnv(t)
	c.start = exec.Command(repoFile("scripts/cluster.sh"))
	c.start.Env = c.env
	stdout, err := c.start.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, stderr lockedBuffer
	errPipe, err := c.start.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.start.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			stderr.WriteLine(sc.Text())
		}
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			out.WriteLine(line)
			if m := nodeRE.FindStringSubmatch(line); m != nil {
				c.nodes[m[1]] = m[2]
			}
			if strings.HasPrefix(line, "Stop:") {
				close(ready)
			}
		}
		c.exited <- c.start.Wait()
	}()
	t.Cleanup(func() {
		if !c.stopped {
			stop := exec.Command(repoFile("scripts/cluster.sh"), "stop")
			stop.Env = c.env
			stop.Run()
			c.start.Process.Kill()
		}
		if t.Failed() {
			t.Logf("cluster.sh output:\n%s\n%s", out.String(), stderr.String())
		}
	})
	select {
	case <-ready:
	case err := <-c.exited:
		t.Fatalf("cluster.sh exited before the cluster was ready: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatalf("cluster.sh did not report the cluster ready within 3 minutes")
	}
	if len(c.nodes) != 3 {
		t.Fatalf("cluster.sh named nodes %v, want 3", c.nodes)
	}
	for n, u := range c.nodes {
		if code, body := get(t, u+"/api/v1/health"); code != 200 || !strings.Contains(body, `"healthy"`) {
			t.Errorf("node %s health: %d %s", n, code, body)
		}
	}
	return c
}

// pids returns every process the cluster started, by what it is.
func (c *cluster) pids(t *testing.T) map[string]int {
	t.Helper()
	pids := map[string]int{"postgres": readPid(t, filepath.Join(c.dir, "pg", "data", "postmaster.pid")), "redis": readPid(t, filepath.Join(c.dir, "redis.pid"))}
	for n := range c.nodes {
		pids["node "+n] = readPid(t, filepath.Join(c.dir, "node"+n+".pid"))
	}
	for what, pid := range pids {
		if !running(pid) {
			t.Errorf("%s (pid %d) is not running", what, pid)
		}
	}
	return pids
}

// checkGone waits for the starting script to exit 0 and checks that
// nothing the cluster started runs or listens, and its directory is gone.
func (c *cluster) checkGone(t *testing.T, pids map[string]int) {
	t.Helper()
	select {
	case err := <-c.exited:
		if err != nil {
			t.Errorf("cluster.sh exited with %v after stop, want 0", err)
		}
	case <-time.After(2 * time.Minute):
		// The script gives each process 20 s, then kills it, and
		// PostgreSQL 30 s: past those bounds it hangs.
		t.Fatalf("cluster.sh still runs two minutes after stop")
	}
	for what, pid := range pids {
		if running(pid) {
			t.Errorf("%s (pid %d) still runs after stop", what, pid)
		}
	}
	for _, u := range c.nodes {
		host := strings.TrimPrefix(u, "http://")
		if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after stop", host)
		}
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s after stop: %v, want it removed", c.dir, err)
	}
}

// TestClusterScript: scripts/cluster.sh starts PostgreSQL, Redis and
// three nodes on loopback; all three answer health, an agent deployed
// through the first runs through the third (what the script tells a
// newcomer to try), 'scripts/cluster.sh stop' stops everything (the
// starting script exits 0) and leaves no process, no listening port and
// no directory behind.
func TestClusterScript(t *testing.T) {
	c := startCluster(t)
	key, err := os.ReadFile(filepath.Join(c.dir, "owner-key"))
	if err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(c.env, "RUNAGENT_API_KEY="+strings.TrimSpace(string(key)))
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("runagent %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	cli("deploy", repoFile("examples/hello"), "--server", c.nodes["1"])
	if got := cli("run", "--id", "6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b", "--tag", "echo", "--message", "from-node-3", "--server", c.nodes["3"]); !strings.Contains(got, "from-node-3") {
		t.Errorf("run on node 3 of the agent deployed on node 1: %s", got)
	}

	pids := c.pids(t)
	stop := exec.Command(repoFile("scripts/cluster.sh"), "stop")
	stop.Env = c.env
	if b, err := stop.CombinedOutput(); err != nil {
		t.Errorf("cluster.sh stop: %v\n%s", err, b)
	}
	c.stopped = true
	c.checkGone(t, pids)
}

// TestClusterScriptInterrupt: Ctrl-C (SIGINT to the script; its
// children run in sessions of their own, so the script stops them in
// order) stops everything as 'stop' does.
func TestClusterScriptInterrupt(t *testing.T) {
	c := startCluster(t)
	pids := c.pids(t)
	if err := c.start.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	c.stopped = true
	c.checkGone(t, pids)
}

// TestClusterScriptPrerequisites: without redis-server and curl the
// script starts nothing and says which Debian package to install.
func TestClusterScriptPrerequisites(t *testing.T) {
	dir, env := clusterEnv(t)
	// A PATH of everything the system has but those two.
	bin := t.TempDir()
	for _, sys := range []string{"/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin", "/sbin"} {
		entries, _ := os.ReadDir(sys)
		for _, e := range entries {
			if e.Name() == "redis-server" || e.Name() == "curl" {
				continue
			}
			os.Symlink(filepath.Join(sys, e.Name()), filepath.Join(bin, e.Name())) // the first of a name wins
		}
	}
	for i, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			env[i] = "PATH=" + bin
		}
	}
	cmd := exec.Command("/bin/bash", repoFile("scripts/cluster.sh"))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("cluster.sh without redis-server and curl succeeded:\n%s", out)
	}
	for _, want := range []string{"apt-get install redis-server", "apt-get install curl"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cluster.sh without redis-server and curl does not say %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster.sh made %s although it could not start: %v", dir, err)
	}
}
