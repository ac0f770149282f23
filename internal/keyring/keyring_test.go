package keyring_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runagent/runagent/internal/keyring"
)

// sealed is one value a test sealed, to open again later.
type sealed struct {
	plaintext, aad, ciphertext []byte
}

func sealAll(tb testing.TB, kr *keyring.Keyring, prefix string, n int) []sealed {
	tb.Helper()
	out := make([]sealed, n)
	for i := range out {
		pt := fmt.Appendf(nil, "%s value %d", prefix, i)
		aad := fmt.Appendf(nil, "invocations\x00output\x00%s-%d", prefix, i)
		out[i] = sealed{pt, aad, mustSeal(tb, kr, pt, aad)}
	}
	return out
}

func checkOpen(tb testing.TB, kr *keyring.Keyring, values []sealed) {
	tb.Helper()
	for _, v := range values {
		got, err := kr.Open(v.ciphertext, v.aad)
		if err != nil {
			tb.Errorf("Open(value sealed for %q) = %v", v.aad, err)
			continue
		}
		if !bytes.Equal(got, v.plaintext) {
			tb.Errorf("Open(value sealed for %q) = %q, want %q", v.aad, got, v.plaintext)
		}
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr, _ := newKeyring(t)
	big := make([]byte, 1<<20)
	rand.Read(big)
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"empty", []byte{}, []byte("t\x00c\x00r")},
		{"nil", nil, nil},
		{"1 byte", []byte{0x01}, []byte("t\x00c\x00r")},
		{"1 MiB", big, []byte("invocations\x00output\x00inv-1")},
		{"no aad", []byte("hello"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := mustSeal(t, kr, tt.plaintext, tt.aad)
			if got, want := len(ct), len(tt.plaintext)+keyring.Overhead; got != want {
				t.Errorf("len(Seal(%d bytes)) = %d, want %d", len(tt.plaintext), got, want)
			}
			if !keyring.IsSealed(ct) {
				t.Errorf("IsSealed(Seal(...)) = false")
			}
			if id, ok := keyring.KeyID(ct); !ok || id != kr.ActiveKeyID() {
				t.Errorf("KeyID(Seal(...)) = %d, %v; want %d, true", id, ok, kr.ActiveKeyID())
			}
			if len(tt.plaintext) >= 4 && bytes.Contains(ct, tt.plaintext) {
				t.Errorf("the ciphertext contains the plaintext")
			}
			got, err := kr.Open(ct, tt.aad)
			if err != nil {
				t.Fatalf("Open(Seal(%d bytes)) = %v", len(tt.plaintext), err)
			}
			if !bytes.Equal(got, tt.plaintext) || got == nil {
				t.Errorf("Open(Seal(%d bytes)) = %d bytes (nil: %v), want the plaintext back", len(tt.plaintext), len(got), got == nil)
			}
			// Nonces are random: sealing again gives another ciphertext.
			if again := mustSeal(t, kr, tt.plaintext, tt.aad); bytes.Equal(again, ct) {
				t.Errorf("two Seals of the same value are equal")
			}
		})
	}
}

