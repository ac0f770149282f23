package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/webhook"
)

// webhooksCmd shows an invocation's completion webhook deliveries. base
// is the --server of the group it belongs to; with loc (the db group) it
// reads the local store unless --server is given, without (a group that
// only talks to servers, such as runs) it always asks the server.
func (e *env) webhooksCmd(base *string, loc *localStore) *cobra.Command {
	var asJSON bool
	example := `  runagent runs webhooks 0b6c3c1e-1f6a-4c4e-9d51-2f0e8a7b9c10
  runagent runs webhooks 0b6c3c1e-1f6a-4c4e-9d51-2f0e8a7b9c10 --json | jq .attempt_log`
	if loc != nil {
		example = `  runagent db webhooks 0b6c3c1e-1f6a-4c4e-9d51-2f0e8a7b9c10          # from the local store
  runagent db webhooks --server http://127.0.0.1:8450 0b6c3c1e-1f6a-4c4e-9d51-2f0e8a7b9c10 --json`
	}
	cmd := &cobra.Command{
		Use:   "webhooks <invocation_id>",
		Short: "Show an invocation's completion webhooks: where each went, how, every attempt",
		Long: `When a run ends, the server POSTs the finished invocation to the agent's
completion webhook — "webhook": {"url": "https://…"} in its
runagent.config.json — and to the one the run request named in its
"webhook" field. This shows each delivery: its target (the URL without
its query, which may hold a token), where it came from (config or
request), its status and every attempt with the receiver's answer.

A delivery is pending while attempts remain, delivered after a 2xx
answer, failed otherwise. Network errors, 408, 429 and 5xx are retried
with growing waits (4 attempts in all); other answers, redirects (never
followed) and refused targets are not. A target must be https (http only
to loopback) and on the agent's network.allow list; internal addresses
are refused unless the server runs with --webhook-allow-cidr.

Deliveries are signed as the server's security alerts are: the receiver
checks X-Runagent-Signature, sha256=HMAC-SHA256(secret, timestamp + "." +
body), against X-Runagent-Timestamp, and may drop repeats by
X-Runagent-Delivery. The secret is the agent's RUNAGENT_WEBHOOK_SECRET;
without one, runs that ask for a webhook are refused and the config's
webhook is recorded failed:

  openssl rand -hex 32 | runagent secrets set --agent <agent_id> RUNAGENT_WEBHOOK_SECRET`,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				ds  []*core.WebhookDelivery
				err error
			)
			if loc != nil && *base == "" {
				ds, err = localWebhooks(cmd.Context(), loc, args[0])
			} else {
				ds, err = remoteWebhooks(cmd.Context(), *base, args[0])
			}
			if err != nil {
				return err
			}
			for _, d := range ds {
				d.URL = webhook.ShownURL(d.URL)
			}
			if asJSON {
				return printJSONLines(e.stdout, ds)
			}
			if len(ds) == 0 {
				fmt.Fprintf(e.stderr, "invocation %s has no completion webhooks\n", args[0])
				return nil
			}
			printWebhooks(e.stdout, ds)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, jsonFlagUsage)
	return cmd
}

func localWebhooks(ctx context.Context, loc *localStore, id string) ([]*core.WebhookDelivery, error) {
	db, kr, err := loc.open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.Invocation(ctx, id); err != nil {
		return nil, fmt.Errorf("invocation %s: %w", id, err)
	}
	ds, err := db.WebhookDeliveries(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := auditLocalRead(ctx, db, kr, "invocation.webhooks", "invocation/"+id); err != nil {
		return nil, err
	}
	return ds, nil
}

func remoteWebhooks(ctx context.Context, base, id string) ([]*core.WebhookDelivery, error) {
	c, err := newClient(base)
	if err != nil {
		return nil, err
	}
	got, err := c.InvocationWebhooks(ctx, id)
	if err != nil {
		return nil, err
	}
	ds := make([]*core.WebhookDelivery, len(got))
	for i, d := range got {
		ds[i] = fromClientDelivery(d)
	}
	return ds, nil
}

func fromClientDelivery(d client.WebhookDelivery) *core.WebhookDelivery {
	out := &core.WebhookDelivery{ID: d.ID, InvocationID: d.InvocationID, AgentID: d.AgentID, ProjectID: d.ProjectID,
		Source: d.Source, URL: d.URL, WithOutput: d.WithOutput, Status: core.DeliveryStatus(d.Status), Attempts: d.Attempts,
		NextAttemptAt: d.NextAttemptAt, LastError: d.LastError, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, DeliveredAt: d.DeliveredAt}
	for _, a := range d.AttemptLog {
		out.AttemptLog = append(out.AttemptLog, core.WebhookAttempt{N: a.N, At: a.At, DurationMS: a.DurationMS, StatusCode: a.StatusCode, Error: a.Error})
	}
	return out
}

// printWebhooks writes each delivery and, under it, its attempts.
func printWebhooks(w io.Writer, ds []*core.WebhookDelivery) {
	for i, d := range ds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s  %s  %s (%s webhook)\n", d.ID, d.Status, d.URL, d.Source)
		switch {
		case d.Status == core.DeliveryPending:
			fmt.Fprintf(w, "  next attempt %s\n", d.NextAttemptAt.Local().Format(time.DateTime))
		case d.Status == core.DeliveryFailed && len(d.AttemptLog) == 0:
			fmt.Fprintf(w, "  not sent: %s\n", d.LastError)
		}
		for _, a := range d.AttemptLog {
			answer := "no answer"
			if a.StatusCode != 0 {
				answer = fmt.Sprintf("HTTP %d", a.StatusCode)
			}
			line := fmt.Sprintf("  #%d  %s  %5dms  %s", a.N, a.At.Local().Format(time.DateTime), a.DurationMS, answer)
			if a.Error != "" {
				line += "  " + oneLine(a.Error, 100)
			}
			fmt.Fprintln(w, line)
		}
	}
}
