package events

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
)

// A JWT (header {"alg":"HS256","typ":"JWT"}), and a real-looking API key.
const (
	testJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	testPEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc==\n-----END RSA PRIVATE KEY-----"
)

func TestRedactString(t *testing.T) {
	key, _, _ := apikey.New()
	tests := []struct {
		name, in, want string
		n              int
	}{
		{"plain text", "authentication failed: wrong secret", "authentication failed: wrong secret", 0},
		{"key id is not a credential", "key 3fA9kQ2mZx7LpB1c revoked", "key 3fA9kQ2mZx7LpB1c revoked", 0},
		{"empty", "", "", 0},
		{"api key", "bad key " + key + " presented", "bad key " + Redacted + " presented", 1},
		{"api key alone", key, Redacted, 1},
		{"malformed api key", "rak_short", Redacted, 1},
		{"api key glued to text", "x=" + key + ",y", "x=" + Redacted + ",y", 1},
		{"bearer", "Authorization: Bearer abcdefgh12345678", "Authorization: Bearer " + Redacted, 1},
		{"bearer lower case", "bearer\tabcdefgh_1234-5678.x", "bearer\t" + Redacted, 1},
		{"bearer api key", "Bearer " + key, "Bearer " + Redacted, 1},
		{"bearer jwt", "BEARER " + testJWT, "BEARER " + Redacted, 1},
		{"basic", "Basic dXNlcjpwYXNzd29yZA==", "Basic " + Redacted, 1},
		{"bearer word", "missing bearer token", "missing bearer token", 0},
		{"jwt", "token " + testJWT + " expired", "token " + Redacted + " expired", 1},
		{"jwt in a query", "GET /x?access_token=" + testJWT, "GET /x?access_token=" + Redacted, 1},
		{"two credentials", key + " and " + testJWT, Redacted + " and " + Redacted, 2},
		{"pem private key", "key:\n" + testPEM + "\nafter", "key:\n" + Redacted + "\nafter", 1},
		{"truncated pem private key", "-----BEGIN PRIVATE KEY-----\nMIIE", Redacted, 1},
		{"pem certificate", "-----BEGIN CERTIFICATE-----\nMIIE", "-----BEGIN CERTIFICATE-----\nMIIE", 0},
		{"url password", "dial postgres://app:s3cr3t@db:5432/x", "dial postgres://app:" + Redacted + "@db:5432/x", 1},
		{"url without password", "https://example.com:8443/path", "https://example.com:8443/path", 0},
		{"url user only", "https://user@example.com/", "https://user@example.com/", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := RedactString(tt.in)
			if got != tt.want || n != tt.n {
				t.Errorf("RedactString(%q) = %q, %d; want %q, %d", tt.in, got, n, tt.want, tt.n)
			}
			if LooksLikeCredential(tt.in) != (tt.n > 0) {
				t.Errorf("LooksLikeCredential(%q) = %v, want %v", tt.in, !(tt.n > 0), tt.n > 0)
			}
		})
	}
}

func TestRedactEvent(t *testing.T) {
	key, _, _ := apikey.New()
	ev := core.SecurityEvent{
		Type:      core.EventAuthFailure,
		Principal: "key:3fA9kQ2mZx7LpB1c",
		IP:        "192.0.2.1",
		RequestID: "req-1",
		Message:   "credential " + key + " refused",
		Details: map[string]string{
			"reason":        "wrong secret",
			"Authorization": "Bearer " + testJWT,
			"X-Api-Key":     "whatever-it-is",
			"password":      "hunter2",
			"token_hint":    "",
			"user_agent":    "curl/8.0 " + testJWT,
			key:             "a key as a key",
		},
	}
	n := Redact(&ev)
	want := core.SecurityEvent{
		Type:      core.EventAuthFailure,
		Principal: "key:3fA9kQ2mZx7LpB1c",
		IP:        "192.0.2.1",
		RequestID: "req-1",
		Message:   "credential " + Redacted + " refused",
		Details: map[string]string{
			"reason":        "wrong secret",
			"Authorization": Redacted,
			"X-Api-Key":     Redacted,
			"password":      Redacted,
			"token_hint":    "",
			"user_agent":    "curl/8.0 " + Redacted,
			Redacted:        "a key as a key",
		},
	}
	if diff := cmp.Diff(ev, want); diff != "" {
		t.Errorf("Redact(event) (-got +want):\n%s", diff)
	}
	if n != 6 {
		t.Errorf("Redact(event) = %d, want 6 values changed", n)
	}
	if n := Redact(&ev); n != 0 {
		t.Errorf("Redact(redacted event) = %d, want 0", n)
	}
}

