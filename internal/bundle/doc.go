// Package bundle packages an agent project directory into a deterministic
// tar.gz for upload and content addressing, and unpacks such packages
// safely.
//
// Pack writes the same bytes for the same tree: entries are sorted by
// path, modification times, owners and names of owners are zeroed, modes
// are normalised (0644 or 0755 for files, by the owner's execute bit; 0755
// for directories) and the gzip header carries no name or time. The hash
// of a package, "sha256:<hex>", is therefore a content address. (It is
// stable for a given build of runagent; a change in Go's compressor could
// change the bytes of future packages, never the meaning of stored ones.)
//
// Pack leaves out version-control directories, Python caches, virtual
// environments, node_modules, .DS_Store, and .env / .env.* files (secrets
// are imported separately), plus whatever the project's .runagentignore
// lists. Symlinks are followed only while they stay inside the project:
// one that points at a regular file in the tree is stored as a copy of
// that file, one that points outside the tree (or passes through "..") or
// nowhere is an error, and a symlink to a directory is an error (storing it
// would mean copying a tree that may contain itself). Devices, sockets and
// FIFOs are refused.
//
// Unpack trusts nothing in the archive: it accepts only regular files and
// directories with clean relative names, refuses duplicates, enforces
// Limits on the decompressed stream as it reads, writes through an
// os.Root so that nothing can land outside the destination, and extracts
// into a temporary directory next to the destination that is renamed into
// place only when everything succeeded. Files are written 0644 (0755 if
// executable) and directories 0755; making the tree read-only to agents is
// the sandbox's job.
package bundle
