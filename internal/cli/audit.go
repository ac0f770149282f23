package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/server"
)

func (e *env) auditCmd() *cobra.Command {
	var loc localStore
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, query and export the tamper-evident audit trail",
		Long: `audit reads the audit trail in the store directly (like 'runagent db'),
so it works whether or not the server is running, and needs the server's
master key (the trail's checkpoints are signed with a key derived from
it). The store is SQLite in the data directory or, with --store-file or
$RUNAGENT_STORE_URL as for serve, the PostgreSQL database several nodes
share: then 'verify' checks the one chain all of them append to.

Every state change and every read of protected data on the server is an
audit record: time, principal, key, action, resource, outcome, client
address, user agent, request id and details (secret values only as
HMACs). Records are append-only and hash-chained: 'verify' walks the
whole chain and reports the first broken link — a changed, deleted or
reordered record, or a forged purge checkpoint.

With --server the same commands go through that server's API instead
(owners' key in $RUNAGENT_API_KEY; the master key stays on the server).`,
	}
	loc.flags(cmd)
	var base string
	cmd.PersistentFlags().StringVar(&base, "server", "", "read the trail through this server's API (owners' key in $RUNAGENT_API_KEY) instead of the local store")

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the whole hash chain; exit status 1 at the first broken link",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base != "" {
				return e.verifyRemote(cmd, base)
			}
			db, kr, err := loc.open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if kr == nil {
				fmt.Fprintln(e.stdout, "audit trail: empty (this database has never been served)")
				return nil
			}
			rep, err := audit.Verify(cmd.Context(), db.DB, kr.MACKey(server.AuditKeyPurpose))
			if err != nil {
				return err
			}
			v := api.VerifyReportOf(rep)
			if v.Problem != nil {
				fmt.Fprintf(e.stdout, "audit trail BROKEN at seq %d: %s: %s\n(%d records checked before it)\n", v.Problem.Seq, v.Problem.Kind, v.Problem.Detail, v.Checked)
				return errors.New("the audit trail does not verify")
			}
			from := "seq 1"
			if v.StartSeq > 0 {
				from = fmt.Sprintf("the purge checkpoint after seq %d", v.StartSeq)
			}
			fmt.Fprintf(e.stdout, "audit trail OK: %d records from %s to seq %d, %d checkpoint(s)\nhead %d %s\n", v.Checked, from, v.LastSeq, v.Checkpoints, v.HeadSeq, v.HeadHash)
			return nil
		},
	}

	var f filterFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit records, oldest first (--after to page)",
		Example: `  runagent audit list --action key.create
  runagent audit list --principal pr-1234 --since 2026-11-01T00:00:00Z --limit 50
  runagent audit list --outcome denied --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base != "" {
				return e.listRemote(cmd, base, &f)
			}
			db, filter, err := f.open(cmd.Context(), &loc)
			if err != nil {
				return err
			}
			defer db.Close()
			recs, err := audit.Records(cmd.Context(), db, filter)
			if err != nil {
				return err
			}
			if f.json {
				return printJSONLines(e.stdout, recs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tPRINCIPAL\tACTION\tRESOURCE\tOUTCOME\tIP")
			for _, r := range recs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339), orDash(r.PrincipalID), r.Action, r.Resource, r.Outcome, orDash(r.IP))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(recs) == filter.PageSize() {
				fmt.Fprintf(e.stderr, "more: --after %d\n", recs[len(recs)-1].Seq)
			}
			return nil
		},
	}
	f.add(list, true)

	var xf filterFlags
	export := &cobra.Command{
		Use:     "export",
		Short:   "Write every matching record as JSON lines (for a SIEM or an archive)",
		Example: `  runagent audit export > audit-$(date +%F).jsonl`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base != "" {
				if _, err := xf.filter(); err != nil {
					return err
				}
				c, err := newClient(base)
				if err != nil {
					return err
				}
				n, err := c.ExportAudit(cmd.Context(), xf.values(), e.stdout)
				fmt.Fprintf(e.stderr, "exported %d record(s)\n", n)
				return err
			}
			db, filter, err := xf.open(cmd.Context(), &loc)
			if err != nil {
				return err
			}
			defer db.Close()
			n, err := audit.Export(cmd.Context(), e.stdout, db, filter)
			fmt.Fprintf(e.stderr, "exported %d record(s)\n", n)
			return err
		},
	}
	xf.add(export, false)
	cmd.AddCommand(verify, list, export)
	return cmd
}

// filterFlags are the audit record filters as flags.
type filterFlags struct {
	principal, action, resource, outcome, since, until string
	after                                              int64
	limit                                              int
	json                                               bool
}

func (f *filterFlags) add(cmd *cobra.Command, paged bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.principal, "principal", "", "only records of this principal id")
	fl.StringVar(&f.action, "action", "", "only this action (key.create, invocation.run, secret.set, …)")
	fl.StringVar(&f.resource, "resource", "", "only this resource (agent/<id>, key/<id>, …)")
	fl.StringVar(&f.outcome, "outcome", "", "only this outcome (success, denied, error, not_found, rejected, limited, started)")
	fl.StringVar(&f.since, "since", "", "records at or after this time (RFC 3339)")
	fl.StringVar(&f.until, "until", "", "records before this time (RFC 3339)")
	fl.Int64Var(&f.after, "after", 0, "records after this seq (the next page)")
	if paged {
		fl.IntVar(&f.limit, "limit", 100, "records per page (at most 1000)")
		fl.BoolVar(&f.json, "json", false, "print JSON lines")
	}
}

// open checks the filter, then opens the store for the query.
func (f *filterFlags) open(ctx context.Context, loc *localStore) (*localDB, audit.Filter, error) {
	filter, err := f.filter()
	if err != nil {
		return nil, filter, err
	}
	db, _, err := loc.open(ctx)
	return db, filter, err
}

func (f *filterFlags) filter() (audit.Filter, error) {
	return audit.ParseFilter(f.values())
}

// values are the filter as the API's query parameters.
func (f *filterFlags) values() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("principal_id", f.principal)
	set("action", f.action)
	set("resource", f.resource)
	set("outcome", f.outcome)
	set("since", f.since)
	set("until", f.until)
	if f.after > 0 {
		q.Set("after", fmt.Sprint(f.after))
	}
	if f.limit > 0 {
		q.Set("limit", fmt.Sprint(f.limit))
	}
	return q
}

// verifyRemote has the server at base verify its trail.
func (e *env) verifyRemote(cmd *cobra.Command, base string) error {
	c, err := newClient(base)
	if err != nil {
		return err
	}
	rep, err := c.VerifyAudit(cmd.Context())
	if err != nil {
		return err
	}
	if rep.Problem != nil {
		fmt.Fprintf(e.stdout, "audit trail BROKEN at seq %d: %s: %s\n(%d records checked before it)\n", rep.Problem.Seq, rep.Problem.Kind, rep.Problem.Detail, rep.Checked)
		return errors.New("the audit trail does not verify")
	}
	fmt.Fprintf(e.stdout, "audit trail OK: %d records to seq %d, %d checkpoint(s)\nhead %d %s\n", rep.Checked, rep.LastSeq, rep.Checkpoints, rep.HeadSeq, rep.HeadHash)
	return nil
}

// listRemote lists a page of the server's trail.
func (e *env) listRemote(cmd *cobra.Command, base string, f *filterFlags) error {
	if _, err := f.filter(); err != nil {
		return err
	}
	c, err := newClient(base)
	if err != nil {
		return err
	}
	recs, next, err := c.AuditRecords(cmd.Context(), f.values())
	if err != nil {
		return err
	}
	if f.json {
		return printJSONLines(e.stdout, recs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tPRINCIPAL\tACTION\tRESOURCE\tOUTCOME\tIP")
	for _, r := range recs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339), orDash(r.PrincipalID), r.Action, r.Resource, r.Outcome, orDash(r.IP))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next > 0 {
		fmt.Fprintf(e.stderr, "more: --after %d\n", next)
	}
	return nil
}