func TestCleanAndLimit(t *testing.T) {
	key, _, _ := apikey.New()
	details := map[string]string{}
	for i := range 40 {
		details[string(rune('a'+i%26))+strings.Repeat("k", i/26+1)] = "v"
	}
	details["long"] = strings.Repeat("é", 600)
	ev := core.SecurityEvent{
		Message:   strings.Repeat("m", 2000),
		Principal: "nul\x00in\xffthe middle",
		IP:        strings.Repeat("1", 300),
		// A NUL must not split a key so that its tail escapes redaction.
		RequestID: key[:20] + "\x00" + key[20:],
		Details:   details,
	}
	clean(&ev)
	Redact(&ev)
	limit(&ev)
	if len(ev.Message) != maxMessage || !strings.HasSuffix(ev.Message, "…") {
		t.Errorf("Message truncated to %d bytes ending %q, want %d ending …", len(ev.Message), ev.Message[len(ev.Message)-5:], maxMessage)
	}
	if ev.Principal != "nulinthe middle" {
		t.Errorf("Principal = %q, want NUL and the bad byte removed", ev.Principal)
	}
	if len(ev.IP) != maxField {
		t.Errorf("len(IP) = %d, want %d", len(ev.IP), maxField)
	}
	if ev.RequestID != Redacted {
		t.Errorf("RequestID = %q, want %q", ev.RequestID, Redacted)
	}
	if len(ev.Details) != maxDetails {
		t.Errorf("len(Details) = %d, want %d", len(ev.Details), maxDetails)
	}
	if got, want := ev.Details["_truncated"], "10 more details dropped"; got != want {
		t.Errorf("Details[_truncated] = %q, want %q", got, want)
	}
	for k, v := range ev.Details {
		if len(k) > maxDetailKey || len(v) > maxDetailValue || !validUTF8(v) {
			t.Errorf("detail %q = %q (%d bytes) is over the limits or not UTF-8", k, v, len(v))
		}
	}
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// FuzzRedactString: a credential put anywhere in any text never survives
// redaction, and redacting twice changes nothing more.
func FuzzRedactString(f *testing.F) {
	key, _, _ := apikey.New()
	for _, s := range [][2]string{
		{"", ""}, {"Bearer ", ""}, {"https://u:", "@h"}, {"eyJabcd.", "."}, {"-----BEGIN PRIVATE KEY-----", ""},
		{"rak", "_x"}, {"x", "y"}, {"Basic\t", " more"}, {"\xff", "\x00"},
	} {
		f.Add(s[0], s[1], 0)
		f.Add(s[0], s[1], 1)
	}
	f.Fuzz(func(t *testing.T, prefix, suffix string, which int) {
		secret := key
		if which%2 != 0 {
			secret = testJWT
		}
		in := prefix + secret + suffix
		out, n := RedactString(in)
		// The secret's tail is what must never be written.
		if tail := secret[len(secret)-24:]; strings.Contains(out, tail) {
			t.Fatalf("RedactString(%q) = %q, still holding %q", in, out, tail)
		}
		if n == 0 {
			t.Fatalf("RedactString(%q) made no replacement", in)
		}
		if again, _ := RedactString(out); again != out {
			t.Fatalf("RedactString(%q) = %q, but again %q", in, out, again)
		}
	})
}
