package keyring_test

import (
	"bytes"
	"errors"
	"fmt"
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

// FuzzParseKey: ParseKey (key files, $RUNAGENT_MASTER_KEY) never panics,
// returns exactly KeySize bytes or an error, and its errors never quote
// the input.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Add([]byte("  c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=  "))
	f.Add([]byte(""))
	f.Add([]byte("not base64 at all"))
	f.Add([]byte("AAAA"))
	f.Fuzz(func(t *testing.T, in []byte) {
		key, err := keyring.ParseKey(in)
		if err != nil {
			if key != nil {
				t.Fatal("ParseKey returned a key with its error")
			}
			var n int
			if msg := err.Error(); msg != "it is not one line of standard base64" {
				if _, serr := fmt.Sscanf(msg, "it holds a %d-byte key, want 32", &n); serr != nil {
					t.Fatalf("ParseKey's error %q is neither of its fixed forms (it may quote its input)", msg)
				}
			}
			return
		}
		if len(key) != keyring.KeySize {
			t.Fatalf("ParseKey returned %d bytes, want %d", len(key), keyring.KeySize)
		}
	})
}
