//go:build !linux

package supervisor

import (
	"fmt"
	"os"
)

func sandboxMain() int {
	fmt.Fprintln(os.Stderr, "runagent supervisor: sandbox mode is supported only on Linux")
	return exitUsage
}

// LandlockABI returns 0: landlock is Linux-only.
func LandlockABI() int { return 0 }
