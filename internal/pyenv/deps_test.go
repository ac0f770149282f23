package pyenv

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// project writes files (name → content) into a fresh directory.
func project(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadRequirements(t *testing.T) {
	dir := project(t, map[string]string{
		"requirements.txt": "# the agent's packages\nattrs==23.1.0  # pinned\n\n  requests >= 2.0 ; python_version >= '3.8'\n" +
			"-r more/extra.txt\n--prefer-binary\nlong-name \\\n  == 1.0\nproj @ https://example.com/p.tar.gz#egg=proj\n",
		"more/extra.txt":                "six\n-c ../constraints.txt\n",
		"constraints.txt":               "six<2\n",
		"wheels/a-1.0-py3-none-any.whl": "not really a wheel",
		"wheels/notes.txt":              "ignored",
	})
	d, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"attrs==23.1.0", "requests >= 2.0 ; python_version >= '3.8'", "six", "--prefer-binary", "long-name == 1.0",
		"proj @ https://example.com/p.tar.gz#egg=proj"}
	if !slices.Equal(d.Lines, want) {
		t.Errorf("lines:\n got %q\nwant %q", d.Lines, want)
	}
	if !slices.Equal(d.Constraints, []string{"six<2"}) || d.Source != RequirementsFile || d.Hashed {
		t.Errorf("constraints %q, source %q, hashed %v", d.Constraints, d.Source, d.Hashed)
	}
	if len(d.Wheels) != 1 || d.Wheels[0].Name != "a-1.0-py3-none-any.whl" || len(d.Wheels[0].SHA256) != 64 {
		t.Errorf("wheels %+v", d.Wheels)
	}
	if got := installLines(d); !slices.Contains(got, "a") {
		t.Errorf("a vendored wheel no requirement names is not installed: %q", got)
	}
}

func TestReadHashed(t *testing.T) {
	d, err := Read(project(t, map[string]string{"requirements.txt": "a==1.0 \\\n  --hash=sha256:aaaa\nb==2.0 --hash=sha256:bbbb\n"}))
	if err != nil || !d.Hashed {
		t.Fatalf("Read = %+v, %v; want hashed", d, err)
	}
	_, err = Read(project(t, map[string]string{"requirements.txt": "a==1.0 --hash=sha256:aaaa\nb==2.0\n"}))
	if err == nil || !strings.Contains(err.Error(), "every one pinned") {
		t.Errorf("a half-hashed file: %v", err)
	}
}

func TestReadPyproject(t *testing.T) {
	d, err := Read(project(t, map[string]string{"pyproject.toml": "[project]\nname = \"x\"\ndependencies = [\"attrs>=22\", \"  httpx  \"]\n[tool.other]\nz = 1\n"}))
	if err != nil || !slices.Equal(d.Lines, []string{"attrs>=22", "httpx"}) || d.Source != PyprojectFile {
		t.Errorf("Read = %+v, %v", d, err)
	}
	// requirements.txt wins over pyproject.toml.
	d, err = Read(project(t, map[string]string{"pyproject.toml": "[project]\ndependencies = [\"a\"]\n", "requirements.txt": "b\n"}))
	if err != nil || !slices.Equal(d.Lines, []string{"b"}) {
		t.Errorf("both files: %+v, %v", d, err)
	}
	d, err = Read(t.TempDir())
	if err != nil || !d.Empty() || d.Source != "" {
		t.Errorf("no files: %+v, %v", d, err)
	}
}

func TestReadRefuses(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"index url":          {"requirements.txt": "--index-url https://evil.example/simple\na\n"},
		"extra index":        {"requirements.txt": "--extra-index-url=https://evil.example/simple\n"},
		"find links":         {"requirements.txt": "-f /srv/wheels\n"},
		"editable":           {"requirements.txt": "-e .\n"},
		"local path":         {"requirements.txt": "./mypkg\n"},
		"file url":           {"requirements.txt": "pkg @ file:///etc/passwd\n"},
		"include outside":    {"requirements.txt": "-r ../../etc/passwd\n"},
		"include loop":       {"requirements.txt": "-r a.txt\n", "a.txt": "-r requirements.txt\n"},
		"unknown option":     {"requirements.txt": "--install-option=--prefix=/\n"},
		"control characters": {"requirements.txt": "a\x00b\n"},
		"not utf-8":          {"requirements.txt": "caf\xe9\n"},
		"too large":          {"requirements.txt": strings.Repeat("a\n", maxFileBytes)},
		"bad toml":           {"pyproject.toml": "[project\n"},
		"toml not strings":   {"pyproject.toml": "[project]\ndependencies = [1, 2]\n"},
		"toml path":          {"pyproject.toml": "[project]\ndependencies = [\"../x\"]\n"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Read(project(t, files))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Read = %v, want a *pyenv.Error", err)
			}
			if strings.Contains(err.Error(), os.TempDir()) {
				t.Errorf("the error names a host path: %v", err)
			}
		})
	}
}

func TestKeyIsOfTheSet(t *testing.T) {
	in := Interpreter{Name: "3.11", Version: "3.11.2 (main) [GCC 12]", Platform: "linux-x86_64 cpython-311"}
	a := Key(Deps{Lines: []string{"a==1", "b==2"}}, in)
	if b := Key(Deps{Lines: []string{"b==2", "a==1"}}, in); a != b {
		t.Error("the order of requirements changes the key")
	}
	for name, other := range map[string]string{
		"another version":    Key(Deps{Lines: []string{"a==1", "b==3"}}, in),
		"a constraint":       Key(Deps{Lines: []string{"a==1", "b==2"}, Constraints: []string{"c<2"}}, in),
		"a vendored wheel":   Key(Deps{Lines: []string{"a==1", "b==2"}, Wheels: []Wheel{{Name: "w.whl", SHA256: "00"}}}, in),
		"another python":     Key(Deps{Lines: []string{"a==1", "b==2"}}, Interpreter{Version: "3.12.0", Platform: in.Platform}),
		"another platform":   Key(Deps{Lines: []string{"a==1", "b==2"}}, Interpreter{Version: in.Version, Platform: "linux-aarch64"}),
		"lines split freely": Key(Deps{Lines: []string{"a==1b==2"}}, in),
	} {
		if other == a {
			t.Errorf("%s does not change the key", name)
		}
	}
}

func TestProbe(t *testing.T) {
	in, err := Probe(t.Context(), "", "/usr/bin/python3")
	if err != nil {
		t.Fatalf("Debian's /usr/bin/python3 is missing (scripts/deps.sh installs it): %v", err)
	}
	if !strings.HasPrefix(in.Name, "3.") || in.Version == "" || !strings.Contains(in.Platform, "linux") {
		t.Errorf("Probe = %+v", in)
	}
	if _, err := Probe(t.Context(), "", "/nonexistent/python"); err == nil {
		t.Error("probing a missing interpreter succeeded")
	}
}
