package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/server"
	"github.com/runagent/runagent/internal/store/postgres"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// localStore opens the server's store directly, with the keyring that
// reads what is encrypted in it: the db, audit and keys commands. The
// store is SQLite in a data directory or, with --store, the PostgreSQL
// database several nodes share (as serve's flags say).
type localStore struct {
	dataDir string
	store   storeFlags
	keys    server.KeyringConfig
}

func (l *localStore) flags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&l.dataDir, "data-dir", "", "data directory [$RUNAGENT_DATA_DIR, default <user config dir>/runagent]")
	l.store.add(f)
	f.StringVar(&l.keys.MasterKeyFile, "master-key-file", "", "the server's master key file [$RUNAGENT_MASTER_KEY_FILE, or the key itself in $RUNAGENT_MASTER_KEY; default <data dir>/master.key]")
	f.StringVar(&l.keys.MasterPassphraseFile, "master-passphrase-file", "", "the server's master passphrase file [$RUNAGENT_MASTER_PASSPHRASE_FILE, or $RUNAGENT_MASTER_PASSPHRASE]")
}

// keyFile is the master key file the store's keyring uses.
func (l *localStore) keyFile() (string, error) {
	kc := server.KeyringFromEnv(l.keys)
	if kc.MasterKeyFile != "" {
		return kc.MasterKeyFile, nil
	}
	dir, err := l.dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, server.MasterKeyName), nil
}

func (l *localStore) dir() (string, error) {
	if l.dataDir != "" {
		return l.dataDir, nil
	}
	return server.DefaultDataDir()
}

// localDB is an open store: package sqlite's store methods, on SQLite or
// on PostgreSQL (whose DB runs those methods in its dialect).
type localDB struct {
	*sqlite.DB
	// closer closes the whole store (for PostgreSQL, its pool too).
	closer interface{ Close() error }
	// journal is the audit journal records are appended through: the
	// data directory's for SQLite, none for PostgreSQL, where every node
	// appends to the one chain in the database.
	journal string
}

// Close closes the store.
func (db *localDB) Close() error { return db.closer.Close() }

// auditLog opens the store's audit trail, keyed with kr.
func (db *localDB) auditLog(kr *keyring.Keyring) (*audit.Log, error) {
	return audit.New(db.DB, kr.MACKey(server.AuditKeyPurpose), audit.Options{Journal: db.journal})
}

// openKeyed is open for commands that need the keyring.
func (l *localStore) openKeyed(ctx context.Context) (*localDB, *keyring.Keyring, error) {
	db, kr, err := l.open(ctx)
	if err == nil && kr == nil {
		db.Close()
		err = errors.New("this database has no keyring yet: nothing in it is encrypted (the server creates the keyring at its first start)")
	}
	return db, kr, err
}

