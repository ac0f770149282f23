package oidc

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/auth/oidc/oidctest"
)

const testRedirect = "http://127.0.0.1:1" + CallbackPath

// newSignIn starts a test issuer and a SignIn for it.
func newSignIn(t testing.TB, secret string) (*SignIn, *oidctest.Issuer) {
	t.Helper()
	idp := oidctest.New(t, oidctest.Config{ClientID: "console", ClientSecret: secret, RedirectURL: testRedirect})
	idp.SetUser(oidctest.User{Subject: "alice", Claims: map[string]any{"runagent_role": "viewer", "runagent_project": "p1"}})
	v := mustVerifier(t, Config{Issuers: []IssuerConfig{{Issuer: idp.URL, Audiences: []string{"runagent"},
		Console: &ConsoleClient{ClientID: "console", ClientSecret: secret, RedirectURL: testRedirect, Name: "Test SSO"}}}},
		WithClock(time.Now))
	// A key of each process's own: under fuzzing, a seed sealed by the
	// coordinator does not open in a worker, and is refused like any
	// other input.
	key := make([]byte, StateKeySize)
	rand.Read(key)
	s, err := NewSignIn(v, key)
	if err != nil {
		t.Fatal(err)
	}
	return s, idp
}

// authorize follows Start's URL to the issuer and returns the callback
// query it redirects to.
func authorize(t testing.TB, authURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func TestSignInFlow(t *testing.T) {
	for _, secret := range []string{"", "s3cret"} {
		t.Run("secret="+secret, func(t *testing.T) {
			s, idp := newSignIn(t, secret)
			if got := s.Providers(); len(got) != 1 || got[0].Name != "Test SSO" || got[0].ID != ConsoleID(idp.URL) {
				t.Fatalf("Providers() = %+v", got)
			}
			authURL, sealed, err := s.Start(t.Context(), ConsoleID(idp.URL))
			if err != nil {
				t.Fatal(err)
			}
			q := authorize(t, authURL)
			id, err := s.Finish(t.Context(), sealed, q.Get("state"), q.Get("code"))
			if err != nil {
				t.Fatalf("Finish() = %v", err)
			}
			if id.Subject != "alice" || id.Role != "viewer" || id.Project != "p1" || id.Issuer != idp.URL {
				t.Errorf("Finish() = %+v, want alice, viewer in p1", id)
			}
			ar := idp.AuthRequests()[0]
			if ar.Get("code_challenge_method") != "S256" || ar.Get("nonce") == "" || ar.Get("scope") != "openid" {
				t.Errorf("authorization request %v: want S256 challenge, a nonce, scope openid", ar)
			}
			if tr := idp.TokenRequests()[0]; len(tr.Get("code_verifier")) != 43 {
				t.Errorf("token request %v carries no code verifier", tr)
			}
			// The code was used: the same callback again fails.
			if _, err := s.Finish(t.Context(), sealed, q.Get("state"), q.Get("code")); err == nil {
				t.Error("Finish() with a used code succeeded")
			}
		})
	}
}

func TestSignInRefused(t *testing.T) {
	s, idp := newSignIn(t, "")
	id := ConsoleID(idp.URL)
	start := func(t *testing.T) (string, url.Values) {
		authURL, sealed, err := s.Start(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return sealed, authorize(t, authURL)
	}
	cases := []struct {
		name   string
		setup  func()
		finish func(t *testing.T) error
		reason string
	}{
		{"state mismatch", nil, func(t *testing.T) error {
			sealed, q := start(t)
			return second(s.Finish(t.Context(), sealed, q.Get("state")+"x", q.Get("code")))
		}, "state does not match"},
		{"no state cookie", nil, func(t *testing.T) error {
			_, q := start(t)
			return second(s.Finish(t.Context(), "", q.Get("state"), q.Get("code")))
		}, "state cookie: missing"},
		{"cookie of another sign-in", nil, func(t *testing.T) error {
			other, _ := start(t)
			_, q := start(t)
			return second(s.Finish(t.Context(), other, q.Get("state"), q.Get("code")))
		}, "state does not match"},
		{"tampered cookie", nil, func(t *testing.T) error {
			sealed, q := start(t)
			return second(s.Finish(t.Context(), flip(sealed), q.Get("state"), q.Get("code")))
		}, "not sealed by this server"},
		{"wrong code verifier", nil, func(t *testing.T) error {
			sealed, q := start(t)
			st, _ := s.open(sealed)
			st.Verifier = strings.Repeat("A", 43)
			forged, _ := s.seal(st)
			return second(s.Finish(t.Context(), forged, q.Get("state"), q.Get("code")))
		}, "invalid_grant"},
		{"wrong nonce", func() { idp.WrongNonce(true) }, func(t *testing.T) error {
			defer idp.WrongNonce(false)
			sealed, q := start(t)
			return second(s.Finish(t.Context(), sealed, q.Get("state"), q.Get("code")))
		}, "id token: oidc: token rejected: invalid claim: nonce"},
		{"role not valid", func() {
			idp.SetUser(oidctest.User{Subject: "bob", Claims: map[string]any{"runagent_role": "root", "runagent_project": "p1"}})
		}, func(t *testing.T) error {
			sealed, q := start(t)
			return second(s.Finish(t.Context(), sealed, q.Get("state"), q.Get("code")))
		}, "access token: oidc: token rejected: invalid role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			err := tc.finish(t)
			var se *SignInError
			if !errors.As(err, &se) || !strings.Contains(se.Reason, tc.reason) {
				t.Fatalf("Finish() = %v, want a *SignInError with %q", err, tc.reason)
			}
		})
	}
}

func TestSignInStateExpires(t *testing.T) {
	s, idp := newSignIn(t, "")
	now := time.Now()
	s.v.now = func() time.Time { return now }
	authURL, sealed, err := s.Start(t.Context(), ConsoleID(idp.URL))
	if err != nil {
		t.Fatal(err)
	}
	q := authorize(t, authURL)
	now = now.Add(StateLifetime)
	if _, err := s.Finish(t.Context(), sealed, q.Get("state"), q.Get("code")); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Finish() after %v = %v, want expired", StateLifetime, err)
	}
}

