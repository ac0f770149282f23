package server

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePythons(t *testing.T) {
	tests := []struct {
		in   string
		want []PythonSpec
	}{
		{"/usr/bin/python3", []PythonSpec{{Path: "/usr/bin/python3"}}},
		{"python3", []PythonSpec{{Path: "python3"}}},
		{"3.11=/usr/bin/python3.11,3.12=/opt/py/bin/python3", []PythonSpec{{"3.11", "/usr/bin/python3.11"}, {"3.12", "/opt/py/bin/python3"}}},
		{" python3.12 = /opt/py/bin/python3 , py3.11=/usr/bin/python3.11 ", []PythonSpec{{"3.12", "/opt/py/bin/python3"}, {"3.11", "/usr/bin/python3.11"}}},
		{"/usr/bin/python3,3.12=/opt/py/bin/python3", []PythonSpec{{Path: "/usr/bin/python3"}, {"3.12", "/opt/py/bin/python3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePythons(tt.in)
			if err != nil {
				t.Fatalf("ParsePythons(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePythons(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	errs := []struct{ in, want string }{
		{"", "an empty interpreter"},
		{"3.11=/a,,3.12=/b", "an empty interpreter"},
		{"3.11=/a,", "an empty interpreter"},
		{"latest=/usr/bin/python3", `"latest" is not a Python version to name an interpreter by (such as 3.12)`},
		{"python=/usr/bin/python3", `"python" is not a Python version`},
		{"3.12.1=/opt/py/bin/python3", `"3.12.1" is not a Python version`},
		{"3.12=", "no path after the name"},
		{"3.12=/a,python3.12=/b", "two interpreters are named 3.12 (/a, /b)"},
	}
	for _, tt := range errs {
		t.Run("error "+tt.in, func(t *testing.T) {
			got, err := ParsePythons(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePythons(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParsePythons(f *testing.F) {
	for _, s := range []string{"/usr/bin/python3", "3.11=/usr/bin/python3.11,3.12=/opt/py/bin/python3", "py3.12=a=b", ",", "3.12=/a,3.12=/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		specs, err := ParsePythons(s)
		if err != nil {
			return
		}
		var parts []string
		for _, sp := range specs {
			parts = append(parts, sp.String())
		}
		again, err := ParsePythons(strings.Join(parts, ","))
		if err != nil {
			t.Fatalf("ParsePythons(%q) = %v, which does not parse again: %v", s, specs, err)
		}
		if diff := cmp.Diff(specs, again); diff != "" {
			t.Fatalf("round trip of %q (-first +again):\n%s", s, diff)
		}
	})
}

// pyenvPython is a second interpreter on this host, another minor
// version than Debian's (a pyenv build), or "" if there is none.
func pyenvPython(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"/root/.pyenv/versions/3.12.1/bin/python3.12"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func TestResolvePythons(t *testing.T) {
	const debian = "/usr/bin/python3"
	if _, err := os.Stat(debian); err != nil {
		t.Fatalf("Debian's %s is missing (scripts/deps.sh installs it): %v", debian, err)
	}
	got, err := resolvePythons(t.Context(), debian)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != majorMinor(got[0].Version) || !strings.HasPrefix(got[0].Name, "3.") {
		t.Errorf("resolvePythons(%s) = %+v, want one named by its version", debian, got)
	}
	v := got[0].Name
	if _, err := resolvePythons(t.Context(), "3.99="+debian); err == nil || !strings.Contains(err.Error(), "is Python "+got[0].Version+"; name it "+v) {
		t.Errorf("an interpreter named for another version: %v", err)
	}
	if _, err := resolvePythons(t.Context(), debian+","+v+"="+debian); err == nil || !strings.Contains(err.Error(), "are both Python "+v) {
		t.Errorf("one version twice: %v", err)
	}
	if _, err := resolvePythons(t.Context(), "3.12=/nonexistent/python3"); err == nil || !strings.Contains(err.Error(), "--python 3.12=/nonexistent/python3: find the Python interpreter") {
		t.Errorf("an interpreter that does not exist: %v", err)
	}
	second := pyenvPython(t)
	if second == "" {
		t.Skip("no second Python on this machine (Debian 12 packages only 3.11; here it would be a pyenv build of 3.12): two interpreters cannot be resolved together")
	}
	got, err = resolvePythons(t.Context(), "3.12="+second+","+debian)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "3.12" || got[1].Name != v {
		t.Errorf("resolvePythons = %+v, want 3.12 then %s", got, v)
	}
	if s := pythonNames(got); s != "3.12 (default), "+v {
		t.Errorf("pythonNames = %q", s)
	}
}

func TestEffectivePythons(t *testing.T) {
	m := Config{DataDir: "/d", Python: " 3.11=/usr/bin/python3.11 ,python3.12=/opt/py/bin/python3"}.Effective()
	if diff := cmp.Diff([]string{"3.11=/usr/bin/python3.11", "3.12=/opt/py/bin/python3"}, m["python"]); diff != "" {
		t.Errorf("effective python (-want +got):\n%s", diff)
	}
}
