//go:build linux

package executor

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
)

// reuseAgent counts its calls in a global, so a call served by a kept
// sandbox sees the count of the calls before it.
const reuseAgent = `import os, time
count = 0

def f(x):
    global count
    count += 1
    print("call %d of %s" % (count, x), flush=True)
    return {"count": count, "pid": os.getpid(), "s": os.environ.get("S", "")}

def slow(x):
    time.sleep(x)
    return 0

def boom(x):
    raise ValueError("boom")
`

type reuseReply struct {
	Count int    `json:"count"`
	PID   int    `json:"pid"`
	S     string `json:"s"`
}

// call runs req's f as user (with env, if any) and returns its reply
// and the run's exit.
func call(t *testing.T, e *Executor, req Request, user string, env map[string]string) (reuseReply, string) {
	t.Helper()
	req.UserID, req.Env = user, env
	req.Args = json.RawMessage(`["` + user + `"]`)
	res, exit, err := runExit(e, t.Context(), req)
	if err != nil {
		t.Fatalf("call as %q: %v (logs %q)", user, err, exit)
	}
	var r reuseReply
	if err := json.Unmarshal([]byte(res), &r); err != nil {
		t.Fatalf("reply %s: %v", res, err)
	}
	return r, exit
}

// runExit runs req and returns its result or error and the logs its
// Close reported.
func runExit(e *Executor, ctx context.Context, req Request) (result string, logs string, err error) {
	run, err := e.Start(ctx, req)
	if err != nil {
		return "", "", err
	}
	for {
		ev, err := run.Next()
		if err != nil {
			return "", run.Close().Logs, err
		}
		if ev.Kind == guest.Result {
			return string(ev.Value), run.Close().Logs, nil
		}
	}
}

func withTag(req Request, tag string, args string) Request {
	req.Entrypoint, _ = req.Config.Entrypoint(tag)
	req.Args = json.RawMessage(args)
	return req
}

func TestReusePerUser(t *testing.T) {
	e, b, req := realAgentExec(t, Config{PoolSize: -1}, reuseAgent, core.Resources{ReusePerUser: true}, "f", "slow", "boom")

	a1, logs1 := call(t, e, req, "alice", map[string]string{"S": "alice-secret"})
	a2, logs2 := call(t, e, req, "alice", nil)
	if a1.Count != 1 || a2.Count != 2 || a1.PID != a2.PID {
		t.Errorf("alice's calls = %+v then %+v; want counts 1, 2 in one process", a1, a2)
	}
	// Each call's logs are its own; the per-call environment does not
	// carry over.
	if logs1 != "call 1 of alice\n" || logs2 != "call 2 of alice\n" {
		t.Errorf("logs = %q then %q; want one line each", logs1, logs2)
	}
	if a1.S != "alice-secret" || a2.S != "" {
		t.Errorf("env S = %q then %q; want the first call's only", a1.S, a2.S)
	}

	// Another caller naming the same user_id, another user, and a call
	// without a user, never see alice's sandbox.
	other := req
	other.Caller = "key:someone-else"
	if o1, _ := call(t, e, other, "alice", nil); o1.Count != 1 || o1.PID == a1.PID {
		t.Errorf("another caller's call as alice = %+v; want a fresh sandbox", o1)
	}
	if b1, _ := call(t, e, req, "bob", nil); b1.Count != 1 || b1.PID == a1.PID {
		t.Errorf("bob's first call = %+v; want a fresh sandbox", b1)
	}
	if n1, _ := call(t, e, req, "", nil); n1.Count != 1 {
		t.Errorf("call without a user_id = %+v; want a fresh sandbox", n1)
	}
	if n2, _ := call(t, e, req, "", nil); n2.Count != 1 {
		t.Errorf("second call without a user_id = %+v; want a fresh sandbox", n2)
	}

	// An error raised by the agent keeps the sandbox; a timeout does not.
	if _, _, err := runExit(e, t.Context(), withTag(userReq(req, "alice"), "boom", "[0]")); err == nil {
		t.Fatal("boom did not fail")
	}
	if a3, _ := call(t, e, req, "alice", nil); a3.Count != 3 || a3.PID != a1.PID {
		t.Errorf("alice after her agent raised = %+v; want count 3 in the same process", a3)
	}
	slow := withTag(userReq(req, "alice"), "slow", "[30]")
	slow.Timeout = 200 * time.Millisecond
	_, _, err := runExit(e, t.Context(), slow)
	if ce, ok := errors.AsType[*core.Error](err); !ok || ce.Code != core.CodeAgentTimeout {
		t.Fatalf("slow = %v; want AGENT_TIMEOUT", err)
	}
	if a4, _ := call(t, e, req, "alice", nil); a4.Count != 1 || a4.PID == a1.PID {
		t.Errorf("alice after a timeout = %+v; want a fresh sandbox", a4)
	}

	st := e.Stats()
	if st.Reused != 4 || st.Kept != 3 {
		t.Errorf("Stats = %+v; want 4 reused runs and 3 kept sandboxes (alice, the other caller's alice, bob)", st)
	}
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAllReaped(t, b)
}

