//go:build linux

package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runagent/runagent/internal/sandbox"
)

// v2Controllers are the controllers runagent needs on cgroup v2.
var v2Controllers = []string{"cpu", "memory", "pids"}

// v1Controllers are the hierarchies runagent needs on cgroup v1 (freezer
// makes Kill race-free); v1Optional are used when mounted.
var (
	v1Controllers = []string{"cpu", "memory", "pids", "freezer"}
	v1Optional    = []string{"cpuacct"}
)

// Host is the cgroup setup of this machine, as found by Detect.
type Host struct {
	version int
	parent  string
	fs      fsOps
	// v2: the parent cgroup's directory.
	v2Dir string
	// v1: controller → the parent cgroup's directory in that hierarchy.
	v1Dirs map[string]string
	notes  []string
}

// Cgroup is one sandbox's cgroup (v2) or set of cgroups (v1).
type Cgroup struct {
	h  *Host
	id string
	// v2: its directory. v1: controller → its directory.
	v2Dir  string
	v1Dirs map[string]string
	// noCgroupKill makes Kill take the freeze path on v2 (tests).
	noCgroupKill bool
}

// Detect finds how this machine mounts cgroups, prefers v2 when it offers
// the cpu, memory and pids controllers, else v1, creates the parent cgroup
// and checks that a sandbox cgroup can be created under it. Its error says
// what is missing and how to fix it.
func Detect() (*Host, error) { return DetectWith(Options{}) }

// DetectWith is Detect with options.
func DetectWith(o Options) (*Host, error) {
	if o.Parent == "" {
		o.Parent = DefaultParent
	}
	if err := ValidateID(o.Parent); err != nil {
		return nil, fmt.Errorf("cgroup: parent name: %w", err)
	}
	if o.mountInfo == "" {
		o.mountInfo = "/proc/self/mountinfo"
	}
	if o.procCgroup == "" {
		o.procCgroup = "/proc/self/cgroup"
	}
	if o.fs.mkdir == nil {
		o.fs = fsOps{mkdir: func(p string) error { return os.Mkdir(p, 0o755) }, rmdir: os.Remove}
	}
	mi, err := os.ReadFile(o.mountInfo)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	pc, err := os.ReadFile(o.procCgroup)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	mounts := parseMountInfo(string(mi))
	self := parseProcCgroup(string(pc))
	if len(mounts) == 0 {
		return nil, errors.New("cgroup: no cgroup filesystem is mounted: mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)")
	}
	h := &Host{parent: o.Parent, fs: o.fs}

	// v2: the first cgroup2 mount, /sys/fs/cgroup preferred.
	var v2 *mount
	for i := range mounts {
		if mounts[i].v2 && (v2 == nil || mounts[i].point == "/sys/fs/cgroup") {
			v2 = &mounts[i]
		}
	}
	var v2Why string
	if v2 != nil {
		base := v2.point
		if os.Geteuid() != 0 {
			base = filepath.Join(v2.point, relTo(v2.root, self[""]))
		}
		have := fields(readString(filepath.Join(base, "cgroup.controllers")))
		var missing []string
		for _, c := range v2Controllers {
			if !slices.Contains(have, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) == 0 {
			h.version = 2
			if err := h.setupV2(base); err != nil {
				return nil, err
			}
			return h, nil
		}
		v2Why = fmt.Sprintf("cgroup v2 is mounted at %s but %s offers no %s controller (its cgroup.controllers is %q)",
			v2.point, base, strings.Join(missing, ", "), strings.Join(have, " "))
	}

	// v1: one hierarchy per controller.
	h.version = 1
	h.v1Dirs = map[string]string{}
	for _, m := range mounts {
		if m.v2 {
			continue
		}
		for _, c := range m.controllers {
			if slices.Contains(v1Controllers, c) || slices.Contains(v1Optional, c) {
				if _, ok := h.v1Dirs[c]; !ok {
					h.v1Dirs[c] = filepath.Join(m.point, o.Parent)
				}
			}
		}
	}
	var missing []string
	for _, c := range v1Controllers {
		if _, ok := h.v1Dirs[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		msg := "cgroup: no usable cgroups: "
		if v2Why != "" {
			msg += v2Why + "; "
		} else {
			msg += "no cgroup2 mount; "
		}
		msg += fmt.Sprintf("and the cgroup v1 hierarchies %s are not mounted. Fix: boot with the unified hierarchy (systemd.unified_cgroup_hierarchy=1) and, when not root, run runagent with a delegated cgroup (systemd: Delegate=yes)", strings.Join(missing, ", "))
		return nil, errors.New(msg)
	}
	if v2Why != "" {
		h.notes = append(h.notes, v2Why)
	}
	if err := h.setupV1(); err != nil {
		return nil, err
	}
	return h, nil
}

// relTo returns p (a path in /proc/self/cgroup) relative to a mount's root.
func relTo(root, p string) string {
	if root != "/" && (p == root || strings.HasPrefix(p, root+"/")) {
		p = strings.TrimPrefix(p, root)
	}
	return strings.TrimPrefix(p, "/")
}

const fixPerm = "run runagent as root, or give it a delegated cgroup (systemd: Delegate=yes in its unit, or systemd-run --user -p Delegate=yes)"

// setupV2 enables the controllers in base, creates the parent, enables
// them in it, and probes.
func (h *Host) setupV2(base string) error {
	want := "+" + strings.Join(v2Controllers, " +")
	if err := enable(base, want); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("cgroup: cannot enable %s in %s/cgroup.subtree_control: the cgroup holds processes (cgroup v2's \"no internal processes\" rule); move the runagent server into a leaf cgroup of its delegated cgroup (e.g. %s/server) and start it again: %w", want, base, base, err)
		}
		return fmt.Errorf("cgroup: cgroup v2 is mounted but the controllers %s cannot be enabled for delegation in %s/cgroup.subtree_control; %s: %w", want, base, fixPerm, err)
	}
	h.v2Dir = filepath.Join(base, h.parent)
	if err := h.fs.mkdir(h.v2Dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cgroup: cannot create the parent cgroup %s; %s: %w", h.v2Dir, fixPerm, err)
	}
	if err := enable(h.v2Dir, want); err != nil {
		return fmt.Errorf("cgroup: cgroup v2 is mounted but the controllers %s cannot be enabled in cgroup.subtree_control of %s (does it hold processes? it must not); %s: %w", want, h.v2Dir, fixPerm, err)
	}
	probe := filepath.Join(h.v2Dir, fmt.Sprintf("probe-%d", os.Getpid()))
	if err := h.fs.mkdir(probe); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cgroup: cannot create a cgroup under %s; %s: %w", h.v2Dir, fixPerm, err)
	}
	defer h.fs.rmdir(probe)
	for _, f := range []string{"cpu.max", "memory.max", "pids.max"} {
		if _, err := os.Stat(filepath.Join(probe, f)); err != nil {
			c, _, _ := strings.Cut(f, ".")
			return fmt.Errorf("cgroup: cgroup v2 is mounted but the %s controller is not enabled for delegation: enable it in cgroup.subtree_control of %s and of its ancestors (echo +%s > %s/cgroup.subtree_control): %w", c, h.v2Dir, c, h.v2Dir, err)
		}
	}
	return nil
}