func TestOpenWrongAAD(t *testing.T) {
	kr, _ := newKeyring(t)
	secret := []byte("the secret output")
	aad := []byte("invocations\x00output\x00inv-1")
	ct := mustSeal(t, kr, secret, aad)
	for _, wrong := range [][]byte{
		[]byte("invocations\x00output\x00inv-2"), // moved to another row
		[]byte("invocations\x00input\x00inv-1"),  // another column
		[]byte("secrets\x00output\x00inv-1"),     // another table
		[]byte("invocations\x00output\x00inv-1\x00"),
		nil,
	} {
		got, err := kr.Open(ct, wrong)
		if !errors.Is(err, keyring.ErrDecrypt) || got != nil {
			t.Errorf("Open(ct sealed for %q, aad %q) = %q, %v; want nil, ErrDecrypt", aad, wrong, got, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q quotes the value", err)
		}
	}
}

// TestOpenTampered flips each bit of every byte (version, key id, nonce,
// body, tag) and truncates at every length: none of it opens.
func TestOpenTampered(t *testing.T) {
	kr, _ := newKeyring(t)
	if _, err := kr.RotateDataKey(t.Context()); err != nil { // so key id 1 exists too
		t.Fatal(err)
	}
	aad := []byte("t\x00c\x00r")
	ct := mustSeal(t, kr, []byte("sixteen byte msg"), aad)
	for i := range ct {
		for bit := range 8 {
			bad := bytes.Clone(ct)
			bad[i] ^= 1 << bit
			if got, err := kr.Open(bad, aad); !errors.Is(err, keyring.ErrDecrypt) || got != nil {
				t.Errorf("Open(ct with byte %d bit %d flipped) = %q, %v; want nil, ErrDecrypt", i, bit, got, err)
			}
		}
	}
	for n := range len(ct) {
		if got, err := kr.Open(ct[:n], aad); !errors.Is(err, keyring.ErrDecrypt) || got != nil {
			t.Errorf("Open(ct truncated to %d bytes) = %q, %v; want nil, ErrDecrypt", n, got, err)
		}
	}
	if got, err := kr.Open(append(bytes.Clone(ct), 0), aad); !errors.Is(err, keyring.ErrDecrypt) || got != nil {
		t.Errorf("Open(ct with a byte appended) = %q, %v; want nil, ErrDecrypt", got, err)
	}
}

func TestOpenUnknownKey(t *testing.T) {
	kr, _ := newKeyring(t)
	ct := mustSeal(t, kr, []byte("x"), nil)
	ct[4] = 9 // key id 9
	_, err := kr.Open(ct, nil)
	if !errors.Is(err, keyring.ErrUnknownKey) || !errors.Is(err, keyring.ErrDecrypt) {
		t.Errorf("Open(value naming key 9) = %v, want ErrUnknownKey and ErrDecrypt", err)
	}
	if err != nil && !strings.Contains(err.Error(), "data key 9") {
		t.Errorf("Open(value naming key 9) = %q, want it to name the key", err)
	}
}

func TestIsSealedAndKeyID(t *testing.T) {
	kr, _ := newKeyring(t)
	ct := mustSeal(t, kr, nil, nil)
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"sealed", ct, true},
		{"nil", nil, false},
		{"one byte short", ct[:len(ct)-1], false},
		{"JSON", []byte(`{"output": "a long enough legacy plaintext"}`), false},
		{"other version", append([]byte{0x02}, ct[1:]...), false},
	}
	for _, tt := range tests {
		if got := keyring.IsSealed(tt.b); got != tt.want {
			t.Errorf("IsSealed(%s) = %v, want %v", tt.name, got, tt.want)
		}
		if _, ok := keyring.KeyID(tt.b); ok != tt.want {
			t.Errorf("KeyID(%s) ok = %v, want %v", tt.name, ok, tt.want)
		}
	}
}

func TestRotateDataKey(t *testing.T) {
	ctx := t.Context()
	kr, db := newKeyring(t)
	if got := kr.ActiveKeyID(); got != 1 {
		t.Fatalf("ActiveKeyID() of a new keyring = %d, want 1", got)
	}
	old := sealAll(t, kr, "old", 3)
	id, err := kr.RotateDataKey(ctx)
	if err != nil {
		t.Fatalf("RotateDataKey() = %v", err)
	}
	if id != 2 || kr.ActiveKeyID() != 2 {
		t.Errorf("RotateDataKey() = %d, ActiveKeyID() = %d; want 2, 2", id, kr.ActiveKeyID())
	}
	fresh := sealAll(t, kr, "new", 3)
	for _, v := range old {
		if got, _ := keyring.KeyID(v.ciphertext); got != 1 {
			t.Errorf("KeyID(old value) = %d, want 1", got)
		}
	}
	for _, v := range fresh {
		if got, _ := keyring.KeyID(v.ciphertext); got != 2 {
			t.Errorf("KeyID(new value) = %d, want 2", got)
		}
	}
	checkOpen(t, kr, old)
	checkOpen(t, kr, fresh)

	// Another keyring on the same database sees both keys.
	st, err := db.LoadKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.DataKeys) != 2 || st.ActiveKeyID != 2 {
		t.Errorf("stored: %d data keys, active %d; want 2, 2", len(st.DataKeys), st.ActiveKeyID)
	}
}

