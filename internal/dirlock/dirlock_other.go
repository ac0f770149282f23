//go:build !unix

package dirlock

import (
	"errors"
	"os"
)

var errHeld = errors.New("held")

// tryLock does not lock where flock is missing: one server per data
// directory is then the operator's to keep.
func tryLock(*os.File) error { return nil }

func alive(int) bool { return true }
