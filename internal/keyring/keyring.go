package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The sealed format: version | data key id (big-endian) | nonce | AES-GCM
// ciphertext and tag.
const (
	formatVersion = 0x01
	headerSize    = 1 + 4
	nonceSize     = 12
	tagSize       = 16
)

// Overhead is how many bytes Seal adds to a plaintext: 33.
const Overhead = headerSize + nonceSize + tagSize

// maxPlaintext is the most AES-GCM can seal under one nonce (2^32-2
// blocks), less a margin.
const maxPlaintext = (1<<32-2)*aes.BlockSize - 1024

// A wrapped key is wrapVersion | nonce | AES-GCM ciphertext of the key and
// tag, encrypted under the key derived from the master key.
const (
	wrapVersion = 0x01
	wrappedSize = 1 + nonceSize + KeySize + tagSize
)

// maxAttempts bounds how often a change is retried when another writer
// changed the stored keyring first.
const maxAttempts = 5

var (
	// ErrWrongMasterKey is wrapped by the error Open returns when the
	// master key is not the one the database's keys are wrapped with.
	ErrWrongMasterKey = errors.New("wrong master key")

	// ErrDecrypt is wrapped by every error (*Keyring).Open returns: the
	// value is not a sealed value, was tampered with, was sealed with
	// other associated data, or names a data key the keyring lacks.
	ErrDecrypt = errors.New("cannot decrypt")

	// ErrUnknownKey is wrapped by the error (*Keyring).Open returns for a
	// value sealed with a data key the keyring does not hold (for
	// instance one another process created after this one loaded the
	// keyring: see Reload). It wraps ErrDecrypt.
	ErrUnknownKey = fmt.Errorf("unknown data key: %w", ErrDecrypt)
)

// Keyring seals and opens values with the data keys of one database. It
// is safe for concurrent use.
type Keyring struct {
	store   Store
	macRoot []byte // set by Open, then never written

	mu     sync.Mutex // serialises changes to the stored keyring
	master *masterKey // guarded by mu

	keys atomic.Pointer[keySet]

	// Reloads for values sealed with an unknown key (ReloadOnUnknown):
	// at most one per reloadEvery (0: none).
	reloadEvery atomic.Int64 // time.Duration
	reloadMu    sync.Mutex
	lastReload  time.Time // guarded by reloadMu
}

// reloadTimeout bounds a reload Open makes.
const reloadTimeout = 5 * time.Second

// ReloadOnUnknown makes Open, given a value sealed with a data key this
// keyring does not hold, reload the keyring once (Reload) before it
// fails: with several processes sharing the database, another one may
// have rotated the data key. Reloads are at most one per every, so that
// values naming keys that do not exist cannot make each Open read the
// store; one already made for the same key is waited for and used. every
// 0 turns it off (the default: Open never reads the store).
//
// Preconditions: Open may then read the store (LoadKeyring), so it must
// not be called where that read would wait for the caller (a store with
// one connection, held by the caller).
func (k *Keyring) ReloadOnUnknown(every time.Duration) { k.reloadEvery.Store(int64(every)) }

// reloadFor reloads the keyring for a value sealed with data key id, as
// ReloadOnUnknown says, and returns the key (nil: still unknown) and the
// reload's error.
func (k *Keyring) reloadFor(id uint32) (cipher.AEAD, error) {
	every := time.Duration(k.reloadEvery.Load())
	if every <= 0 {
		return nil, nil
	}
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	if a := k.keys.Load().open[id]; a != nil {
		return a, nil // a reload while this one waited brought it
	}
	if now := time.Now(); now.Sub(k.lastReload) >= every {
		k.lastReload = now
	} else {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	return k.keys.Load().open[id], nil
}

// keySet is an immutable snapshot of the unwrapped data keys.
type keySet struct {
	version  int64 // of the State it was unwrapped from
	masterID string
	active   uint32
	seal     cipher.AEAD // the active key's
	open     map[uint32]cipher.AEAD
}

// Open opens the keyring kept in store with master key m. On an empty
// store it creates one: it records m's id (and, for a passphrase, a new
// salt and m's Argon2id parameters), a MAC root and a first data key. On
// a store that already has one it fails with an error wrapping
// ErrWrongMasterKey unless m is the master key it is wrapped with.
//
// Open keeps no copy of m's bytes; the caller may clear them once it
// returns.
func Open(ctx context.Context, store Store, m Master) (*Keyring, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		st, err := store.LoadKeyring(ctx)
		if err != nil {
			return nil, fmt.Errorf("keyring: load: %w", err)
		}
		if st.Version == 0 {
			k, err := create(ctx, store, m)
			if errors.Is(err, ErrConflict) && attempt < maxAttempts {
				continue // another process created it first: use that
			}
			return k, err
		}
		mk, err := masterFor(m, st)
		if err != nil {
			return nil, err
		}
		k := &Keyring{store: store, master: mk}
		if err := k.install(st, mk); err != nil {
			return nil, err
		}
		return k, nil
	}
}

