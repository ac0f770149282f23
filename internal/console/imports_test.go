package console

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

var (
	importRE = regexp.MustCompile(`(?s)import\s*\{([^}]*)\}\s*from\s*"/console/([^"]+)"`)
	exportRE = regexp.MustCompile(`export\s+(?:async\s+)?(?:function|const|let|class)\s+([A-Za-z_$][\w$]*)`)
)

// TestModuleImportsResolve: every name a console module imports from
// another is exported there, and the module is embedded, so that a helper
// moved or renamed (lists.js folded into dom.js) cannot leave a view that
// fails to load in the browser.
func TestModuleImportsResolve(t *testing.T) {
	exports := map[string]map[string]bool{}
	sources := map[string]string{}
	err := fs.WalkDir(embedded, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".js") {
			return err
		}
		b, err := embedded.ReadFile(path)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path, "assets/")
		sources[name] = string(b)
		exports[name] = map[string]bool{}
		for _, m := range exportRE.FindAllStringSubmatch(string(b), -1) {
			exports[name][m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sources["lists.js"]; ok {
		t.Error("lists.js is embedded: its helpers live in dom.js")
	}
	for name, src := range sources {
		for _, m := range importRE.FindAllStringSubmatch(src, -1) {
			from := m[2]
			ex, ok := exports[from]
			if !ok {
				t.Errorf("%s imports from /console/%s, which is not embedded", name, from)
				continue
			}
			for _, n := range strings.Split(m[1], ",") {
				n = strings.TrimSpace(n)
				if n == "" {
					continue
				}
				if !ex[n] {
					t.Errorf("%s imports %s from %s, which does not export it", name, n, from)
				}
			}
		}
	}
}
