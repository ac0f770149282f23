package postgres

import (
	"crypto/rand"
	"testing"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
	"github.com/runagent/runagent/internal/store/storetest"
)

// mustOpenSealed is mustOpen with a keyring (a fresh random master key)
// sealing secrets and invocation payloads, as the server opens it.
func mustOpenSealed(t testing.TB, url string) *DB {
	t.Helper()
	db := mustOpen(t, url)
	master := make([]byte, keyring.KeySize)
	rand.Read(master)
	kr, err := keyring.Open(t.Context(), db, keyring.Master{Key: master})
	if err != nil {
		t.Fatalf("keyring.Open = %v", err)
	}
	db.SetSealer(kr)
	return db
}

// mustOpen opens the database at url and closes it when the test ends.
func mustOpen(t testing.TB, url string) *DB {
	t.Helper()
	db, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open(%q) = %v", url, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	c := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T) core.Store {
		return mustOpenSealed(t, c.NewDatabase(t))
	})
}
