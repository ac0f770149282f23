package registry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/agentcfg"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/core"
)

// Deployment is an agent version ready to run.
type Deployment struct {
	AgentID   string
	ProjectID string // never "": core.DefaultProject for agents deployed without one
	Hash      string
	Config    *core.AgentConfig
	Dir       string // unpacked code
	// EnvDir is the version's Python environment (pyenv), "" when it
	// declares no dependencies.
	EnvDir string
}

// Registry deploys agents and finds their current version.
type Registry struct {
	store  core.AgentStore
	dir    string // root of unpacked code: dir/<agent>/<hash hex>
	limits bundle.Limits
	now    func() time.Time

	// Check, when set, vets a config beyond its own validity (e.g. its
	// resources against the server's maxima) before it is deployed; a
	// *core.Error it returns goes to the client as it is, anything else
	// as a VALIDATION_ERROR.
	Check func(*core.AgentConfig) error
	// Prepare, when set, makes an unpacked version ready before it
	// becomes current — builds its environment, checks that it loads —
	// and returns its environment directory. Its error fails the deploy
	// and the previous version keeps serving. It runs without the
	// registry's lock: deploys of other agents go on meanwhile.
	Prepare func(ctx context.Context, v Version, progress func(Progress)) (Prepared, error)
	// Environment, when set, returns the environment directory of a
	// version loaded from the store (built on first need, e.g. by a
	// node that did not deploy it).
	Environment func(ctx context.Context, v Version) (string, error)
	// Shared, when set, makes Get ask the store for the agent's current
	// version on every call (one read by primary key) and load it when
	// it is not the one in memory: for several nodes sharing one store,
	// where another node may deploy, roll back or delete (see Get). Off,
	// an agent's deployment in memory is served without a store read,
	// and only this process's deploys and rollbacks change it.
	Shared bool
	// Changed, when set, hears of every deploy and rollback once the
	// store has it and this process serves it: the server tells the
	// other nodes, which Refresh (share.go). It must not block.
	Changed func(agentID, hash string)

	mu      sync.RWMutex
	current map[string]*Deployment
	deploy  sync.Mutex // serialises deploys and unpacks
	// loading holds the loads in progress (under mu), by agent and
	// version, so that the runs that meet a new version at once wait
	// for one load.
	loading map[string]*loadCall

	// gen counts Removes (under mu): a load begun before one is not kept.
	gen uint64
}

// New returns a Registry keeping unpacked code under codeDir.
func New(store core.AgentStore, codeDir string, limits bundle.Limits) (*Registry, error) {
	if err := os.MkdirAll(codeDir, 0o755); err != nil {
		return nil, fmt.Errorf("create code directory: %w", err)
	}
	return &Registry{store: store, dir: codeDir, limits: limits, now: time.Now, current: make(map[string]*Deployment),
		loading: make(map[string]*loadCall)}, nil
}

// Result describes a deploy.
type Result struct {
	Deployment *Deployment
	Created    bool     // a new version (false: the same package was deployed before)
	Warnings   []string // config warnings
	Prepared   Prepared // what Prepare said
}

// Version is an agent version being deployed or loaded, for Prepare and
// Environment.
type Version struct {
	AgentID   string
	ProjectID string
	Hash      string
	Config    *core.AgentConfig
	Dir       string // its unpacked code
}

// Prepared is what Prepare made of a version.
type Prepared struct {
	EnvDir string
	// Build is the record of it (nil when Prepare keeps none).
	Build *core.Build
}

// Progress is a step of a deploy, for the person waiting on it.
type Progress struct {
	Step    string        `json:"step"` // "unpacked", "environment", "building", "built", "cached", "load_check", "failed", "done"
	Message string        `json:"message"`
	Elapsed time.Duration `json:"-"`
}

// DeployOptions are what a deploy on behalf of a caller adds.
type DeployOptions struct {
	// Allow, when set, is asked whether the caller may deploy agentID
	// (existing reports whether it exists) before anything is written;
	// its error is returned as is.
	Allow func(agentID string, existing bool) error
	// Progress hears each step.
	Progress func(Progress)
}