// create initialises an empty store.
func create(ctx context.Context, store Store, m Master) (*Keyring, error) {
	mk, err := newMasterKey(m, nil)
	if err != nil {
		return nil, err
	}
	macRoot := make([]byte, KeySize)
	rand.Read(macRoot)
	st := &State{
		MasterKeyID: mk.id,
		KDF:         mk.kdf,
		MACRoot:     wrap(mk.wrap, macRootAD(), macRoot),
	}
	clear(macRoot)
	addDataKey(st, mk, 1)
	if err := store.SaveKeyring(ctx, st); err != nil {
		return nil, fmt.Errorf("keyring: create: %w", err)
	}
	k := &Keyring{store: store, master: mk}
	if err := k.install(st, mk); err != nil {
		return nil, err
	}
	return k, nil
}

// masterFor derives the master key m stands for in a store holding st,
// and checks that it is the one st is wrapped with.
func masterFor(m Master, st *State) (*masterKey, error) {
	if m.Passphrase != nil && st.KDF == nil {
		return nil, fmt.Errorf("keyring: a passphrase was given, but this database's keys are wrapped with a master key from a key file (key id %s): use the right --master-key-file: %w", st.MasterKeyID, ErrWrongMasterKey)
	}
	mk, err := newMasterKey(m, st.KDF)
	if err != nil {
		return nil, err
	}
	if m.Key != nil && st.KDF != nil {
		return nil, fmt.Errorf("keyring: a key file (key id %s) was given, but this database's keys are wrapped with a master key derived from a passphrase (key id %s): use the right passphrase: %w", mk.id, st.MasterKeyID, ErrWrongMasterKey)
	}
	if err := checkMaster(mk, st); err != nil {
		return nil, err
	}
	return mk, nil
}

func checkMaster(mk *masterKey, st *State) error {
	if mk.id != st.MasterKeyID {
		return fmt.Errorf("keyring: the master key does not match the one this database's keys are wrapped with (key id %s, expected %s): use the right --master-key-file or passphrase: %w", mk.id, st.MasterKeyID, ErrWrongMasterKey)
	}
	return nil
}

// install unwraps st with mk and makes its keys the ones in use. Open
// calls it before k is shared; later calls hold k.mu.
func (k *Keyring) install(st *State, mk *masterKey) error {
	ks, macRoot, err := unwrapState(st, mk)
	if err != nil {
		return err
	}
	if k.macRoot == nil {
		k.macRoot = macRoot
	} else {
		same := hmac.Equal(k.macRoot, macRoot)
		clear(macRoot)
		if !same {
			return errors.New("keyring: the stored MAC root changed, which must never happen: the database was replaced or damaged")
		}
	}
	k.keys.Store(ks)
	return nil
}

