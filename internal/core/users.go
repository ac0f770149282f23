package core

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// An API key's users list says which end users (a run's user_id) the key
// may act for when the run reaches a user's state: persistent memory, a
// sandbox kept per user. Each entry is one of
//
//	alice      exactly the user id "alice"
//	team-*     every user id that starts with "team-" ("team-" itself too)
//	*          every user id: a backend that acts for many end users
//
// A '*' stands only alone or at the end, so an entry is an exact id or a
// prefix and never a pattern. An empty list (or none) acts for nobody.
// Entries follow the rule for a run's user_id: printable UTF-8 text of at
// most MaxUserID bytes; ids compare byte for byte.

// MaxUserID is the longest user id (and users entry), in bytes: the
// limit on a run's user_id.
const MaxUserID = 256

// MaxKeyUsers bounds the entries of one key's users list.
const MaxKeyUsers = 100

// AnyUser is the users entry that admits every user id.
const AnyUser = "*"

// CheckUserEntry returns nil if e is a valid users entry, or an error
// saying what is wrong with it in words its writer can act on.
func CheckUserEntry(e string) error {
	switch {
	case e == "":
		return fmt.Errorf("an empty entry names no user (write the user id, a prefix ending in *, or * for every user)")
	case len(e) > MaxUserID:
		return fmt.Errorf("an entry is at most %d bytes, like a user_id", MaxUserID)
	case !utf8.ValidString(e) || strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("an entry must be printable UTF-8 text, like a user_id")
	case strings.Contains(e[:len(e)-1], "*"):
		return fmt.Errorf("* may stand only alone (every user) or at the end of a prefix (team-*)")
	}
	return nil
}

// CheckUsers returns nil if users is a valid users list, or a *Error
// (CodeValidation, field "users") naming every bad entry by its position
// and saying what is wrong with it.
func CheckUsers(users []string) error {
	if len(users) > MaxKeyUsers {
		return &Error{Code: CodeValidation, Field: "users",
			Message: fmt.Sprintf("users has %d entries; at most %d (use a prefix such as team-* for many users)", len(users), MaxKeyUsers)}
	}
	var bad []string
	for i, e := range users {
		if err := CheckUserEntry(e); err != nil {
			bad = append(bad, fmt.Sprintf("entry %d%s: %v", i+1, quoteEntry(e), err))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &Error{Code: CodeValidation, Field: "users", Message: "invalid users: " + strings.Join(bad, "; ")}
}

// quoteEntry shows an entry in an error when it is short printable text.
func quoteEntry(e string) string {
	if e == "" || len(e) > 64 || !utf8.ValidString(e) || strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ""
	}
	return fmt.Sprintf(" (%q)", e)
}

// ParseUsers parses a users list written as text, as the command line
// takes it: entries separated by commas, spaces around each ignored
// ("alice, team-*"). "" is no entry. An empty entry between commas, or
// any invalid entry, is an error (see CheckUsers). A user id that holds a
// comma cannot be written here; the API takes a JSON list.
func ParseUsers(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxKeyUsers {
		return nil, &Error{Code: CodeValidation, Field: "users",
			Message: fmt.Sprintf("users has %d entries; at most %d (use a prefix such as team-* for many users)", len(parts), MaxKeyUsers)}
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = strings.TrimSpace(p)
	}
	if err := CheckUsers(out); err != nil {
		return nil, err
	}
	return out, nil
}

// entryAdmits reports whether the valid entry e admits user id u.
func entryAdmits(e, u string) bool {
	if prefix, ok := strings.CutSuffix(e, "*"); ok {
		return strings.HasPrefix(u, prefix)
	}
	return e == u
}

// UsersAdmit reports whether the valid users list users admits userID:
// an entry names it exactly, or is a prefix of it, or is *. No user id is
// admitted by an empty list, and the empty user id by none.
func UsersAdmit(users []string, userID string) bool {
	if userID == "" {
		return false
	}
	for _, e := range users {
		if entryAdmits(e, userID) {
			return true
		}
	}
	return false
}

// EntryCovers reports whether the valid entry holder admits every user id
// the valid entry e admits: * covers everything, a prefix covers the ids
// and the longer prefixes that start with it (ab* covers abc and abx*),
// an exact id covers only itself.
func EntryCovers(holder, e string) bool {
	if hp, ok := strings.CutSuffix(holder, "*"); ok {
		ep, _ := strings.CutSuffix(e, "*")
		return strings.HasPrefix(ep, hp)
	}
	return !strings.HasSuffix(e, "*") && holder == e
}

// UsersCover returns the first entry of target that no entry of holder
// covers (see EntryCovers), and whether there was none: a key with
// target as its users acts for no one holder may not.
func UsersCover(holder, target []string) (uncovered string, ok bool) {
	for _, e := range target {
		covered := false
		for _, h := range holder {
			if EntryCovers(h, e) {
				covered = true
				break
			}
		}
		if !covered {
			return e, false
		}
	}
	return "", true
}
