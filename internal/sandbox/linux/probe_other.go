//go:build !linux

package linux

// Probe reports every feature missing: the linux backend needs Linux.
func Probe() Report {
	var r Report
	for _, name := range append([]string{FeatureRoot}, RequiredFeatures...) {
		r.Features = append(r.Features, Feature{Name: name, Detail: "not Linux", Fix: "run runagent on Linux"})
	}
	return r
}