// unwrapState checks st and unwraps its keys with mk.
func unwrapState(st *State, mk *masterKey) (*keySet, []byte, error) {
	if err := checkMaster(mk, st); err != nil {
		return nil, nil, err
	}
	if len(st.DataKeys) == 0 {
		return nil, nil, errors.New("keyring: the stored keyring has no data keys: it is damaged")
	}
	macRoot, err := unwrap(mk.wrap, macRootAD(), st.MACRoot)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: the MAC root does not decrypt under the master key although the key id matches: the stored keyring is damaged: %w", err)
	}
	ks := &keySet{
		version:  st.Version,
		masterID: st.MasterKeyID,
		active:   st.ActiveKeyID,
		open:     make(map[uint32]cipher.AEAD, len(st.DataKeys)),
	}
	var prev uint32
	for _, w := range st.DataKeys {
		if w.ID <= prev {
			clear(macRoot)
			return nil, nil, fmt.Errorf("keyring: the stored data keys are not in increasing id order (%d after %d): the stored keyring is damaged", w.ID, prev)
		}
		prev = w.ID
		raw, err := unwrap(mk.wrap, dataKeyAD(w.ID), w.Wrapped)
		if err != nil {
			clear(macRoot)
			return nil, nil, fmt.Errorf("keyring: data key %d does not decrypt under the master key although the key id matches: the stored keyring is damaged: %w", w.ID, err)
		}
		a, err := newAEAD(raw)
		clear(raw)
		if err != nil {
			clear(macRoot)
			return nil, nil, err
		}
		ks.open[w.ID] = a
	}
	ks.seal = ks.open[st.ActiveKeyID]
	if ks.seal == nil {
		clear(macRoot)
		return nil, nil, fmt.Errorf("keyring: the active data key %d is not stored: the stored keyring is damaged", st.ActiveKeyID)
	}
	return ks, macRoot, nil
}

// Reload reads the stored keyring again, to pick up data keys that other
// processes sharing the database created since this keyring was loaded.
// It fails with an error wrapping ErrWrongMasterKey if another process
// rotated the master key; the keys in use then stay as they were (they
// still open every value sealed before the rotation, and what they seal
// opens everywhere), but values sealed with the new data key do not open
// here, and RotateDataKey fails, until the process is restarted with the
// new master key.
func (k *Keyring) Reload(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	st, err := k.store.LoadKeyring(ctx)
	if err != nil {
		return fmt.Errorf("keyring: reload: %w", err)
	}
	if st.Version == 0 {
		return errors.New("keyring: reload: the database holds no keyring any more")
	}
	return k.install(st, k.master)
}

// update changes the stored keyring: it loads it, lets change modify it
// and saves it, retrying from a fresh load when another writer saved first.
// change returns the master key that wraps the modified state.
func (k *Keyring) update(ctx context.Context, what string, change func(st *State, mk *masterKey) (*masterKey, error)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for attempt := 1; ; attempt++ {
		st, err := k.store.LoadKeyring(ctx)
		if err != nil {
			return fmt.Errorf("keyring: %s: load: %w", what, err)
		}
		if st.Version == 0 {
			return fmt.Errorf("keyring: %s: the database holds no keyring any more", what)
		}
		if err := checkMaster(k.master, st); err != nil {
			return fmt.Errorf("keyring: %s: another process rotated the master key: %w", what, err)
		}
		mk, err := change(st, k.master)
		if err != nil {
			return fmt.Errorf("keyring: %s: %w", what, err)
		}
		err = k.store.SaveKeyring(ctx, st)
		if errors.Is(err, ErrConflict) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return fmt.Errorf("keyring: %s: save: %w", what, err)
		}
		if err := k.install(st, mk); err != nil {
			return err
		}
		k.master = mk
		return nil
	}
}

