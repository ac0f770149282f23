package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
)

// nodesArgs are runagent nodes' flags.
type nodesArgs struct {
	base   string
	asJSON bool
}

func (e *env) nodesCmd() *cobra.Command {
	var a nodesArgs
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes serving from one store, and which are alive (instance owners)",
		Long: `nodes lists every runagent server that has served from the store of the
server you ask: several nodes behind a load balancer share one PostgreSQL
store (serve --store); with SQLite there is one.

Each node has an id (serve --node-id, or one made from the host name and
kept in <data dir>/node-id) and heartbeats every third of its
--node-timeout (15 s by default). STATE is

  alive    it heartbeats; HEARTBEAT says how long ago it last did
  stopped  it shut down gracefully
  dead     its heartbeat was older than the timeout: the first node to
           notice failed its running invocations ("node X stopped
           answering at ...") and recorded node.dead in the audit trail

RUNNING counts the invocations recorded as running on the node. A node
that comes back under its id is alive again. Ages are by the clock of
the node that answers: keep the nodes' clocks in sync (NTP).`,
		Example: `  RUNAGENT_API_KEY=$OWNER_KEY runagent nodes
  RUNAGENT_API_KEY=$OWNER_KEY runagent nodes --json | jq 'select(.state != "alive")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return e.runNodes(cmd, a) },
	}
	serverFlag(cmd, &a.base)
	cmd.Flags().BoolVar(&a.asJSON, "json", false, jsonFlagUsage)
	return cmd
}

// runNodes prints the node registry as a table, or as JSON lines.
func (e *env) runNodes(cmd *cobra.Command, a nodesArgs) error {
	c, err := newClient(a.base)
	if err != nil {
		return err
	}
	nodes, err := c.Nodes(cmd.Context())
	if err != nil {
		return err
	}
	if a.asJSON {
		return printJSONLines(e.stdout, nodes)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tHEARTBEAT\tRUNNING\tVERSION\tADDRESS\tSTARTED")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n.ID, nodeState(n), heartbeatAge(n.HeartbeatAge),
			n.RunningInvocations, orDash(n.Version), orDash(n.Addr), n.StartedAt.UTC().Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

// nodeState is a node's state with when it ended, if it did.
func nodeState(n client.Node) string {
	at := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return " " + t.UTC().Format("2006-01-02 15:04:05")
	}
	switch n.State {
	case "stopped":
		return n.State + at(n.StoppedAt)
	case "dead":
		return n.State + at(n.DeadAt)
	}
	return n.State
}

// heartbeatAge writes seconds as an age: 1.5s ago, 3m20s ago.
func heartbeatAge(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d < time.Minute:
		return strconv.FormatFloat(d.Round(100*time.Millisecond).Seconds(), 'f', 1, 64) + "s ago"
	default:
		return d.Round(time.Second).String() + " ago"
	}
}