func userReq(req Request, user string) Request {
	req.UserID = user
	return req
}

func TestReuseIsOptIn(t *testing.T) {
	e, b, req := realAgentExec(t, Config{PoolSize: -1}, reuseAgent, core.Resources{}, "f")
	for i := range 2 {
		if r, _ := call(t, e, req, "alice", nil); r.Count != 1 {
			t.Errorf("call %d = %+v; an agent without reuse_per_user must get a fresh sandbox", i, r)
		}
	}
	if st := e.Stats(); st.Kept != 0 || st.Reused != 0 {
		t.Errorf("Stats = %+v; want nothing kept", st)
	}
	e.Shutdown(t.Context())
	checkAllReaped(t, b)
}

func TestReuseBounds(t *testing.T) {
	res := core.Resources{ReusePerUser: true}
	t.Run("idle", func(t *testing.T) {
		e, b, req := realAgentExec(t, Config{PoolSize: -1, ReuseIdle: 300 * time.Millisecond}, reuseAgent, res, "f")
		call(t, e, req, "alice", nil)
		waitFor(t, "the kept sandbox to expire", func() bool { return e.Stats().Kept == 0 })
		if r, _ := call(t, e, req, "alice", nil); r.Count != 1 {
			t.Errorf("call after the idle expiry = %+v; want a fresh sandbox", r)
		}
		e.Shutdown(t.Context())
		checkAllReaped(t, b)
	})
	t.Run("max", func(t *testing.T) {
		e, b, req := realAgentExec(t, Config{PoolSize: -1, ReuseMax: 1}, reuseAgent, res, "f")
		call(t, e, req, "alice", nil)
		call(t, e, req, "bob", nil) // evicts alice's
		if r, _ := call(t, e, req, "bob", nil); r.Count != 2 {
			t.Errorf("bob's second call = %+v; want his kept sandbox", r)
		}
		if r, _ := call(t, e, req, "alice", nil); r.Count != 1 {
			t.Errorf("alice's second call = %+v; want a fresh sandbox (hers was evicted)", r)
		}
		e.Shutdown(t.Context())
		checkAllReaped(t, b)
	})
	t.Run("runs", func(t *testing.T) {
		e, b, req := realAgentExec(t, Config{PoolSize: -1, ReuseRuns: 2}, reuseAgent, res, "f")
		var got []int
		for range 5 {
			r, _ := call(t, e, req, "alice", nil)
			got = append(got, r.Count)
		}
		if want := []int{1, 2, 1, 2, 1}; !slices.Equal(got, want) {
			t.Errorf("counts = %v; want %v (a sandbox serves at most 2 runs)", got, want)
		}
		e.Shutdown(t.Context())
		checkAllReaped(t, b)
	})
	t.Run("concurrent", func(t *testing.T) {
		// Two runs of one user at once: one sandbox is kept, the other
		// destroyed, and both calls' logs are reported.
		e, b, req := realAgentExec(t, Config{PoolSize: -1}, reuseAgent, res, "f")
		var wg sync.WaitGroup
		logs := make([]string, 2)
		for i := range 2 {
			wg.Go(func() { _, logs[i] = call(t, e, req, "alice", nil) })
		}
		wg.Wait()
		for i, l := range logs {
			if !strings.HasPrefix(l, "call 1 of alice") {
				t.Errorf("logs of concurrent call %d = %q", i, l)
			}
		}
		if st := e.Stats(); st.Kept != 1 {
			t.Errorf("Stats = %+v; want one kept sandbox", st)
		}
		e.Shutdown(t.Context())
		checkAllReaped(t, b)
	})
}
