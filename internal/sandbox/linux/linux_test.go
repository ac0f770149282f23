//go:build linux

package linux

import (
	"testing"

	"github.com/runagent/runagent/internal/sandbox"
)

func TestHelloEndToEnd(t *testing.T) {
	e := mustEnv(t)
	before := mounts(t)
	const src = `import os, sys
def hello(name):
    print("to stdout", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    return {"hi": name, "cwd": os.getcwd(), "uid": os.getuid(), "pid": os.getpid(), "host": os.uname().nodename}
`
	a := startAgent(t, e, src, sandbox.Spec{ID: "hello"}, "hello")
	got := decode(t, a.call(t, "hello", `["you"]`))
	t.Logf("result %v", got)
	if got["hi"] != "you" || got["cwd"] != AgentMount || got["uid"] != agentUID() || got["host"] != "sandbox" {
		t.Errorf("hello returned %v", got)
	}
	exit := a.sb.Wait()
	if exit.Code != 0 {
		t.Errorf("exit %+v", exit)
	}
	if exit.Logs != "to stdout\nto stderr\n" {
		t.Errorf("logs %q", exit.Logs)
	}
	if m := newMounts(before, mounts(t)); len(m) != 0 {
		t.Errorf("new host mounts %q", m)
	}
}