// enable writes "+c …" to dir's cgroup.subtree_control unless all are on.
func enable(dir, want string) error {
	have := fields(readString(filepath.Join(dir, "cgroup.subtree_control")))
	all := true
	for _, c := range strings.Fields(want) {
		if !slices.Contains(have, strings.TrimPrefix(c, "+")) {
			all = false
		}
	}
	if all {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), want)
}

// setupV1 creates the parent in every hierarchy and probes.
func (h *Host) setupV1() error {
	for _, c := range h.controllers() {
		dir := h.v1Dirs[c]
		if err := h.fs.mkdir(dir); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroup: cgroup v1 %s hierarchy: cannot create %s; %s: %w", c, dir, fixPerm, err)
		}
		probe := filepath.Join(dir, fmt.Sprintf("probe-%d", os.Getpid()))
		if err := h.fs.mkdir(probe); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroup: cgroup v1 %s hierarchy: cannot create a cgroup under %s; %s: %w", c, dir, fixPerm, err)
		}
		if err := h.fs.rmdir(probe); err != nil {
			return fmt.Errorf("cgroup: cgroup v1 %s hierarchy: cannot remove the probe cgroup %s: %w", c, probe, err)
		}
	}
	return nil
}

// controllers lists the v1 controllers in use, sorted.
func (h *Host) controllers() []string {
	var cs []string
	for c := range h.v1Dirs {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// Version is 1 or 2.
func (h *Host) Version() int { return h.version }

// String says which cgroups are used and where, for runagent doctor.
func (h *Host) String() string {
	if h.version == 2 {
		return fmt.Sprintf("cgroup v2 (cpu, memory, pids) at %s", h.v2Dir)
	}
	var parts []string
	for _, c := range h.controllers() {
		parts = append(parts, c+"="+h.v1Dirs[c])
	}
	return "cgroup v1 at " + strings.Join(parts, " ")
}

// ProbeReport is String plus what Detect noticed on the way (such as a
// cgroup2 mount without controllers), one item per line.
func (h *Host) ProbeReport() string {
	var b strings.Builder
	b.WriteString(h.String())
	b.WriteString("\ncreate/remove probe cgroup: ok")
	for _, n := range h.notes {
		b.WriteString("\nnote: " + n)
	}
	return b.String()
}

// RemoveParent removes the (empty) parent cgroup; for server shutdown and
// tests. Sandbox cgroups left under it make it fail with EBUSY.
func (h *Host) RemoveParent() error {
	var errs []error
	for _, d := range h.parentDirs() {
		if err := h.fs.rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h *Host) parentDirs() []string {
	if h.version == 2 {
		return []string{h.v2Dir}
	}
	var ds []string
	for _, c := range h.controllers() {
		ds = appendUnique(ds, h.v1Dirs[c])
	}
	return ds
}

func appendUnique(ds []string, d string) []string {
	if slices.Contains(ds, d) {
		return ds
	}
	return append(ds, d)
}

// cgroup returns the Cgroup for id without touching the filesystem.
func (h *Host) cgroup(id string) *Cgroup {
	cg := &Cgroup{h: h, id: id}
	if h.version == 2 {
		cg.v2Dir = filepath.Join(h.v2Dir, id)
		return cg
	}
	cg.v1Dirs = map[string]string{}
	for c, d := range h.v1Dirs {
		cg.v1Dirs[c] = filepath.Join(d, id)
	}
	return cg
}

// New creates the cgroup(s) of sandbox id with limits l (see SetLimits).
func (h *Host) New(id string, l sandbox.Limits) (*Cgroup, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	cg := h.cgroup(id)
	if err := cg.create(); err != nil {
		return nil, err
	}
	if err := cg.SetLimits(l); err != nil {
		cg.rmdirs()
		return nil, err
	}
	return cg, nil
}

// SetLimits sets the cgroup's limits to l (zero fields take
// sandbox.DefaultLimits): CPU quota l.CPU cores over a 100 ms period,
// memory l.MemoryBytes with no swap, at most l.Processes tasks. A cgroup
// made ahead of demand gets its sandbox's limits this way, before the
// sandbox may go on; lowering the memory limit below what its processes
// already use fails (EBUSY on v1) rather than kill them.
func (cg *Cgroup) SetLimits(l sandbox.Limits) error {
	l = l.WithDefaults()
	quota := int64(l.CPU * cpuPeriod)
	if quota < 1000 {
		quota = 1000 // the kernel's minimum is 1 ms
	}
	mem := strconv.FormatInt(l.MemoryBytes, 10)
	pids := strconv.FormatInt(l.Processes, 10)
	if cg.h.version == 2 {
		return cg.setV2(quota, mem, pids)
	}
	return cg.setV1(quota, mem, pids)
}

// create makes the directories; on failure it removes those it made and
// leaves an existing cgroup of the same id alone.
func (cg *Cgroup) create() error {
	for i, d := range cg.dirs() {
		if err := cg.h.fs.mkdir(d); err != nil {
			for _, made := range cg.dirs()[:i] {
				cg.h.fs.rmdir(made)
			}
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("cgroup: sandbox %s: %s already exists", cg.id, d)
			}
			return fmt.Errorf("cgroup: sandbox %s: %w", cg.id, err)
		}
	}
	return nil
}

func (cg *Cgroup) setV2(quota int64, mem, pids string) error {
	d := cg.v2Dir
	if err := writeFile(filepath.Join(d, "cpu.max"), fmt.Sprintf("%d %d", quota, cpuPeriod)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(d, "memory.max"), mem); err != nil {
		return err
	}
	// memory.swap.max is absent when swap accounting is off; then there is
	// no swap to limit.
	if err := writeFile(filepath.Join(d, "memory.swap.max"), "0"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return writeFile(filepath.Join(d, "pids.max"), pids)
}

func (cg *Cgroup) setV1(quota int64, mem, pids string) error {
	cpu, m, p := cg.v1Dirs["cpu"], cg.v1Dirs["memory"], cg.v1Dirs["pids"]
	if err := writeFile(filepath.Join(cpu, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriod)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(cpu, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10)); err != nil {
		return err
	}
	// memory.memsw.* exist only with swap accounting; memsw must stay >=
	// limit_in_bytes, so it is set after a lower limit and before a
	// higher one (SetLimits on a cgroup made ahead). Equal means no swap.
	memsw := filepath.Join(m, "memory.memsw.limit_in_bytes")
	if err := writeFile(filepath.Join(m, "memory.limit_in_bytes"), mem); err != nil {
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		if err := writeFile(memsw, mem); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(m, "memory.limit_in_bytes"), mem); err != nil {
			return err
		}
	}
	if err := writeFile(memsw, mem); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Keep the OOM killer on: a disabled one would hang the sandbox.
	if err := writeFile(filepath.Join(m, "memory.oom_control"), "0"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return writeFile(filepath.Join(p, "pids.max"), pids)
}

// ID is the sandbox id the cgroup was created for.
func (cg *Cgroup) ID() string { return cg.id }

// Dirs are the cgroup's directories: one on v2, one per hierarchy on v1.
// On v2 the single directory can be opened for clone3's CLONE_INTO_CGROUP
// (syscall.SysProcAttr.UseCgroupFD), which starts a child inside it.
func (cg *Cgroup) Dirs() []string { return cg.dirs() }

func (cg *Cgroup) dirs() []string {
	if cg.v2Dir != "" {
		return []string{cg.v2Dir}
	}
	var ds []string
	for _, c := range cg.h.controllers() {
		ds = appendUnique(ds, cg.v1Dirs[c])
	}
	return ds
}

// AddPID moves process pid (all its threads) into the cgroup.
func (cg *Cgroup) AddPID(pid int) error {
	s := strconv.Itoa(pid)
	for _, d := range cg.dirs() {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), s); err != nil {
			return fmt.Errorf("cgroup: sandbox %s: add pid %d: %w", cg.id, pid, err)
		}
	}
	return nil
}

// PIDs lists the processes in the cgroup (all hierarchies on v1).
func (cg *Cgroup) PIDs() ([]int, error) {
	var out []int
	for _, d := range cg.dirs() {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("cgroup: sandbox %s: %w", cg.id, err)
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// Violations reports the limits the cgroup's processes hit so far, as
// Violation* strings. ViolationCPUThrottled is informational.
func (cg *Cgroup) Violations() []string {
	var out []string
	if cg.h.version == 2 {
		ev := parseKeyed(readString(filepath.Join(cg.v2Dir, "memory.events")))
		switch {
		case ev["oom_kill"] > 0:
			out = append(out, ViolationOOMKill)
		case ev["max"] > 0 || ev["oom"] > 0:
			out = append(out, ViolationMemoryMax)
		}
		if parseKeyed(readString(filepath.Join(cg.v2Dir, "pids.events")))["max"] > 0 {
			out = append(out, ViolationProcessLimit)
		}
		if parseKeyed(readString(filepath.Join(cg.v2Dir, "cpu.stat")))["nr_throttled"] > 0 {
			out = append(out, ViolationCPUThrottled)
		}
		return out
	}
	m := cg.v1Dirs["memory"]
	oc := parseKeyed(readString(filepath.Join(m, "memory.oom_control")))
	fail, _ := strconv.ParseInt(strings.TrimSpace(readString(filepath.Join(m, "memory.failcnt"))), 10, 64)
	switch {
	case oc["oom_kill"] > 0:
		out = append(out, ViolationOOMKill)
	case oc["under_oom"] > 0 || fail > 0:
		out = append(out, ViolationMemoryMax)
	}
	if parseKeyed(readString(filepath.Join(cg.v1Dirs["pids"], "pids.events")))["max"] > 0 {
		out = append(out, ViolationProcessLimit)
	}
	if parseKeyed(readString(filepath.Join(cg.v1Dirs["cpu"], "cpu.stat")))["nr_throttled"] > 0 {
		out = append(out, ViolationCPUThrottled)
	}
	return out
}

// Stats reads the cgroup's resource usage.
func (cg *Cgroup) Stats() (Stats, error) {
	var s Stats
	readInt := func(p string) (int64, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	var err error
	if cg.h.version == 2 {
		if s.MemoryCurrent, err = readInt(filepath.Join(cg.v2Dir, "memory.current")); err != nil {
			return s, fmt.Errorf("cgroup: sandbox %s: %w", cg.id, err)
		}
		s.MemoryPeak, _ = readInt(filepath.Join(cg.v2Dir, "memory.peak")) // Linux 5.19+
		s.CPUUsage = time.Duration(parseKeyed(readString(filepath.Join(cg.v2Dir, "cpu.stat")))["usage_usec"]) * time.Microsecond
		return s, nil
	}
	m := cg.v1Dirs["memory"]
	if s.MemoryCurrent, err = readInt(filepath.Join(m, "memory.usage_in_bytes")); err != nil {
		return s, fmt.Errorf("cgroup: sandbox %s: %w", cg.id, err)
	}
	s.MemoryPeak, _ = readInt(filepath.Join(m, "memory.max_usage_in_bytes"))
	if d, ok := cg.v1Dirs["cpuacct"]; ok {
		ns, err := readInt(filepath.Join(d, "cpuacct.usage"))
		if err != nil {
			return s, fmt.Errorf("cgroup: sandbox %s: %w", cg.id, err)
		}
		s.CPUUsage = time.Duration(ns)
	}
	return s, nil
}

// Kill kills every process in the cgroup and waits (up to 5 s) until it
// is empty. v2 uses cgroup.kill (Linux 5.14+) or else freezes the cgroup,
// SIGKILLs each process and thaws it; v1 does the same with the freezer
// hierarchy. Freezing first means a process cannot fork away from the
// kill. Killing an empty or removed cgroup is not an error.
func (cg *Cgroup) Kill() error {
	deadline := time.Now().Add(killTimeout)
	if cg.v2Dir != "" && !cg.noCgroupKill {
		err := writeFile(filepath.Join(cg.v2Dir, "cgroup.kill"), "1")
		if err != nil && errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(cg.v2Dir); serr != nil {
				return nil // the cgroup is gone
			}
		}
		if err == nil {
			return cg.waitEmpty(deadline)
		}
	}
	for {
		pids, err := cg.PIDs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		cg.freeze(true, deadline)
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		cg.freeze(false, deadline)
		if err := cg.waitEmpty(time.Now().Add(100 * time.Millisecond)); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: sandbox %s: processes %v still alive %v after SIGKILL", cg.id, pids, killTimeout)
		}
	}
}

// freeze freezes (or thaws) the cgroup, waiting until frozen.
func (cg *Cgroup) freeze(on bool, deadline time.Time) {
	var file, val, done string
	if cg.v2Dir != "" {
		file, val, done = filepath.Join(cg.v2Dir, "cgroup.freeze"), "0", ""
		if on {
			val, done = "1", "frozen 1"
		}
	} else {
		file, val, done = filepath.Join(cg.v1Dirs["freezer"], "freezer.state"), "THAWED", ""
		if on {
			val, done = "FROZEN", "FROZEN"
		}
	}
	if writeFile(file, val) != nil || done == "" {
		return
	}
	state := file
	if cg.v2Dir != "" {
		state = filepath.Join(cg.v2Dir, "cgroup.events")
	}
	for time.Now().Before(deadline) {
		if strings.Contains(readString(state), done) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// waitEmpty polls until no process is left.
func (cg *Cgroup) waitEmpty(deadline time.Time) error {
	for sleep := 100 * time.Microsecond; ; sleep = min(2*sleep, 20*time.Millisecond) {
		pids, err := cg.PIDs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: sandbox %s: processes %v still alive after kill", cg.id, pids)
		}
		time.Sleep(sleep)
	}
}

// Destroy kills the cgroup's processes and removes its directories.
func (cg *Cgroup) Destroy() error {
	kerr := cg.Kill()
	return errors.Join(kerr, cg.rmdirs())
}

// rmdirs removes the directories, retrying while the kernel still counts
// exiting processes (EBUSY).
func (cg *Cgroup) rmdirs() error {
	var errs []error
	for _, d := range cg.dirs() {
		deadline := time.Now().Add(time.Second)
		for {
			err := cg.h.fs.rmdir(d)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("cgroup: sandbox %s: %w", cg.id, err))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// CleanStale kills and removes every cgroup under the parent: what a
// crashed server left behind. Call it at start, before creating sandboxes.
func (h *Host) CleanStale() (removed int, err error) {
	names := map[string]bool{}
	for _, d := range h.parentDirs() {
		ents, err := os.ReadDir(d)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return 0, fmt.Errorf("cgroup: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() && ValidateID(e.Name()) == nil {
				names[e.Name()] = true
			}
		}
	}
	var errs []error
	for name := range names {
		if err := h.cgroup(name).Destroy(); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

func writeFile(path, val string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", val, path, err)
	}
	_, err = f.WriteString(val)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", val, path, err)
	}
	return nil
}

func readString(path string) string {
	b, _ := os.ReadFile(path)
	return string(bytes.TrimSpace(b))
}

func fields(s string) []string { return strings.Fields(s) }