func TestRotateMaster(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "runagent.db")
	db := mustOpenDB(t, path)
	_, oldKey := mustKeyFile(t)
	newPath, newKey := mustKeyFile(t)
	kr := mustOpen(t, db, keyring.Master{Key: oldKey})
	if _, err := kr.RotateDataKey(ctx); err != nil {
		t.Fatal(err)
	}
	before := sealAll(t, kr, "before", 4)
	mac := kr.MACKey("audit")
	oldID := kr.MasterKeyID()

	if err := kr.RotateMaster(ctx, keyring.Master{Key: newKey}); err != nil {
		t.Fatalf("RotateMaster() = %v", err)
	}
	if got, want := kr.MasterKeyID(), keyring.MasterKeyID(newKey); got != want || got == oldID {
		t.Errorf("MasterKeyID() after rotation = %s, want %s (old %s)", got, want, oldID)
	}
	if got := kr.ActiveKeyID(); got != 3 {
		t.Errorf("ActiveKeyID() after a master rotation = %d, want 3 (a new data key)", got)
	}
	after := sealAll(t, kr, "after", 4)
	checkOpen(t, kr, before) // the keyring in use goes on working
	checkOpen(t, kr, after)

	// The old master is refused, from now on.
	_, err := keyring.Open(ctx, db, keyring.Master{Key: oldKey})
	if !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Errorf("Open(old master) after rotation = %v, want ErrWrongMasterKey", err)
	}
	// The new one, read from its file after a restart, opens everything.
	db.Close()
	db = mustOpenDB(t, path)
	key, err := keyring.ReadKeyFile(newPath)
	if err != nil {
		t.Fatal(err)
	}
	kr2 := mustOpen(t, db, keyring.Master{Key: key})
	checkOpen(t, kr2, before)
	checkOpen(t, kr2, after)
	if !bytes.Equal(kr2.MACKey("audit"), mac) {
		t.Errorf("MACKey changed with the master key")
	}
	if got := kr2.ActiveKeyID(); got != 3 {
		t.Errorf("ActiveKeyID() after reopening = %d, want 3", got)
	}

	// Rotating to the master in use is a mistake.
	if err := kr2.RotateMaster(ctx, keyring.Master{Key: key}); err == nil {
		t.Errorf("RotateMaster(the current master) = nil, want an error")
	}
	if id, err := kr2.RotateDataKey(ctx); err != nil || id != 4 {
		t.Errorf("RotateDataKey() after the master rotation = %d, %v; want 4, nil", id, err)
	}
}

func TestRestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "runagent.db")
	keyPath, key := mustKeyFile(t)
	db := mustOpenDB(t, path)
	kr := mustOpen(t, db, keyring.Master{Key: key})
	v1 := sealAll(t, kr, "one", 3)
	if _, err := kr.RotateDataKey(ctx); err != nil {
		t.Fatal(err)
	}
	v2 := sealAll(t, kr, "two", 3)
	mac := kr.MACKey("audit")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpenDB(t, path)
	key2, err := keyring.ReadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	kr = mustOpen(t, db, keyring.Master{Key: key2})
	checkOpen(t, kr, v1)
	checkOpen(t, kr, v2)
	if got := kr.ActiveKeyID(); got != 2 {
		t.Errorf("ActiveKeyID() after restart = %d, want 2", got)
	}
	if !bytes.Equal(kr.MACKey("audit"), mac) {
		t.Errorf("MACKey(audit) changed across a restart")
	}
}

