// Package apikey makes and checks runagent API keys.
//
// A key looks like
//
//	rak_<id>_<secret><check>
//
// where rak_ is a fixed prefix that secret scanners can match, id is 16
// base62 characters naming the key (stored in the clear: it is how the
// server finds the key and how operators and logs refer to it), secret is
// 43 base62 characters (more than 256 bits from crypto/rand) and check is
// 6 base62 characters of the CRC-32 of everything before it, so a typo or
// a truncated paste is rejected without a database lookup. Only a hash of
// the secret is stored: SHA-256 over a domain-separation tag, the id and
// the secret. A fast hash is right here because the secret is random and
// long — there is nothing to brute-force — and verification happens on
// every request; compare with Verify, which takes constant time.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"hash/crc32"
	"strings"
)

// Prefix starts every key.
const Prefix = "rak_"

const (
	alphabet  = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	idLen     = 16
	secretLen = 43 // 43 * log2(62) = 256.03 bits
	checkLen  = 6  // 62^6 > 2^32
	// Len is the length of every key.
	Len = len(Prefix) + idLen + 1 + secretLen + checkLen
)

// ErrMalformed is returned by Parse for anything that is not a well-formed
// key. It says nothing about which part is wrong: callers answer every
// bad credential alike.
var ErrMalformed = errors.New("apikey: not a well-formed runagent API key")

// Key is a parsed key.
type Key struct {
	ID     string
	secret string
}

// New generates a key. It returns the key as shown to its holder (once),
// its id, and the hash to store.
func New() (token, id string, hash []byte) {
	id, secret := random(idLen), random(secretLen)
	body := Prefix + id + "_" + secret
	return body + checksum(body), id, Key{ID: id, secret: secret}.Hash()
}

// NewForID returns a fresh, well-formed key with the given id (16 base62
// characters) and a random secret. The server never needs it — ids are
// random — but tests use it to present a wrong secret for a stored id.
func NewForID(id string) string {
	body := Prefix + id + "_" + random(secretLen)
	return body + checksum(body)
}

// Parse checks the form and checksum of token.
func Parse(token string) (Key, error) {
	if len(token) != Len || !strings.HasPrefix(token, Prefix) {
		return Key{}, ErrMalformed
	}
	rest := token[len(Prefix):]
	id, tail, ok := strings.Cut(rest, "_")
	if !ok || len(id) != idLen || len(tail) != secretLen+checkLen || !isBase62(id) || !isBase62(tail) {
		return Key{}, ErrMalformed
	}
	secret, check := tail[:secretLen], tail[secretLen:]
	if subtle.ConstantTimeCompare([]byte(check), []byte(checksum(token[:len(token)-checkLen]))) != 1 {
		return Key{}, ErrMalformed
	}
	return Key{ID: id, secret: secret}, nil
}

// LooksLikeKey reports whether s has the key prefix: a credential meant
// as an API key rather than, say, a JWT.
func LooksLikeKey(s string) bool { return strings.HasPrefix(s, Prefix) }

// Hash returns the value stored for k.
func (k Key) Hash() []byte {
	h := sha256.New()
	h.Write([]byte("runagent-api-key-v1\x00"))
	h.Write([]byte(k.ID))
	h.Write([]byte{0})
	h.Write([]byte(k.secret))
	return h.Sum(nil)
}

// Verify reports, in constant time, whether k's secret matches stored.
func (k Key) Verify(stored []byte) bool {
	return subtle.ConstantTimeCompare(k.Hash(), stored) == 1
}

// Redact returns a form of token safe to log: the prefix and the id of a
// well-formed key, or a fixed placeholder.
func Redact(token string) string {
	if k, err := Parse(token); err == nil {
		return Prefix + k.ID + "_…"
	}
	return "[malformed credential]"
}

// checksum is the CRC-32 (IEEE) of s in 6 base62 digits.
func checksum(s string) string {
	n := crc32.ChecksumIEEE([]byte(s))
	var b [checkLen]byte
	for i := checkLen - 1; i >= 0; i-- {
		b[i] = alphabet[n%62]
		n /= 62
	}
	return string(b[:])
}

// random returns n base62 characters from crypto/rand, by rejection
// sampling so that every character is equally likely.
func random(n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		rand.Read(buf[:]) // never fails (crypto/rand panics if the OS source does)
		for _, c := range buf {
			if c < 62*4 && len(out) < n {
				out = append(out, alphabet[c%62])
			}
		}
	}
	return string(out)
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
