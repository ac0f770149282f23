package keyring_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/runagent/runagent/internal/keyring"
)

// FuzzOpen feeds arbitrary values and associated data to Open: it must
// never panic, must fail with ErrDecrypt, and may succeed only on a value
// Seal made, with the associated data it was sealed with.
func FuzzOpen(f *testing.F) {
	kr, _ := newKeyring(f)
	var real []sealed
	for _, pt := range [][]byte{nil, []byte("x"), []byte(`{"output": "a value"}`), bytes.Repeat([]byte{0}, 300)} {
		aad := []byte("invocations\x00output\x00inv-1")
		real = append(real, sealed{pt, aad, mustSeal(f, kr, pt, aad)})
	}
	if _, err := kr.RotateDataKey(f.Context()); err != nil {
		f.Fatal(err)
	}
	real = append(real, sealed{[]byte("under key 2"), nil, mustSeal(f, kr, []byte("under key 2"), nil)})
	for _, v := range real {
		f.Add(v.ciphertext, v.aad)
		f.Add(v.ciphertext[:len(v.ciphertext)-1], v.aad)
		f.Add(v.ciphertext, []byte("invocations\x00output\x00inv-2"))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x01}, []byte{})
	f.Add(append([]byte{0x01, 0, 0, 0, 1}, make([]byte, 28)...), []byte{})
	f.Add(append([]byte{0x01, 0xff, 0xff, 0xff, 0xff}, make([]byte, 28)...), []byte{})

	f.Fuzz(func(t *testing.T, ciphertext, aad []byte) {
		in := bytes.Clone(ciphertext)
		got, err := kr.Open(ciphertext, aad)
		if !bytes.Equal(in, ciphertext) {
			t.Fatalf("Open modified its input")
		}
		if err != nil {
			if got != nil {
				t.Errorf("Open() = %q with error %v, want nil with an error", got, err)
			}
			if !errors.Is(err, keyring.ErrDecrypt) {
				t.Errorf("Open() = %v, want an error wrapping ErrDecrypt", err)
			}
			return
		}
		if !keyring.IsSealed(ciphertext) {
			t.Errorf("Open() succeeded on a value IsSealed rejects")
		}
		for _, v := range real {
			if bytes.Equal(v.ciphertext, ciphertext) && bytes.Equal(v.aad, aad) {
				if !bytes.Equal(got, v.plaintext) {
					t.Errorf("Open(real value) = %q, want %q", got, v.plaintext)
				}
				return
			}
		}
		t.Errorf("Open() succeeded on a value Seal did not make (len %d, aad %q)", len(ciphertext), aad)
	})
}
