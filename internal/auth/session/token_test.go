package session

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	tok := NewToken()
	s := tok.String()
	if len(s) != tokenLen || !strings.HasPrefix(s, tokenPrefix) {
		t.Fatalf("String() = %q: want %d characters starting %q", s, tokenLen, tokenPrefix)
	}
	got, err := ParseToken(s)
	if err != nil || got != tok {
		t.Fatalf("ParseToken(String()) = %x, %v; want %x", got, err, tok)
	}
	if NewToken() == tok {
		t.Fatal("two NewToken() are equal")
	}
	if len(tok.ID()) != 64 || strings.Contains(tok.ID(), s[len(tokenPrefix):]) {
		t.Errorf("ID() = %q: want 64 hex characters that are not the token", tok.ID())
	}
}

func TestParseTokenRefuses(t *testing.T) {
	good := NewToken().String()
	last := good[len(good)-1]
	// The last character carries 4 spare bits: flipping one gives
	// another encoding of the same bytes, or other bytes.
	alt := good[:len(good)-1] + string(last^1)
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"no prefix", good[len(tokenPrefix):]},
		{"other prefix", "rakey_" + good[len(tokenPrefix)-1:]},
		{"short", good[:len(good)-1]},
		{"long", good + "A"},
		{"padding", good[:len(good)-1] + "="},
		{"std alphabet", good[:len(good)-1] + "+"},
		{"NUL", good[:len(good)-1] + "\x00"},
		{"space", " " + good[1:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := ParseToken(tc.in); err == nil {
				t.Errorf("ParseToken(%q) = %x, nil; want an error", tc.in, tok)
			}
		})
	}
	if tok, err := ParseToken(alt); err == nil && tok.String() != alt {
		t.Errorf("ParseToken(%q) accepted a non-canonical encoding", alt)
	}
}

func TestCSRF(t *testing.T) {
	tok, other := NewToken(), NewToken()
	c := tok.CSRF()
	if len(c) != csrfLen {
		t.Fatalf("CSRF() = %q: want %d characters", c, csrfLen)
	}
	if c == tok.String() || strings.Contains(tok.String(), c) || c == tok.ID() {
		t.Fatal("CSRF() reveals the token or its id")
	}
	for _, tc := range []struct {
		name, header string
		want         bool
	}{
		{"its own", c, true},
		{"missing", "", false},
		{"another session's", other.CSRF(), false},
		{"the session token", tok.String(), false},
		{"the session id", tok.ID(), false},
		{"truncated", c[:len(c)-1], false},
		{"case changed", strings.ToUpper(c), c == strings.ToUpper(c)},
	} {
		if got := tok.CheckCSRF(tc.header); got != tc.want {
			t.Errorf("CheckCSRF(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFromRequest(t *testing.T) {
	tok := NewToken()
	r := httptest.NewRequest("GET", "/", nil)
	if _, present, err := FromRequest(r); present || err != nil {
		t.Fatalf("FromRequest(no cookie) = present %v, %v; want absent", present, err)
	}
	r.AddCookie(Cookie(tok, cookieExpiry, true))
	got, present, err := FromRequest(r)
	if !present || err != nil || got != tok {
		t.Fatalf("FromRequest(cookie) = %x, %v, %v; want %x", got, present, err, tok)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", CookieName+"=garbage")
	if _, present, err := FromRequest(r); !present || err == nil {
		t.Fatalf("FromRequest(garbage cookie) = present %v, %v; want present with an error", present, err)
	}
}

func TestCookieAttributes(t *testing.T) {
	tok := NewToken()
	for _, secure := range []bool{false, true} {
		c := Cookie(tok, cookieExpiry, secure).String()
		for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
			if !strings.Contains(c, want) {
				t.Errorf("Cookie(secure %v) = %q: missing %s", secure, c, want)
			}
		}
		if strings.Contains(c, "Secure") != secure {
			t.Errorf("Cookie(secure %v) = %q: Secure attribute %v", secure, c, !secure)
		}
		clear := ClearCookie(secure).String()
		if !strings.Contains(clear, "Max-Age=0") || !strings.Contains(clear, "HttpOnly") {
			t.Errorf("ClearCookie() = %q: want Max-Age=0 and HttpOnly", clear)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add(NewToken().String())
	f.Add("")
	f.Add(tokenPrefix)
	f.Add(tokenPrefix + strings.Repeat("A", 43))
	f.Add(tokenPrefix + strings.Repeat("_", 42) + "=")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if tok != (Token{}) {
				t.Fatalf("ParseToken(%q) failed but returned a token", s)
			}
			return
		}
		if tok.String() != s {
			t.Fatalf("ParseToken(%q) = a token that encodes as %q", s, tok.String())
		}
	})
}

func FuzzCheckCSRF(f *testing.F) {
	tok := NewToken()
	f.Add(tok.CSRF())
	f.Add("")
	f.Add(strings.Repeat("A", csrfLen))
	f.Add(tok.String())
	f.Fuzz(func(t *testing.T, header string) {
		if tok.CheckCSRF(header) != (header == tok.CSRF()) {
			t.Fatalf("CheckCSRF(%q) disagrees with equality to CSRF()", header)
		}
	})
}

// cookieExpiry is a fixed cookie expiry for the tests.
var cookieExpiry = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
