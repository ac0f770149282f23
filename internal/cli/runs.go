package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
)

// runsCmd groups what can be done to a run by its invocation id once it
// has started: wait for it, cancel it, follow its stream again. Each
// subcommand is built by a function of its own below, so more (such as
// webhooks) can join the group without touching the others.
func (e *env) runsCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "Wait for, cancel or rejoin runs by their invocation id",
		Long: `runs follows runs that go on without their client: those started with
run --async (or async_execution from an SDK) and streams started with
run-stream --async (on_disconnect "continue"), and any run a client lost
the connection to.

  wait     waits until the run ends and prints its result as run does
  cancel   stops a queued or running run; its record says cancelled
  stream   prints a stream's chunks, from the first or after --after N,
           then the live ones; a dropped connection is rejoined once

The server keeps a stream's events 10 minutes after it ends (serve
--stream-keep, --stream-keep-bytes); after that runs stream is refused
(GONE) and runs wait still prints the output from the record.`,
		Example: `  id=$(runagent run --async --id 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b --tag generate --message=hi)
  runagent runs wait $id --timeout 30m
  runagent runs cancel $id
  id=$(runagent run-stream --async --id 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b --tag generate_stream)
  runagent runs stream $id --after 41`,
	}
	serverFlag(cmd, &base)
	cmd.AddCommand(e.runsWaitCmd(&base), e.runsCancelCmd(&base), e.runsStreamCmd(&base), e.webhooksCmd(&base, nil))
	return cmd
}

// runsWaitArgs is what runs wait takes.
type runsWaitArgs struct {
	id      string
	timeout time.Duration
	raw     bool
}

func (e *env) runsWaitCmd(base *string) *cobra.Command {
	var a runsWaitArgs
	cmd := &cobra.Command{
		Use:   "wait <invocation_id>",
		Short: "Wait until a run ends and print its result",
		Long: `wait asks the server for the run's record, which it holds back until the
run ends (a minute at a time), until --timeout. A completed run's result
is printed as run prints it (a stream's chunks as run-stream does); a run
that failed, timed out or was cancelled is printed as run prints errors,
and the exit status is 1. A run still going at --timeout exits 1 too, and
is left running.`,
		Example: `  runagent runs wait 0b6c3c1e-8f1d-4c0e-9a43-0c1d2e3f4a5b
  runagent runs wait 0b6c3c1e-8f1d-4c0e-9a43-0c1d2e3f4a5b --timeout 1h --raw`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(*base)
			if err != nil {
				return err
			}
			a.id = args[0]
			return e.runsWait(cmd.Context(), c, a)
		},
	}
	cmd.Flags().DurationVar(&a.timeout, "timeout", 10*time.Minute, "how long to wait at most (0 = until the run ends)")
	cmd.Flags().BoolVar(&a.raw, "raw", false, "print values as compact JSON, one per line")
	return cmd
}

// runsPollFloor is the least time between two reads of a record when the
// server answers at once (a run it does not hold, on another node).
const runsPollFloor = time.Second

func (e *env) runsWait(ctx context.Context, c *client.Client, a runsWaitArgs) error {
	if a.timeout < 0 {
		return errors.New("--timeout must not be negative (0 waits until the run ends)")
	}
	var deadline time.Time
	if a.timeout > 0 {
		deadline = time.Now().Add(a.timeout)
	}
	for {
		wait := client.MaxWait
		if !deadline.IsZero() {
			// Rounded up, so that the long-poll that reaches the deadline
			// ends at or after it, and no needless read follows.
			left := time.Until(deadline)
			up := left.Truncate(time.Millisecond)
			if up < left {
				up += time.Millisecond
			}
			wait = min(wait, up)
		}
		start := time.Now()
		inv, err := c.WaitInvocation(ctx, a.id, max(wait, 0))
		if err != nil {
			return err
		}
		if inv.Ended() {
			return e.printOutcome(inv, a.raw)
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return fmt.Errorf("invocation %s is still running after %s; wait again with `runagent runs wait %s`, or stop it with `runagent runs cancel %s`", a.id, a.timeout, a.id, a.id)
		}
		d := runsPollFloor - time.Since(start)
		if !deadline.IsZero() {
			d = min(d, time.Until(deadline))
		}
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	}
}

// printOutcome prints how an ended run ended: its result as run (or
// run-stream) prints it, or its failure as the error run returns.
func (e *env) printOutcome(inv *client.Invocation, raw bool) error {
	if inv.Status != "completed" {
		return runFailure(inv)
	}
	if inv.Output == nil {
		fmt.Fprintf(e.stderr, "invocation %s completed; the server kept no output (the agent's store_payloads is off)\n", inv.ID)
		return nil
	}
	var chunks []json.RawMessage
	if !inv.Streaming || json.Unmarshal(inv.Output, &chunks) != nil {
		// A plain result, or a stream's output the server cut short (an
		// object saying so).
		return printValue(e, inv.Output, raw, true)
	}
	for _, v := range chunks {
		if err := printValue(e, v, raw, false); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "\n(%d chunks, invocation %s)\n", len(chunks), inv.ID)
	return nil
}

