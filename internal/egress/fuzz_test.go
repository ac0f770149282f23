package egress

import (
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/core"
)

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"example.com:443", "[::1]:80", "1.2.3.4:1", "user@x:1", "a..b:1",
		"EXAMPLE.com.:8080", "0x7f.1:80", "[::ffff:10.0.0.1]:443", "xn--bcher-kva.example", "[fe80::1%25x]:1"} {
		f.Add(s, 0)
		f.Add(s, 80)
	}
	f.Fuzz(func(t *testing.T, s string, def int) {
		if def < 0 || def > 65535 {
			def = 80
		}
		tg, err := ParseTarget(s, def)
		if err != nil {
			return
		}
		if tg.Port < 1 || tg.Port > 65535 || tg.Host == "" {
			t.Fatalf("ParseTarget(%q): bad result %+v", s, tg)
		}
		if strings.ContainsAny(tg.Host, "@/%[] ") || strings.ToLower(tg.Host) != tg.Host {
			t.Fatalf("ParseTarget(%q): host %q not normalised", s, tg.Host)
		}
		if tg.IP.IsValid() != (tg.IP.String() == tg.Host) {
			t.Fatalf("ParseTarget(%q): IP %v and host %q disagree", s, tg.IP, tg.Host)
		}
		again, err := ParseTarget(tg.String(), 0)
		if err != nil || again != tg {
			t.Fatalf("ParseTarget(%q) = %+v does not round-trip: %+v %v", s, tg, again, err)
		}
	})
}

func FuzzMatch(f *testing.F) {
	f.Add("a.example.com:443", "*.example.com", 0)
	f.Add("example.com:443", "*.example.com", 0)
	f.Add("example.com:80", "example.com", 80)
	f.Add("xexample.com:443", "*.example.com", 443)
	f.Add("[::1]:443", "::1", 443)
	f.Fuzz(func(t *testing.T, target, ruleHost string, port int) {
		tg, err := ParseTarget(target, 0)
		if err != nil {
			return
		}
		r := core.EgressRule{Host: ruleHost}
		if port != 0 {
			r.Ports = []int{port}
		}
		pol, _ := compilePolicy([]core.EgressRule{r})
		ok, reason := pol.match(tg)
		if !ok {
			if reason != reasonHostNotAllowed && reason != reasonPortNotAllowed {
				t.Fatalf("match: unknown reason %q", reason)
			}
			return
		}
		if len(pol.rules) != 1 {
			t.Fatalf("match(%q) allowed with no valid rule %q", target, ruleHost)
		}
		cr := pol.rules[0]
		if cr.suffix != "" {
			if tg.Host == cr.suffix || !strings.HasSuffix(tg.Host, "."+cr.suffix) {
				t.Fatalf("rule %q matched %q", ruleHost, tg.Host)
			}
		} else if tg.Host != cr.exact {
			t.Fatalf("rule %q matched %q", ruleHost, tg.Host)
		}
		if port == 0 && tg.Port != 80 && tg.Port != 443 || port != 0 && tg.Port != port {
			t.Fatalf("rule %q port %d matched port %d", ruleHost, port, tg.Port)
		}
		if strings.Contains(ruleHost, "*") && !strings.HasPrefix(strings.TrimSpace(ruleHost), "*.") {
			t.Fatalf("malformed wildcard %q matched %q", ruleHost, tg.Host)
		}
	})
}
