package cli

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/dirlock"
	"github.com/runagent/runagent/internal/server"
)

// keysRecoverCmd is `runagent keys recover`: a new owner key for a data
// directory whose owner keys are all lost, made on the local store by
// whoever holds the directory and its master key.
func (e *env) keysRecoverCmd() *cobra.Command {
	var loc localStore
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Mint a new owner key for a data directory whose owner key is lost (local store; server stopped)",
		Long: `recover is for a lost owner key: it works on the data directory itself, not
through the server, so it needs what an owner of the machine has — the
data directory and the master key (or passphrase) — and no API key.

It adds a new owner (a principal with the owner role) and its API key,
valid for a year, prints the key once, and records the recovery in the
audit trail (action key.recover_owner, with the operating-system user).
Existing principals and keys are left as they are: revoke a lost key
with the new one (runagent keys revoke) if it may be in other hands.

The server must be stopped: recover refuses while a server holds the
data directory, and holds it itself while it runs.`,
		Example: `  runagent keys recover --data-dir /var/lib/runagent
  RUNAGENT_MASTER_PASSPHRASE_FILE=/run/secrets/pass runagent keys recover --data-dir /var/lib/runagent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dir, err := loc.dir()
			if err != nil {
				return err
			}
			if _, err := os.Stat(dir); err != nil {
				return fmt.Errorf("data directory: %w", err)
			}
			lock, err := dirlock.Acquire(dir, "keys recover", "")
			if err != nil {
				return fmt.Errorf("keys recover needs the server stopped: %w", err)
			}
			defer lock.Release()
			db, kr, err := loc.openKeyed(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			// The key is shown only once the audit trail holds the
			// recovery: if it cannot, nobody ever learns the key.
			var shown bytes.Buffer
			now := time.Now()
			rec, err := server.RecoverOwner(ctx, db, &shown, now)
			if err != nil {
				return err
			}
			if err := auditLocal(ctx, db, kr, audit.Record{Action: "key.recover_owner", Resource: "key/" + rec.KeyID, Outcome: audit.OutcomeSuccess,
				Details: map[string]string{"principal_id": rec.PrincipalID}}); err != nil {
				if rerr := db.RevokeAPIKey(ctx, rec.KeyID, now); rerr != nil {
					err = fmt.Errorf("%w (and revoking the unshown key %s failed: %v)", err, rec.KeyID, rerr)
				}
				return fmt.Errorf("the audit trail cannot record the recovery, so no key is given: %w", err)
			}
			e.stdout.Write(shown.Bytes())
			fmt.Fprintf(e.stderr, "owner key %s added for a new owner principal %s; start the server and use it as RUNAGENT_API_KEY\n", rec.KeyID, rec.PrincipalID)
			return nil
		},
	}
	loc.flags(cmd)
	return cmd
}