// DeployDir packages a project directory and deploys it into project
// ("" = core.DefaultProject).
func (r *Registry) DeployDir(ctx context.Context, dir, project string) (*Result, error) {
	// Validate in place first, so errors name the user's files as they are.
	if _, _, err := agentcfg.Load(dir); err != nil {
		return nil, err
	}
	data, _, err := bundle.Pack(dir, r.limits)
	if err != nil {
		return nil, &core.Error{Code: core.CodeValidation, Message: err.Error(), Err: err}
	}
	return r.Deploy(ctx, data, project)
}

// Deploy validates a packaged project (bundle format), makes it ready
// (Prepare), stores it as a new version if it is new, and makes it the
// agent's current version. A new agent is created in project; an agent of
// another project is a CONFLICT. project "" means the agent's own
// project, or core.DefaultProject for a new agent.
func (r *Registry) Deploy(ctx context.Context, pkg []byte, project string) (*Result, error) {
	return r.DeployAs(ctx, pkg, project, DeployOptions{})
}

// DeployAs is Deploy on behalf of a caller (see DeployOptions). A refused
// or failed deploy leaves nothing behind in the code directory.
func (r *Registry) DeployAs(ctx context.Context, pkg []byte, project string, opts DeployOptions) (*Result, error) {
	progress := opts.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	hash := bundle.Hash(pkg)
	staging, err := os.MkdirTemp(r.dir, ".staging-")
	if err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	defer os.RemoveAll(staging)
	tree := filepath.Join(staging, "tree")
	if err := bundle.Unpack(pkg, tree, r.limits); err != nil {
		return nil, &core.Error{Code: core.CodeValidation, Message: "invalid agent package: " + err.Error(), Err: err}
	}
	cfg, warnings, err := agentcfg.Load(tree)
	if err != nil {
		return nil, &core.Error{Code: core.CodeValidation, Message: err.Error(), Err: err}
	}
	if r.Check != nil {
		if err := r.Check(cfg); err != nil {
			if ce, ok := errors.AsType[*core.Error](err); ok {
				return nil, ce
			}
			return nil, &core.Error{Code: core.CodeValidation, Message: err.Error(), Err: err}
		}
	}
	progress(Progress{Step: "unpacked", Message: fmt.Sprintf("agent %s version %s unpacked", cfg.AgentID, shortHash(hash))})

	// Who may deploy what is settled before anything is built, and again
	// (under the lock) before anything is written: the agent may have
	// been created meanwhile.
	project, err = r.target(ctx, cfg.AgentID, project, opts.Allow)
	if err != nil {
		return nil, err
	}
	var prepared Prepared
	if r.Prepare != nil {
		v := Version{AgentID: cfg.AgentID, ProjectID: project, Hash: hash, Config: cfg, Dir: tree}
		if prepared, err = r.Prepare(ctx, v, progress); err != nil {
			return nil, err
		}
	}

	r.deploy.Lock()
	defer r.deploy.Unlock()
	if project, err = r.target(ctx, cfg.AgentID, project, opts.Allow); err != nil {
		return nil, err
	}
	dest := r.codePath(cfg.AgentID, hash)
	installed, err := r.install(tree, dest)
	if err != nil {
		return nil, err
	}
	created, err := r.store.PutAgentVersion(ctx, &core.AgentVersion{
		AgentID: cfg.AgentID, ProjectID: project, Hash: hash, Config: *cfg, Package: pkg,
		Size: int64(len(pkg)), CreatedAt: r.now().UTC(),
	})
	if err != nil {
		installed.undo()
		return nil, fmt.Errorf("store agent version: %w", err)
	}
	d := &Deployment{AgentID: cfg.AgentID, ProjectID: project, Hash: hash, Config: cfg, Dir: dest, EnvDir: prepared.EnvDir}
	r.mu.Lock()
	r.current[cfg.AgentID] = d
	r.mu.Unlock()
	r.changed(d)
	progress(Progress{Step: "done", Message: fmt.Sprintf("version %s is current", shortHash(hash))})
	return &Result{Deployment: d, Created: created, Warnings: warnings, Prepared: prepared}, nil
}

