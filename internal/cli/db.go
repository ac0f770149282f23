package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/server"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// localStore opens the store in a data directory directly, with the
// keyring that reads what is encrypted in it: the db and audit commands.
type localStore struct {
	dataDir string
	keys    server.KeyringConfig
}

func (l *localStore) flags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&l.dataDir, "data-dir", "", "data directory [$RUNAGENT_DATA_DIR, default <user config dir>/runagent]")
	f.StringVar(&l.keys.MasterKeyFile, "master-key-file", "", "the server's master key file [$RUNAGENT_MASTER_KEY_FILE, default <data dir>/master.key]")
	f.StringVar(&l.keys.MasterPassphraseFile, "master-passphrase-file", "", "the server's master passphrase file [$RUNAGENT_MASTER_PASSPHRASE_FILE, or $RUNAGENT_MASTER_PASSPHRASE]")
}

// open opens the store and its keyring; a database that has never been
// served has none (nil).
func (l *localStore) open(ctx context.Context) (*sqlite.DB, *keyring.Keyring, error) {
	dir := l.dataDir
	if dir == "" {
		var err error
		if dir, err = server.DefaultDataDir(); err != nil {
			return nil, nil, err
		}
	}
	path := filepath.Join(dir, "runagent.db")
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("no store at %s (%w): name the server's data directory with --data-dir or $RUNAGENT_DATA_DIR", path, err)
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	kc := server.KeyringFromEnv(l.keys)
	kc.Optional = true
	kr, err := server.OpenKeyring(ctx, db, dir, kc, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, kr, nil
}

func (e *env) dbCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Inspect and clean up the invocation records in the local store",
		Long: `db reads the SQLite store in the data directory directly, so it works
whether or not the server is running (the store is in WAL mode and safe to
read while the server writes).`,
	}
	var loc localStore
	loc.flags(cmd)
	open := func(ctx context.Context) (*sqlite.DB, error) {
		db, _, err := loc.open(ctx)
		return db, err
	}

	var (
		agentID string
		status  string
		limit   int
		asJSON  bool
	)
	list := &cobra.Command{
		Use:     "invocations",
		Short:   "List recent invocations, newest first",
		Example: "  runagent db invocations --agent 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b --status failed --limit 20",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st := core.InvocationStatus(status)
			if status != "" && !st.Valid() {
				return fmt.Errorf("--status %q: use running, completed, failed, timeout or cancelled", status)
			}
			db, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			invs, err := db.Invocations(cmd.Context(), core.InvocationFilter{AgentID: agentID, Status: st, Limit: limit})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONLines(e, invs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "INVOCATION\tAGENT\tTAG\tSTATUS\tDURATION\tCREATED\tERROR")
			for _, inv := range invs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dms\t%s\t%s\n", inv.ID, short(inv.AgentID), inv.EntrypointTag, inv.Status,
					inv.DurationMS, inv.CreatedAt.Local().Format(time.DateTime), oneLine(inv.ErrorMessage, 60))
			}
			if len(invs) == 0 {
				fmt.Fprintln(tw, "(none)")
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&agentID, "agent", "", "only this agent id")
	list.Flags().StringVar(&status, "status", "", "only this status: running, completed, failed, timeout, cancelled")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many (max 1000)")
	list.Flags().BoolVar(&asJSON, "json", false, "print full records as JSON lines")

	show := &cobra.Command{
		Use:   "invocation <invocation_id>",
		Short: "Show one invocation in full (input, output, logs, error)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			inv, err := db.Invocation(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("invocation %s: %w", args[0], err)
			}
			b, err := json.MarshalIndent(inv, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s\n", b)
			return err
		},
	}

	var (
		olderThan string
		dryRun    bool
	)
	cleanup := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete finished invocations older than a cut-off",
		Long: `cleanup deletes finished invocation records (input, output, logs) created
before the cut-off, in small batches so a running server is not blocked.
Running invocations are never deleted.`,
		Example: "  runagent db cleanup --older-than 30d --dry-run\n  runagent db cleanup --older-than 90d",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			age, err := parseAge(olderThan)
			if err != nil {
				return fmt.Errorf("--older-than: %w", err)
			}
			db, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			cut := time.Now().Add(-age)
			n, err := db.DeleteInvocationsBefore(cmd.Context(), cut, dryRun)
			if err != nil {
				return err
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(e.stdout, "%s %d invocation(s) created before %s\n", verb, n, cut.Local().Format(time.DateTime))
			return nil
		},
	}
	cleanup.Flags().StringVar(&olderThan, "older-than", "90d", "age cut-off: a Go duration (36h) or days (90d)")
	cleanup.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be deleted, delete nothing")

	cmd.AddCommand(list, show, cleanup)
	return cmd
}

// parseAge accepts Go durations and a number of days ("90d").
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%q: want a whole number of days like 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration like 36h or a number of days like 90d", s)
	}
	return d, nil
}

func writeJSONLines[T any](e *env, items []T) error {
	enc := json.NewEncoder(e.stdout)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
