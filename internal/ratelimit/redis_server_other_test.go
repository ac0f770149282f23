//go:build !linux

package ratelimit

import "os/exec"

func setParentDeathSignal(*exec.Cmd) {}
