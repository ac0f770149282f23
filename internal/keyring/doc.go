// Package keyring encrypts values at rest with envelope encryption: data
// keys that live in the database, wrapped by a master key that does not.
//
// # Keys
//
// The master key is the operator's: KeySize random bytes in a key file
// (GenerateKeyFile, ReadKeyFile), or a passphrase stretched with Argon2id,
// whose random salt and parameters are stored in the database the first
// time it is used so that the same passphrase gives the same key after a
// restart. The database records the master key's id (MasterKeyID: a
// truncated HMAC of the key, which does not reveal it), so that opening it
// with another master key fails at once with ErrWrongMasterKey instead of
// producing garbage.
//
// The database holds, each wrapped with AES-256-GCM under a key derived
// from the master key, with associated data naming what it is:
//
//   - data keys: random AES-256 keys numbered 1, 2, 3, ... (uint32). The
//     newest is the active one, which Seal uses; the others stay, so that
//     older values still open.
//   - the MAC root: one random secret, never rotated, from which MACKey
//     derives a key per purpose with HKDF-SHA256 (the audit trail HMACs
//     values and signs checkpoints with them).
//
// The package keeps every piece of cryptography; a Store only loads and
// saves the wrapped bytes (a State), all at once, in one transaction, with
// a version number so that two processes changing the keyring at once
// cannot lose each other's keys: the later save fails with ErrConflict and
// the change is redone on the fresh state.
//
// # Sealed values
//
// Seal encrypts a value with AES-256-GCM under the active data key:
//
//	0x01 | data key id (4 bytes, big-endian) | nonce (12 random bytes) | ciphertext | tag (16 bytes)
//
// The version byte and key id are authenticated together with the
// caller's associated data, which should name where the value is kept
// ("invocations\x00output\x00<id>"): a value moved to another row, or
// altered in any byte, does not open (ErrDecrypt). KeyID reads a value's
// key id without opening it, so that callers can find values sealed with
// keys older than ActiveKeyID and re-seal them. Nonces are random, so one
// data key should seal fewer than 2^32 values: rotate long before.
//
// # Rotation
//
// RotateDataKey adds a new active data key; nothing is re-encrypted and
// every value still opens. RotateMaster re-wraps every data key and the
// MAC root under a new master key, records the new master key's id (and
// salt and parameters, for a passphrase) and adds a new active data key,
// all in one save: afterwards the old master key is refused and the new
// one opens everything. Values are never re-encrypted by a rotation, and
// MACKey's keys never change. A process that shares the database with one
// that rotated picks up the new keys with Reload.
package keyring
