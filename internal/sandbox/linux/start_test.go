//go:build linux

package linux

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox"
)

var errRefused = errors.New("refused by the test")

// TestStartUndoes makes Start fail at its last steps, once it has made
// everything (state directory, supervisor, scratch area, cgroup, egress
// socket, and when root the staging tmpfs and detached mounts), and
// checks it leaves nothing of it behind.
func TestStartUndoes(t *testing.T) {
	listen := EgressFunc(func(path, _, _ string, _ sandbox.Network) (io.Closer, error) {
		return net.Listen("unix", path)
	})
	refuse := EgressFunc(func(string, string, string, sandbox.Network) (io.Closer, error) {
		return nil, errRefused
	})
	tests := []struct {
		name    string
		egress  EgressManager
		refuse  bool // the cgroup refuses the supervisor
		wantErr string
	}{
		{"egress proxy fails", refuse, false, "starting the egress proxy"},
		{"joining the cgroup fails", listen, true, "adding the sandbox to its cgroup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEnv(t)
			cgroups := &refusingCgroups{refuse: tt.refuse}
			scratch := &fakeScratch{dir: t.TempDir()}
			// Not t.TempDir: the egress socket's path must stay short.
			state, err := os.MkdirTemp("", "undo-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(state) })
			b, err := New(Config{Exe: e.backend.cfg.Exe, StateDir: state, Cgroups: cgroups, Scratch: scratch, Egress: tt.egress, ShimFiltersProcesses: true})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			spec := sandbox.Spec{
				AgentDir: writeAgent(t, map[string]string{"main.py": ""}),
				EnvDir:   writeAgent(t, nil),
				OutDir:   t.TempDir(),
				ShimPath: e.shim,
				Python:   systemPython,
				Env:      quickExit,
				Network:  sandbox.Network{Mode: core.NetworkEgress},
				Limits:   sandbox.Limits{NoProcessCreation: true},
			}
			// A first Start makes the idmap's user namespace, which the
			// backend keeps until Close.
			b.Start(context.Background(), spec)

			fdsBefore, childrenBefore, mountsBefore := openFDs(t), children(t), mounts(t)
			sb, err := b.Start(context.Background(), spec)
			if err == nil {
				sb.Kill()
				sb.Wait()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Start error %q, want one about %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(state); len(entries) != 0 {
				t.Errorf("state directory holds %v after a failed start", entries)
			}
			if cgroups.live != 0 {
				t.Errorf("%d cgroups left after a failed start", cgroups.live)
			}
			if scratch.live() != 0 {
				t.Errorf("%d scratch areas left after a failed start", scratch.live())
			}
			if m := newMounts(mountsBefore, mounts(t)); len(m) != 0 {
				t.Errorf("mounts left after a failed start: %v", m)
			}
			if got := children(t); !slices.Equal(got, childrenBefore) {
				t.Errorf("child processes %v after a failed start, %v before", got, childrenBefore)
			}
			// The race runtime may close a descriptor of its own late.
			deadline := time.Now().Add(5 * time.Second)
			for got := openFDs(t); len(got) > len(fdsBefore); got = openFDs(t) {
				if time.Now().After(deadline) {
					t.Errorf("descriptors %v after a failed start, %v before", got, fdsBefore)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// refusingCgroups are fakeCgroups whose cgroups refuse processes if
// refuse is set.
type refusingCgroups struct {
	fakeCgroups
	refuse bool
}

func (r *refusingCgroups) New(id string, l sandbox.Limits) (Cgroup, error) {
	cg, err := r.fakeCgroups.New(id, l)
	if err != nil || !r.refuse {
		return cg, err
	}
	return refusingCgroup{cg.(*fakeCgroup)}, nil
}

type refusingCgroup struct{ *fakeCgroup }

func (refusingCgroup) AddPID(int) error { return errRefused }

// fakeScratch is a ScratchManager of plain directories.
type fakeScratch struct {
	dir string

	mu                 sync.Mutex
	prepared, released int
}

func (s *fakeScratch) Prepare(id string, size int64, uid, gid int) (string, func() error, error) {
	dir := filepath.Join(s.dir, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", nil, err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	s.prepared++
	s.mu.Unlock()
	return dir, func() error {
		s.mu.Lock()
		s.released++
		s.mu.Unlock()
		return os.RemoveAll(dir)
	}, nil
}

// live returns how many areas were prepared and not released.
func (s *fakeScratch) live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prepared - s.released
}

// openFDs returns what this process's descriptors refer to, sorted.
func openFDs(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out = append(out, e.Name()+" "+l)
		}
	}
	slices.Sort(out)
	return out
}

// children returns the pids of this process's children, sorted.
func children(tb testing.TB) []string {
	tb.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		out = append(out, strings.Fields(string(b))...)
	}
	slices.Sort(out)
	return out
}
