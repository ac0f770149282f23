package keyring

import (
	"bytes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size in bytes of the master key, the data keys and the
// MAC root: AES-256 and HMAC-SHA256 keys.
const KeySize = 32

// saltSize is the size of the random Argon2id salt of a passphrase.
const saltSize = 16

// ArgonParams are the Argon2id parameters that stretch a passphrase.
type ArgonParams struct {
	Time      uint32 // passes over the memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultArgonParams are the parameters a new passphrase is stretched
// with unless Master.Params says otherwise: 3 passes over 64 MiB with 2
// threads (RFC 9106's second recommended option, with 2 lanes).
var DefaultArgonParams = ArgonParams{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// Bounds on stored parameters, so that a damaged or hostile database cannot
// make Open spin or allocate without limit.
const (
	maxArgonTime      = 64
	maxArgonMemoryKiB = 4 << 20 // 4 GiB
)

func (p ArgonParams) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxArgonTime:
		return fmt.Errorf("argon2id time %d is not between 1 and %d", p.Time, maxArgonTime)
	case p.Threads < 1:
		return errors.New("argon2id needs at least 1 thread")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgonMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB is not between %d (8 per thread) and %d", p.MemoryKiB, 8*uint32(p.Threads), maxArgonMemoryKiB)
	}
	return nil
}

// Master is the key the operator controls, which wraps every other key.
// Exactly one of Key and Passphrase is set.
//
// Master formats as a placeholder with every fmt verb, so it never prints
// key material.
type Master struct {
	// Key is a KeySize-byte key, as ReadKeyFile returns it.
	Key []byte

	// Passphrase is stretched with Argon2id into the master key. The salt
	// and parameters are stored in the database the first time it is used
	// (by Open on an empty database, or by RotateMaster), and read from
	// there afterwards.
	Passphrase []byte

	// Params are the Argon2id parameters used when a passphrase gets a new
	// salt; nil means DefaultArgonParams. They are ignored when the
	// database already holds the parameters of this passphrase.
	Params *ArgonParams
}

// String describes m without its secret.
func (m Master) String() string {
	switch {
	case m.Key != nil && m.Passphrase != nil:
		return "keyring.Master{invalid: key and passphrase}"
	case m.Key != nil:
		return "keyring.Master{key: REDACTED}"
	case m.Passphrase != nil:
		return "keyring.Master{passphrase: REDACTED}"
	}
	return "keyring.Master{}"
}

// GoString is String, for %#v.
func (m Master) GoString() string { return m.String() }

// Format writes String for every verb, so that no verb prints the key.
func (m Master) Format(f fmt.State, verb rune) { io.WriteString(f, m.String()) }

func (m Master) validate() error {
	switch {
	case m.Key != nil && m.Passphrase != nil:
		return errors.New("keyring: master key: give a key file or a passphrase, not both")
	case m.Key != nil:
		if len(m.Key) != KeySize {
			return fmt.Errorf("keyring: master key is %d bytes, want %d", len(m.Key), KeySize)
		}
	case len(m.Passphrase) == 0:
		return errors.New("keyring: no master key: give a key file or a passphrase")
	case m.Params != nil:
		if err := m.Params.validate(); err != nil {
			return fmt.Errorf("keyring: master passphrase: %w", err)
		}
	}
	return nil
}

// masterKey is a master key ready to use: its id, and the AEAD that wraps
// keys under it. The raw key is not kept.
type masterKey struct {
	id   string
	wrap cipher.AEAD
	kdf  *KDF // nil for a key file
}

// newMasterKey derives the usable master key from m (which must be valid).
// For a passphrase, stored holds the salt and parameters already in the
// database; nil generates a new salt and takes m.Params.
func newMasterKey(m Master, stored *KDF) (*masterKey, error) {
	raw := make([]byte, KeySize)
	defer clear(raw)
	var kdf *KDF
	if m.Key != nil {
		copy(raw, m.Key)
	} else {
		if stored != nil {
			if err := stored.Params.validate(); err != nil {
				return nil, fmt.Errorf("keyring: stored passphrase parameters: %w", err)
			}
			if len(stored.Salt) != saltSize {
				return nil, fmt.Errorf("keyring: stored passphrase salt is %d bytes, want %d", len(stored.Salt), saltSize)
			}
			kdf = &KDF{Salt: bytes.Clone(stored.Salt), Params: stored.Params}
		} else {
			p := DefaultArgonParams
			if m.Params != nil {
				p = *m.Params
			}
			salt := make([]byte, saltSize)
			rand.Read(salt)
			kdf = &KDF{Salt: salt, Params: p}
		}
		k := argon2.IDKey(m.Passphrase, kdf.Salt, kdf.Params.Time, kdf.Params.MemoryKiB, kdf.Params.Threads, KeySize)
		copy(raw, k)
		clear(k)
	}
	wrapKey, err := deriveKey(raw, "runagent keyring: key wrapping")
	if err != nil {
		return nil, err
	}
	defer clear(wrapKey)
	a, err := newAEAD(wrapKey)
	if err != nil {
		return nil, err
	}
	return &masterKey{id: MasterKeyID(raw), wrap: a, kdf: kdf}, nil
}

// MasterKeyID returns the short public id of a master key: the first 8
// bytes of HMAC-SHA256(key, "runagent master key id"), in hex. It tells
// which master key a database needs without revealing the key. For a
// passphrase it is the id of the stretched key.
func MasterKeyID(key []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("runagent master key id"))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// maxKeyFileSize bounds what ReadKeyFile reads: a key file is one short line.
const maxKeyFileSize = 1024

// GenerateKeyFile writes a new random master key to path: KeySize bytes in
// standard base64 on one line, in a file of mode 0600 (the parent
// directory is created with mode 0700 if missing). It never overwrites an
// existing file.
func GenerateKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keyring: generate key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("keyring: generate key file: %s already exists; refusing to overwrite a master key: %w", path, err)
	}
	if err != nil {
		return fmt.Errorf("keyring: generate key file: %w", err)
	}
	key := make([]byte, KeySize)
	rand.Read(key)
	line := make([]byte, base64.StdEncoding.EncodedLen(KeySize)+1)
	base64.StdEncoding.Encode(line, key)
	line[len(line)-1] = '\n'
	clear(key)
	_, err = f.Write(line)
	clear(line)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("keyring: generate key file %s: %w", path, err)
	}
	return nil
}