// open opens the store and its keyring; a database that has never been
// served has none (nil).
func (l *localStore) open(ctx context.Context) (*localDB, *keyring.Keyring, error) {
	url, err := l.store.resolve()
	if err != nil {
		return nil, nil, err
	}
	dir := l.dataDir
	var db *localDB
	if url != "" {
		pg, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: start PostgreSQL or fix the store URL (--store, --store-file, $RUNAGENT_STORE_URL)", err)
		}
		db = &localDB{DB: pg.DB, closer: pg}
	} else {
		if dir, err = l.dir(); err != nil {
			return nil, nil, err
		}
		path := filepath.Join(dir, "runagent.db")
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("no store at %s (%w): name the server's data directory with --data-dir or $RUNAGENT_DATA_DIR, or its PostgreSQL store with --store", path, err)
		}
		sq, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		db = &localDB{DB: sq, closer: sq, journal: server.AuditJournal(dir)}
		// Records a server made durable in its journal but had not
		// indexed when it stopped (a crash) go into the store before
		// anything reads it; a running server indexes its own.
		if err := audit.Recover(ctx, db.DB, db.journal); err != nil {
			db.Close()
			return nil, nil, err
		}
	}
	kc := server.KeyringFromEnv(l.keys)
	kc.Optional = true
	if kc.MasterKeyFile == "" && kc.MasterPassphrase == "" && kc.MasterPassphraseFile == "" && dir == "" {
		// PostgreSQL without a data directory: the key file is where
		// the default data directory keeps it.
		if dir, err = l.dir(); err != nil {
			db.Close()
			return nil, nil, err
		}
	}
	kr, err := server.OpenKeyring(ctx, db.DB, dir, kc, nil, slog.New(slog.DiscardHandler))
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
		Long: `db reads the store directly, so it works whether or not the server is
running: SQLite in the data directory (in WAL mode, safe to read while the
server writes) or, with --store-file or $RUNAGENT_STORE_URL as for serve,
the PostgreSQL database several nodes share. With --server, invocations, invocation and
webhooks read through that server's API instead (with $RUNAGENT_API_KEY;
the listing then needs --agent).`,
	}
	var loc localStore
	loc.flags(cmd)
	var base string
	cmd.PersistentFlags().StringVar(&base, "server", "", "read invocations through this server's API ($RUNAGENT_API_KEY) instead of the local store")
	open := loc.open

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
			if base != "" {
				return e.remoteInvocations(cmd, base, agentID, status, limit, asJSON)
			}
			db, kr, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			invs, err := db.Invocations(cmd.Context(), core.InvocationFilter{AgentID: agentID, Status: st, Limit: limit})
			if err != nil {
				return err
			}
			res := "invocations"
			if agentID != "" {
				res = "agent/" + agentID
			}
			if err := auditLocalRead(cmd.Context(), db, kr, "invocation.list", res); err != nil {
				return err
			}
			if asJSON {
				return printJSONLines(e.stdout, invs)
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

	var showJSON bool
	show := &cobra.Command{
		Use:   "invocation <invocation_id>",
		Short: "Show one invocation in full (input, output, logs with the traceback of a failure, error)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if base != "" {
				return e.remoteInvocation(cmd, base, args[0], showJSON)
			}
			db, kr, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			inv, err := db.Invocation(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("invocation %s: %w", args[0], err)
			}
			if err := auditLocalRead(cmd.Context(), db, kr, "invocation.read", "invocation/"+inv.ID); err != nil {
				return err
			}
			if showJSON {
				b, err := json.MarshalIndent(inv, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "%s\n", b)
				return err
			}
			return printInvocation(e.stdout, inv)
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print the record as JSON")

	var (
		olderThan string
		dryRun    bool
		retain    retentionFlags
	)
	cleanup := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete data past its retention period (what the server does every hour)",
		Long: `cleanup applies the retention periods now: finished invocation records
(with their inputs, outputs and logs), security events and audit records
older than their period are deleted, in small batches so a running server
is not blocked. Running invocations are never deleted. Purged audit records
leave a signed checkpoint, so 'runagent audit verify' still checks the rest
of the trail; the purge itself is recorded in the trail. --dry-run counts
what would go and deletes nothing.`,
		Example: "  runagent db cleanup --dry-run\n  runagent db cleanup --retain-invocations 30d --retain-events 30d --retain-audit off",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan != "" {
				retain.invocations = olderThan
			}
			r, err := retain.parse()
			if err != nil {
				return err
			}
			db, kr, err := loc.open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			var trail *audit.Log
			if kr != nil {
				if trail, err = db.auditLog(kr); err != nil {
					return err
				}
				defer trail.Close()
			}
			rep, err := server.Purge(cmd.Context(), db, trail, r, time.Now(), dryRun)
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			line := func(n int64, what string, before time.Time) {
				if before.IsZero() {
					fmt.Fprintf(e.stdout, "kept all %s (retention off)\n", what)
					return
				}
				fmt.Fprintf(e.stdout, "%s %d %s from before %s\n", verb, n, what, before.Local().Format(time.DateTime))
			}
			line(rep.Invocations, "invocation(s)", rep.InvocationsBefore)
			line(rep.Events, "security event(s)", rep.EventsBefore)
			if kr != nil {
				line(rep.Audit, "audit record(s)", rep.AuditBefore)
			}
			return err
		},
	}
	f := cleanup.Flags()
	retain.add(f)
	f.StringVar(&olderThan, "older-than", "", "same as --invocations (older name)")
	f.MarkHidden("older-than")
	f.BoolVar(&dryRun, "dry-run", false, "count what would be deleted, delete nothing")

	reencrypt := &cobra.Command{
		Use:   "reencrypt",
		Short: "Encrypt every stored value again with the active data key",
		Long: `reencrypt re-seals the secrets, invocation payloads, completion webhook
URLs and persistent-memory keys that an older data key (see 'runagent keys
rotate-data-key') encrypted, and any stored in the clear by a version
without encryption at rest, with the active data key,
in batches beside a running server. Afterwards the old data keys protect
nothing. It is recorded in the audit trail.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, kr, err := loc.openKeyed(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			// Data keys a running server made since this keyring loaded.
			if err := kr.Reload(ctx); err != nil {
				return err
			}
			active := kr.ActiveKeyID()
			n, err := db.Reencrypt(ctx, func(ct []byte) bool { id, ok := keyring.KeyID(ct); return ok && id != active })
			fmt.Fprintf(e.stdout, "re-encrypted %d value(s) with data key %d\n", n, active)
			outcome := audit.OutcomeSuccess
			if err != nil {
				outcome = audit.OutcomeError
			}
			aerr := auditLocal(ctx, db, kr, audit.Record{Action: "keyring.reencrypt", Resource: "store", Outcome: outcome,
				Details: map[string]string{"values": strconv.FormatInt(n, 10), "data_key_id": strconv.FormatUint(uint64(active), 10)}})
			return errors.Join(err, aerr)
		},
	}

	cmd.AddCommand(list, show, cleanup, reencrypt, e.webhooksCmd(&base, &loc))
	return cmd
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

// retentionFlags are the retention periods as flags.
type retentionFlags struct{ invocations, events, audit string }

func (r *retentionFlags) add(f *pflag.FlagSet) {
	def := server.DefaultRetention
	f.StringVar(&r.invocations, "retain-invocations", retentionText(def.Invocations), "keep invocation records and their payloads this long: days (90d), a duration (36h), or off")
	f.StringVar(&r.events, "retain-events", retentionText(def.Events), "keep security events this long (or off)")
	f.StringVar(&r.audit, "retain-audit", retentionText(def.Audit), "keep audit records this long (or off); a purge leaves a signed checkpoint")
}

// retentionText writes d as server.ParseRetention reads it: "90d".
func retentionText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "off"
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}

func (r *retentionFlags) parse() (server.Retention, error) {
	var out server.Retention
	var err error
	if out.Invocations, err = server.ParseRetention(r.invocations); err != nil {
		return out, fmt.Errorf("--retain-invocations: %w", err)
	}
	if out.Events, err = server.ParseRetention(r.events); err != nil {
		return out, fmt.Errorf("--retain-events: %w", err)
	}
	if out.Audit, err = server.ParseRetention(r.audit); err != nil {
		return out, fmt.Errorf("--retain-audit: %w", err)
	}
	return out, nil
}

// auditLocalRead records, before anything is shown, that the local
// operating-system user read protected data straight from the store (with
// the master key): such reads are in the audit trail too. If the record
// cannot be written nothing is shown (fail closed).
func auditLocalRead(ctx context.Context, db *localDB, kr *keyring.Keyring, action, resource string) error {
	if kr == nil {
		return nil // never served: nothing encrypted, no trail
	}
	err := auditLocal(ctx, db, kr, audit.Record{Action: action, Resource: resource, Outcome: audit.OutcomeSuccess})
	if err != nil {
		return fmt.Errorf("the audit trail cannot record this read, so nothing is shown: %w", err)
	}
	return nil
}

// auditLocal appends rec, done by the local operating-system user with
// the CLI, to the store's audit trail.
func auditLocal(ctx context.Context, db *localDB, kr *keyring.Keyring, rec audit.Record) error {
	trail, err := db.auditLog(kr)
	if err != nil {
		return err
	}
	defer trail.Close()
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if rec.Details == nil {
		rec.Details = map[string]string{}
	}
	rec.Details["via"], rec.Details["os_user"] = "cli", who
	_, err = trail.Append(ctx, rec)
	return err
}

// printInvocation writes an invocation record for a person: its fields,
// then its logs as the agent wrote them, so that a failure's traceback
// (which the guest writes to the logs, as Python does) reads as one.
func printInvocation(w io.Writer, inv *core.Invocation) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("invocation", inv.ID)
	row("agent", inv.AgentID)
	row("version", inv.AgentVersion)
	row("entrypoint", inv.EntrypointTag)
	row("transport", inv.Transport)
	row("status", string(inv.Status))
	row("caller", inv.Caller)
	row("user_id", inv.UserID)
	row("created", inv.CreatedAt.UTC().Format(time.RFC3339))
	row("duration", (time.Duration(inv.DurationMS) * time.Millisecond).String())
	row("input_args", string(inv.InputArgs))
	row("input_kwargs", string(inv.InputKwargs))
	if inv.Streaming {
		row("chunks", strconv.Itoa(inv.Chunks))
	}
	row("output", string(inv.Output))
	if inv.ErrorCode != "" {
		row("error", inv.ErrorCode+": "+inv.ErrorMessage)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if inv.Logs != "" {
		fmt.Fprintf(w, "logs:\n%s", inv.Logs)
		if !strings.HasSuffix(inv.Logs, "\n") {
			fmt.Fprintln(w)
		}
	}
	return nil
}

// remoteInvocations lists an agent's invocations through the API.
func (e *env) remoteInvocations(cmd *cobra.Command, base, agentID, status string, limit int, asJSON bool) error {
	if agentID == "" {
		return errors.New("with --server, name the agent: --agent <agent_id> (the API lists invocations per agent)")
	}
	c, err := newClient(base)
	if err != nil {
		return err
	}
	list, err := c.Invocations(cmd.Context(), agentID, client.ListOptions{Limit: limit, Status: status})
	if err != nil {
		return err
	}
	if asJSON {
		return printJSONLines(e.stdout, list.Invocations)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "INVOCATION\tAGENT\tTAG\tSTATUS\tDURATION\tCREATED\tERROR")
	for _, inv := range list.Invocations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dms\t%s\t%s\n", inv.ID, short(inv.AgentID), inv.EntrypointTag, inv.Status,
			inv.DurationMS, inv.CreatedAt.Local().Format(time.DateTime), oneLine(inv.ErrorMessage, 60))
	}
	if len(list.Invocations) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}

// remoteInvocation shows one invocation read through the API.
func (e *env) remoteInvocation(cmd *cobra.Command, base, id string, asJSON bool) error {
	c, err := newClient(base)
	if err != nil {
		return err
	}
	inv, err := c.Invocation(cmd.Context(), id)
	if err != nil {
		return err
	}
	if asJSON {
		b, err := json.MarshalIndent(inv, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	rec := &core.Invocation{ID: inv.ID, AgentID: inv.AgentID, AgentVersion: inv.AgentVersion, EntrypointTag: inv.EntrypointTag,
		Streaming: inv.Streaming, Transport: inv.Transport, Status: core.InvocationStatus(inv.Status), Caller: inv.Caller,
		UserID: inv.UserID, InputArgs: inv.InputArgs, InputKwargs: inv.InputKwargs, Output: inv.Output, Chunks: inv.TotalChunks,
		Logs: inv.Logs, ErrorCode: inv.ErrorCode, ErrorMessage: inv.ErrorMessage, CreatedAt: inv.CreatedAt, CompletedAt: inv.CompletedAt,
		DurationMS: inv.DurationMS}
	return printInvocation(e.stdout, rec)
}