func TestWrongMasterKey(t *testing.T) {
	kr, db := newKeyring(t)
	_, other := mustKeyFile(t)
	_, err := keyring.Open(t.Context(), db, keyring.Master{Key: other})
	if !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Fatalf("Open(another key) = %v, want ErrWrongMasterKey", err)
	}
	msg := err.Error()
	for _, want := range []string{keyring.MasterKeyID(other), kr.MasterKeyID(), "--master-key-file", "does not match"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Open(another key) = %q, want it to mention %q", msg, want)
		}
	}
	checkNoKeyMaterial(t, msg, other)
}

// checkNoKeyMaterial fails if msg holds key, raw, in hex or in base64 (as
// in a key file).
func checkNoKeyMaterial(t *testing.T, msg string, key []byte) {
	t.Helper()
	for _, enc := range []string{string(key), fmt.Sprintf("%x", key), fmt.Sprintf("%X", key), b64(key)} {
		if len(enc) > 0 && strings.Contains(msg, enc) {
			t.Errorf("message %q holds key material", msg)
		}
	}
}

func TestMasterValidation(t *testing.T) {
	db := mustOpenDB(t, filepath.Join(t.TempDir(), "runagent.db"))
	key := bytes.Repeat([]byte{7}, keyring.KeySize)
	tests := []struct {
		name string
		m    keyring.Master
	}{
		{"nothing", keyring.Master{}},
		{"both", keyring.Master{Key: key, Passphrase: []byte("pw")}},
		{"short key", keyring.Master{Key: key[:16]}},
		{"empty passphrase", keyring.Master{Passphrase: []byte{}}},
		{"bad params", keyring.Master{Passphrase: []byte("pw"), Params: &keyring.ArgonParams{Time: 0, MemoryKiB: 64, Threads: 1}}},
		{"too little memory", keyring.Master{Passphrase: []byte("pw"), Params: &keyring.ArgonParams{Time: 1, MemoryKiB: 8, Threads: 4}}},
	}
	for _, tt := range tests {
		if _, err := keyring.Open(t.Context(), db, tt.m); err == nil {
			t.Errorf("Open(%s) = nil error, want one", tt.name)
		}
	}
	// Nothing was stored by the refusals.
	if st, err := db.LoadKeyring(t.Context()); err != nil || st.Version != 0 {
		t.Errorf("after refused Opens, LoadKeyring() = version %d, %v; want 0, nil", st.Version, err)
	}
}

func TestMasterNeverPrintsKey(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, keyring.KeySize)
	for _, m := range []keyring.Master{{Key: key}, {Passphrase: []byte("hunter2-hunter2")}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d", "%T %v"} {
			got := fmt.Sprintf(verb, m)
			if strings.Contains(got, "hunter2") || strings.Contains(got, "42 42") || strings.Contains(got, "4242") ||
				strings.Contains(got, "66 66") || strings.Contains(got, "BBBB") {
				t.Errorf("Sprintf(%q, master) = %q, which shows the secret", verb, got)
			}
		}
	}
}