// ReadKeyFile reads a master key written by GenerateKeyFile. It refuses a
// file that group or others may access, and one that does not hold exactly
// KeySize bytes in standard base64 (surrounding white space allowed). Its
// errors never contain key material.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: read key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: read key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keyring: key file %s is not a regular file", path)
	}
	// Windows has no such permission bits; its ACLs are the operator's.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("keyring: key file %s has mode %04o, so group or others may access it: run chmod 600 %s", path, perm, path)
	}
	buf := make([]byte, maxKeyFileSize+1)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	switch {
	case err == nil:
		return nil, fmt.Errorf("keyring: key file %s is larger than %d bytes; want one line of base64 (make one with GenerateKeyFile)", path, maxKeyFileSize)
	case err != io.ErrUnexpectedEOF && err != io.EOF:
		return nil, fmt.Errorf("keyring: read key file: %w", err)
	}
	key, err := ParseKey(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	return key, nil
}

// ParseKey reads a master key as GenerateKeyFile writes it: KeySize
// bytes in standard base64, surrounding white space allowed (the
// contents of a key file, or $RUNAGENT_MASTER_KEY). Its errors never
// contain key material.
func ParseKey(text []byte) ([]byte, error) {
	text = bytes.TrimSpace(text)
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Strict().Decode(key, text)
	if err != nil {
		// The decoder's error names an offset only, but say less anyway.
		clear(key)
		return nil, errors.New("it is not one line of standard base64")
	}
	if n != KeySize {
		clear(key)
		return nil, fmt.Errorf("it holds a %d-byte key, want %d", n, KeySize)
	}
	return key[:KeySize:KeySize], nil
}
