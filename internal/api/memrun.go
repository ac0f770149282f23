package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/registry"
	"github.com/runagent/runagent/internal/sandbox"
)

// A run's persistent memory: with persistent_memory and a user_id, each
// folder the agent's config names in persistent_folders (relative to its
// working directory) is mounted read-write in the run's sandbox from the
// (project, agent, user) store, with what the same user left there. The
// runs of one user on one agent take turns: the store is held from before
// the run starts until its sandbox has ended.

// DefaultMemoryFolder is the folder kept for an agent whose config names
// no persistent_folders.
const DefaultMemoryFolder = ".memory"

// MemoryDirsEnv is the run's environment variable listing the paths of
// its persistent folders, separated by ':'.
const MemoryDirsEnv = "RUNAGENT_MEMORY_DIRS"

// wantsMemory reports whether a run asks for its user's persistent memory.
func (req *runRequest) wantsMemory() bool {
	return req.PersistentMemory != nil && *req.PersistentMemory
}

// openMemory takes the store of inv's user on d's agent for the run of
// req, waiting (within the run's deadline) while another run of the same
// user holds it, and mounts its folders into req. The caller releases the
// lease once the run's sandbox has ended.
func (h *runHandlers) openMemory(ctx context.Context, d *registry.Deployment, inv *core.Invocation, req *executor.Request) (*memory.Lease, error) {
	if h.mem == nil {
		return nil, core.Errorf(core.CodeUnavailable, "this server keeps no persistent memory (it runs with --memory off); call without persistent_memory")
	}
	key := memory.Key{Project: cmp.Or(d.ProjectID, core.DefaultProject), Agent: d.AgentID, User: inv.UserID}
	wait := h.exec.Deadline(*req)
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	lease, err := h.mem.Acquire(actx, key, int(d.Config.Resources.PersistentMB))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, core.Errorf(core.CodeConflict, "another run of this user_id on agent %s has held its persistent memory for %s: the runs of one user on one agent take turns; try again when it ends", d.AgentID, wait)
		}
		return nil, err
	}
	mounts, dirs, err := memoryMounts(lease.Dir, d.Config.PersistentFolders)
	if err != nil {
		lease.Release()
		return nil, err
	}
	req.Mounts = mounts
	env := make(map[string]string, len(req.Env)+1)
	for k, v := range req.Env {
		env[k] = v
	}
	env[MemoryDirsEnv] = strings.Join(dirs, ":")
	req.Env = env
	return lease, nil
}

// memoryMounts makes (if need be) one directory per folder in the store
// and returns the mounts showing them at the folders' paths under the
// agent's working directory, and those paths.
func memoryMounts(store string, folders []string) ([]sandbox.Mount, []string, error) {
	if len(folders) == 0 {
		folders = []string{DefaultMemoryFolder}
	}
	mounts := make([]sandbox.Mount, 0, len(folders))
	dirs := make([]string, 0, len(folders))
	for _, f := range folders {
		// One directory per folder, named so that no two folders share
		// one ("a/b" and "a%2Fb" escape apart).
		host := filepath.Join(store, url.PathEscape(f))
		if err := os.Mkdir(host, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, nil, fmt.Errorf("persistent memory: make the folder %s: %w", f, err)
		}
		guest := path.Join(sandbox.GuestAgentDir, f)
		mounts = append(mounts, sandbox.Mount{Host: host, Guest: guest})
		dirs = append(dirs, guest)
	}
	if err := sandbox.CheckMounts(mounts); err != nil {
		return nil, nil, &core.Error{Code: core.CodeValidation, Field: "persistent_folders", Err: err,
			Message: "the agent's persistent_folders cannot be mounted: " + err.Error()}
	}
	return mounts, dirs, nil
}
