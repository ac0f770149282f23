package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/sandbox/cgroup"
	"github.com/runagent/runagent/internal/sandbox/linux"
	"github.com/runagent/runagent/internal/sandbox/scratch"
	"github.com/runagent/runagent/internal/server"
)

func (e *env) doctorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check which sandbox isolation features this host supports",
		Long: `doctor probes the kernel and the host for everything the linux sandbox
uses — namespaces, seccomp, landlock, cgroups, loop devices for scratch
disks, a system Python — and prints each with how to fix what is missing.
It exits non-zero if 'runagent serve' with the linux sandbox would refuse
to start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ok := e.doctor(cmd.Context())
			if !ok {
				return fmt.Errorf("this host cannot run the linux sandbox (see above)")
			}
			fmt.Fprintln(e.stdout, "\nThis host can run the linux sandbox.")
			return nil
		},
	}
}

// doctor prints the report and says whether the linux sandbox can run.
func (e *env) doctor(ctx context.Context) bool {
	rep := linux.Probe()
	fmt.Fprintln(e.stdout, "Kernel and host:")
	fmt.Fprint(e.stdout, indent(rep.String()))
	ok := rep.Missing(linux.RequiredFeatures...) == nil

	fmt.Fprintln(e.stdout, "\ncgroups:")
	if h, err := cgroup.Detect(); err != nil {
		fmt.Fprintf(e.stdout, "  missing  %v\n", err)
		ok = false
	} else {
		// Detecting creates the (empty) parent cgroup to test write
		// access; servers use their own parents, so remove it again.
		defer h.RemoveParent()
		lines := splitLines(h.ProbeReport())
		for i, l := range lines {
			prefix := "           "
			if i == 0 {
				prefix = "  ok       "
			}
			fmt.Fprintf(e.stdout, "%s%s\n", prefix, l)
		}
	}

	fmt.Fprintln(e.stdout, "\nscratch disks (size-capped /tmp per sandbox):")
	dir, err := os.MkdirTemp("", "runagent-doctor-")
	if err == nil {
		defer os.RemoveAll(dir)
		if _, err = scratch.New(filepath.Join(dir, "scratch")); err == nil {
			fmt.Fprintln(e.stdout, "  ok       loop devices and mkfs.ext4 available")
		}
	}
	if err != nil {
		fmt.Fprintf(e.stdout, "  missing  %v\n", err)
		ok = false
	}

	fmt.Fprintln(e.stdout, "\nPython for agents:")
	if in, err := python.Resolve(ctx, server.DefaultSandboxPython); err != nil {
		fmt.Fprintf(e.stdout, "  missing  %v (fix: apt-get install python3)\n", err)
		ok = false
	} else {
		fmt.Fprintf(e.stdout, "  ok       %s (Python %s)\n", in.Path, in.Version)
	}
	return ok
}

func indent(s string) string {
	out := ""
	for _, line := range splitLines(s) {
		out += "  " + line + "\n"
	}
	return out
}

func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			lines = append(lines, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}
