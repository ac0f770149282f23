package cgroup

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnsupported is returned by Detect where cgroups do not exist.
var ErrUnsupported = errors.New("cgroup: resource limits need Linux cgroups, which this system does not have")

// Violations a Cgroup reports. They are fixed strings so callers can match
// them; CPUThrottled is informational (a quota doing its job), the others
// mean the sandbox hit a limit.
const (
	ViolationOOMKill      = "memory limit (OOM kill)"
	ViolationMemoryMax    = "memory limit reached"
	ViolationProcessLimit = "process limit"
	ViolationCPUThrottled = "cpu throttled"
)

// DefaultParent is the name of the cgroup that holds every sandbox cgroup.
const DefaultParent = "runagent"

// cpuPeriod is the CFS period used for CPU quotas: 100 ms.
const cpuPeriod = 100000

// killTimeout bounds how long Kill waits for a cgroup to empty.
const killTimeout = 5 * time.Second

// Options configure Detect. The zero value is the production setting.
type Options struct {
	// Parent names the cgroup under which sandbox cgroups are created
	// (default "runagent"). Same rules as a sandbox id.
	Parent string

	// mountInfo and procCgroup replace /proc/self/mountinfo and
	// /proc/self/cgroup, and fs the directory operations, in tests.
	mountInfo  string
	procCgroup string
	fs         fsOps
}

// fsOps are the directory operations that differ between the real
// cgroupfs (where mkdir creates the interface files) and a test's fake.
type fsOps struct {
	mkdir func(path string) error
	rmdir func(path string) error
}

// Stats are a cgroup's resource usage so far.
type Stats struct {
	MemoryCurrent int64         // bytes charged now
	MemoryPeak    int64         // highest MemoryCurrent seen; 0 if the kernel does not say
	CPUUsage      time.Duration // CPU time used by all its processes
}

// ValidateID checks that id can name a cgroup: 1 to 64 characters from
// [A-Za-z0-9_-].
func ValidateID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("cgroup: invalid id %q: want 1 to 64 characters", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("cgroup: invalid id %q: only A-Z, a-z, 0-9, '_' and '-' are allowed", id)
		}
	}
	return nil
}

// mount is one cgroup filesystem from mountinfo.
type mount struct {
	point       string   // where it is mounted
	root        string   // which cgroup of the hierarchy is its root
	v2          bool     // cgroup2
	controllers []string // v1: the controllers (and name=) of the hierarchy
}

// parseProcCgroup maps each controller (v1) and "" (v2) to the cgroup a
// /proc/<pid>/cgroup text says the process is in.
func parseProcCgroup(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

// parseKeyed parses "key value" lines (memory.events, cpu.stat, …).
func parseKeyed(text string) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		var n int64
		if _, err := fmt.Sscan(strings.TrimSpace(v), &n); err == nil {
			out[k] = n
		}
	}
	return out
}
