// Package cgroup puts each sandbox in a control group of its own and
// enforces its CPU, memory and process limits there. It speaks cgroup v2
// (the unified hierarchy, what production hosts run) and cgroup v1 (one
// hierarchy per controller) behind one API, chosen once by Detect:
//
//   - v2 is used when a cgroup2 mount offers the cpu, memory and pids
//     controllers to the cgroup runagent creates its parent under (the
//     mount's root when running as root, the server's own cgroup
//     otherwise, which must then be delegated: systemd Delegate=yes).
//   - v1 is used otherwise, when the cpu, memory, pids and freezer
//     hierarchies are mounted (cpuacct too if present, for CPU usage).
//
// Every sandbox cgroup lives under one parent (default "runagent"):
// <mount>/runagent/<sandbox id> on v2, and the same path in each v1
// hierarchy. The parent holds no processes, which v2's "no internal
// processes" rule requires for it to hand controllers to its children.
// One server owns a parent: CleanStale kills and removes everything under
// it, so two servers on one host need different parent names.
//
// On other operating systems Detect returns ErrUnsupported.
package cgroup
