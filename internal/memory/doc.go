// Package memory keeps agents' persistent memory: per (project, agent,
// user), a size-capped, encrypted file system that a run mounts
// read-write and finds as the same user left it last time (issue 17).
//
// # Stores
//
// Each store is an ext4 image file under the Manager's directory, named
// by Key.Name (a hash of the key: the client-chosen user id never reaches
// a path), as large as the store's cap and sparse: <dir>/<name>/image,
// mounted nosuid,nodev,noexec at <dir>/<name>/mnt through a loop device
// (internal/sandbox/scratch attaches and detaches them). Its inode count
// bounds its files (Options.MaxFiles); no blocks are reserved for root;
// a journal keeps it consistent across a crash or a kill -9 of the server
// mid-run: what a run had written and the kernel had committed stays,
// the rest of its last writes may be lost, and the file system is never
// left half-updated (the journal is replayed at the next mount). A full
// store fails the agent's write with ENOSPC (space or inodes) inside the
// sandbox; the host's disk is never used beyond the image's size.
//
// The run gets <mnt>/data (Lease.Dir), owned by the sandbox's agent uid
// and gid (internal/sandbox/linux HostIDBase+AgentUID).
//
// # Encryption
//
// The data directory is encrypted with fscrypt v2 (AES-256-XTS contents,
// AES-256-CTS names): each store has a random 64-byte master key, sealed
// with the keyring (the store's identity as associated data, so a key
// copied to another store's record does not open) and kept in its
// database record (core.MemoryStore). Mounting adds the key to the file
// system and sets, or checks, the directory's policy (another policy or
// key is refused: fail closed); unmounting first removes the key, so the
// kernel forgets it and the plaintext of the files, then detaches the
// image. Probe says whether the host can do this; where it cannot, New
// fails unless Options.Plaintext (--memory-plaintext) accepts
// unencrypted stores. A store made unencrypted stays so, and a server
// without Plaintext refuses to mount it.
//
// # Leases
//
// Acquire hands a store to one run and Release gives it back: the runs of
// one user on one agent are serialized (a second Acquire waits, bounded
// by its context), and Export and Delete wait for the run too. Release
// records the store's size, file count and last use, and leaves it
// mounted, with its key in the kernel, for Options.IdleUnmount (default 2
// minutes) so that the user's next run does not pay for a mount; a sweep
// unmounts idle stores, and a release beyond Options.MaxMounted mounted
// stores unmounts at once. Close unmounts everything.
//
// A cap larger than a store's grows it while mounted (the image file,
// its loop device, then ext4 online, as resize2fs does; the inode count
// grows in proportion). A smaller cap is not applied: the store keeps its
// size.
//
// A sandbox made while a store is mounted may hold a copy of that mount
// in its mount namespace after the store is unmounted here; the file
// system then lives on, on its loop device, until the sandbox ends. Its
// key is gone from it all the same (keys belong to the file system, not
// the mount), and mounting the store again mounts that device, never a
// second one on the same image.
//
// # Several nodes
//
// Nodes that share one store (PostgreSQL) share the directory too (NFS
// or another POSIX file system with close-to-open consistency), and
// Options.Locker hands each store to one node at a time: the node takes
// the store's lock (after its own slot) before it mounts the image, and
// lets it go only once the file system was made read-only (so that a
// copy of the mount lingering in a sandbox made ahead of demand can never
// write the image again), unmounted, and the image flushed to the file
// system (fsync). A store is then unmounted at every release. A node
// that dies loses its locks with its database connection; while it holds
// a store it writes a mark ("held") beside the image, removed at a clean
// let-go, and the next node to find the mark waits Options.Fence before
// it mounts, so that a holder that lost its lock but lives has noticed
// (Lease.Lost) and stopped its run. The keys and records are in the
// shared store, so any node opens any store.
//
// # Erasure and retention
//
// Delete unmounts the store (key removed from the kernel), deletes its
// image and then its record with the sealed key: nothing of it is left on
// the node, and blocks the host's disk may still hold are ciphertext
// under a key that no longer exists. Purge deletes the stores unused since
// a time, for the retention class "memory".
//
// It needs Linux, root, loop devices and mkfs.ext4 (e2fsprogs); elsewhere
// New returns ErrUnsupported.
package memory