func TestSignInUnknownProvider(t *testing.T) {
	s, _ := newSignIn(t, "")
	if _, _, err := s.Start(t.Context(), "nope"); !errors.Is(err, ErrUnknownProvider) {
		t.Fatalf("Start(nope) = %v, want ErrUnknownProvider", err)
	}
}

func TestConsoleClientValidate(t *testing.T) {
	ok := ConsoleClient{ClientID: "c", RedirectURL: "https://runagent.example" + CallbackPath, Name: "SSO"}
	cases := []struct {
		name string
		edit func(*ConsoleClient)
		want string // "" valid
	}{
		{"valid", func(*ConsoleClient) {}, ""},
		{"loopback http", func(c *ConsoleClient) { c.RedirectURL = "http://127.0.0.1:8080" + CallbackPath }, ""},
		{"no client id", func(c *ConsoleClient) { c.ClientID = "" }, "client_id"},
		{"no name", func(c *ConsoleClient) { c.Name = "" }, "name must be"},
		{"plain http", func(c *ConsoleClient) { c.RedirectURL = "http://runagent.example" + CallbackPath }, "loopback"},
		{"other path", func(c *ConsoleClient) { c.RedirectURL = "https://runagent.example/callback" }, "must end with"},
		{"query", func(c *ConsoleClient) { c.RedirectURL += "?x=1" }, "must end with"},
		{"bad scope", func(c *ConsoleClient) { c.Scopes = []string{"openid profile"} }, "scope"},
		{"secret with newline", func(c *ConsoleClient) { c.ClientSecret = "abc\n" }, "client secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.withDefaults().validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("validate() = %v, want an error with %q", err, tc.want)
			}
			if err != nil && c.ClientSecret != "" && strings.Contains(err.Error(), c.ClientSecret) {
				t.Fatalf("validate() error %q shows the secret", err)
			}
		})
	}
	if s := (ConsoleClient{ClientSecret: "hunter2"}).String(); strings.Contains(s, "hunter2") {
		t.Errorf("String() = %q shows the secret", s)
	}
}

// FuzzOpenState: a state cookie from the browser is refused unless this
// server sealed it; nothing panics, and no error repeats the input.
func FuzzOpenState(f *testing.F) {
	s, idp := newSignIn(f, "")
	_, sealed, err := s.Start(context.Background(), ConsoleID(idp.URL))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{sealed, flip(sealed), "", "AAAA", strings.Repeat("A", 2000), sealed + "A", "eyJ9"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		st, err := s.open(v)
		if v == sealed {
			if err != nil {
				t.Fatalf("open(sealed) = %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("open(%q) = %+v, want an error", v, st)
		}
		if len(v) >= 8 && strings.Contains(err.Error(), v) {
			t.Fatalf("error %q repeats the input", err)
		}
	})
}

func second[T any](_ T, err error) error { return err }

// flip changes one character in the middle of s.
func flip(s string) string {
	i := len(s) / 2
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}