// target settles the project a deploy of agentID goes to ("" = the
// agent's own, or the default for a new one) and asks allow.
func (r *Registry) target(ctx context.Context, agentID, project string, allow func(string, bool) error) (string, error) {
	existing, err := r.store.Agent(ctx, agentID)
	switch {
	case errors.Is(err, core.ErrNotFound):
		existing = nil
	case err != nil:
		return "", fmt.Errorf("look up agent %s: %w", agentID, err)
	}
	if existing != nil && project != "" && existing.ProjectID != project {
		return "", &core.Error{Code: core.CodeConflict, Field: "agent_id",
			Message: fmt.Sprintf("agent %s belongs to another project; give this agent a new agent_id (runagent init --existing writes one)", agentID)}
	}
	if allow != nil {
		if err := allow(agentID, existing != nil); err != nil {
			return "", err
		}
	}
	if project == "" {
		project = core.DefaultProject
		if existing != nil {
			project = existing.ProjectID
		}
	}
	return project, nil
}

func shortHash(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	return h[:min(12, len(h))]
}

// installed is what install created, so that a failed deploy can take it
// back.
type installed struct {
	dest, agentDir string // "" where install created nothing
}

func (i installed) undo() {
	if i.dest != "" {
		os.RemoveAll(i.dest)
	}
	if i.agentDir != "" {
		os.Remove(i.agentDir) // only if empty: other versions stay
	}
}

// install moves the unpacked tree to dest unless that version is there
// already.
func (r *Registry) install(tree, dest string) (installed, error) {
	var in installed
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		return in, err
	}
	agentDir := filepath.Dir(dest)
	if _, err := os.Stat(agentDir); errors.Is(err, os.ErrNotExist) {
		in.agentDir = agentDir
	}
	if err := os.MkdirAll(agentDir, 0o755); err != nil {
		return in, fmt.Errorf("create agent code directory: %w", err)
	}
	if err := os.Rename(tree, dest); err != nil {
		in.undo()
		return installed{}, fmt.Errorf("install agent code: %w", err)
	}
	in.dest = dest
	return in, nil
}

// Get returns the current deployment of an agent. Agents deployed by
// another process sharing the store are loaded on first use.
//
// With Shared, Get also reads the agent's row every time: an agent
// deleted (or whose project was deleted) anywhere wraps core.ErrNotFound
// at once, and a version made current by another node is loaded (code
// unpacked, environment built: this call waits for that, or fails with
// it) before it is returned, so that no run started after a deploy or
// rollback answered uses the version it replaced.
func (r *Registry) Get(ctx context.Context, agentID string) (*Deployment, error) {
	r.mu.RLock()
	d, gen := r.current[agentID], r.gen
	r.mu.RUnlock()
	if d != nil && !r.Shared {
		return d, nil
	}
	a, err := r.store.Agent(ctx, agentID)
	if err != nil {
		return nil, err
	}
	if d != nil && d.Hash == a.CurrentVersion {
		return d, nil
	}
	return r.loadOnce(ctx, a.ID, a.CurrentVersion, gen)
}

// Refresh loads the agent's current version from the store, as Get does
// with Shared: another node deployed or rolled it back, and this one
// gets it ready before a run needs it. An agent no longer in the store
// is forgotten (its deployment, if loaded, is returned for its sandboxes
// to be evicted) and its error returned.
func (r *Registry) Refresh(ctx context.Context, agentID string) (*Deployment, error) {
	d, err := r.Get(ctx, agentID)
	if errors.Is(err, core.ErrNotFound) {
		if gone := r.Remove(agentID); len(gone) > 0 {
			return gone[0], err
		}
	}
	return d, err
}

// Has reports whether agentID's deployment is in memory.
func (r *Registry) Has(agentID string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current[agentID] != nil
}

// loadCall is one load in progress.
type loadCall struct {
	done chan struct{}
	d    *Deployment
	err  error
}

