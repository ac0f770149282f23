package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
)

// Authentication modes (Config.Auth).
const (
	// AuthKeys requires an API key or access token on every route but
	// health; on a loopback address, agents whose auth_settings.type is
	// "none" may also be used without one (local development).
	AuthKeys = "keys"
	// AuthNone serves everyone as an owner. Loopback addresses only.
	AuthNone = "none"
)

// BootstrapKeyEnv names the environment variable that may name a file
// holding the first owner key (for automated set-ups): the server stores
// its hash instead of generating and printing a key.
const BootstrapKeyEnv = "RUNAGENT_BOOTSTRAP_KEY_FILE"

// ErrBootstrapOwnerExists refuses $RUNAGENT_BOOTSTRAP_KEY_FILE on a data
// directory whose owner exists already, naming a key the directory does
// not hold: ignoring it would leave its holder locked out without a word.
var ErrBootstrapOwnerExists = errors.New("the data directory already has an owner; " + BootstrapKeyEnv + " is only for the first start — unset it, or use runagent keys recover")

// bootstrap gives a fresh server its first owner: a principal with an API
// key read from the file named by $RUNAGENT_BOOTSTRAP_KEY_FILE, or else
// generated and written once to out. Once any principal exists it adds
// none, and refuses a bootstrap key file whose key is not already one of
// the directory's (ErrBootstrapOwnerExists); there is never a default
// credential.
func bootstrap(ctx context.Context, st core.Store, out io.Writer, now time.Time) error {
	n, err := st.CountPrincipals(ctx)
	if err != nil {
		return fmt.Errorf("check for principals: %w", err)
	}
	var k apikey.Key
	fromFile := false
	if path := os.Getenv(BootstrapKeyEnv); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read the bootstrap owner key ($%s): %w", BootstrapKeyEnv, err)
		}
		if k, err = apikey.Parse(strings.TrimSpace(string(b))); err != nil {
			if n > 0 {
				return ErrBootstrapOwnerExists
			}
			return fmt.Errorf("the bootstrap owner key in $%s is not a runagent API key (make one with `runagent keys generate`)", BootstrapKeyEnv)
		}
		fromFile = true
	}
	if n > 0 {
		if !fromFile {
			return nil
		}
		// The same file on every start (a container's environment) is
		// fine while its key is the one the first start stored.
		if stored, err := st.APIKey(ctx, k.ID); err == nil && k.Verify(stored.Hash) {
			return nil
		}
		return ErrBootstrapOwnerExists
	}
	var token string
	if !fromFile {
		token, _, _ = apikey.New()
		k, _ = apikey.Parse(token)
	}
	if _, err := createOwner(ctx, st, k, "bootstrap owner key", now); err != nil {
		return err
	}
	if token == "" {
		return nil
	}
	if out == nil {
		return errors.New("no way to show the generated owner key; set $" + BootstrapKeyEnv)
	}
	showOwnerKey(out, "This server's first owner API key", token)
	return nil
}

// createOwner stores a new owner principal with key k, valid for a year.
// The key acts for every end user (users ["*"]): it is where the keys of
// backends that act for many users come from (keys create --users).
func createOwner(ctx context.Context, st core.Store, k apikey.Key, keyName string, now time.Time) (*core.Principal, error) {
	now = now.UTC()
	p := &core.Principal{ID: uuid.NewString(), Name: "owner", Kind: core.PrincipalUser, Role: core.RoleOwner, CreatedAt: now}
	if err := st.CreatePrincipal(ctx, p); err != nil {
		return nil, fmt.Errorf("create the owner: %w", err)
	}
	expires := now.Add(365 * 24 * time.Hour)
	if err := st.CreateAPIKey(ctx, &core.APIKey{ID: k.ID, PrincipalID: p.ID, Name: keyName, Hash: k.Hash(), CreatedAt: now, ExpiresAt: &expires,
		Users: []string{core.AnyUser}}); err != nil {
		return nil, fmt.Errorf("store the owner key: %w", err)
	}
	return p, nil
}

// showOwnerKey prints a new owner key, the one time it is shown.
func showOwnerKey(out io.Writer, what, token string) {
	fmt.Fprintf(out, `
=====================================================================
 %s (shown once, now; it is stored
 only as a hash and cannot be shown again):

   %s

 Keep it in a password manager. Use it as RUNAGENT_API_KEY to create
 projects and narrower keys (runagent keys create), then keep it away
 from day-to-day use. It expires in a year.
=====================================================================

`, what, token)
}

// checkBootstrap refuses at once, before agents are deployed, the
// bootstrap key file bootstrap would refuse later: on a directory that
// has principals, bootstrap only checks it.
func checkBootstrap(ctx context.Context, st core.Store) error {
	n, err := st.CountPrincipals(ctx)
	if err != nil || n == 0 {
		return nil // bootstrap will say
	}
	return bootstrap(ctx, st, nil, time.Now())
}
