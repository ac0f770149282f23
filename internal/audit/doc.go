// Package audit keeps the audit trail: a tamper-evident, append-only
// record of who did what to what, with which outcome — keys created,
// agents invoked, secrets read, access denied.
//
// # Appending
//
// A Log appends Records to a Store (internal/store/sqlite implements it).
// Append returns only once its record is durably committed: the store's
// transaction is synced to stable storage. Concurrent Appends are grouped
// by one writer goroutine into one transaction of up to Options.MaxBatch
// records, so the cost of a sync is shared: a batch forms while the
// previous one is being synced. If a commit fails, every Append of that
// batch gets the error, and the next batch chains from the last record
// the store actually holds (the writer reads the head again).
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
