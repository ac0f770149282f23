package keyring

import (
	"context"
	"errors"
	"time"
)

// Store keeps a keyring's State. It only keeps bytes: every secret in a
// State is wrapped (encrypted) by the master key, and a Store never sees
// the master key.
type Store interface {
	// LoadKeyring returns the stored state. A store that holds none
	// returns a zero State (Version 0), not an error.
	LoadKeyring(ctx context.Context) (*State, error)

	// SaveKeyring replaces the stored state with s in one transaction, if
	// the stored version is still s.Version (0: nothing is stored yet);
	// otherwise it fails with an error wrapping ErrConflict and changes
	// nothing. On success it sets s.Version to the new stored version,
	// which is greater than the old one. A Store may refuse a state that
	// lacks a data key it holds: the keyring never drops one.
	SaveKeyring(ctx context.Context, s *State) error
}

// ErrConflict is wrapped by the error a Store's SaveKeyring returns when
// another writer saved the keyring since the state was loaded.
var ErrConflict = errors.New("keyring was changed concurrently")

// State is a keyring as stored: which master key wraps it, and its keys
// wrapped by that master key.
type State struct {
	// Version is an optimistic-concurrency counter: the version the state
	// was loaded at; 0 when nothing is stored.
	Version int64

	// MasterKeyID identifies the master key that wraps the keys: see
	// MasterKeyID.
	MasterKeyID string

	// KDF holds the salt and parameters that stretch the operator's
	// passphrase into the master key, or is nil if the master key comes
	// from a key file.
	KDF *KDF

	// MACRoot is the wrapped root secret MACKey derives from.
	MACRoot []byte

	// ActiveKeyID is the id of the data key new values are sealed with.
	ActiveKeyID uint32

	// DataKeys are the wrapped data keys, ordered by id.
	DataKeys []WrappedKey
}

// KDF is how a passphrase is stretched into a master key.
type KDF struct {
	Salt   []byte
	Params ArgonParams
}

// WrappedKey is one data key, encrypted by the master key.
type WrappedKey struct {
	ID        uint32
	Wrapped   []byte
	CreatedAt time.Time
}
