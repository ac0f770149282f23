package sqlite

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/keyring"
)

// keyringState is a state as the keyring would save it: the store only
// keeps the bytes, so any bytes do.
func keyringState(kdf bool) *keyring.State {
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	st := &keyring.State{
		MasterKeyID: "0123456789abcdef",
		MACRoot:     bytes.Repeat([]byte{0xaa}, 61),
		ActiveKeyID: 2,
		DataKeys: []keyring.WrappedKey{
			{ID: 1, Wrapped: bytes.Repeat([]byte{1}, 61), CreatedAt: created},
			{ID: 2, Wrapped: bytes.Repeat([]byte{2}, 61), CreatedAt: created.Add(time.Hour)},
		},
	}
	if kdf {
		st.KDF = &keyring.KDF{Salt: bytes.Repeat([]byte{0x55}, 16), Params: keyring.ArgonParams{Time: 3, MemoryKiB: 65536, Threads: 2}}
	}
	return st
}

func mustLoadKeyring(t *testing.T, db *DB) *keyring.State {
	t.Helper()
	st, err := db.LoadKeyring(t.Context())
	if err != nil {
		t.Fatalf("LoadKeyring() = %v", err)
	}
	return st
}

func TestKeyringEmpty(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	if got := mustLoadKeyring(t, db); !cmp.Equal(got, &keyring.State{}) {
		t.Errorf("LoadKeyring() on a new database = %+v, want a zero State", got)
	}
}

func TestKeyringRoundTrip(t *testing.T) {
	for _, kdf := range []bool{false, true} {
		t.Run(map[bool]string{false: "key file", true: "passphrase"}[kdf], func(t *testing.T) {
			path := tempPath(t)
			db := mustOpen(t, path)
			st := keyringState(kdf)
			if err := db.SaveKeyring(t.Context(), st); err != nil {
				t.Fatalf("SaveKeyring() = %v", err)
			}
			if st.Version != 1 {
				t.Errorf("Version after the first save = %d, want 1", st.Version)
			}
			if diff := cmp.Diff(st, mustLoadKeyring(t, db)); diff != "" {
				t.Errorf("LoadKeyring() differs from what was saved (-saved +loaded):\n%s", diff)
			}
			db.Close()

			// It persists; and a second save replaces everything.
			db = mustOpen(t, path)
			got := mustLoadKeyring(t, db)
			if diff := cmp.Diff(st, got); diff != "" {
				t.Errorf("LoadKeyring() after reopening (-saved +loaded):\n%s", diff)
			}
			got.MasterKeyID = "fedcba9876543210"
			got.KDF = &keyring.KDF{Salt: bytes.Repeat([]byte{0x66}, 16), Params: keyring.ArgonParams{Time: 1, MemoryKiB: 8, Threads: 1}}
			got.MACRoot = bytes.Repeat([]byte{0xbb}, 61)
			for i := range got.DataKeys {
				got.DataKeys[i].Wrapped = bytes.Repeat([]byte{byte(10 + i)}, 61)
			}
			got.DataKeys = append(got.DataKeys, keyring.WrappedKey{ID: 3, Wrapped: []byte{3}, CreatedAt: time.Unix(5, 0).UTC()})
			got.ActiveKeyID = 3
			if err := db.SaveKeyring(t.Context(), got); err != nil {
				t.Fatalf("second SaveKeyring() = %v", err)
			}
			if got.Version != 2 {
				t.Errorf("Version after the second save = %d, want 2", got.Version)
			}
			if diff := cmp.Diff(got, mustLoadKeyring(t, db)); diff != "" {
				t.Errorf("LoadKeyring() after the second save (-saved +loaded):\n%s", diff)
			}
			// Back to a key file: the KDF columns become NULL.
			got.KDF = nil
			if err := db.SaveKeyring(t.Context(), got); err != nil {
				t.Fatalf("third SaveKeyring() = %v", err)
			}
			if diff := cmp.Diff(got, mustLoadKeyring(t, db)); diff != "" {
				t.Errorf("LoadKeyring() after the third save (-saved +loaded):\n%s", diff)
			}
		})
	}
}

