package keyring_test

import (
	"path/filepath"
	"testing"

	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// tinyArgon makes passphrase tests fast; never use it for real.
var tinyArgon = &keyring.ArgonParams{Time: 1, MemoryKiB: 64, Threads: 1}

// mustOpenDB opens the SQLite database at path and closes it when the
// test ends (closing it twice is harmless).
func mustOpenDB(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(tb.Context(), path)
	if err != nil {
		tb.Fatalf("sqlite.Open(%q) = %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// mustKeyFile generates a key file in a new directory and returns its path
// and the key read back from it.
func mustKeyFile(tb testing.TB) (string, []byte) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "keys", "master.key")
	if err := keyring.GenerateKeyFile(path); err != nil {
		tb.Fatalf("GenerateKeyFile(%q) = %v", path, err)
	}
	key, err := keyring.ReadKeyFile(path)
	if err != nil {
		tb.Fatalf("ReadKeyFile(%q) = %v", path, err)
	}
	return path, key
}

func mustOpen(tb testing.TB, store keyring.Store, m keyring.Master) *keyring.Keyring {
	tb.Helper()
	kr, err := keyring.Open(tb.Context(), store, m)
	if err != nil {
		tb.Fatalf("keyring.Open(%v) = %v", m, err)
	}
	return kr
}

// newKeyring opens a keyring with a new key file on a new database file.
func newKeyring(tb testing.TB) (*keyring.Keyring, *sqlite.DB) {
	tb.Helper()
	db := mustOpenDB(tb, filepath.Join(tb.TempDir(), "runagent.db"))
	_, key := mustKeyFile(tb)
	return mustOpen(tb, db, keyring.Master{Key: key}), db
}

func mustSeal(tb testing.TB, kr *keyring.Keyring, plaintext, aad []byte) []byte {
	tb.Helper()
	ct, err := kr.Seal(plaintext, aad)
	if err != nil {
		tb.Fatalf("Seal(%d bytes, %q) = %v", len(plaintext), aad, err)
	}
	return ct
}
