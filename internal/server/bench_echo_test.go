package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/auth/apikey"
)

// Issue 16's load: echoClients clients at once, each sending its next
// request as soon as it has read the answer to the last.
const (
	echoClients = 16
	// echoWindow is how long one server is driven in a round; a round
	// drives each server once, in turn, so machine noise falls on both.
	echoWindow = 1500 * time.Millisecond
	// echoWarmup is driven once per server before the rounds, uncounted:
	// connections opened, the warm pool filled, Python's caches warm.
	echoWarmup = 500 * time.Millisecond
)

// baselinePython runs the FastAPI baseline: Debian's interpreter, with
// python3-fastapi and python3-uvicorn (scripts/deps.sh installs them).
const baselinePython = "/usr/bin/python3"

// BenchmarkEchoThroughput is issue 16's throughput comparison: 16
// clients over loopback HTTP, each with an API key, calling examples/hello's
// echo entrypoint as fast as answers come, against runagent (durable
// audit, each run in a fresh sandbox taken from the warm pool) and against
// a FastAPI + uvicorn server of RunAgent's shape that calls the same echo
// function in its own process and commits one SQLite row per run
// (testdata/baseline/fastapi_echo.py). Both servers run throughout; each
// iteration is a round that drives one for echoWindow, then the other,
// the order swapped every round. It reports runs/s and the p50 and p99 of
// request-to-answer latency for both (the baseline's as fastapi-…).
func BenchmarkEchoThroughput(b *testing.B) {
	b.Run("linux", func(b *testing.B) {
		if os.Geteuid() != 0 {
			b.Skip("the linux sandbox needs root on this machine: no figures for runagent's default backend")
		}
		benchEcho(b, echoSetup{backend: SandboxLinux})
	})
	b.Run("linux-smalldisk", func(b *testing.B) {
		if os.Geteuid() != 0 {
			b.Skip("the linux sandbox needs root on this machine: no figures for it")
		}
		benchEcho(b, echoSetup{backend: SandboxLinux, diskMB: 128})
	})
	b.Run("linux-nofork", func(b *testing.B) {
		if os.Geteuid() != 0 {
			b.Skip("the linux sandbox needs root on this machine: no figures for it without its fork server")
		}
		benchEcho(b, echoSetup{backend: SandboxLinux, noFork: true})
	})
	b.Run("process", func(b *testing.B) { benchEcho(b, echoSetup{backend: SandboxProcess}) })
}

// echoSetup is how runagent runs in one sub-benchmark.
type echoSetup struct {
	backend string
	noFork  bool // start a sandbox per run instead of forking it from a template
	// diskMB, if set, is the echo agent's resources.disk_mb: within half
	// its memory (the default 512 MiB), a forked run's writable layers are
	// a tmpfs; the default 1 GiB is a scratch disk image per run.
	diskMB int
}

// benchEcho drives runagent set up as es against the baseline.
func benchEcho(b *testing.B, es echoSetup) {
	token := withOwnerKey(b)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	agentDir := "../../examples/hello"
	if es.diskMB > 0 {
		agentDir = helloWithDisk(b, es.diskMB)
	}
	s := serve(b, Config{AgentDirs: []string{agentDir}, Exe: exe, Sandbox: es.backend, Version: "test", NoForkServer: es.noFork})
	baseKey, _, _ := apikey.New()
	base := startFastAPIBaseline(b, helloID, baseKey)

	ours := echoTarget{url: s.URL() + "/api/v1/agents/" + helloID + "/run", key: token, c: echoClient()}
	theirs := echoTarget{url: base + "/api/v1/agents/" + helloID + "/run", key: baseKey, c: echoClient()}
	for _, t := range []echoTarget{ours, theirs} {
		if _, err := t.drive(echoWarmup); err != nil {
			b.Fatal(err)
		}
	}
	type turn struct {
		t    echoTarget
		load *echoLoad
	}
	var a, f echoLoad
	round := []turn{{ours, &a}, {theirs, &f}}
	b.ResetTimer()
	for b.Loop() {
		for _, r := range round {
			l, err := r.t.drive(echoWindow)
			if err != nil {
				b.Fatal(err)
			}
			r.load.add(l)
		}
		// Whoever went second goes first next time, so what one server
		// leaves behind (a pool refilling, sandboxes torn down) weighs on
		// both alike.
		slices.Reverse(round)
	}
	b.StopTimer()
	a.report(b, "")
	f.report(b, "fastapi-")
}