func TestPassphrase(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "runagent.db")
	pass := keyring.Master{Passphrase: []byte("correct horse battery staple"), Params: tinyArgon}
	db := mustOpenDB(t, path)
	kr := mustOpen(t, db, pass)
	values := sealAll(t, kr, "pw", 3)
	mac := kr.MACKey("audit")

	st, err := db.LoadKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.KDF == nil || st.KDF.Params != *tinyArgon || len(st.KDF.Salt) != 16 {
		t.Fatalf("stored KDF = %+v, want a 16-byte salt and %+v", st.KDF, *tinyArgon)
	}
	db.Close()

	// After a restart the same passphrase works, whatever Params says: the
	// stored ones are used.
	db = mustOpenDB(t, path)
	kr = mustOpen(t, db, keyring.Master{Passphrase: []byte("correct horse battery staple"), Params: &keyring.ArgonParams{Time: 2, MemoryKiB: 128, Threads: 1}})
	checkOpen(t, kr, values)
	if !bytes.Equal(kr.MACKey("audit"), mac) {
		t.Errorf("MACKey changed across a restart")
	}

	tests := []struct {
		name string
		m    keyring.Master
	}{
		{"wrong passphrase", keyring.Master{Passphrase: []byte("correct horse battery stapler")}},
		{"key file", keyring.Master{Key: bytes.Repeat([]byte{1}, keyring.KeySize)}},
	}
	for _, tt := range tests {
		_, err := keyring.Open(ctx, db, tt.m)
		if !errors.Is(err, keyring.ErrWrongMasterKey) {
			t.Errorf("Open(%s) = %v, want ErrWrongMasterKey", tt.name, err)
		} else if !strings.Contains(err.Error(), st.MasterKeyID) {
			t.Errorf("Open(%s) = %q, want it to name the expected key id %s", tt.name, err, st.MasterKeyID)
		}
		if err != nil && strings.Contains(err.Error(), "correct horse") {
			t.Errorf("Open(%s) = %q, which quotes the passphrase", tt.name, err)
		}
	}

	// A new passphrase gets a new salt; the old passphrase is refused.
	next := keyring.Master{Passphrase: []byte("a new passphrase"), Params: tinyArgon}
	if err := kr.RotateMaster(ctx, next); err != nil {
		t.Fatalf("RotateMaster(new passphrase) = %v", err)
	}
	st2, err := db.LoadKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(st2.KDF.Salt, st.KDF.Salt) {
		t.Errorf("the salt did not change with the passphrase")
	}
	if _, err := keyring.Open(ctx, db, pass); !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Errorf("Open(old passphrase) after rotation = %v, want ErrWrongMasterKey", err)
	}
	checkOpen(t, mustOpen(t, db, next), values)

	// The same passphrase again is a new master key too (a new salt).
	if err := kr.RotateMaster(ctx, next); err != nil {
		t.Fatalf("RotateMaster(same passphrase, new salt) = %v", err)
	}
	// And from a passphrase to a key file.
	_, key := mustKeyFile(t)
	if err := kr.RotateMaster(ctx, keyring.Master{Key: key}); err != nil {
		t.Fatalf("RotateMaster(key file) = %v", err)
	}
	if st, err := db.LoadKeyring(ctx); err != nil || st.KDF != nil {
		t.Errorf("after rotating to a key file, stored KDF = %+v, %v; want nil", st.KDF, err)
	}
	if _, err := keyring.Open(ctx, db, next); !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Errorf("Open(passphrase) on a key-file keyring = %v, want ErrWrongMasterKey", err)
	}
	kr = mustOpen(t, db, keyring.Master{Key: key})
	checkOpen(t, kr, values)
	if !bytes.Equal(kr.MACKey("audit"), mac) {
		t.Errorf("MACKey changed across master rotations")
	}
}

