package scratch

import (
	"errors"
	"fmt"
)

// DefaultSize is the size of a scratch area when Prepare is given 0.
const DefaultSize = 1 << 30

// MinSize is the smallest scratch area Prepare makes.
const MinSize = 4 << 20

// ErrUnsupported is returned by New where scratch areas cannot be made.
var ErrUnsupported = errors.New("scratch: size-capped scratch areas need Linux loop devices")

// validateID checks that id can name a directory: 1 to 64 characters
// from [A-Za-z0-9_-].
func validateID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("scratch: invalid id %q: want 1 to 64 characters", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("scratch: invalid id %q: only A-Z, a-z, 0-9, '_' and '-' are allowed", id)
		}
	}
	return nil
}
