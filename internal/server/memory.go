package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/store/postgres"
)

// Persistent-memory modes (--memory).
const (
	// MemoryAuto opens persistent memory when it is first needed (a run
	// that asks for it, an admin export or delete): a host that cannot
	// keep it (not root, no loop devices, no fscrypt without
	// --memory-plaintext) serves everything else, and those requests fail
	// saying why. The default: servers whose agents never use memory pay
	// nothing, and never fail to start for it.
	MemoryAuto = "auto"
	// MemoryOn opens it at start, and refuses to start where it cannot.
	MemoryOn = "on"
	// MemoryOff serves no persistent memory: runs asking for it fail.
	MemoryOff = "off"
)

// MemoryConfig configures agents' persistent memory (internal/memory).
type MemoryConfig struct {
	// Mode is MemoryAuto (default), MemoryOn or MemoryOff.
	Mode string
	// DefaultMB is a store's cap when the agent sets none (default
	// memory.DefaultCapMB); MaxMB the largest an agent may set (default
	// memory.DefaultMaxCapMB); MaxFiles the files one store may hold
	// (default memory.DefaultMaxFiles).
	DefaultMB, MaxMB, MaxFiles int
	// Plaintext accepts unencrypted stores on a host without fscrypt
	// (where it has fscrypt, stores are encrypted all the same).
	Plaintext bool
	// Dir keeps the stores' images (--memory-dir); "" is <data
	// dir>/memory. Nodes sharing one PostgreSQL store point it at one
	// shared file system, and must set it: see checkShared.
	Dir string
}

func (c MemoryConfig) withDefaults() MemoryConfig {
	if c.Mode == "" {
		c.Mode = MemoryAuto
	}
	c.DefaultMB = positiveOr(c.DefaultMB, memory.DefaultCapMB)
	c.MaxMB = positiveOr(c.MaxMB, memory.DefaultMaxCapMB)
	c.MaxFiles = positiveOr(c.MaxFiles, memory.DefaultMaxFiles)
	return c
}

// checkShared refuses persistent memory kept per node on a store that
// several nodes share: with a PostgreSQL store (storeURL) and memory not
// off, Dir must be set. Left at its default, inside the node's own data
// directory, a user's memory would live on whichever node ran them last,
// and each node would find another, empty one: a user would silently see
// their memory come and go with the load balancer. Setting it, even to a
// local path, is the operator's word that the path is shared by every
// node, or that this node is the only one.
func (c MemoryConfig) checkShared(storeURL string) error {
	if storeURL == "" || c.Mode == MemoryOff || c.Dir != "" {
		return nil
	}
	return errors.New("persistent memory on a shared PostgreSQL store (--store) needs --memory-dir: a directory on a file system every node mounts (NFS, a Kubernetes ReadWriteMany volume), or, if this node is the only one, any local directory such as <data dir>/memory; or pass --memory off")
}

// dir is where the stores' images are kept: Dir, or <data dir>/memory.
func (c MemoryConfig) dir(dataDir string) string {
	if c.Dir != "" {
		return c.Dir
	}
	return filepath.Join(dataDir, "memory")
}

func (c MemoryConfig) check() error {
	switch c.Mode {
	case MemoryAuto, MemoryOn, MemoryOff:
	default:
		return fmt.Errorf("--memory %q: use %s, %s or %s", c.Mode, MemoryAuto, MemoryOn, MemoryOff)
	}
	if c.DefaultMB > c.MaxMB {
		return fmt.Errorf("--memory-default-mb (%d) is above --memory-max-mb (%d)", c.DefaultMB, c.MaxMB)
	}
	if c.DefaultMB < memory.MinCapMB {
		return fmt.Errorf("--memory-default-mb (%d) is below the smallest store, %d MiB", c.DefaultMB, memory.MinCapMB)
	}
	return nil
}

// MemoryStores is the server's persistent memory: the memory.Manager,
// opened at start (MemoryOn) or when first needed (MemoryAuto). Its
// methods fail with CodeUnavailable, saying why, where there is none. It
// serves api.MemoryAdmin, and runs (Acquire).
type MemoryStores struct {
	store core.MemoryStore
	open  func() (*memory.Manager, error) // nil: MemoryOff

	mu     sync.Mutex
	m      *memory.Manager
	err    error // why there is none (kept: the host does not change)
	closed bool
}

// newMemoryStores returns the server's persistent memory for cfg, under
// --memory-dir (default <data dir>/memory). On a PostgreSQL store, which
// other nodes may share, each store is held by one node at a time
// (sessionLocker).
func newMemoryStores(cfg Config, db Store, kr *keyring.Keyring) *MemoryStores {
	mc := cfg.Memory
	ms := &MemoryStores{store: db}
	if mc.Mode == MemoryOff {
		return ms
	}
	var locker memory.Locker
	if pg, ok := db.(*postgres.DB); ok {
		locker = sessionLocker{pg}
	}
	ms.open = func() (*memory.Manager, error) {
		return memory.New(memory.Options{Dir: mc.dir(cfg.DataDir), Store: db, Keyring: kr,
			DefaultCapMB: mc.DefaultMB, MaxCapMB: mc.MaxMB, MaxFiles: mc.MaxFiles, Plaintext: mc.Plaintext,
			Locker: locker, Log: cfg.Log.With("part", "memory")})
	}
	return ms
}

