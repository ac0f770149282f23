package auth

import (
	"slices"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/core"
)

// TestMayActForUser: an API key acts for the end users its users entries
// admit (exact, prefix, *; none: nobody), authenticated from a real
// store; an OIDC token for its own subject only, even one that looks
// like a prefix; a request without a credential for nobody.
func TestMayActForUser(t *testing.T) {
	st := openStore(t)
	a := New(Config{Store: st})
	keyWith := func(users ...string) Identity {
		token, _ := addKey(t, st, core.RoleUser, func(_ *core.Principal, k *core.APIKey) { k.Users = users })
		id, err := a.Authenticate(t.Context(), token, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	oidcAs := func(sub string) Identity {
		a := New(Config{Store: st, Tokens: stubTokens{TokenClaims{Issuer: "https://idp", Subject: sub, Project: "p1", Role: core.RoleUser}}})
		id, err := a.Authenticate(t.Context(), "eyJ.eyJ.sig", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	exact, prefix, any, none := keyWith("alice", "bob"), keyWith("team-*"), keyWith("*"), keyWith()
	alice, starry := oidcAs("alice"), oidcAs("team-*")
	anonymous := Identity{Method: MethodAnonymous, Role: core.RoleAdmin}
	for _, tt := range []struct {
		name string
		id   Identity
		user string
		want bool
	}{
		{"exact: listed", exact, "alice", true},
		{"exact: the other listed", exact, "bob", true},
		{"exact: not listed", exact, "carol", false},
		{"exact: a prefix of a listed id", exact, "ali", false},
		{"exact: a listed id extended", exact, "alice2", false},
		{"exact: case differs", exact, "Alice", false},
		{"prefix: under it", prefix, "team-42", true},
		{"prefix: the prefix itself", prefix, "team-", true},
		{"prefix: outside", prefix, "teams", false},
		{"*: anyone", any, "whoever@example.com", true},
		{"*: not the empty id", any, "", false},
		{"no users: nobody", none, "alice", false},
		{"OIDC: its subject", alice, "alice", true},
		{"OIDC: another", alice, "bob", false},
		{"OIDC: its issuer-qualified name is not its user id", alice, "https://idp#alice", false},
		{"OIDC: a subject ending in * is exact", starry, "team-*", true},
		{"OIDC: ... and not a prefix", starry, "team-a", false},
		{"no credential: nobody", anonymous, "alice", false},
	} {
		if got := tt.id.MayActForUser(tt.user); got != tt.want {
			t.Errorf("%s: MayActForUser(%q) = %v, want %v", tt.name, tt.user, got, tt.want)
		}
	}
	if !slices.Equal(exact.Users, []string{"alice", "bob"}) {
		t.Errorf("authenticated key's Users = %q", exact.Users)
	}
}

// TestUserEntries: what an identity holds when it hands out a key: a
// key's own entries; an OIDC token its subject, if that can be written
// as an exact entry, else nothing.
func TestUserEntries(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   Identity
		want []string
	}{
		{"key", Identity{Method: MethodAPIKey, Users: []string{"a", "b*"}}, []string{"a", "b*"}},
		{"key without users", Identity{Method: MethodAPIKey}, nil},
		{"OIDC", Identity{Method: MethodOIDC, TokenSubject: "alice", Users: []string{"*"}}, []string{"alice"}},
		{"OIDC subject with a *", Identity{Method: MethodOIDC, TokenSubject: "team-*"}, nil},
		{"OIDC subject too long", Identity{Method: MethodOIDC, TokenSubject: strings.Repeat("s", core.MaxUserID+1)}, nil},
		{"OIDC without a subject", Identity{Method: MethodOIDC}, nil},
	} {
		if got := tt.id.UserEntries(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: UserEntries() = %q, want %q", tt.name, got, tt.want)
		}
	}
}