// echoTarget is one server's run endpoint, its API key and the client
// that calls it.
type echoTarget struct {
	url, key string
	c        *http.Client
}

// echoClient keeps a connection per client open between requests.
func echoClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 2 * echoClients
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// echoLoad is what the clients measured: runs answered, the time they
// took (first request sent to last answer read) and every run's latency.
type echoLoad struct {
	runs    int
	elapsed time.Duration
	latency []time.Duration
}

func (l *echoLoad) add(o echoLoad) {
	l.runs += o.runs
	l.elapsed += o.elapsed
	l.latency = append(l.latency, o.latency...)
}

func (l *echoLoad) report(b *testing.B, prefix string) { l.reportAs(b, prefix, "runs/s") }

// drive runs echoClients clients against t until d has passed, each
// starting its next run as soon as its last is answered; runs in flight
// at the deadline are awaited and counted. Any answer but a successful
// run is an error.
func (t echoTarget) drive(d time.Duration) (echoLoad, error) {
	return driveClients(echoClients, d, func(int) error { return t.run() })
}

// driveClients runs n clients until d has passed, client i calling do(i)
// again as soon as its last call returned; calls in flight at the
// deadline are awaited and counted. The first error stops its client
// and is returned.
func driveClients(n int, d time.Duration, do func(client int) error) (echoLoad, error) {
	var (
		mu    sync.Mutex
		load  echoLoad
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := range n {
		wg.Go(func() {
			var lat []time.Duration
			var err error
			for err == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				if err = do(i); err == nil {
					lat = append(lat, time.Since(t0))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			load.runs += len(lat)
			load.latency = append(load.latency, lat...)
			if first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	load.elapsed = time.Since(start)
	return load, first
}

// run is one POST /run of the echo entrypoint, its answer read and checked.
func (t echoTarget) run() error {
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(echoBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.key)
	resp, err := t.c.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var env struct {
		Success bool    `json:"success"`
		Data    *string `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &env) != nil || !env.Success || env.Data == nil {
		return fmt.Errorf("POST %s: %d %s", t.url, resp.StatusCode, body)
	}
	return nil
}

// startFastAPIBaseline starts testdata/baseline/fastapi_echo.py serving
// agentID with key on a free loopback port, waits until it answers its
// health check and returns its base URL. The server stops when tb ends,
// also when it fails.
func startFastAPIBaseline(tb testing.TB, agentID, key string) string {
	tb.Helper()
	// The server inherits the listening socket: no race for the port.
	// Plain TCP: Go listens with MPTCP where the kernel has it, and
	// asyncio turns Nagle's algorithm off only on sockets whose protocol
	// is TCP, so on an MPTCP socket every answer (headers, then body)
	// would wait ~40 ms for the client's delayed ACK.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	sock, err := ln.(*net.TCPListener).File()
	ln.Close() // sock is a duplicate: the socket keeps listening
	if err != nil {
		tb.Fatal(err)
	}
	defer sock.Close()
	cmd := exec.Command(baselinePython, "testdata/baseline/fastapi_echo.py", agentID, filepath.Join(tb.TempDir(), "baseline.db"))
	cmd.Env = append(os.Environ(), "BASELINE_API_KEY="+key)
	cmd.ExtraFiles = []*os.File{sock} // fd 3
	var out bytes.Buffer              // read only once the process has exited
	cmd.Stdout, cmd.Stderr = &out, &out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start the FastAPI baseline with %s (scripts/deps.sh installs it): %v", baselinePython, err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			tb.Fatalf("the FastAPI baseline exited (%v); scripts/deps.sh installs python3-fastapi and python3-uvicorn:\n%s", waitErr, out.Bytes())
		default:
		}
		if resp, err := c.Get(url + "/api/v1/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("the FastAPI baseline did not answer its health check at %s within 30 s", url)
	return ""
}

// helloWithDisk returns a copy of examples/hello whose config asks for
// diskMB of disk.
func helloWithDisk(b *testing.B, diskMB int) string {
	b.Helper()
	dir := b.TempDir()
	os.Chmod(dir, 0o755)
	for _, name := range []string{"main.py", "runagent.config.json"} {
		data, err := os.ReadFile(filepath.Join("../../examples/hello", name))
		if err != nil {
			b.Fatal(err)
		}
		if name == "runagent.config.json" {
			var cfg map[string]any
			if err := json.Unmarshal(data, &cfg); err != nil {
				b.Fatal(err)
			}
			cfg["resources"] = map[string]any{"disk_mb": diskMB}
			if data, err = json.Marshal(cfg); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}
