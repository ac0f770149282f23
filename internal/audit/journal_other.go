//go:build !unix

package audit

import (
	"errors"
	"os"
)

var errNoLocks = errors.New("the audit journal needs flock(2), which this system lacks")

func lockFile(*os.File) error        { return errNoLocks }
func unlockFile(*os.File)            {}
func tryLock(*os.File) (bool, error) { return false, errNoLocks }
