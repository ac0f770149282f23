package events

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runagent/runagent/internal/core"
)

// Redacted replaces a value that looks like a credential.
const Redacted = "[REDACTED]"

// credential matches what looks like a credential in free text:
//
//   - a runagent API key, or anything starting with its prefix rak_ (a
//     mistyped key is still mostly a secret);
//   - the credential after an HTTP "Bearer" or "Basic" scheme;
//   - a JWT, JWS or JWE, or any base64url JSON object: they start eyJ;
//   - a PEM private key, to its END line or the end of the text;
//   - the password of a URL's user information.
//
// It errs on the side of redacting: a false positive costs a log reader
// some detail, a false negative leaks a credential into a file that is
// kept for months and shipped elsewhere.
var credential = regexp.MustCompile(`rak_[0-9A-Za-z_\-]*` +
	`|(?i:\b(?:bearer|basic)\s+)[0-9A-Za-z_.~+/=\-]{8,}` +
	`|eyJ[0-9A-Za-z_\-]{4,}(?:\.[0-9A-Za-z_\-=]*)*` +
	`|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)` +
	`|(?i:\b[a-z][a-z0-9+.\-]*://[^\s/?#@:]*:)[^\s/?#@]+@`)

// secretKeys are parts of Details keys whose values are secret whatever
// they look like (compared lower-case, with "-" read as "_").
var secretKeys = []string{
	"password", "passwd", "secret", "token", "authorization", "cookie",
	"credential", "api_key", "apikey", "private_key", "privatekey",
}

// LooksLikeCredential reports whether s holds something RedactString
// would remove.
func LooksLikeCredential(s string) bool { return credential.MatchString(s) }

// RedactString returns s with everything that looks like a credential
// replaced by Redacted (an HTTP scheme or a URL's user name is kept), and
// how many replacements it made.
func RedactString(s string) (string, int) {
	n := 0
	out := credential.ReplaceAllStringFunc(s, func(m string) string {
		n++
		lower := strings.ToLower(m)
		switch {
		case strings.Contains(m, "://"):
			// scheme://user:password@ keeps scheme://user:
			i := strings.Index(m, "://") + len("://")
			j := i + strings.IndexByte(m[i:], ':') + 1
			return m[:j] + Redacted + "@"
		case strings.HasPrefix(lower, "bearer"), strings.HasPrefix(lower, "basic"):
			// Keep the scheme and the space after it.
			j := strings.IndexFunc(m, unicode.IsSpace)
			for j < len(m) && unicode.IsSpace(rune(m[j])) {
				j++
			}
			return m[:j] + Redacted
		}
		return Redacted
	})
	return out, n
}

// secretKey reports whether a Details key names a secret.
func secretKey(k string) bool {
	k = strings.ReplaceAll(strings.ToLower(k), "-", "_")
	return slices.ContainsFunc(secretKeys, func(s string) bool { return strings.Contains(k, s) })
}

// Redact removes credentials from ev in place, its Details map included:
// every string field is passed through RedactString, and the value of a
// Details key that names a secret ("password", "token", "authorization",
// ...) is replaced whole. It returns how many values it changed.
func Redact(ev *core.SecurityEvent) int {
	total := 0
	for _, p := range []*string{&ev.Principal, &ev.IP, &ev.AgentID, &ev.InvocationID, &ev.RequestID, &ev.Message} {
		var n int
		*p, n = RedactString(*p)
		total += min(n, 1)
	}
	for _, k := range slices.Collect(maps.Keys(ev.Details)) {
		v := ev.Details[k]
		nk, n := RedactString(k)
		total += min(n, 1)
		var nv string
		if secretKey(k) && v != "" && v != Redacted {
			nv, n = Redacted, 1
		} else {
			nv, n = RedactString(v)
		}
		total += min(n, 1)
		if nk != k {
			delete(ev.Details, k)
		}
		ev.Details[nk] = nv
	}
	return total
}

// Limits on what one event may hold, so that a client who controls part
// of an event (a user agent, a bad input) cannot bloat the log.
const (
	maxMessage     = 1024 // bytes
	maxField       = 256  // bytes of an id, principal or address
	maxDetailKey   = 64
	maxDetailValue = 512
	maxDetails     = 32
)

// clean makes every string of ev valid UTF-8 without NUL bytes (which
// neither JSON nor every store can carry), so that the store never
// refuses it. Such bytes are removed rather than replaced, so that they
// cannot split a credential and hide its tail from redaction.
func clean(ev *core.SecurityEvent) {
	for _, p := range []*string{&ev.ID, &ev.Principal, &ev.IP, &ev.AgentID, &ev.InvocationID, &ev.RequestID, &ev.Message} {
		*p = validString(*p)
	}
	for _, k := range slices.Collect(maps.Keys(ev.Details)) {
		if nk, v := validString(k), validString(ev.Details[k]); nk != k || v != ev.Details[k] {
			delete(ev.Details, k)
			ev.Details[nk] = v
		}
	}
}

func validString(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
}

// limit truncates ev's strings and Details to the limits above. Details
// beyond maxDetails are dropped (the first keys in sorted order are kept)
// and counted in a "_truncated" detail.
func limit(ev *core.SecurityEvent) {
	ev.Message = truncate(ev.Message, maxMessage)
	for _, p := range []*string{&ev.ID, &ev.Principal, &ev.IP, &ev.AgentID, &ev.InvocationID, &ev.RequestID} {
		*p = truncate(*p, maxField)
	}
	if len(ev.Details) == 0 {
		ev.Details = nil
		return
	}
	keys := slices.Sorted(maps.Keys(ev.Details))
	d := make(map[string]string, min(len(keys), maxDetails))
	keep := len(keys)
	if keep > maxDetails {
		keep = maxDetails - 1
		d["_truncated"] = fmt.Sprintf("%d more details dropped", len(keys)-keep)
	}
	for _, k := range keys[:keep] {
		d[truncate(k, maxDetailKey)] = truncate(ev.Details[k], maxDetailValue)
	}
	ev.Details = d
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut
// with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// sanitizeLabel makes a caller-supplied string safe to log as a label.
func sanitizeLabel(s string) string {
	s, _ = RedactString(validString(s))
	return truncate(s, 64)
}
