// Package audit keeps the audit trail: a tamper-evident, append-only
// record of who did what to what, with which outcome — keys created,
// agents invoked, secrets read, access denied.
//
// # Appending
//
// A Log appends Records to a Store (internal/store/sqlite implements it).
// Append returns only once its record is durable: synced to stable
// storage, in the Log's journal (below) or, without one, in the store's
// transaction. Concurrent Appends are grouped by one writer goroutine
// into one batch of up to Options.MaxBatch records, so the cost of a sync
// is shared: a batch forms while the previous one is being synced. If a
// commit fails, every Append of that batch gets the error; without a
// journal, the next batch chains from the last record the store actually
// holds (the writer reads the head again).
//
// Without a journal, on a ChainStore (package sqlite's store, on SQLite
// and on PostgreSQL), a batch is chained after the Log's own head and
// stored with AppendAudit while no other writer appends (on PostgreSQL
// one statement, one round trip); if the store refuses it for not
// following the stored chain (ErrNotNext), and for as long as other
// writers append, it is chained after the head the store reads in
// the batch's own write transaction, which no other append can overtake:
// Logs on several nodes sharing one database append to one chain, and a
// batch never fails for having lost a race for its head. On another
// Store, a batch that lost it is chained after the new head and tried
// again, for as long as its commit may take.
//
// # The journal
//
// With Options.Journal (the server's is <data dir>/audit.journal), a
// batch is made durable by appending it to a file of our own: one write
// and one fdatasync of a file filled with zeros ahead, so that the sync
// writes data and no metadata. That costs a fraction of a synced SQLite
// commit (whose WAL frames cover the table and its indexes), and Appends
// are answered once it returns. An indexer then copies the records into
// the store in transactions that are not synced, batched behind the
// writer. After a failed sync the Log writes nothing more (the kernel may
// have dropped pages that no later sync would report): every Append fails
// until the journal is opened again. The journal starts over (a new epoch in its header; the old
// frames no longer check) only after the store holds every record in it
// durably (IndexStore.SyncAudit).
//
// Readers use Log.Store, whose reads first wait until the store holds
// every record appended before them; Purge waits likewise. Opening a
// journal whose owner stopped without indexing (a crash) copies the
// records the store lacks into it, durably, before anything else: New
// does it for the new owner, Recover for a reader without a Log (the
// CLI's audit list, export and verify). A journal's frames carry a CRC
// over the epoch and the record; the first zero, torn (cut short by a
// crash: never acknowledged, since a batch is answered after its sync) or
// stale frame ends it, and a frame whose CRC holds but whose record does
// not match its hash is an error: the journal was written by someone
// else than a Log.
//
// One process owns a journal (a flock on <journal>.lock): it indexes and
// starts it over. A Log in another process (a CLI command beside a
// running server) appends to the same journal under its append lock,
// after reading what was appended since it last looked, so the trail
// stays one chain; the owner indexes those records too (it looks every
// 20 ms when idle), and the guest's Close waits until it has. Logs without
// a journal must not share a store with one that has: they would number
// records the journal has numbered already.
//
// Callers fail closed: an action whose record Append could not write must
// not happen, or must be reported as failed. A trail that misses actions
// is worse than an action refused.
//
// # The hash chain
//
// Each record carries Seq (1, 2, 3, ...), PrevHash, the Hash of the record
// before it (32 zero bytes for the first), and its own Hash:
//
//	Hash = SHA-256(PrevHash || canonical encoding of every other field)
//
// The encoding, given in full at Record.ComputeHash, is length-prefixed
// and sorts Details by key, so it is unambiguous and does not depend on a
// map's order or on JSON. Changing a field of a record breaks its Hash;
// deleting, inserting or reordering records breaks a PrevHash or the seq
// numbering. Verify walks the chain and reports the first broken link.
//
// # Sensitive values
//
// Values that must be matchable but not readable (a token, a secret) are
// given as Record.SensitiveDetails; Append stores each as Log.HMAC(value),
// "hmac-sha256:<hex>" as Vault's audit devices write them, keyed with a
// key derived from the Log's key. Whoever holds the key can compute the
// HMAC of a value and search for it; the trail alone does not reveal it.
//
// # Retention
//
// Log.Purge deletes the oldest records in batches. Each batch's
// transaction also writes a Checkpoint — the seq and hash of the last
// record it deleted, its time, and an HMAC-SHA256 signature under a key
// derived from the Log's key — so the trail still verifies: Verify checks
// every checkpoint's signature and starts the chain from the latest one.
// The purge is itself recorded (ActionPurge).
//
// # What the store enforces
//
// The SQLite store refuses, with triggers, any UPDATE of a record or a
// checkpoint, any DELETE of a checkpoint, any DELETE of a record outside a
// purge transaction or not covered by a checkpoint, and any record that
// does not extend the chain. There is no update path in the code, and the
// only delete path is the purge. Someone with write access to the file can
// drop the triggers; the chain shows what they changed, but not records
// removed from the end or a chain rewritten wholesale by someone who knows
// this format: keep Log.Head (or Report.Head) somewhere else to detect
// those (see Verify).
//
// # Reading
//
// Records returns one page of the records matching a Filter, in seq
// order, with AfterSeq as the cursor; ParseFilter reads a Filter from URL
// query parameters. Export streams every match as JSON lines.
package audit