// RotateDataKey creates a new data key and makes it the active one: values
// sealed from now on use it. Older keys stay, so values sealed with them
// still open. It returns the new key's id.
func (k *Keyring) RotateDataKey(ctx context.Context) (uint32, error) {
	var id uint32
	err := k.update(ctx, "rotate data key", func(st *State, mk *masterKey) (*masterKey, error) {
		var err error
		id, err = nextKeyID(st)
		if err != nil {
			return nil, err
		}
		addDataKey(st, mk, id)
		return mk, nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// RotateMaster re-wraps every data key and the MAC root under newMaster
// and records its id (for a passphrase, a new salt and newMaster's
// parameters), together with a new active data key, in one save. Every
// value stays readable; from then on Open needs newMaster and refuses the
// old one with ErrWrongMasterKey. The MAC root, and so every MACKey, is
// unchanged.
func (k *Keyring) RotateMaster(ctx context.Context, newMaster Master) error {
	if err := newMaster.validate(); err != nil {
		return err
	}
	// Stretching a passphrase is slow: do it before taking the lock.
	nm, err := newMasterKey(newMaster, nil)
	if err != nil {
		return err
	}
	return k.update(ctx, "rotate master key", func(st *State, old *masterKey) (*masterKey, error) {
		if nm.id == old.id {
			return nil, fmt.Errorf("the new master key is the one in use (key id %s)", nm.id)
		}
		macRoot, err := unwrap(old.wrap, macRootAD(), st.MACRoot)
		if err != nil {
			return nil, fmt.Errorf("MAC root: %w", err)
		}
		st.MACRoot = wrap(nm.wrap, macRootAD(), macRoot)
		clear(macRoot)
		keys := make([]WrappedKey, len(st.DataKeys))
		for i, w := range st.DataKeys {
			raw, err := unwrap(old.wrap, dataKeyAD(w.ID), w.Wrapped)
			if err != nil {
				return nil, fmt.Errorf("data key %d: %w", w.ID, err)
			}
			keys[i] = WrappedKey{ID: w.ID, Wrapped: wrap(nm.wrap, dataKeyAD(w.ID), raw), CreatedAt: w.CreatedAt}
			clear(raw)
		}
		st.DataKeys = keys
		st.MasterKeyID = nm.id
		st.KDF = nm.kdf
		id, err := nextKeyID(st)
		if err != nil {
			return nil, err
		}
		addDataKey(st, nm, id)
		return nm, nil
	})
}

func nextKeyID(st *State) (uint32, error) {
	last := st.DataKeys[len(st.DataKeys)-1].ID
	if last == math.MaxUint32 {
		return 0, errors.New("data key ids are exhausted")
	}
	return last + 1, nil
}

// addDataKey adds a new random data key with id to st, wrapped by mk, and
// makes it the active one.
func addDataKey(st *State, mk *masterKey, id uint32) {
	raw := make([]byte, KeySize)
	rand.Read(raw)
	st.DataKeys = append(st.DataKeys, WrappedKey{ID: id, Wrapped: wrap(mk.wrap, dataKeyAD(id), raw), CreatedAt: time.Now().UTC()})
	clear(raw)
	st.ActiveKeyID = id
}

// ActiveKeyID returns the id of the data key Seal uses. Values whose
// KeyID is lower were sealed with older keys and can be re-sealed.
func (k *Keyring) ActiveKeyID() uint32 { return k.keys.Load().active }

// MasterKeyID returns the id of the master key the keyring is wrapped
// with (see the package function MasterKeyID).
func (k *Keyring) MasterKeyID() string { return k.keys.Load().masterID }

// MACKey returns a KeySize-byte key for purpose, derived with HKDF-SHA256
// from the keyring's MAC root with purpose as the info. The same purpose
// always gives the same key for a database, across restarts and master key
// rotations; different purposes give independent keys.
func (k *Keyring) MACKey(purpose string) []byte {
	key, err := hkdf.Key(sha256.New, k.macRoot, nil, purpose, KeySize)
	if err != nil {
		// Only a too-long output or, in FIPS mode, a short secret fail.
		panic("keyring: derive MAC key: " + err.Error())
	}
	return key
}

// Seal encrypts and authenticates plaintext with the active data key,
// binding it to aad: Open must be given the same aad. Callers name where
// the value is stored in aad (table, column and row, say), so that a value
// copied to another place does not open there.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	if uint64(len(plaintext)) > maxPlaintext {
		return nil, fmt.Errorf("keyring: seal: %d bytes is more than AES-GCM can seal at once", len(plaintext))
	}
	ks := k.keys.Load()
	out := make([]byte, headerSize+nonceSize, headerSize+nonceSize+len(plaintext)+tagSize)
	out[0] = formatVersion
	binary.BigEndian.PutUint32(out[1:headerSize], ks.active)
	nonce := out[headerSize:]
	rand.Read(nonce)
	return ks.seal.Seal(out, nonce, plaintext, additionalData(out[:headerSize], aad)), nil
}

// Open decrypts a value made by Seal with the same aad. Every error wraps
// ErrDecrypt, and says why without quoting the value: it is not a sealed
// value, names a data key the keyring lacks (ErrUnknownKey; after a
// reload, with ReloadOnUnknown), or does not authenticate (tampered with,
// or other aad).
func (k *Keyring) Open(ciphertext, aad []byte) ([]byte, error) {
	id, ok := KeyID(ciphertext)
	if !ok {
		return nil, fmt.Errorf("keyring: open: not a sealed value of a known format: %w", ErrDecrypt)
	}
	a := k.keys.Load().open[id]
	if a == nil {
		var err error
		if a, err = k.reloadFor(id); err != nil {
			return nil, fmt.Errorf("keyring: open: the value is sealed with data key %d, which this keyring does not hold, and reloading the keyring failed (%v): %w", id, err, ErrUnknownKey)
		}
	}
	if a == nil {
		return nil, fmt.Errorf("keyring: open: the value is sealed with data key %d, which this keyring does not hold: %w", id, ErrUnknownKey)
	}
	pt, err := a.Open(nil, ciphertext[headerSize:headerSize+nonceSize], ciphertext[headerSize+nonceSize:], additionalData(ciphertext[:headerSize], aad))
	if err != nil {
		return nil, fmt.Errorf("keyring: open: the value does not authenticate (tampered with, or sealed for another place): %w", ErrDecrypt)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// IsSealed reports whether b looks like a value Seal made: it has the
// format's version byte and is long enough. It cannot tell a sealed value
// from other bytes that happen to look like one, so callers that keep
// legacy plaintext next to sealed values must store them so that they
// cannot be confused (a separate column, or a marker of their own) and use
// IsSealed only as a sanity check.
func IsSealed(b []byte) bool {
	return len(b) >= Overhead && b[0] == formatVersion
}

// KeyID returns the id of the data key a sealed value names, and whether
// ciphertext looks like a sealed value (see IsSealed). It does not
// authenticate ciphertext.
func KeyID(ciphertext []byte) (uint32, bool) {
	if !IsSealed(ciphertext) {
		return 0, false
	}
	return binary.BigEndian.Uint32(ciphertext[1:headerSize]), true
}

// additionalData is what AES-GCM authenticates besides the ciphertext: the
// value's header (so that its version and key id cannot be changed) and
// the caller's aad. The header has a fixed size, so the two cannot run
// into each other.
func additionalData(header, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+len(aad))
	return append(append(ad, header...), aad...)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return a, nil
}

// deriveKey derives a KeySize-byte key for one use from a secret.
func deriveKey(secret []byte, info string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, info, KeySize)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive key: %w", err)
	}
	return k, nil
}

// The associated data of wrapped keys, so that a wrapped key cannot be
// passed off as another.
func macRootAD() []byte { return []byte("runagent keyring v1\x00mac root") }

func dataKeyAD(id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte("runagent keyring v1\x00data key\x00"), id)
}

// wrap encrypts a secret under a master key's wrapping AEAD.
func wrap(a cipher.AEAD, ad, secret []byte) []byte {
	out := make([]byte, 1+nonceSize, wrappedSize)
	out[0] = wrapVersion
	rand.Read(out[1:])
	return a.Seal(out, out[1:], secret, ad)
}

// unwrap decrypts a secret wrap made.
func unwrap(a cipher.AEAD, ad, wrapped []byte) ([]byte, error) {
	if len(wrapped) != wrappedSize || wrapped[0] != wrapVersion {
		return nil, fmt.Errorf("wrapped key has an unknown format: %w", ErrDecrypt)
	}
	raw, err := a.Open(nil, wrapped[1:1+nonceSize], wrapped[1+nonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("wrapped key does not authenticate: %w", ErrDecrypt)
	}
	return raw, nil
}
