package server

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"
)

// memoryAgentID is test/e2e/testdata/memory's agent.
const memoryAgentID = "7f1c2b3a-4d5e-4f60-8a9b-0c1d2e3f4a5c"

// BenchmarkRunStartMemory is a run's start with persistent memory against
// the same run without, through the server and the linux sandbox: POST
// /run of the memory test agent's "where" entrypoint, one at a time,
// request to answer, p50 reported per variant. "memory" asks for one
// user's memory (its store mounted and cached between runs, as for a
// user's next run; such a run is forked from the version's template on
// demand, with its mounts, and its cgroup made then); "started" is the
// same run without memory on a server without a warm pool (which has no
// fork server either: a sandbox started for the run); "pooled" is the
// same run without memory taken from the warm pool, the default path of a
// run without memory.
func BenchmarkRunStartMemory(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the linux sandbox and the memory stores' loop mounts need root on this machine")
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cfg := func(pool int) Config {
		return Config{AgentDirs: []string{"../../test/e2e/testdata/memory"}, Exe: exe, Version: "test", Auth: AuthNone,
			Sandbox: SandboxLinux, PoolSize: pool, Memory: MemoryConfig{Mode: MemoryOn}}
	}
	pooled := serve(b, cfg(0))
	noPool := serve(b, cfg(-1))
	memBody := []byte(`{"entrypoint_tag":"where","user_id":"bench-user","persistent_memory":true}`)
	plainBody := []byte(`{"entrypoint_tag":"where"}`)
	variants := []struct {
		name string
		s    *Server
		body []byte
	}{
		{"memory", pooled, memBody},
		{"started", noPool, plainBody},
		{"pooled", pooled, plainBody},
	}
	c := &http.Client{}
	call := func(s *Server, body []byte) time.Duration {
		start := time.Now()
		resp, err := c.Post(s.URL()+"/api/v1/agents/"+memoryAgentID+"/run", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(raw, []byte(`"success":true`)) {
			b.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
		return time.Since(start)
	}
	for _, v := range variants {
		call(v.s, v.body) // first use: template, store made and mounted
	}
	times := make([][]time.Duration, len(variants))
	for b.Loop() {
		// The variants in turn within every iteration, so that the load of
		// a shared machine falls on all of them alike; a pause lets the
		// pool refill and the last run's teardown end.
		for i, v := range variants {
			b.StopTimer()
			time.Sleep(30 * time.Millisecond)
			b.StartTimer()
			times[i] = append(times[i], call(v.s, v.body))
		}
	}
	b.StopTimer()
	for i, v := range variants {
		slices.Sort(times[i])
		b.ReportMetric(float64(times[i][len(times[i])/2].Nanoseconds()), v.name+"-p50-ns")
	}
}
