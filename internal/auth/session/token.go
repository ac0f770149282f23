package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"
)

// CookieName is the session cookie's name.
const CookieName = "runagent_session"

// CSRFHeader is the header that carries the CSRF token of a change.
const CSRFHeader = "X-CSRF-Token"

// tokenPrefix starts every session token, so that secret scanners and
// people recognise one.
const tokenPrefix = "rasess_"

// tokenLen is the length of an encoded token: the prefix and 32 bytes in
// unpadded base64url; csrfLen that of a CSRF token (a SHA-256 HMAC).
const (
	tokenLen = len(tokenPrefix) + 43
	csrfLen  = 43
)

// Token is a session token: 256 random bits.
type Token [32]byte

var errMalformed = errors.New("malformed session token")

// NewToken returns a random token.
func NewToken() Token {
	var t Token
	rand.Read(t[:]) // never fails (crypto/rand panics instead)
	return t
}

// ParseToken parses an encoded token (String's form). It checks only the
// form: whether the session exists is the store's to say.
func ParseToken(s string) (Token, error) {
	var t Token
	if len(s) != tokenLen || !strings.HasPrefix(s, tokenPrefix) {
		return t, errMalformed
	}
	n, err := base64.RawURLEncoding.Decode(t[:], []byte(s[len(tokenPrefix):]))
	if err != nil || n != len(t) {
		return Token{}, errMalformed
	}
	// Base64 has more than one encoding of the last character's spare
	// bits; accept only the canonical one, so one token has one form.
	if t.String() != s {
		return Token{}, errMalformed
	}
	return t, nil
}

// String encodes t, as the cookie carries it. It is a secret: never log
// it.
func (t Token) String() string { return tokenPrefix + base64.RawURLEncoding.EncodeToString(t[:]) }

// ID is what the store keeps of t: its SHA-256, in hex.
func (t Token) ID() string {
	sum := sha256.Sum256(t[:])
	return hex.EncodeToString(sum[:])
}

// csrfLabel separates the CSRF HMAC from any other use of the token.
const csrfLabel = "runagent console csrf v1"

// CSRF is t's CSRF token: an HMAC of a fixed label keyed by t. It tells
// nothing of t.
func (t Token) CSRF() string {
	m := hmac.New(sha256.New, t[:])
	m.Write([]byte(csrfLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether header is t's CSRF token, in constant time.
func (t Token) CheckCSRF(header string) bool {
	if len(header) != csrfLen {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(header), []byte(t.CSRF())) == 1
}

// FromRequest returns the session token of r's cookie. present is false
// without the cookie; a cookie that is not a token is present with an
// error.
func FromRequest(r *http.Request) (t Token, present bool, err error) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return Token{}, false, nil
	}
	t, err = ParseToken(c.Value)
	return t, true, err
}

// Cookie is the cookie that carries t until expires: HttpOnly,
// SameSite=Strict, Path=/, and Secure when served over TLS.
func Cookie(t Token, expires time.Time, secure bool) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: t.String(), Path: "/", Expires: expires.UTC(),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode}
}

// ClearCookie is the cookie that removes the session cookie.
func ClearCookie(secure bool) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode}
}
