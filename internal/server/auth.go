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

// bootstrap gives a fresh server its first owner: a principal with an API
// key read from the file named by $RUNAGENT_BOOTSTRAP_KEY_FILE, or else
// generated and written once to out. It does nothing once any principal
// exists; there is never a default credential.
func bootstrap(ctx context.Context, st core.Store, out io.Writer, now time.Time) error {
	n, err := st.CountPrincipals(ctx)
	if err != nil {
		return fmt.Errorf("check for principals: %w", err)
	}
	if n > 0 {
		return nil
	}
	var token string
	var k apikey.Key
	if path := os.Getenv(BootstrapKeyEnv); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read the bootstrap owner key ($%s): %w", BootstrapKeyEnv, err)
		}
		if k, err = apikey.Parse(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("the bootstrap owner key in $%s is not a runagent API key (make one with `runagent keys generate`)", BootstrapKeyEnv)
		}
	} else {
		token, _, _ = apikey.New()
		k, _ = apikey.Parse(token)
	}
	now = now.UTC()
	p := &core.Principal{ID: uuid.NewString(), Name: "owner", Kind: core.PrincipalUser, Role: core.RoleOwner, CreatedAt: now}
	if err := st.CreatePrincipal(ctx, p); err != nil {
		return fmt.Errorf("create the owner: %w", err)
	}
	expires := now.Add(365 * 24 * time.Hour)
	if err := st.CreateAPIKey(ctx, &core.APIKey{ID: k.ID, PrincipalID: p.ID, Name: "bootstrap owner key", Hash: k.Hash(), CreatedAt: now, ExpiresAt: &expires}); err != nil {
		return fmt.Errorf("store the owner key: %w", err)
	}
	if token == "" {
		return nil
	}
	if out == nil {
		return errors.New("no way to show the generated owner key; set $" + BootstrapKeyEnv)
	}
	fmt.Fprintf(out, `
=====================================================================
 This server's first owner API key (shown once, now; it is stored
 only as a hash and cannot be shown again):

   %s

 Keep it in a password manager. Use it as RUNAGENT_API_KEY to create
 projects and narrower keys (runagent keys create), then keep it away
 from day-to-day use. It expires in a year.
=====================================================================

`, token)
	return nil
}
