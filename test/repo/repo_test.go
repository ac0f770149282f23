// Package repo holds tests about the repository itself rather than about
// one package: conventions that keep the codebase readable and the binary
// what it claims to be.
package repo

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const root = "../.."

// TestEveryPackageHasADocComment: a reader opening any package learns what
// it is for.
func TestEveryPackageHasADocComment(t *testing.T) {
	documented := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		documented[dir] = documented[dir] || f.Doc != nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(documented) < 10 {
		t.Fatalf("found only %d packages; is the walk broken?", len(documented))
	}
	for dir, ok := range documented {
		if !ok {
			t.Errorf("package %s has no doc comment (add a doc.go)", dir)
		}
	}
}

// TestBinaryIsPureGo: runagent builds with cgo disabled, so it is one
// static binary (DESIGN.md: pure Go unless there is a written reason).
func TestBinaryIsPureGo(t *testing.T) {
	out := filepath.Join(t.TempDir(), "runagent")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/runagent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, b)
	}
}
