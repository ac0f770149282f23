//go:build linux

package python

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// Tests of the shim's process-creation filter hand-off (RUNAGENT_SECCOMP_FD,
// docs/guest-protocol.md): the shim reads a seccomp program from the
// descriptor at start-up and installs it right before the call, or fails
// closed.

// sockFilter is struct sock_filter.
type sockFilter struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// filterBytes is prog in the hand-off's wire form (native byte order).
func filterBytes(prog []sockFilter) []byte {
	if len(prog) == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*8)...)
}

// getpriorityEPERM is a filter under which getpriority fails with EPERM
// and every other system call is allowed.
func getpriorityEPERM() []byte {
	const (
		ldAbsW      = 0x20 // BPF_LD|BPF_W|BPF_ABS
		jeqK        = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
		retK        = 0x06 // BPF_RET|BPF_K
		retAllow    = 0x7fff0000
		retErrno    = 0x00050000
		offsetOfNr  = 0
		errnoEPERM  = 1
		instrsAfter = 1
	)
	return filterBytes([]sockFilter{
		{Code: ldAbsW, K: offsetOfNr},
		{Code: jeqK, Jt: 0, Jf: instrsAfter, K: syscall.SYS_GETPRIORITY},
		{Code: retK, K: retErrno | errnoEPERM},
		{Code: retK, K: retAllow},
	})
}

// filterAgent reports, when called, whether getpriority works on the
// calling thread and on a thread started at import time, and whether the
// hand-off is still visible.
const filterAgent = `import os, threading

def _prio():
    try:
        os.getpriority(os.PRIO_PROCESS, 0)
        return "allowed"
    except PermissionError:
        return "EPERM"

AT_IMPORT = _prio()
try:
    os.fstat(4)
    FD4_AT_IMPORT = "open"
except OSError:
    FD4_AT_IMPORT = "closed"
ENV_AT_IMPORT = os.environ.get("RUNAGENT_SECCOMP_FD")

_go, _done, _seen = threading.Event(), threading.Event(), []
def _waiter():
    _go.wait()
    _seen.append(_prio())
    _done.set()
threading.Thread(target=_waiter, daemon=True).start()

def f(marker):
    open(marker, "w").close()
    _go.set()
    _done.wait(10)
    t = []
    th = threading.Thread(target=lambda: t.append(_prio()))
    th.start()
    th.join()
    return {
        "import": AT_IMPORT, "call": _prio(), "import_thread": _seen[0] if _seen else None,
        "new_thread": t[0] if t else None,
        "fd4_at_import": FD4_AT_IMPORT, "env_at_import": ENV_AT_IMPORT,
        "env_at_call": os.environ.get("RUNAGENT_SECCOMP_FD"),
    }
`

// shimRun is the outcome of one call through the shim.
type shimRun struct {
	frame  map[string]any // the result or error frame
	called bool           // the agent's function ran
	stderr string
}

// runShimFilter runs the shim with python args prefix (nil: the shim file
// itself) on filterAgent, handing it fd4 (nil: none) and setting
// RUNAGENT_SECCOMP_FD to envFD ("": unset), and calls f.
func runShimFilter(t *testing.T, pre []string, envFD string, fd4 *os.File) shimRun {
	t.Helper()
	agent := writeTree(t, map[string]string{"main.py": filterAgent})
	marker := filepath.Join(t.TempDir(), "called")
	var env []string
	if envFD != "" {
		env = append(env, "RUNAGENT_SECCOMP_FD="+envFD)
	}
	s := startShim(t, sessionOptions{pre: pre, env: env, fd4: fd4})
	send, recv, stderr := s.send, s.recv, s.stderr
	send(map[string]any{"type": "init", "agent_dir": agent, "entrypoints": []map[string]string{{"tag": "f", "file": "main.py", "module": "f"}}})
	if hello := recv(); hello["type"] != "hello" || !strings.Contains(fmt.Sprint(hello["entrypoints"]), "ok:true") {
		t.Fatalf("hello: %v; stderr:\n%s", hello, stderr.String())
	}
	send(map[string]any{"type": "invoke", "id": "c1", "tag": "f", "args": []string{marker}})
	frame := recv()
	_, statErr := os.Stat(marker)
	return shimRun{frame: frame, called: statErr == nil, stderr: stderr.String()}
}

// filterPipe returns the read end of a pipe holding data, its write end
// closed.
func filterPipe(t *testing.T, data []byte) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return r
}

func TestShimInstallsProcessFilter(t *testing.T) {
	run := runShimFilter(t, nil, "4", filterPipe(t, getpriorityEPERM()))
	if run.frame["type"] != "result" {
		t.Fatalf("frame %v, want a result; stderr:\n%s", run.frame, run.stderr)
	}
	want := map[string]any{
		"import":        "allowed", // the agent's imports run before the filter
		"call":          "EPERM",
		"import_thread": "EPERM", // all threads are filtered (TSYNC)
		"new_thread":    "EPERM",
		"fd4_at_import": "closed", // read and closed before the agent's imports
		"env_at_import": nil,
		"env_at_call":   nil,
	}
	got := run.frame["value"].(map[string]any)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], w, got)
		}
	}
}

func TestShimWithoutProcessFilter(t *testing.T) {
	run := runShimFilter(t, nil, "", nil)
	if run.frame["type"] != "result" {
		t.Fatalf("frame %v, want a result; stderr:\n%s", run.frame, run.stderr)
	}
	if got := run.frame["value"].(map[string]any); got["call"] != "allowed" || got["import_thread"] != "allowed" {
		t.Errorf("without a filter: %v, want getpriority allowed", got)
	}
}

func TestShimProcessFilterFailsClosed(t *testing.T) {
	badOpcode := filterBytes([]sockFilter{{Code: 0xffff}, {Code: 0x06, K: 0x7fff0000}})
	tests := []struct {
		name string
		pre  []string
		env  string
		fd4  func(t *testing.T) *os.File
		want string // in the error message
	}{
		{name: "fd not open", env: "4", want: "Bad file descriptor"},
		{name: "not a number", env: "four", want: "not a file descriptor"},
		{name: "empty", env: "4", fd4: func(t *testing.T) *os.File { return filterPipe(t, nil) }, want: "0 bytes"},
		{name: "partial instruction", env: "4", fd4: func(t *testing.T) *os.File { return filterPipe(t, getpriorityEPERM()[:13]) }, want: "13 bytes"},
		{name: "invalid program", env: "4", fd4: func(t *testing.T) *os.File { return filterPipe(t, badOpcode) }, want: "Invalid argument"},
		{
			name: "no ctypes",
			pre:  []string{"-c", "import sys, runpy; sys.modules['ctypes'] = None; runpy.run_path(sys.argv[1], run_name='__main__')"},
			env:  "4", fd4: func(t *testing.T) *os.File { return filterPipe(t, getpriorityEPERM()) },
			want: "ctypes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fd4 *os.File
			if tt.fd4 != nil {
				fd4 = tt.fd4(t)
			}
			run := runShimFilter(t, tt.pre, tt.env, fd4)
			if run.called {
				t.Errorf("the agent's function was called")
			}
			if run.frame["type"] != "error" || run.frame["id"] != "c1" {
				t.Fatalf("frame %v, want an error for c1; stderr:\n%s", run.frame, run.stderr)
			}
			e := run.frame["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if e["code"] != "SANDBOX_ERROR" || !strings.Contains(msg, "process-creation filter") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %v, want SANDBOX_ERROR about the process-creation filter mentioning %q", e, tt.want)
			}
		})
	}
}
