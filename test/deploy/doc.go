// Package deploy tests what operators run runagent with: the systemd unit
// (deploy/systemd), the Kubernetes manifests (deploy/kubernetes) and the
// local cluster script (scripts/cluster.sh). Its tests build the binary
// and check the files against it and against real tools: systemd's
// verifier, the Kubernetes API types decoded strictly, the sandbox run
// with exactly the unit's capabilities, and the script's three nodes on
// loopback. The Kubernetes API packages are imported here only.
package deploy
