package linux

import (
	"fmt"
	"strings"
)

// Feature names of a Report.
const (
	FeatureRoot      = "root"
	FeatureUserNS    = "user namespaces"
	FeatureMountNS   = "mount namespaces"
	FeaturePIDNS     = "pid namespaces"
	FeatureNetNS     = "network namespaces"
	FeatureIPCNS     = "ipc namespaces"
	FeatureUTSNS     = "uts namespaces"
	FeatureSeccomp   = "seccomp"
	FeatureLandlock  = "landlock"
	FeatureCgroups   = "cgroups"
	FeatureLoop      = "loop devices"
	FeatureMountAPI  = "new mount API"
	FeatureIDMapping = "uid range mapping"
	FeatureOverlay   = "overlayfs"
)

// RequiredFeatures are what Start needs; Missing(RequiredFeatures...)
// fails closed at start-up.
var RequiredFeatures = []string{
	FeatureUserNS, FeatureMountNS, FeaturePIDNS, FeatureNetNS, FeatureIPCNS,
	FeatureUTSNS, FeatureSeccomp, FeatureMountAPI, FeatureOverlay,
}

// Feature is one probed capability of the host.
type Feature struct {
	Name   string
	OK     bool
	Detail string // what was found ("ABI 7", "cgroup v2", the error)
	Fix    string // one line: how to get it, when missing
}

// Report is what Probe found.
type Report struct {
	Features []Feature
}

// Get returns the feature called name.
func (r Report) Get(name string) (Feature, bool) {
	for _, f := range r.Features {
		if f.Name == name {
			return f, true
		}
	}
	return Feature{}, false
}

// Missing returns an error naming every feature of required that the
// host lacks, with how to fix it; nil when all are there.
func (r Report) Missing(required ...string) error {
	var lines []string
	for _, name := range required {
		f, ok := r.Get(name)
		switch {
		case !ok:
			lines = append(lines, fmt.Sprintf("%s: not probed", name))
		case !f.OK:
			lines = append(lines, fmt.Sprintf("%s: %s (fix: %s)", name, f.Detail, f.Fix))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return fmt.Errorf("the linux sandbox cannot run on this host: %s", strings.Join(lines, "; "))
}

// String renders the report one feature a line, for runagent doctor.
func (r Report) String() string {
	var b strings.Builder
	for _, f := range r.Features {
		state := "ok     "
		if !f.OK {
			state = "missing"
		}
		fmt.Fprintf(&b, "%s  %-20s %s", state, f.Name, f.Detail)
		if !f.OK && f.Fix != "" {
			fmt.Fprintf(&b, " — fix: %s", f.Fix)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