// runFailure is the error of a run that did not complete, shaped as the
// server's error of a run that failed while its client waited: the
// traceback the agent wrote to its logs travels in its details.
func runFailure(inv *client.Invocation) error {
	e := &client.Error{Code: inv.ErrorCode, Message: inv.ErrorMessage, InvocationID: inv.ID}
	if e.Code == "" && e.Message == "" {
		e.Message = "the run ended with status " + inv.Status
	}
	if i := strings.LastIndex(inv.Logs, "Traceback (most recent call last):"); i >= 0 {
		d := map[string]string{"traceback": inv.Logs[i:]}
		if typ := exceptionType(inv.Logs[i:]); typ != "" {
			d["type"] = typ
		}
		e.Details, _ = json.Marshal(d)
	}
	return e
}

// exceptionType reads the exception's type from a Python traceback's last
// line ("ValueError: bad input" or "mod.Error"), or "".
func exceptionType(tb string) string {
	lines := strings.Split(strings.TrimRight(tb, "\n"), "\n")
	last := lines[len(lines)-1]
	typ, _, _ := strings.Cut(last, ":")
	if typ == "" || strings.ContainsAny(typ, " \t") {
		return ""
	}
	return typ
}

func (e *env) runsCancelCmd(base *string) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel <invocation_id>",
		Short: "Stop a queued or running run",
		Long: `cancel stops a run within a second: a queued run never starts, a running
one's sandbox is killed. Its record says cancelled, and by whom. A run
that has already ended cannot be cancelled (exit status 1).`,
		Example:           "  runagent runs cancel 0b6c3c1e-8f1d-4c0e-9a43-0c1d2e3f4a5b",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(*base)
			if err != nil {
				return err
			}
			return e.runsCancel(cmd.Context(), c, args[0])
		},
	}
}

func (e *env) runsCancel(ctx context.Context, c *client.Client, id string) error {
	inv, err := c.CancelInvocation(ctx, id)
	if err != nil {
		return err
	}
	switch inv.Status {
	case "cancelled":
		fmt.Fprintf(e.stdout, "invocation %s cancelled (%s)\n", id, inv.ErrorMessage)
		return nil
	case "running":
		fmt.Fprintf(e.stdout, "invocation %s is being cancelled and has not stopped yet; `runagent runs wait %s` tells when it has\n", id, id)
		return nil
	}
	return fmt.Errorf("invocation %s ended as %s before it could be cancelled", id, inv.Status)
}

// runsStreamArgs is what runs stream takes.
type runsStreamArgs struct {
	id    string
	after int
	raw   bool
}

func (e *env) runsStreamCmd(base *string) *cobra.Command {
	var a runsStreamArgs
	cmd := &cobra.Command{
		Use:   "stream <invocation_id>",
		Short: "Print a stream's chunks, running or finished, from any point",
		Long: `stream follows a streaming run again: the chunks the server kept, from
the first or after chunk --after N (chunks are numbered from 0, as the
ids of run-stream --sse events), then the live ones until the end, printed
as run-stream prints them. If the connection drops, stream rejoins once
after the last chunk it printed, so nothing is lost or printed twice.

Leaving (Ctrl-C) does not stop the run; runs cancel does. The server
keeps a stream's events for a while after it ends (serve --stream-keep,
10 minutes, and at most --stream-keep-bytes of each): past that the
stream is GONE, and runs wait prints its output from the record.`,
		Example: `  runagent runs stream 0b6c3c1e-8f1d-4c0e-9a43-0c1d2e3f4a5b
  runagent runs stream 0b6c3c1e-8f1d-4c0e-9a43-0c1d2e3f4a5b --after 41 --raw`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(*base)
			if err != nil {
				return err
			}
			a.id = args[0]
			return e.runsStream(cmd.Context(), c, a)
		},
	}
	cmd.Flags().IntVar(&a.after, "after", -1, "print the chunks after chunk N (numbered from 0; -1 = from the first)")
	cmd.Flags().BoolVar(&a.raw, "raw", false, "print values as compact JSON, one per line")
	return cmd
}

func (e *env) runsStream(ctx context.Context, c *client.Client, a runsStreamArgs) error {
	if a.after < -1 {
		return fmt.Errorf("--after %d: want the number of a chunk (from 0), or -1 for all of them", a.after)
	}
	start := time.Now()
	s, err := c.Rejoin(ctx, a.id, a.after)
	if err != nil {
		return err
	}
	defer func() { s.Close() }()
	n, rejoined := 0, false
	for {
		for s.Next() {
			n++
			if err := printValue(e, s.Value(), a.raw, false); err != nil {
				return err
			}
		}
		err := s.Err()
		if err == nil {
			break
		}
		if rejoined || !connectionLost(ctx, err) {
			fmt.Fprintln(e.stdout)
			return err
		}
		rejoined = true
		after := s.LastEventID()
		fmt.Fprintf(e.stderr, "\n(connection lost: %v; rejoining after chunk %d)\n", err, after)
		s.Close()
		if s, err = c.Rejoin(ctx, a.id, after); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "\n(%d chunks in %.2fs, invocation %s)\n", n, time.Since(start).Seconds(), a.id)
	return nil
}

// connectionLost reports whether a stream ended because its connection
// did, rather than by the server's word (an *client.Error) or the
// caller's cancellation.
func connectionLost(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	_, isServer := errors.AsType[*client.Error](err)
	return !isServer
}