func TestMACKey(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "runagent.db")
	_, key := mustKeyFile(t)
	db := mustOpenDB(t, path)
	kr := mustOpen(t, db, keyring.Master{Key: key})
	audit, checkpoint := kr.MACKey("audit"), kr.MACKey("audit checkpoint")
	if len(audit) != keyring.KeySize || len(checkpoint) != keyring.KeySize {
		t.Fatalf("MACKey lengths = %d, %d; want %d", len(audit), len(checkpoint), keyring.KeySize)
	}
	if bytes.Equal(audit, checkpoint) {
		t.Errorf("MACKey gives the same key for two purposes")
	}
	if !bytes.Equal(kr.MACKey("audit"), audit) {
		t.Errorf("MACKey(audit) is not stable")
	}
	if _, err := kr.RotateDataKey(ctx); err != nil {
		t.Fatal(err)
	}
	_, newKey := mustKeyFile(t)
	if err := kr.RotateMaster(ctx, keyring.Master{Key: newKey}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kr.MACKey("audit"), audit) {
		t.Errorf("MACKey(audit) changed with rotations")
	}
	db.Close()
	db = mustOpenDB(t, path)
	kr = mustOpen(t, db, keyring.Master{Key: newKey})
	if !bytes.Equal(kr.MACKey("audit"), audit) || !bytes.Equal(kr.MACKey("audit checkpoint"), checkpoint) {
		t.Errorf("MACKey changed across a reopen")
	}

	// Another database, even with the same master key, has its own root.
	other, _ := newKeyring(t)
	if bytes.Equal(other.MACKey("audit"), audit) {
		t.Errorf("two databases give the same MACKey")
	}
	kr3 := mustOpen(t, mustOpenDB(t, filepath.Join(t.TempDir(), "other.db")), keyring.Master{Key: newKey})
	if bytes.Equal(kr3.MACKey("audit"), audit) {
		t.Errorf("two databases with the same master give the same MACKey")
	}
}

func TestConcurrentSealOpen(t *testing.T) {
	kr, _ := newKeyring(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				pt := fmt.Appendf(nil, "goroutine %d value %d", g, i)
				aad := fmt.Appendf(nil, "t\x00c\x00%d-%d", g, i)
				ct, err := kr.Seal(pt, aad)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := kr.Open(ct, aad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Open(Seal(%q)) = %q, %v", pt, got, err)
					return
				}
			}
		})
	}
	// Rotations run alongside.
	wg.Go(func() {
		for range 5 {
			if _, err := kr.RotateDataKey(t.Context()); err != nil {
				t.Error(err)
				return
			}
			_ = kr.ActiveKeyID()
			_ = kr.MACKey("audit")
		}
	})
	wg.Wait()
	if got := kr.ActiveKeyID(); got != 6 {
		t.Errorf("ActiveKeyID() after 5 rotations = %d, want 6", got)
	}
}

