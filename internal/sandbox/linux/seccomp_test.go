//go:build linux

package linux

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestSeccompGolden keeps the assembled filters in testdata, so that a
// policy change shows in review. Run with -update after a deliberate one.
func TestSeccompGolden(t *testing.T) {
	for name, p := range map[string]seccomp.Policy{
		"seccomp":              Policy(),
		"seccomp-no-processes": NoProcessCreationPolicy(),
	} {
		t.Run(name, func(t *testing.T) {
			prog, err := Program(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw(prog); err != nil {
				t.Fatal(err)
			}
			// A readable header, then the program.
			var header strings.Builder
			for _, g := range p.Syscalls {
				fmt.Fprintf(&header, "# %v (%#x): %s\n", g.Action&0xffff0000, uint32(g.Action), strings.Join(g.Names, " "))
				for _, c := range g.NamesWithCondtions {
					fmt.Fprintf(&header, "#   %s if %+v\n", c.Name, c.Conditions)
				}
			}
			got := header.String() + Dump(prog)
			path := filepath.Join("testdata", name+"_"+runtime.GOARCH+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Skipf("no golden file for %s (run with -update): %v", runtime.GOARCH, err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s program changed (-golden +got); rerun with -update if intended:\n%s", name, diff)
			}
		})
	}
}
