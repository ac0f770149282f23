package keyring_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/keyring"
)

// countingStore counts LoadKeyring calls.
type countingStore struct {
	keyring.Store
	loads atomic.Int64
}

func (s *countingStore) LoadKeyring(ctx context.Context) (*keyring.State, error) {
	s.loads.Add(1)
	return s.Store.LoadKeyring(ctx)
}

// TestReloadOnUnknown: a keyring that meets a value sealed with a data
// key another process created reloads once and opens it; a value naming
// a key that exists nowhere fails with ErrUnknownKey after at most one
// reload per interval; without ReloadOnUnknown, Open never reads the
// store.
func TestReloadOnUnknown(t *testing.T) {
	ctx := t.Context()
	db := mustOpenDB(t, filepath.Join(t.TempDir(), "runagent.db"))
	_, key := mustKeyFile(t)
	a := mustOpen(t, db, keyring.Master{Key: key})
	// b and plain share a's database and master key, as other nodes do.
	st := &countingStore{Store: db}
	b := mustOpen(t, st, keyring.Master{Key: key})
	plain := mustOpen(t, db, keyring.Master{Key: key})
	b.ReloadOnUnknown(time.Hour)
	st.loads.Store(0)

	id, err := a.RotateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("secrets\x00value\x00s1")
	ct := mustSeal(t, a, []byte("sealed on node a"), aad)
	if _, err := plain.Open(ct, aad); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Errorf("Open without ReloadOnUnknown = %v, want ErrUnknownKey", err)
	}
	got, err := b.Open(ct, aad)
	if err != nil || !bytes.Equal(got, []byte("sealed on node a")) {
		t.Fatalf("Open of a value sealed with a's new key = %q, %v", got, err)
	}
	if n := st.loads.Load(); n != 1 {
		t.Errorf("loads for the new key = %d, want 1", n)
	}
	if b.ActiveKeyID() != id {
		t.Errorf("after the reload b seals with key %d, want the new %d", b.ActiveKeyID(), id)
	}
	// A value naming key 99, which does not exist anywhere: one reload
	// per interval, however many such values come — none for b, which
	// has just reloaded; one for c.
	bogus := bytes.Clone(ct)
	binary.BigEndian.PutUint32(bogus[1:5], 99)
	cst := &countingStore{Store: db}
	c := mustOpen(t, cst, keyring.Master{Key: key})
	c.ReloadOnUnknown(time.Hour)
	cst.loads.Store(0)
	for range 5 {
		for _, k := range []*keyring.Keyring{b, c} {
			if _, err := k.Open(bogus, aad); !errors.Is(err, keyring.ErrUnknownKey) {
				t.Fatalf("Open of a value naming key 99 = %v, want ErrUnknownKey", err)
			}
		}
	}
	if n := st.loads.Load(); n != 1 {
		t.Errorf("b's loads after values naming an unknown key = %d, want still 1 (rate-limited)", n)
	}
	if n := cst.loads.Load(); n != 1 {
		t.Errorf("c's loads after values naming an unknown key = %d, want 1", n)
	}
}

// TestMasterRotatedElsewhere: after another process rotated the master
// key, a keyring still on the old one fails loudly and harms nothing: its
// reload fails with ErrWrongMasterKey and keeps the keys it has; what it
// seals still opens under the new master; what the new master's data key
// sealed does not open here (ErrUnknownKey, saying the reload failed);
// it cannot rotate; and the old master no longer opens the store.
func TestMasterRotatedElsewhere(t *testing.T) {
	ctx := t.Context()
	db := mustOpenDB(t, filepath.Join(t.TempDir(), "runagent.db"))
	_, oldKey := mustKeyFile(t)
	_, newKey := mustKeyFile(t)
	a := mustOpen(t, db, keyring.Master{Key: oldKey})
	b := mustOpen(t, db, keyring.Master{Key: oldKey})
	b.ReloadOnUnknown(time.Millisecond)
	if err := a.RotateMaster(ctx, keyring.Master{Key: newKey}); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(ctx); !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Fatalf("Reload on the old master = %v, want ErrWrongMasterKey", err)
	}
	aad := []byte("a\x00b")
	fromOld := mustSeal(t, b, []byte("sealed on the old master"), aad)
	if got, err := a.Open(fromOld, aad); err != nil || string(got) != "sealed on the old master" {
		t.Errorf("the new master opens what the old-master node sealed = %q, %v", got, err)
	}
	fromNew := mustSeal(t, a, []byte("sealed on the new master"), aad)
	time.Sleep(2 * time.Millisecond) // past b's reload interval
	if _, err := b.Open(fromNew, aad); !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), "reloading the keyring failed") {
		t.Errorf("old-master node opening a value under the new data key = %v, want ErrUnknownKey after a failed reload", err)
	}
	if _, err := b.RotateDataKey(ctx); !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Errorf("RotateDataKey on the old master = %v, want ErrWrongMasterKey", err)
	}
	if _, err := keyring.Open(ctx, db, keyring.Master{Key: oldKey}); !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Errorf("Open with the old master = %v, want ErrWrongMasterKey", err)
	}
	c := mustOpen(t, db, keyring.Master{Key: newKey})
	for _, v := range [][]byte{fromOld, fromNew} {
		if _, err := c.Open(v, aad); err != nil {
			t.Errorf("a node restarted with the new master: Open = %v", err)
		}
	}
}
