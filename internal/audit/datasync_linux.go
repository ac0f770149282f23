package audit

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync flushes f's data, and only the metadata needed to read it
// back: in a journal filled ahead, no metadata at all.
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