func TestKeyringZeroCreatedAt(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	now := time.Date(2030, 6, 7, 8, 9, 10, 11, time.UTC)
	db.now = func() time.Time { return now }
	st := keyringState(false)
	st.DataKeys[1].CreatedAt = time.Time{}
	if err := db.SaveKeyring(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	if got := mustLoadKeyring(t, db).DataKeys[1].CreatedAt; !got.Equal(now) {
		t.Errorf("CreatedAt of a key saved without one = %v, want %v", got, now)
	}
}

// TestKeyringConflict: a save over a version that is no longer the stored
// one fails with keyring.ErrConflict and changes nothing.
func TestKeyringConflict(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	ctx := t.Context()
	if err := db.SaveKeyring(ctx, keyringState(false)); err != nil {
		t.Fatal(err)
	}
	want := mustLoadKeyring(t, db)

	tests := []struct {
		name    string
		version int64
	}{
		{"create again", 0},
		{"stale", -1},
		{"from the future", 7},
	}
	for _, tt := range tests {
		st := keyringState(true)
		st.MasterKeyID = "other"
		st.Version = tt.version
		err := db.SaveKeyring(ctx, st)
		if !errors.Is(err, keyring.ErrConflict) {
			t.Errorf("%s: SaveKeyring(version %d) = %v, want ErrConflict", tt.name, tt.version, err)
		}
		if st.Version != tt.version {
			t.Errorf("%s: a failed save changed Version to %d", tt.name, st.Version)
		}
	}
	if diff := cmp.Diff(want, mustLoadKeyring(t, db)); diff != "" {
		t.Errorf("refused saves changed the keyring (-before +after):\n%s", diff)
	}
}

// TestKeyringConcurrentSaves: of many writers saving over the same
// version, exactly one wins, even from separate connection pools (as two
// processes would be).
func TestKeyringConcurrentSaves(t *testing.T) {
	path := tempPath(t)
	dbs := []*DB{mustOpen(t, path), mustOpen(t, path)}
	if err := dbs[0].SaveKeyring(t.Context(), keyringState(false)); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []int
	)
	for i := range n {
		wg.Go(func() {
			db := dbs[i%len(dbs)]
			st, err := db.LoadKeyring(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			st.Version = 1 // all load before anyone saves, in effect
			st.DataKeys = append(st.DataKeys, keyring.WrappedKey{ID: uint32(10 + i), Wrapped: []byte{byte(i)}})
			st.ActiveKeyID = uint32(10 + i)
			switch err := db.SaveKeyring(t.Context(), st); {
			case err == nil:
				mu.Lock()
				wins = append(wins, i)
				mu.Unlock()
			case !errors.Is(err, keyring.ErrConflict):
				t.Errorf("writer %d: SaveKeyring() = %v, want nil or ErrConflict", i, err)
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d writers won (%v), want exactly 1", len(wins), wins)
	}
	got := mustLoadKeyring(t, dbs[1])
	if got.Version != 2 || len(got.DataKeys) != 3 || got.ActiveKeyID != uint32(10+wins[0]) {
		t.Errorf("after the race: version %d, %d data keys, active %d; want version 2, 3 keys, active %d",
			got.Version, len(got.DataKeys), got.ActiveKeyID, 10+wins[0])
	}
}

// TestKeyringRefusesBadStates: the store never drops a data key, and keeps
// the active key among the stored ones.
func TestKeyringRefusesBadStates(t *testing.T) {
	tests := []struct {
		name   string
		change func(*keyring.State)
	}{
		{"drops a key", func(st *keyring.State) { st.DataKeys = st.DataKeys[1:] }},
		{"duplicate ids", func(st *keyring.State) {
			st.DataKeys = append(st.DataKeys, keyring.WrappedKey{ID: 2, Wrapped: []byte{9}})
		}},
		{"no data keys", func(st *keyring.State) { st.DataKeys = nil }},
		{"active key not stored", func(st *keyring.State) { st.ActiveKeyID = 9 }},
		{"no MAC root", func(st *keyring.State) { st.MACRoot = nil }},
		{"no salt", func(st *keyring.State) { st.KDF = &keyring.KDF{Params: keyring.DefaultArgonParams} }},
		{"no threads", func(st *keyring.State) { st.KDF = &keyring.KDF{Salt: []byte{1}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := mustOpen(t, tempPath(t))
			if err := db.SaveKeyring(t.Context(), keyringState(false)); err != nil {
				t.Fatal(err)
			}
			want := mustLoadKeyring(t, db)
			st := mustLoadKeyring(t, db)
			tt.change(st)
			if err := db.SaveKeyring(t.Context(), st); err == nil {
				t.Fatalf("SaveKeyring() of a state that %s = nil, want an error", tt.name)
			} else if errors.Is(err, keyring.ErrConflict) {
				t.Errorf("SaveKeyring() = %v, want an error other than ErrConflict", err)
			}
			if diff := cmp.Diff(want, mustLoadKeyring(t, db)); diff != "" {
				t.Errorf("a refused save changed the keyring (-before +after):\n%s", diff)
			}
		})
	}
}

func TestKeyringInMemory(t *testing.T) {
	db := mustOpen(t, MemoryPath)
	st := keyringState(true)
	if err := db.SaveKeyring(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, mustLoadKeyring(t, db)); diff != "" {
		t.Errorf("LoadKeyring() (-saved +loaded):\n%s", diff)
	}
}
