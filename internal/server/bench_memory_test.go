package server

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// heldStreams is how many streams BenchmarkServerMemoryStreams holds open.
const heldStreams = 1000

// Environment of the stream-holding client process.
const (
	holdURLEnv = "RUNAGENT_BENCH_HOLD_URL"
	holdNEnv   = "RUNAGENT_BENCH_HOLD_N"
)

// BenchmarkServerMemoryStreams reports the server's resident memory at
// rest and with heldStreams SSE streams open (each has sent its first
// chunk; the agent waits before the next). The clients run in another
// process (this test binary, re-executed), so that only the server is
// measured.
func BenchmarkServerMemoryStreams(b *testing.B) {
	s := serve(b, Config{AgentDirs: []string{"../../examples/hello"}, Backend: sandboxtest.EchoBackend{ChunkDelay: 10 * time.Minute},
		Auth: AuthNone, MaxStreamsPerIP: 2 * heldStreams, MaxRunsPerPrincipal: 2 * heldStreams, MaxRunsPerAgent: 2 * heldStreams,
		MaxConcurrent: 2 * heldStreams, MaxInFlight: 4 * heldStreams, MaxConnsPerIP: 4 * heldStreams, MaxConns: 8 * heldStreams})
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	var rest, held float64
	for b.Loop() {
		// Return freed memory to the OS first, so that what the previous
		// round's streams left in the heap does not count as "at rest".
		debug.FreeOSMemory()
		r := selfRSS(b)
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), holdURLEnv+"="+s.URL()+"/api/v1/agents/"+helloID+"/run-stream", holdNEnv+"="+strconv.Itoa(heldStreams))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			stdin.Close()
			cmd.Wait()
			b.Fatalf("stream holder: %q %v", line, err)
		}
		debug.FreeOSMemory()
		h := selfRSS(b)
		stdin.Close() // the holder closes its streams and exits
		cmd.Wait()
		rest += r
		held += h
	}
	n := float64(b.N)
	b.ReportMetric(rest/n/1024, "rest-MiB")
	b.ReportMetric(held/n/1024, "streams-MiB")
	b.ReportMetric((held-rest)/n/heldStreams, "KiB/stream")
}

// selfRSS is this process's resident memory in KiB.
func selfRSS(tb testing.TB) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// holdStreams is the client process of BenchmarkServerMemoryStreams: it
// opens N SSE streams, waits for each one's first chunk, says "ready",
// and holds them until its stdin closes.
func holdStreams() int {
	url, n := os.Getenv(holdURLEnv), 0
	fmt.Sscan(os.Getenv(holdNEnv), &n)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost, t.MaxIdleConnsPerHost = 0, n
	c := &http.Client{Transport: t}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	bodies := make(chan io.Closer, n)
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(`{"entrypoint_tag":"generate_stream","input_args":[1,2]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "text/event-stream")
			resp, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			bodies <- resp.Body
			r := bufio.NewReader(resp.Body)
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					errs <- fmt.Errorf("stream ended before its first chunk (%d): %v", resp.StatusCode, err)
					return
				}
				if strings.HasPrefix(l, "event: data") {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, "stream holder:", err)
		return 1
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	close(bodies)
	for b := range bodies {
		b.Close()
	}
	return 0
}
