package pyenvtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Wheelhouse copies files into a new temporary directory, removed when
// tb's test ends, and returns it: a flat directory for pip's --find-links.
func Wheelhouse(tb testing.TB, files ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatalf("pyenvtest: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), data, 0o644); err != nil {
			tb.Fatalf("pyenvtest: %v", err)
		}
	}
	return dir
}

// SHA256 returns the hex SHA-256 of the file at path, as pip's
// --hash=sha256:... wants it. It panics if the file cannot be read: it is
// meant for files this package built.
func SHA256(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		panic(fmt.Sprintf("pyenvtest.SHA256: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
