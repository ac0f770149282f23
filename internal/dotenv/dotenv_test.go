package dotenv

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	vars, err := Parse(strings.NewReader("# comment\nexport A=1\nB=\"two words\"\nC='single $A'\nD=${A}x\n\nE=\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "single $A", "D": "1x", "E": ""}
	if len(vars) != len(want) {
		t.Errorf("parsed %v, want %v", vars, want)
	}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
	for _, bad := range []string{"PATH=/bin\n", "RUNAGENT_X=1\n", strings.Repeat("A", MaxSize+1)} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%.20q) accepted", bad)
		}
	}
	// The error never quotes the file, which holds secrets.
	if _, err := Parse(strings.NewReader("KEY=\"sk-supersecret")); err == nil || strings.Contains(err.Error(), "supersecret") {
		t.Errorf("unterminated quote: %v", err)
	}
}

// FuzzParse: no input panics; what is accepted has valid secret
// names, and errors never quote the input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"A=1\n", "export B='x'\n", "C=\"multi\nline\"\n", "D=${C}\n", "=x", "E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vars, err := Parse(strings.NewReader(s))
		if err != nil {
			if len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		for name := range vars {
			if name == "" || strings.ContainsAny(name, "= \n") {
				t.Fatalf("accepted variable name %q", name)
			}
		}
	})
}
