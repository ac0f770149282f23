package core

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckUserEntry(t *testing.T) {
	for _, tt := range []struct {
		entry   string
		wantErr string // "" for a valid entry
	}{
		{"alice", ""},
		{"team-*", ""},
		{"*", ""},
		{"user@example.com", ""},
		{"Zoë Ünicode", ""},
		{"a,b", ""}, // the API takes it; only ParseUsers splits on commas
		{strings.Repeat("u", MaxUserID), ""},
		{strings.Repeat("u", MaxUserID-1) + "*", ""},
		{"", "empty entry"},
		{strings.Repeat("u", MaxUserID+1), "at most 256 bytes"},
		{"a\nb", "printable"},
		{"a\x7f", "printable"},
		{"\xff", "printable"},
		{"a*b", "* may stand only"},
		{"**", "* may stand only"},
		{"*a", "* may stand only"},
		{"team-**", "* may stand only"},
	} {
		err := CheckUserEntry(tt.entry)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("CheckUserEntry(%q) = %v, want nil", tt.entry, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("CheckUserEntry(%q) = %v, want an error saying %q", tt.entry, err, tt.wantErr)
		}
	}
}

func TestCheckUsersNamesEveryBadEntry(t *testing.T) {
	err := CheckUsers([]string{"ok", "a*b", "fine-*", "", "x\ty"})
	e, isErr := err.(*Error)
	if !isErr || e.Code != CodeValidation || e.Field != "users" {
		t.Fatalf("CheckUsers = %#v, want a VALIDATION_ERROR on users", err)
	}
	for _, want := range []string{`entry 2 ("a*b")`, "entry 4:", "entry 5:"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q does not name %s", e.Message, want)
		}
	}
	if strings.Contains(e.Message, "entry 1") || strings.Contains(e.Message, "entry 3") {
		t.Errorf("message %q names a good entry", e.Message)
	}
	if err := CheckUsers(slices.Repeat([]string{"a"}, MaxKeyUsers+1)); ErrorCode(err) != CodeValidation {
		t.Errorf("CheckUsers(%d entries) = %v, want VALIDATION_ERROR", MaxKeyUsers+1, err)
	}
	if err := CheckUsers(nil); err != nil {
		t.Errorf("CheckUsers(nil) = %v", err)
	}
}

func TestParseUsers(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"  ", nil, false},
		{"alice", []string{"alice"}, false},
		{"a,b,team-*", []string{"a", "b", "team-*"}, false},
		{" alice , team-* ", []string{"alice", "team-*"}, false},
		{"*", []string{"*"}, false},
		{"a,,b", nil, true},
		{"a,", nil, true},
		{"a*b", nil, true},
		{strings.Repeat("a,", MaxKeyUsers) + "a", nil, true},
	} {
		got, err := ParseUsers(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("ParseUsers(%q) = %q, %v; want %q (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestUsersAdmit(t *testing.T) {
	for _, tt := range []struct {
		users []string
		user  string
		want  bool
	}{
		{[]string{"alice"}, "alice", true},
		{[]string{"alice"}, "alice2", false},
		{[]string{"alice"}, "Alice", false},
		{[]string{"team-*"}, "team-a", true},
		{[]string{"team-*"}, "team-", true},
		{[]string{"team-*"}, "team", false},
		{[]string{"team-*"}, "xteam-a", false},
		{[]string{"*"}, "anyone", true},
		{[]string{"*"}, "", false}, // the empty id is nobody's
		{[]string{"bob", "team-*"}, "team-x", true},
		{nil, "alice", false},
		{[]string{}, "alice", false},
	} {
		if got := UsersAdmit(tt.users, tt.user); got != tt.want {
			t.Errorf("UsersAdmit(%q, %q) = %v, want %v", tt.users, tt.user, got, tt.want)
		}
	}
}

func TestUsersCover(t *testing.T) {
	for _, tt := range []struct {
		holder, target []string
		uncovered      string // "" when covered
	}{
		{[]string{"*"}, []string{"*"}, ""},
		{[]string{"*"}, []string{"a", "b*"}, ""},
		{[]string{"ab*"}, []string{"abc", "abx*", "ab", "ab*"}, ""},
		{[]string{"ab*"}, []string{"a*"}, "a*"},
		{[]string{"ab*"}, []string{"*"}, "*"},
		{[]string{"ab*"}, []string{"ac"}, "ac"},
		{[]string{"abc"}, []string{"abc"}, ""},
		{[]string{"abc"}, []string{"abc*"}, "abc*"},
		{[]string{"abc"}, []string{"ab"}, "ab"},
		{[]string{"a", "team-*"}, []string{"team-x", "a"}, ""},
		{nil, []string{"a"}, "a"},
		{nil, nil, ""},
		{[]string{"a"}, nil, ""},
	} {
		u, ok := UsersCover(tt.holder, tt.target)
		if ok != (tt.uncovered == "") || u != tt.uncovered {
			t.Errorf("UsersCover(%q, %q) = %q, %v; want %q uncovered", tt.holder, tt.target, u, ok, tt.uncovered)
		}
	}
}

// FuzzParseUsers: the users-list parser never panics; what it accepts is
// a valid list whose entries each admit what they say (an exact entry its
// id, a prefix an id that extends it) and cover themselves.
func FuzzParseUsers(f *testing.F) {
	for _, s := range []string{"", "alice", "a,b,team-*", "*", " a , b ", "a,,b", "a*b", "**", "\xff", "a\x00", strings.Repeat("x,", 120)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		users, err := ParseUsers(s)
		if err != nil {
			if users != nil {
				t.Fatalf("ParseUsers(%q) returned %q with error %v", s, users, err)
			}
			return
		}
		if err := CheckUsers(users); err != nil {
			t.Fatalf("ParseUsers(%q) accepted %q, which CheckUsers refuses: %v", s, users, err)
		}
		for _, e := range users {
			if !utf8.ValidString(e) || e != strings.TrimSpace(e) {
				t.Fatalf("entry %q of %q", e, s)
			}
			if !EntryCovers(e, e) {
				t.Fatalf("entry %q does not cover itself", e)
			}
			id := strings.TrimSuffix(e, "*") + "x"
			if strings.HasSuffix(e, "*") != UsersAdmit([]string{e}, id) {
				t.Fatalf("entry %q admits %q: %v", e, id, UsersAdmit([]string{e}, id))
			}
		}
	})
}

// FuzzUsersCover: whatever two entries are, if one covers the other then
// every id the covered one admits, the covering one admits too.
func FuzzUsersCover(f *testing.F) {
	f.Add("ab*", "abc", "abc")
	f.Add("*", "x*", "xy")
	f.Add("abc", "abc*", "abcd")
	f.Fuzz(func(t *testing.T, holder, e, id string) {
		if CheckUserEntry(holder) != nil || CheckUserEntry(e) != nil {
			return
		}
		if EntryCovers(holder, e) && UsersAdmit([]string{e}, id) && !UsersAdmit([]string{holder}, id) {
			t.Fatalf("%q covers %q, which admits %q, but %q does not", holder, e, id, holder)
		}
	})
}
