//go:build linux

package linux

import (
	"testing"

	"github.com/runagent/runagent/internal/sandbox"
)

// noProcAgent tries each way of creating a process and reports the outcome
// as a value. Module-level code runs before the shim installs the filter
// (Limits.NoProcessCreation covers the call only), so IMPORT_SPAWN works.
const noProcAgent = `import errno, os, subprocess, threading

def _try(f):
    try:
        return {"ok": True, "value": f()}
    except BaseException as e:
        return {"ok": False, "type": type(e).__name__, "errno": errno.errorcode.get(getattr(e, "errno", None) or 0)}

IMPORT_SPAWN = _try(lambda: subprocess.run(["/bin/true"]).returncode)

def _fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid

def _spawn():
    pid = os.posix_spawn("/bin/true", ["/bin/true"], {})
    os.waitpid(pid, 0)
    return pid

def _fexecve():
    fd = os.open("/bin/true", os.O_RDONLY)
    os.execve(fd, ["/bin/true"], {})  # execveat(fd, "", AT_EMPTY_PATH)

def _thread():
    out = []
    t = threading.Thread(target=lambda: out.append(threading.get_ident()))
    t.start()
    t.join()
    return len(out)

def probe():
    # An exec that got through would replace the process: no result.
    return {
        "import_subprocess": IMPORT_SPAWN,
        "fork": _try(_fork),
        "subprocess": _try(lambda: subprocess.run(["/bin/true"]).returncode),
        "posix_spawn": _try(_spawn),
        "execv": _try(lambda: os.execv("/bin/true", ["/bin/true"])),
        "fexecve": _try(_fexecve),
        "thread": _try(_thread),
        "env": os.environ.get("RUNAGENT_SECCOMP_FD"),
    }
`

// TestNoProcessCreationShim runs an agent through the real backend with
// Limits.NoProcessCreation and a shim that installs the process filter.
func TestNoProcessCreationShim(t *testing.T) {
	e := mustEnv(t)
	e.backend.cfg.ShimFiltersProcesses = true
	a := startAgent(t, e, noProcAgent, sandbox.Spec{Limits: sandbox.Limits{NoProcessCreation: true}}, "probe")
	got := decode(t, a.call(t, "probe", "[]"))
	for _, name := range []string{"fork", "subprocess", "posix_spawn", "execv", "fexecve"} {
		r, _ := got[name].(map[string]any)
		if r["ok"] != false || r["type"] != "PermissionError" || r["errno"] != "EPERM" {
			t.Errorf("%s: %v, want PermissionError (EPERM)", name, got[name])
		}
	}
	if r, _ := got["thread"].(map[string]any); r["ok"] != true || r["value"] != 1.0 {
		t.Errorf("thread: %v, want a thread that runs", got["thread"])
	}
	// Importing the agent's code happens before the filter: documented
	// (docs/guest-protocol.md), not a guarantee the mode gives.
	if r, _ := got["import_subprocess"].(map[string]any); r["ok"] != true || r["value"] != 0.0 {
		t.Errorf("subprocess at import: %v, want it to run (the filter covers only the call)", got["import_subprocess"])
	}
	if got["env"] != nil {
		t.Errorf("the agent sees RUNAGENT_SECCOMP_FD=%v, want it removed", got["env"])
	}
}

// TestProcessCreationAllowedByDefault checks the same agent can create
// processes when the mode is off.
func TestProcessCreationAllowedByDefault(t *testing.T) {
	e := mustEnv(t)
	e.backend.cfg.ShimFiltersProcesses = true
	src := noProcAgent + `
def probe_no_exec():
    return {
        "fork": _try(_fork),
        "subprocess": _try(lambda: subprocess.run(["/bin/true"]).returncode),
        "posix_spawn": _try(_spawn),
        "thread": _try(_thread),
    }
`
	a := startAgent(t, e, src, sandbox.Spec{}, "probe_no_exec")
	got := decode(t, a.call(t, "probe_no_exec", "[]"))
	for name, r := range got {
		if r.(map[string]any)["ok"] != true {
			t.Errorf("%s without NoProcessCreation: %v, want it to work", name, r)
		}
	}
}
