package keyring_test

import (
	"crypto/rand"
	"testing"
)

var benchSizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}}

func BenchmarkSeal(b *testing.B) {
	kr, _ := newKeyring(b)
	aad := []byte("invocations\x00output\x00inv-0123456789")
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			pt := make([]byte, s.n)
			rand.Read(pt)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kr.Seal(pt, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	kr, _ := newKeyring(b)
	aad := []byte("invocations\x00output\x00inv-0123456789")
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			pt := make([]byte, s.n)
			rand.Read(pt)
			ct := mustSeal(b, kr, pt, aad)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kr.Open(ct, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