// TestTwoKeyrings: two processes sharing a database. A key one creates is
// unknown to the other until Reload; concurrent rotations lose no key.
func TestTwoKeyrings(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "runagent.db")
	_, key := mustKeyFile(t)
	// Both start on an empty database at once: one creates the keyring,
	// the other uses it.
	var (
		wg  sync.WaitGroup
		krs [2]*keyring.Keyring
	)
	for i := range krs {
		db := mustOpenDB(t, path)
		wg.Go(func() {
			kr, err := keyring.Open(ctx, db, keyring.Master{Key: key})
			if err != nil {
				t.Errorf("Open #%d = %v", i, err)
			}
			krs[i] = kr
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	a, b := krs[0], krs[1]
	v := sealAll(t, a, "a", 2)
	checkOpen(t, b, v) // the same MAC root and first key
	if !bytes.Equal(a.MACKey("x"), b.MACKey("x")) {
		t.Fatalf("the two keyrings have different MAC roots")
	}

	if _, err := a.RotateDataKey(ctx); err != nil {
		t.Fatal(err)
	}
	fromA := mustSeal(t, a, []byte("new"), nil)
	if _, err := b.Open(fromA, nil); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Errorf("Open(value under a key created elsewhere) = %v, want ErrUnknownKey", err)
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	if got, err := b.Open(fromA, nil); err != nil || string(got) != "new" {
		t.Errorf("after Reload, Open = %q, %v", got, err)
	}

	// b rotates from a state that is current; then a, whose view is
	// stale, rotates: it must build on b's key, not replace it.
	idB, err := b.RotateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fromB := mustSeal(t, b, []byte("b"), nil)
	idA, err := a.RotateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idB != 3 || idA != 4 {
		t.Errorf("rotations gave ids %d then %d, want 3 then 4", idB, idA)
	}
	if got, err := a.Open(fromB, nil); err != nil || string(got) != "b" {
		t.Errorf("a.Open(value sealed by b) = %q, %v; want it after a's own rotation", got, err)
	}

	// Concurrent rotations through both keyrings all land.
	wg = sync.WaitGroup{}
	for i := range 6 {
		kr := krs[i%2]
		wg.Go(func() {
			if _, err := kr.RotateDataKey(ctx); err != nil {
				t.Errorf("concurrent RotateDataKey() = %v", err)
			}
		})
	}
	wg.Wait()
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.ActiveKeyID(); got != 10 {
		t.Errorf("after 9 rotations, ActiveKeyID() = %d, want 10", got)
	}

	// b rotates the master: a, still holding the old one, is told.
	_, newKey := mustKeyFile(t)
	if err := b.RotateMaster(ctx, keyring.Master{Key: newKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotateDataKey(ctx); !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Errorf("RotateDataKey() after another process rotated the master = %v, want ErrWrongMasterKey", err)
	}
	if err := a.Reload(ctx); !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Errorf("Reload() after another process rotated the master = %v, want ErrWrongMasterKey", err)
	}
	// a's own view still works for what it holds.
	checkOpen(t, a, v)
}

// TestDamagedStore: a wrapped key altered in the database is reported as
// damage, not as a wrong master key, and yields no keyring.
func TestDamagedStore(t *testing.T) {
	tests := []struct {
		name   string
		change func(st *keyring.State)
	}{
		{"data key", func(st *keyring.State) { st.DataKeys[0].Wrapped[20] ^= 1 }},
		{"MAC root", func(st *keyring.State) { st.MACRoot[20] ^= 1 }},
		{"swapped keys", func(st *keyring.State) {
			st.DataKeys[0].Wrapped, st.DataKeys[1].Wrapped = st.DataKeys[1].Wrapped, st.DataKeys[0].Wrapped
		}},
		{"short data key", func(st *keyring.State) { st.DataKeys[1].Wrapped = st.DataKeys[1].Wrapped[:10] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			db := mustOpenDB(t, filepath.Join(t.TempDir(), "runagent.db"))
			_, key := mustKeyFile(t)
			kr := mustOpen(t, db, keyring.Master{Key: key})
			if _, err := kr.RotateDataKey(ctx); err != nil {
				t.Fatal(err)
			}
			st, err := db.LoadKeyring(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tt.change(st)
			if err := db.SaveKeyring(ctx, st); err != nil {
				t.Fatal(err)
			}
			got, err := keyring.Open(ctx, db, keyring.Master{Key: key})
			if err == nil || got != nil {
				t.Fatalf("Open(damaged %s) = %v, %v; want nil, an error", tt.name, got, err)
			}
			if errors.Is(err, keyring.ErrWrongMasterKey) {
				t.Errorf("Open(damaged %s) = %v, want an error other than ErrWrongMasterKey", tt.name, err)
			}
			t.Logf("Open(damaged %s) = %v", tt.name, err)
		})
	}
}

// TestHostileArgonParams: parameters in the database that would make Open
// allocate without bound are refused before stretching.
func TestHostileArgonParams(t *testing.T) {
	ctx := t.Context()
	db := mustOpenDB(t, filepath.Join(t.TempDir(), "runagent.db"))
	pass := keyring.Master{Passphrase: []byte("pw"), Params: tinyArgon}
	mustOpen(t, db, pass)
	st, err := db.LoadKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.KDF.Params = keyring.ArgonParams{Time: 1, MemoryKiB: 1 << 30, Threads: 1} // 1 TiB
	if err := db.SaveKeyring(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Open(ctx, db, pass); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("Open(with 1 TiB Argon2 memory stored) = %v, want an error about memory", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
