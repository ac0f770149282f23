package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
)

func (e *env) eventsCmd() *cobra.Command {
	var (
		base   string
		q      client.EventQuery
		since  time.Duration
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List security events (instance owners)",
		Long: `events lists the security events a server recorded, newest first:
auth_failure, rate_limit_exceeded, client_blocked, input_rejected,
sandbox_violation, egress_denied, key_created, key_rotated, key_revoked,
config_changed, privilege_refused, alert_fired and user_denied (a run
asked for the memory of an end user its credential may not act for).
They never hold a
credential. The server also writes them as JSON lines to its
--security-log.`,
		Example: `  RUNAGENT_API_KEY=$OWNER_KEY runagent events --type auth_failure --since 1h
  RUNAGENT_API_KEY=$OWNER_KEY runagent events --ip 192.0.2.7 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			if since > 0 {
				q.Since = time.Now().Add(-since)
			}
			evs, err := c.Events(cmd.Context(), q)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				for _, ev := range evs {
					if err := enc.Encode(ev); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tTYPE\tSEVERITY\tPRINCIPAL\tIP\tMESSAGE")
			for _, ev := range evs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ev.Time.UTC().Format("2006-01-02 15:04:05"), ev.Type, ev.Severity,
					orDash(ev.Principal), orDash(ev.IP), strings.ReplaceAll(ev.Message, "\n", " "))
			}
			return tw.Flush()
		},
	}
	serverFlag(cmd, &base)
	f := cmd.Flags()
	f.StringVar(&q.Type, "type", "", "only this event type")
	f.StringVar(&q.Severity, "severity", "", "only this severity: info, warning or critical")
	f.StringVar(&q.Principal, "principal", "", "only this principal (key:<id>, oidc:<issuer>#<subject>)")
	f.StringVar(&q.IP, "ip", "", "only this client address")
	f.StringVar(&q.AgentID, "agent", "", "only this agent")
	cmd.RegisterFlagCompletionFunc("agent", completeAgentFlag(&base))
	f.DurationVar(&since, "since", 0, "only events newer than this, e.g. 1h")
	f.IntVar(&q.Limit, "limit", 50, "at most this many (up to 1000)")
	f.BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}
