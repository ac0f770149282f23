package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/keyring"
)

// keyringCmds are the keys subcommands for the keys that encrypt data at
// rest (not API keys).
func (e *env) keyringCmds(base *string) []*cobra.Command {
	dataKey := &cobra.Command{
		Use:   "rotate-data-key",
		Short: "Encrypt new data at rest with a new data key (owners; through the server)",
		Long: `rotate-data-key asks the server to make a new data key the active one:
everything encrypted from now on (secrets, invocation payloads) uses it;
what was encrypted before stays readable with the old keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(*base)
			if err != nil {
				return err
			}
			s, err := c.RotateDataKey(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "active data key is now %d (master key %s)\n", s.ActiveDataKeyID, s.MasterKeyID)
			return nil
		},
	}

	var loc localStore
	var newFile string
	master := &cobra.Command{
		Use:   "rotate-master",
		Short: "Replace the master key: re-wrap every data key under a new one (local store)",
		Long: `rotate-master generates a new master key and re-wraps every data key with
it, in one transaction on the local store (the data itself is not
re-encrypted: it stays readable). The new key replaces the key file; the
old one is kept beside it as <file>.old-<time> — destroy it once no backup
of the database made before the rotation needs it. A new data key becomes
active too.

A running server keeps working; restart it so that it reads the new key
file (it refuses the old one from now on). With a passphrase
($RUNAGENT_MASTER_PASSPHRASE[_FILE]) there is no file: give the new
passphrase with --new-passphrase-file.`,
		Example: `  runagent keys rotate-master --data-dir /var/lib/runagent
  runagent keys rotate-master --new-passphrase-file /run/secrets/new-passphrase`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, kr, err := loc.openKeyed(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			old := kr.MasterKeyID()
			var replace func() (string, error)
			var next keyring.Master
			if newFile != "" {
				b, err := os.ReadFile(newFile)
				if err != nil {
					return fmt.Errorf("--new-passphrase-file: %w", err)
				}
				next = keyring.Master{Passphrase: []byte(trimNewline(string(b)))}
				if len(next.Passphrase) < 12 {
					return errors.New("--new-passphrase-file: at least 12 characters are required")
				}
				replace = func() (string, error) { return "", nil }
			} else {
				keyFile, err := loc.keyFile()
				if err != nil {
					return err
				}
				tmp := keyFile + ".new"
				if err := keyring.GenerateKeyFile(tmp); err != nil {
					return fmt.Errorf("write the new master key: %w (a %s left by an interrupted rotation must be removed first, unless the database already uses it)", err, tmp)
				}
				key, err := keyring.ReadKeyFile(tmp)
				if err != nil {
					return err
				}
				next = keyring.Master{Key: key}
				replace = func() (string, error) {
					kept := keyFile + ".old-" + time.Now().UTC().Format("20060102T150405Z")
					if err := os.Rename(keyFile, kept); errors.Is(err, os.ErrNotExist) {
						kept = "" // the old master was a passphrase
					} else if err != nil {
						return "", fmt.Errorf("%w — move %s to %s by hand", err, tmp, keyFile)
					}
					if err := os.Rename(tmp, keyFile); err != nil {
						return kept, fmt.Errorf("%w — move %s to %s by hand", err, tmp, keyFile)
					}
					return kept, nil
				}
			}
			if err := kr.RotateMaster(ctx, next); err != nil {
				return err
			}
			kept, err := replace()
			if err != nil {
				return fmt.Errorf("the database now uses the new master key, but installing its file failed: %w", err)
			}
			if err := auditLocal(ctx, db, kr, audit.Record{Action: "keyring.rotate_master", Resource: "keyring", Outcome: audit.OutcomeSuccess,
				Details: map[string]string{"old_master_key_id": old, "master_key_id": kr.MasterKeyID()}}); err != nil {
				return fmt.Errorf("the master key was rotated, but the audit trail could not record it: %w", err)
			}
			fmt.Fprintf(e.stdout, "master key rotated: %s -> %s; active data key %d\n", old, kr.MasterKeyID(), kr.ActiveKeyID())
			if kept != "" {
				fmt.Fprintf(e.stdout, "the old key file is %s: destroy it once no backup needs it; back up the new one now\n", kept)
			}
			fmt.Fprintln(e.stdout, "restart the server so that it reads the new key")
			return nil
		},
	}
	loc.flags(master)
	master.Flags().StringVar(&newFile, "new-passphrase-file", "", "switch to (or change) a passphrase: the file holding the new one")
	return []*cobra.Command{dataKey, master}
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
