package sandbox

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckMounts(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	many := make([]Mount, MaxMounts+1)
	for i := range many {
		many[i] = Mount{Host: a, Guest: "/agent/m" + strings.Repeat("x", i)}
	}
	for _, tc := range []struct {
		name   string
		mounts []Mount
		errHas string // "" = accepted
	}{
		{"none", nil, ""},
		{"under agent", []Mount{{a, "/agent/memory"}}, ""},
		{"under home", []Mount{{a, "/tmp/.cache/mem"}}, ""},
		{"two disjoint", []Mount{{a, "/agent/one"}, {b, "/agent/two"}}, ""},
		{"prefix but not inside", []Mount{{a, "/agent/mem"}, {b, "/agent/memory"}}, ""},
		{"empty guest", []Mount{{a, ""}}, "no guest path"},
		{"relative", []Mount{{a, "agent/memory"}}, "not absolute"},
		{"dot dot", []Mount{{a, "/agent/../etc"}}, "not clean"},
		{"dot dot inside", []Mount{{a, "/agent/x/../y"}}, "not clean"},
		{"trailing slash", []Mount{{a, "/agent/memory/"}}, "not clean"},
		{"double slash", []Mount{{a, "/agent//memory"}}, "not clean"},
		{"the agent dir itself", []Mount{{a, "/agent"}}, "not below"},
		{"the home itself", []Mount{{a, "/tmp"}}, "not below"},
		{"root", []Mount{{a, "/"}}, "not below"},
		{"system path", []Mount{{a, "/usr/lib"}}, "not below"},
		{"env", []Mount{{a, "/env/x"}}, "not below"},
		{"out", []Mount{{a, "/out"}}, "not below"},
		{"proc", []Mount{{a, "/proc/self"}}, "not below"},
		{"lookalike prefix", []Mount{{a, "/agents/x"}}, "not below"},
		{"nul", []Mount{{a, "/agent/a\x00b"}}, "NUL"},
		{"too long", []Mount{{a, "/agent/" + strings.Repeat("x", maxGuestPath)}}, "bytes"},
		{"same guest twice", []Mount{{a, "/agent/m"}, {b, "/agent/m"}}, "overlaps"},
		{"nested", []Mount{{a, "/agent/m"}, {b, "/agent/m/inner"}}, "overlaps"},
		{"nested reversed", []Mount{{a, "/agent/m/inner"}, {b, "/agent/m"}}, "overlaps"},
		{"too many", many, "at most"},
		{"host missing", []Mount{{filepath.Join(dir, "nope"), "/agent/m"}}, "no such file"},
		{"host a file", []Mount{{file, "/agent/m"}}, "not a directory"},
		{"host a symlink", []Mount{{link, "/agent/m"}}, "symbolic link"},
		{"host relative", []Mount{{"rel/dir", "/agent/m"}}, "not a clean absolute path"},
		{"host unclean", []Mount{{a + "/../b", "/agent/m"}}, "not a clean absolute path"},
		{"host empty", []Mount{{"", "/agent/m"}}, "not a clean absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckMounts(tc.mounts)
			switch {
			case tc.errHas == "" && err != nil:
				t.Errorf("CheckMounts(%q) = %v, want accepted", tc.mounts, err)
			case tc.errHas != "" && err == nil:
				t.Errorf("CheckMounts(%q) accepted, want an error with %q", tc.mounts, tc.errHas)
			case tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas):
				t.Errorf("CheckMounts(%q) = %v, want an error with %q", tc.mounts, err, tc.errHas)
			}
		})
	}
}

// FuzzCheckMounts: whatever two guest paths CheckMounts accepts are clean,
// strictly below the agent's or home directory, and apart.
func FuzzCheckMounts(f *testing.F) {
	for _, s := range [][2]string{
		{"/agent/memory", "/tmp/cache"},
		{"/agent/../etc", "/agent/x"},
		{"/agent/m", "/agent/m/n"},
		{"/agent", "/tmp/"},
		{"/agent//x", "/agent/./y"},
		{"/agentx/y", "/proc/1"},
	} {
		f.Add(s[0], s[1])
	}
	host := f.TempDir()
	f.Fuzz(func(t *testing.T, g1, g2 string) {
		if CheckMounts([]Mount{{host, g1}, {host, g2}}) != nil {
			return
		}
		for _, g := range []string{g1, g2} {
			if path.Clean(g) != g || strings.Contains(g+"/", "/../") || strings.ContainsRune(g, 0) {
				t.Fatalf("accepted guest path %q is not clean", g)
			}
			if !strings.HasPrefix(g, GuestAgentDir+"/") && !strings.HasPrefix(g, GuestHomeDir+"/") {
				t.Fatalf("accepted guest path %q is outside %s and %s", g, GuestAgentDir, GuestHomeDir)
			}
		}
		if within(g1, g2) || within(g2, g1) {
			t.Fatalf("accepted overlapping guest paths %q and %q", g1, g2)
		}
	})
}