// loadOnce is load, joined by the callers that ask for the same version
// while it runs, and keeps what it loaded as the agent's deployment
// unless a Remove came since gen. A caller whose ctx ends stops waiting;
// the load goes on for the others (it is bounded by the first caller's
// ctx).
func (r *Registry) loadOnce(ctx context.Context, agentID, hash string, gen uint64) (*Deployment, error) {
	key := agentID + "\x00" + hash
	r.mu.Lock()
	if cur := r.current[agentID]; cur != nil && (!r.Shared || cur.Hash == hash) {
		r.mu.Unlock()
		return cur, nil // a deploy won the race, or a load of it ended
	}
	c := r.loading[key]
	if c == nil {
		c = &loadCall{done: make(chan struct{})}
		r.loading[key] = c
		r.mu.Unlock()
		c.d, c.err = r.load(ctx, agentID, hash)
		r.mu.Lock()
		delete(r.loading, key)
		if c.err == nil {
			switch cur := r.current[agentID]; {
			case cur != nil && (!r.Shared || cur.Hash == hash):
				c.d = cur // a deploy won the race
			case r.gen == gen:
				// With Shared, what is in memory may be older than what
				// the store said; if a deploy here came between, the
				// next Get sees the store's newer version.
				r.current[agentID] = c.d
			}
		}
		r.mu.Unlock()
		close(c.done)
		return c.d, c.err
	}
	r.mu.Unlock()
	select {
	case <-c.done:
		return c.d, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// changed tells Changed about d.
func (r *Registry) changed(d *Deployment) {
	if r.Changed != nil {
		r.Changed(d.AgentID, d.Hash)
	}
}

// load makes a stored version ready to run: its code unpacked, its
// environment settled.
func (r *Registry) load(ctx context.Context, agentID, hash string) (*Deployment, error) {
	v, err := r.store.AgentVersion(ctx, agentID, hash)
	if err != nil {
		return nil, err
	}
	dest, err := r.unpackStored(v)
	if err != nil {
		return nil, err
	}
	cfg := v.Config
	project := v.ProjectID
	if project == "" {
		project = core.DefaultProject
	}
	d := &Deployment{AgentID: v.AgentID, ProjectID: project, Hash: v.Hash, Config: &cfg, Dir: dest}
	if r.Environment != nil {
		if d.EnvDir, err = r.Environment(ctx, Version{AgentID: d.AgentID, ProjectID: project, Hash: d.Hash, Config: &cfg, Dir: dest}); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Rollback makes a stored version of an agent its current one, ready as
// after a deploy: later runs on this node use it, and on every node
// sharing the store whose registry is Shared (another node without it
// keeps the version it has loaded). An unknown agent or version wraps
// core.ErrNotFound; if the version cannot be made ready, the current one
// stays.
func (r *Registry) Rollback(ctx context.Context, agentID, hash string) (*Deployment, error) {
	d, err := r.load(ctx, agentID, hash)
	if err != nil {
		return nil, err
	}
	r.deploy.Lock()
	defer r.deploy.Unlock()
	r.mu.RLock()
	gen := r.gen
	r.mu.RUnlock()
	if err := r.store.SetCurrentVersion(ctx, agentID, hash); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.gen == gen {
		r.current[agentID] = d
	} else {
		// A Remove came between: the agent may have been deleted after
		// the store took the version. The next Get asks the store.
		delete(r.current, agentID)
	}
	r.mu.Unlock()
	r.changed(d)
	return d, nil
}

// unpackStored unpacks a stored version into its code directory unless it
// is there, and returns the directory. The environment is settled after,
// without the lock: a build may take minutes.
func (r *Registry) unpackStored(v *core.AgentVersion) (string, error) {
	r.deploy.Lock()
	defer r.deploy.Unlock()
	dest := r.codePath(v.AgentID, v.Hash)
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		return dest, err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", fmt.Errorf("create agent code directory: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".unpack-")
	if err != nil {
		return "", fmt.Errorf("create staging directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := bundle.Unpack(v.Package, filepath.Join(tmp, "tree"), r.limits); err != nil {
		return "", fmt.Errorf("unpack stored version %s of agent %s: %w", v.Hash, v.AgentID, err)
	}
	if err := os.Rename(filepath.Join(tmp, "tree"), dest); err != nil {
		return "", fmt.Errorf("install agent code: %w", err)
	}
	return dest, nil
}

// Count returns how many agents are loaded.
func (r *Registry) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.current)
}

func (r *Registry) codePath(agentID, hash string) string {
	h := strings.TrimPrefix(hash, "sha256:")
	if _, err := hex.DecodeString(h); err != nil || len(h) != 64 {
		h = hex.EncodeToString([]byte(h)) // never reached for bundle hashes; keeps the path safe anyway
	}
	return filepath.Join(r.dir, agentID, h)
}

// Loaded returns the deployments in memory, ordered by agent id.
func (r *Registry) Loaded() []*Deployment {
	r.mu.RLock()
	out := make([]*Deployment, 0, len(r.current))
	for _, d := range r.current {
		out = append(out, d)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Deployment) int { return strings.Compare(a.AgentID, b.AgentID) })
	return out
}
