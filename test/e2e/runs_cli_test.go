package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRunsCLIE2E drives background runs from the CLI on real sandboxes:
// run --async then runs wait prints the result; runs cancel of a spinning
// agent leaves it cancelled; run-stream --async then runs stream prints
// every chunk of a slow stream once, from the first or after any.
func TestRunsCLIE2E(t *testing.T) {
	needSandbox(t)
	s := startServer(t)

	out, errOut, err := cliResult(s, "run", "--async", "--id", agentID, "--tag", "sleeps", "--seconds=1")
	if err != nil {
		t.Fatalf("run --async: %v\n%s", err, errOut)
	}
	id := strings.TrimSpace(out)
	if !strings.Contains(errOut, "runagent runs wait "+id) {
		t.Errorf("run --async: stderr does not say how to follow %q:\n%s", id, errOut)
	}
	if out := cli(t, s, "runs", "wait", id, "--timeout", "60s"); out != "woke\n" {
		t.Errorf("runs wait printed %q, want woke", out)
	}

	// A busy agent, cancelled from the CLI.
	out, errOut, err = cliResult(s, "run", "--async", "--id", agentID, "--tag", "spins", "--seconds=60")
	if err != nil {
		t.Fatalf("run --async spins: %v\n%s", err, errOut)
	}
	spinning := strings.TrimSpace(out)
	time.Sleep(500 * time.Millisecond) // let it start spinning
	start := time.Now()
	if out := cli(t, s, "runs", "cancel", spinning); !strings.Contains(out, "invocation "+spinning+" cancelled (cancelled by") {
		t.Errorf("runs cancel printed %q", out)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("runs cancel took %s (the server stops a run within 1 s)", took)
	}
	if _, inv := s.invocation(t, spinning, ""); inv.Status != "cancelled" {
		t.Errorf("record after runs cancel: %+v, want cancelled", inv)
	}
	if _, errOut, err := cliResult(s, "runs", "wait", spinning); err == nil || !strings.Contains(errOut, "CANCELLED") {
		t.Errorf("runs wait of a cancelled run: %v, stderr %q; want exit 1 saying CANCELLED", err, errOut)
	}
	if _, errOut, err := cliResult(s, "runs", "cancel", spinning); err == nil || !strings.Contains(errOut, "CONFLICT") {
		t.Errorf("second runs cancel: %v, stderr %q; want exit 1 with CONFLICT", err, errOut)
	}

	// A slow stream left running, followed from the CLI.
	const n = 8
	out, errOut, err = cliResult(s, "run-stream", "--async", "--id", agentID, "--tag", "slow_stream", fmt.Sprintf("--n=%d", n), "--delay=0.15")
	if err != nil {
		t.Fatalf("run-stream --async: %v\n%s", err, errOut)
	}
	stream := strings.TrimSpace(out)
	out, errOut, err = cliResult(s, "runs", "stream", stream, "--raw")
	if err != nil {
		t.Fatalf("runs stream: %v\n%s", err, errOut)
	}
	if got := chunkNumbers(t, out); fmt.Sprint(got) != fmt.Sprint(seq(0, n)) {
		t.Errorf("runs stream printed chunks %v, want each of 0..%d once, in order", got, n-1)
	}
	if !strings.Contains(errOut, fmt.Sprintf("(%d chunks in", n)) {
		t.Errorf("runs stream: stderr %q", errOut)
	}
	if _, inv := s.invocation(t, stream, ""); inv.Status != "completed" || inv.Chunks != n {
		t.Errorf("record: %+v, want completed with %d chunks (the stream went on after run-stream --async left)", inv, n)
	}
	out = cli(t, s, "runs", "stream", stream, "--after", "5", "--raw")
	if got := chunkNumbers(t, out); fmt.Sprint(got) != fmt.Sprint(seq(6, n)) {
		t.Errorf("runs stream --after 5 printed chunks %v, want %v", got, seq(6, n))
	}
}

// chunkNumbers reads the "i" of each chunk slow_stream yields, one JSON
// object a line (--raw).
func chunkNumbers(t *testing.T, out string) []int {
	t.Helper()
	var got []int
	for line := range strings.Lines(out) {
		var c struct {
			I int `json:"i"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("chunk line %q: %v", line, err)
		}
		got = append(got, c.I)
	}
	return got
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}
