package pyenv

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead: any requirements.txt or pyproject.toml is read or refused
// with a *pyenv.Error, never a panic, and what is read holds no line
// with control characters.
func FuzzRead(f *testing.F) {
	f.Add("attrs==1\n-r other.txt\n", "six\n", false)
	f.Add("a --hash=sha256:00 \\\n\n# c\n", "", false)
	f.Add("[project]\ndependencies=[\"a\"]", "", true)
	f.Add("-c other.txt\nx @ https://h/x.whl#egg=x\n", "-r requirements.txt", false)
	f.Fuzz(func(t *testing.T, main, other string, pyproject bool) {
		dir := t.TempDir()
		name := RequirementsFile
		if pyproject {
			name = PyprojectFile
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(main), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "other.txt"), []byte(other), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Read(dir)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Read error %T %v, want *pyenv.Error", err, err)
			}
			return
		}
		for _, l := range append(d.Lines, d.Constraints...) {
			for _, r := range l {
				if r < ' ' && r != '\t' {
					t.Fatalf("line %q holds a control character", l)
				}
			}
		}
		_ = Key(d, Interpreter{})
	})
}
