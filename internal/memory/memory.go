package memory

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Defaults of what Options leaves zero.
const (
	DefaultCapMB       = 100
	DefaultMaxCapMB    = 1024
	DefaultMaxFiles    = 10_000
	DefaultIdleUnmount = 2 * time.Minute
	DefaultMaxMounted  = 64
	// DefaultFence exceeds the time a holder takes to notice a lost lock
	// (internal/store/postgres: about 2×LockPing, 4 s) and to stop its
	// run.
	DefaultFence = 10 * time.Second
	// MinCapMB is the smallest store: ext4's journal (4 MiB) and metadata
	// take part of every image.
	MinCapMB = 16
)

// ErrUnsupported is returned by New where stores cannot be made.
var ErrUnsupported = errors.New("memory: persistent memory needs Linux loop devices and ext4")

// Options configure a Manager.
type Options struct {
	// Dir holds the stores' images and mount points (the server uses
	// <data dir>/memory); New creates it, mode 0700.
	Dir string
	// Store keeps the stores' records.
	Store core.MemoryStore
	// Keyring seals each store's encryption key, with the store's
	// identity as associated data. Required unless Plaintext.
	Keyring core.Sealer
	// DefaultCapMB is a store's size when Acquire is given 0; default
	// DefaultCapMB. MaxCapMB is the largest cap Acquire accepts; default
	// DefaultMaxCapMB.
	DefaultCapMB, MaxCapMB int
	// MaxFiles bounds the files and directories of one store (the
	// image's inode count; mkfs rounds it up to fill its inode tables,
	// and growing a store adds inodes in proportion). Default
	// DefaultMaxFiles.
	MaxFiles int
	// Plaintext accepts unencrypted stores where this host cannot
	// encrypt them (no fscrypt); without it New fails there. Where the
	// host can, new stores are encrypted all the same.
	Plaintext bool
	// UID and GID own each store's data directory: the sandbox's agent
	// as the host sees it. Default HostIDBase+AgentUID of
	// internal/sandbox/linux when root.
	UID, GID int
	// IdleUnmount is how long a released store stays mounted (with its
	// key in the kernel) for the next run of the same user; MaxMounted
	// caps how many stay mounted at once, beyond which a release
	// unmounts at once. Defaults DefaultIdleUnmount and
	// DefaultMaxMounted; a negative IdleUnmount unmounts at every
	// release.
	IdleUnmount time.Duration
	MaxMounted  int
	// Log receives what the Manager cannot return (a failed unmount in
	// the background). Default: discard.
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Locker, when several nodes share Dir (one PostgreSQL store, Dir on
	// a shared file system), hands each store to one node at a time: a
	// node takes the store's lock before it mounts the image and lets it
	// go only once the image is unmounted, its loop device detached and
	// the file flushed to the file system. With a Locker a store is
	// unmounted at every release (IdleUnmount is ignored): another node
	// may be next. Nil: this node is alone with Dir.
	Locker Locker
	// Fence is how long a node that takes a store's lock waits before it
	// mounts the store when the previous holder did not let go cleanly
	// (its lock was lost with its connection, or it died): long enough
	// for a holder that is still alive to notice (Lease.Lost) and stop
	// its run. Default DefaultFence; only with a Locker.
	Fence time.Duration

	// probe replaces Probe (tests simulate a host without fscrypt).
	probe func(dir string) error
}

func (o Options) withDefaults() Options {
	if o.DefaultCapMB <= 0 {
		o.DefaultCapMB = DefaultCapMB
	}
	if o.MaxCapMB <= 0 {
		o.MaxCapMB = DefaultMaxCapMB
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.IdleUnmount == 0 {
		o.IdleUnmount = DefaultIdleUnmount
	}
	if o.MaxMounted <= 0 {
		o.MaxMounted = DefaultMaxMounted
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Locker != nil {
		o.IdleUnmount = -1
	}
	if o.Fence <= 0 {
		o.Fence = DefaultFence
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Locker gives out locks that hold across nodes (the server's is a
// PostgreSQL session advisory lock: internal/store/postgres SessionLock).
type Locker interface {
	// Lock takes the lock called name, waiting until its holder lets it
	// go or ctx ends (the error then wraps ctx's).
	Lock(ctx context.Context, name string) (Held, error)
}

// Held is a lock a Locker gave.
type Held interface {
	// Lost is closed if the lock was lost other than by Unlock (its
	// holder's connection ended): another node may hold it now.
	Lost() <-chan struct{}
	// Unlock lets the lock go.
	Unlock() error
}
