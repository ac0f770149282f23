package executor

import (
	"cmp"
	"slices"
	"strings"
)

// minRedacted is the shortest secret value redacted from logs and error
// details: shorter ones ("1", "on") would blot out ordinary text.
const minRedacted = 4

// redactor replaces an invocation's secret values with [REDACTED:NAME] in
// what leaves the sandbox as text: logs and error details. A nil
// redactor changes nothing.
type redactor struct{ r *strings.Replacer }

func newRedactor(secrets map[string]string) *redactor {
	type pair struct{ name, value string }
	var ps []pair
	for name, v := range secrets {
		if len(v) >= minRedacted {
			ps = append(ps, pair{name, v})
		}
	}
	if len(ps) == 0 {
		return nil
	}
	// Longer values first: a value that contains another is replaced
	// whole. Ties by name, so the result does not depend on map order.
	slices.SortFunc(ps, func(a, b pair) int {
		if c := cmp.Compare(len(b.value), len(a.value)); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	args := make([]string, 0, 2*len(ps))
	for _, p := range ps {
		args = append(args, p.value, "[REDACTED:"+p.name+"]")
	}
	return &redactor{strings.NewReplacer(args...)}
}

func (d *redactor) apply(s string) string {
	if d == nil || s == "" {
		return s
	}
	return d.r.Replace(s)
}
