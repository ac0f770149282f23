package oidc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// CallbackPath is the path of the console's sign-in callback: every
// console client's redirect URL ends with it, and it is the URL to
// register at the issuer.
const CallbackPath = "/api/v1/session/oidc/callback"

// Bounds of a ConsoleClient's fields.
const (
	maxClientIDBytes = 256
	maxNameBytes     = 100
	maxScopes        = 20
)

// ConsoleClient is the OAuth 2.0 client that the web console signs in
// through, at one issuer (authorization code with PKCE, see SignIn).
type ConsoleClient struct {
	// ClientID is the client registered at the issuer.
	ClientID string
	// ClientSecret is the client's secret, for a confidential client;
	// empty for a public one, which PKCE alone protects. It is read from
	// a file by the caller, never from the config text or argv, and is
	// never logged.
	ClientSecret string
	// RedirectURL is the callback the issuer sends the browser back to:
	// https (http only on a loopback host), ending with CallbackPath.
	RedirectURL string
	// Scopes are requested at the issuer (default: openid).
	Scopes []string
	// Name is shown on the sign-in page: "Sign in with <Name>".
	Name string
}

// String hides the secret, so a config printed by mistake shows none.
func (c ConsoleClient) String() string {
	secret := ""
	if c.ClientSecret != "" {
		secret = " secret=[redacted]"
	}
	return fmt.Sprintf("{client_id=%q%s redirect_url=%q scopes=%q name=%q}", c.ClientID, secret, c.RedirectURL, c.Scopes, c.Name)
}

// GoString is String, so %#v hides the secret too.
func (c ConsoleClient) GoString() string { return c.String() }

// ConsoleID is the id that names issuer's console sign-in in URLs: the
// start of the SHA-256 of the issuer, the same on every node.
func ConsoleID(issuer string) string {
	sum := sha256.Sum256([]byte(issuer))
	return hex.EncodeToString(sum[:8])
}

func (c ConsoleClient) withDefaults() ConsoleClient {
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid"}
	}
	c.Scopes = slices.Clone(c.Scopes)
	return c
}

// validate reports what is wrong with c, which has its defaults set.
func (c ConsoleClient) validate() error {
	var errs []error
	if c.ClientID == "" || len(c.ClientID) > maxClientIDBytes || !validText(c.ClientID) {
		errs = append(errs, fmt.Errorf("client_id must be 1 to %d printable characters", maxClientIDBytes))
	}
	for _, r := range c.ClientSecret {
		if r < 0x21 || r == 0x7f {
			// Not quoted: it is a secret.
			errs = append(errs, errors.New("the client secret holds spaces or control characters (is the file's trailing newline the only one?)"))
			break
		}
	}
	if c.Name == "" || len(c.Name) > maxNameBytes || !validText(c.Name) {
		errs = append(errs, fmt.Errorf("name must be 1 to %d printable characters (it is shown as \"Sign in with <name>\")", maxNameBytes))
	}
	if err := checkURL(c.RedirectURL); err != nil {
		errs = append(errs, fmt.Errorf("redirect_url: %w", err))
	} else if u, _ := url.Parse(c.RedirectURL); u.RawQuery != "" || u.Fragment != "" || !strings.HasSuffix(u.Path, CallbackPath) {
		errs = append(errs, fmt.Errorf("redirect_url %q must end with %s, without query or fragment", c.RedirectURL, CallbackPath))
	}
	if len(c.Scopes) > maxScopes {
		errs = append(errs, fmt.Errorf("%d scopes, at most %d", len(c.Scopes), maxScopes))
	}
	for _, s := range c.Scopes {
		if s == "" || !validText(s) || strings.ContainsAny(s, " \"\\") {
			errs = append(errs, fmt.Errorf("scope %q is not a scope token", s))
		}
	}
	return errors.Join(errs...)
}
