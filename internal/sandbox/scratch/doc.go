// Package scratch makes size-capped writable scratch areas for sandboxes.
//
// A tmpfs would count against the sandbox's memory limit, so each sandbox
// gets its own ext4 file system instead: a sparse image file of
// Limits.DiskBytes (default 1 GiB) under the state directory, a sparse
// copy of a template formatted once per size with mkfs.ext4 (no journal,
// no reserved blocks, lazy inode tables),
// attached to a free loop device with LOOP_CONFIGURE and LO_FLAGS_AUTOCLEAR
// (so the kernel frees the device as soon as it is unmounted, even after a
// crash of the server), and mounted nosuid,nodev at
// <stateDir>/<id>/scratch with its root directory owned by the sandbox's
// agent uid and gid. The linux sandbox makes a tmp/ folder in it, with the
// root's owner and mode, which it binds as its /tmp, and beside it the
// writable layer of the overlay over the agent's code (agent/upper and
// agent/work), so the agent's writes beside its code share the same cap.
// Writing past the size fails with ENOSPC; the host's disk is not touched
// beyond the image's size.
//
// KeepReady makes the Manager prepare areas ahead of demand, per size and
// owner, so that a sandbox start only takes one.
//
// Release unmounts (lazily if busy), waits for the loop device to be
// freed, and deletes the image. CleanStale, run when the server starts,
// removes what a crashed server left: mounts, loop devices bound to images
// under the state directory, and the files.
//
// It needs Linux, root, the loop driver (/dev/loop-control) and mkfs.ext4
// (e2fsprogs); New says which is missing. Elsewhere New returns
// ErrUnsupported.
package scratch
