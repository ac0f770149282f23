// Package linuxtest starts the linux sandbox backend as internal/server
// configures it — real cgroups, scratch disks and supervisors prepared
// ahead of demand, the egress proxy — for the tests and benchmarks of
// packages above the sandbox (deploys, environment builds) that want the
// real thing rather than the process backend.
//
// The test binary serves the sandbox supervisor: its TestMain calls
// supervisor.MaybeRun before m.Run. Server skips the test where the
// machine cannot run the backend (not root, a kernel feature missing).
package linuxtest
