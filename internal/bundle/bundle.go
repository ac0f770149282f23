package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Default limits, used for any zero (or negative) field of Limits.
const (
	DefaultMaxFiles     = 10000
	DefaultMaxBytes     = 100 << 20
	DefaultMaxFileBytes = 50 << 20
)

// Limits bound the size of a package.
type Limits struct {
	// MaxFiles is the most entries, files and directories together.
	MaxFiles int
	// MaxBytes is the most bytes of file content, uncompressed.
	MaxBytes int64
	// MaxFileBytes is the largest single file.
	MaxFileBytes int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	return l
}

// ErrTooLarge is wrapped by every error about a limit being exceeded.
var ErrTooLarge = errors.New("package too large")

// Hash returns the content address of a package: "sha256:<hex>".
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Limits on names, matching common file systems.
const (
	maxNameLen      = 4096
	maxComponentLen = 255
)

// checkName reports why name, a slash-separated path relative to the
// package root, cannot be used; nil if it can.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > maxNameLen:
		return fmt.Errorf("name longer than %d bytes", maxNameLen)
	case !utf8.ValidString(name):
		return errors.New("name is not valid UTF-8")
	case strings.ContainsRune(name, 0):
		return errors.New("name contains NUL")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("name contains control characters")
	case strings.ContainsRune(name, '\\'):
		return errors.New("name contains a backslash")
	case strings.HasPrefix(name, "/"):
		return errors.New("absolute path")
	}
	for part := range strings.SplitSeq(name, "/") {
		switch {
		case part == "..":
			return errors.New("path contains '..'")
		case len(part) > maxComponentLen:
			return fmt.Errorf("path component longer than %d bytes", maxComponentLen)
		}
	}
	if path.Clean(name) != name || name == "." {
		return errors.New("path is not clean")
	}
	return nil
}