// sessionLocker holds a store's persistent memory for one node at a time
// with a PostgreSQL session advisory lock (postgres.SessionLock), on a
// connection of its own for as long as the store is mounted here. Why
// that and not a Redis lock: the store is what nodes share whenever they
// share memory (Redis is optional); a session lock needs no lease time to
// guess, since the lock lives exactly as long as the node's connection —
// a node that dies loses it when the kernel closes its socket, one that
// vanishes (power, partition) when the server's TCP keepalives give up
// (seconds) — and PostgreSQL queues the waiters in order, so a user's
// runs from several nodes take turns without polling. A holder whose
// connection ends while a run uses the store sees memory.Lease.Lost
// within about 4 s.
type sessionLocker struct{ db *postgres.DB }

func (l sessionLocker) Lock(ctx context.Context, name string) (memory.Held, error) {
	return l.db.SessionLock(ctx, name)
}

// manager returns the Manager, opening it on first use.
func (ms *MemoryStores) manager() (*memory.Manager, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	switch {
	case ms.closed:
		return nil, core.Errorf(core.CodeUnavailable, "the server is shutting down")
	case ms.m != nil:
		return ms.m, nil
	case ms.open == nil:
		return nil, core.Errorf(core.CodeUnavailable, "persistent memory is turned off on this server (--memory off)")
	case ms.err == nil:
		ms.m, ms.err = ms.open()
		if ms.err == nil {
			return ms.m, nil
		}
	}
	return nil, &core.Error{Code: core.CodeUnavailable, Message: "this server cannot keep persistent memory: " + ms.err.Error(), Err: ms.err}
}

// Acquire hands the store of k to a run (memory.Manager.Acquire).
func (ms *MemoryStores) Acquire(ctx context.Context, k memory.Key, capMB int) (*memory.Lease, error) {
	m, err := ms.manager()
	if err != nil {
		return nil, err
	}
	return m.Acquire(ctx, k, capMB)
}

// List lists an agent's stores from their records, a page of them
// (memory.Manager.List): it needs no mount.
func (ms *MemoryStores) List(ctx context.Context, project, agent, afterUser string, limit int) ([]*core.Memory, error) {
	recs, err := ms.store.Memories(ctx, project, agent, afterUser, limit)
	for _, r := range recs {
		r.SealedKey = nil
	}
	return recs, err
}

// Export writes one store as a tar archive (memory.Manager.Export).
func (ms *MemoryStores) Export(ctx context.Context, k memory.Key, w io.Writer) error {
	if _, err := ms.store.Memory(ctx, k.Project, k.Agent, k.User); err != nil {
		return err // unknown: 404 without opening anything
	}
	m, err := ms.manager()
	if err != nil {
		return err
	}
	return m.Export(ctx, k, w)
}

// Delete erases one store (memory.Manager.Delete).
func (ms *MemoryStores) Delete(ctx context.Context, k memory.Key) error {
	if _, err := ms.store.Memory(ctx, k.Project, k.Agent, k.User); err != nil {
		return err
	}
	m, err := ms.manager()
	if err != nil {
		return err
	}
	return m.Delete(ctx, k)
}

// Purge deletes the stores unused since before; with none, it opens
// nothing.
func (ms *MemoryStores) Purge(ctx context.Context, before time.Time) (int, error) {
	recs, err := ms.store.MemoriesUnusedSince(ctx, before, 1)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	m, err := ms.manager()
	if err != nil {
		return 0, err
	}
	return m.Purge(ctx, before)
}

// Close unmounts every store; afterwards every method fails.
func (ms *MemoryStores) Close() error {
	ms.mu.Lock()
	m := ms.m
	ms.closed = true
	ms.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Close()
}

// purgeMemory applies the retention class "memory" and records it in the
// audit trail.
func (s *Server) purgeMemory(ctx context.Context, now time.Time) (int, error) {
	keep := s.cfg.Retention.Memory
	if keep <= 0 || s.memory == nil {
		return 0, nil
	}
	n, err := s.memory.Purge(ctx, now.Add(-keep))
	if n == 0 && err == nil {
		return 0, nil
	}
	rec := audit.Record{Action: "retention.purge", Resource: "memory", Outcome: audit.OutcomeSuccess, Details: map[string]string{
		"memory": strconv.Itoa(n), "retain_memory": keep.String(),
	}}
	if err != nil {
		rec.Outcome = audit.OutcomeError
	}
	if s.audit != nil {
		if _, aerr := s.audit.Append(context.WithoutCancel(ctx), rec); aerr != nil {
			err = errors.Join(err, fmt.Errorf("record the purge in the audit trail: %w", aerr))
		}
	}
	return n, err
}
