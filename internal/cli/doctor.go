package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/sandbox/cgroup"
	"github.com/runagent/runagent/internal/sandbox/linux"
	"github.com/runagent/runagent/internal/sandbox/scratch"
	"github.com/runagent/runagent/internal/server"
)

func (e *env) doctorCmd() *cobra.Command {
	var (
		asJSON bool
		store  storeFlags
		rds    redisFlags
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this node's prerequisites: sandbox isolation, and the database and Redis it shares",
		Long: `doctor probes the kernel and the host for everything the linux sandbox
uses — namespaces, seccomp, landlock, cgroups, loop devices for scratch
disks, a system Python — and prints each with how to fix what is missing.

With the store and Redis serve is given (--store-file or
$RUNAGENT_STORE_URL, --redis-url-file or $RUNAGENT_REDIS_URL, as for
serve) it checks a node of several too: that PostgreSQL answers, that its
schema is one this binary serves, that this host's clock agrees with the
database's, and that Redis answers. URLs are shown without passwords.

It exits non-zero if 'runagent serve' with the linux sandbox would refuse
to start, or the node would not work with the others.`,
		Example: `  runagent doctor
  RUNAGENT_STORE_URL_FILE=/etc/runagent/store-url RUNAGENT_REDIS_URL_FILE=/etc/runagent/redis-url runagent doctor`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			storeURL, err := store.resolve()
			if err != nil {
				return err
			}
			redisURL, err := rds.resolve()
			if err != nil {
				return err
			}
			rep := e.doctor(cmd.Context())
			if storeURL != "" {
				c := checkStore(cmd.Context(), storeURL)
				rep.Store = &c
				rep.OK = rep.OK && c.OK
			}
			if redisURL != "" {
				c := checkRedis(cmd.Context(), redisURL)
				rep.Redis = &c
				rep.OK = rep.OK && c.OK
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				rep.print(e.stdout)
			}
			if !rep.OK {
				return fmt.Errorf("this node is not ready to serve (see above)")
			}
			if !asJSON {
				fmt.Fprintln(e.stdout, "\nThis host can run the linux sandbox.")
				if rep.Store != nil || rep.Redis != nil {
					fmt.Fprintln(e.stdout, "Its database and Redis are ready for it.")
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	store.add(cmd.Flags())
	rds.add(cmd.Flags())
	return cmd
}

// doctorReport is what doctor found, by area.
type doctorReport struct {
	// OK says whether the linux sandbox can run here.
	OK      bool            `json:"ok"`
	Kernel  []doctorFeature `json:"kernel"`
	Cgroups doctorCheck     `json:"cgroups"`
	Scratch doctorCheck     `json:"scratch_disks"`
	Python  doctorCheck     `json:"python"`
	// Tuning is advice: a host setting that makes runs start faster.
	// It never makes OK false.
	Tuning doctorCheck `json:"tuning"`
	// Store and Redis are checked when the node is given them.
	Store *doctorCheck `json:"store,omitempty"`
	Redis *doctorCheck `json:"redis,omitempty"`
}

// doctorFeature is a linux.Feature as --json prints it.
type doctorFeature struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

type doctorCheck struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// doctor probes the host.
func (e *env) doctor(ctx context.Context) *doctorReport {
	probe := linux.Probe()
	rep := &doctorReport{OK: probe.Missing(linux.RequiredFeatures...) == nil}
	for _, f := range probe.Features {
		rep.Kernel = append(rep.Kernel, doctorFeature(f))
	}

	if h, err := cgroup.Detect(); err != nil {
		rep.Cgroups = doctorCheck{Detail: err.Error()}
	} else {
		// Detecting creates the (empty) parent cgroup to test write
		// access; servers use their own parents, so remove it again.
		defer h.RemoveParent()
		rep.Cgroups = doctorCheck{OK: true, Detail: h.ProbeReport()}
	}

	dir, err := os.MkdirTemp("", "runagent-doctor-")
	if err == nil {
		defer os.RemoveAll(dir)
		_, err = scratch.New(filepath.Join(dir, "scratch"))
	}
	if err != nil {
		rep.Scratch = doctorCheck{Detail: err.Error()}
	} else {
		rep.Scratch = doctorCheck{OK: true, Detail: "loop devices and mkfs.ext4 available"}
	}

	if in, err := python.Resolve(ctx, server.DefaultSandboxPython); err != nil {
		rep.Python = doctorCheck{Detail: fmt.Sprintf("%v (fix: apt-get install python3)", err)}
	} else {
		rep.Python = doctorCheck{OK: true, Detail: fmt.Sprintf("%s (Python %s)", in.Path, in.Version)}
	}
	rep.OK = rep.OK && rep.Cgroups.OK && rep.Scratch.OK && rep.Python.OK
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		rep.Tuning = doctorCheck{OK: true, Detail: "cannot read /proc/self/mounts: " + err.Error()}
	} else {
		rep.Tuning = favorDynmods(string(mounts))
	}
	return rep
}

// favorDynmods advises on the favordynmods option of the host's cgroup2
// mounts, given /proc/self/mounts. Without it, moving a process into a
// cgroup waits for an RCU grace period whenever no move happened just
// before: on a quiet node a run forked on demand (one with persistent
// memory, or any when the pool is empty) waits 5-20 ms more to start.
func favorDynmods(mounts string) doctorCheck {
	var off []string
	seen := false
	for _, line := range splitLines(mounts) {
		f := strings.Fields(line)
		if len(f) < 4 || f[2] != "cgroup2" {
			continue
		}
		seen = true
		if !slices.Contains(strings.Split(f[3], ","), "favordynmods") {
			off = append(off, f[1])
		}
	}
	switch {
	case !seen:
		return doctorCheck{OK: true, Detail: "no cgroup2 hierarchy mounted: nothing to tune"}
	case len(off) == 0:
		return doctorCheck{OK: true, Detail: "cgroup2 is mounted with favordynmods: runs move into their cgroups without waiting"}
	}
	return doctorCheck{OK: false, Detail: "cgroup2 at " + strings.Join(off, ", ") + " is mounted without favordynmods: a run forked on demand (persistent memory, an empty pool) may wait 5-20 ms for its cgroup on a quiet node. " +
		"Fix (kernel 6.0 or later; forks and exits cost a little more): mount -o remount,favordynmods " + off[0]}
}

// print writes the report for a person.
func (rep *doctorReport) print(w io.Writer) {
	fmt.Fprintln(w, "Kernel and host:")
	var kernel linux.Report
	for _, f := range rep.Kernel {
		kernel.Features = append(kernel.Features, linux.Feature(f))
	}
	fmt.Fprint(w, indent(kernel.String()))
	fmt.Fprintln(w, "\ncgroups:")
	if !rep.Cgroups.OK {
		fmt.Fprintf(w, "  missing  %s\n", rep.Cgroups.Detail)
	} else {
		for i, l := range splitLines(rep.Cgroups.Detail) {
			prefix := "           "
			if i == 0 {
				prefix = "  ok       "
			}
			fmt.Fprintf(w, "%s%s\n", prefix, l)
		}
	}
	fmt.Fprintln(w, "\nscratch disks (size-capped /tmp per sandbox):")
	fmt.Fprintf(w, "  %s%s\n", okOrMissing(rep.Scratch.OK), rep.Scratch.Detail)
	fmt.Fprintln(w, "\nPython for agents:")
	fmt.Fprintf(w, "  %s%s\n", okOrMissing(rep.Python.OK), rep.Python.Detail)
	fmt.Fprintln(w, "\ntuning (advice; the sandbox works either way):")
	advice := "advice   "
	if rep.Tuning.OK {
		advice = "ok       "
	}
	fmt.Fprintf(w, "  %s%s\n", advice, rep.Tuning.Detail)
	if rep.Store != nil {
		fmt.Fprintln(w, "\nstore (PostgreSQL shared by the nodes):")
		fmt.Fprintf(w, "  %s%s\n", okOrFailed(rep.Store.OK), rep.Store.Detail)
	}
	if rep.Redis != nil {
		fmt.Fprintln(w, "\nRedis (limits and coordination shared by the nodes):")
		fmt.Fprintf(w, "  %s%s\n", okOrFailed(rep.Redis.OK), rep.Redis.Detail)
	}
}

func okOrMissing(ok bool) string {
	if ok {
		return "ok       "
	}
	return "missing  "
}

func okOrFailed(ok bool) string {
	if ok {
		return "ok       "
	}
	return "FAILED   "
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
