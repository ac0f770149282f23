package egress

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/core"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		defPort int
		want    Target
		err     error
	}{
		{"example.com:443", 0, Target{Host: "example.com", Port: 443}, nil},
		{"Example.COM.:443", 0, Target{Host: "example.com", Port: 443}, nil},
		{"xn--bcher-kva.example:443", 0, Target{Host: "xn--bcher-kva.example", Port: 443}, nil},
		{"example.com", 80, Target{Host: "example.com", Port: 80}, nil},
		{"1.2.3.4:8080", 0, Target{Host: "1.2.3.4", Port: 8080, IP: netip.MustParseAddr("1.2.3.4")}, nil},
		{"[::1]:443", 0, Target{Host: "::1", Port: 443, IP: netip.MustParseAddr("::1")}, nil},
		{"[::FFFF:127.0.0.1]:443", 0, Target{Host: "::ffff:127.0.0.1", Port: 443, IP: netip.MustParseAddr("::ffff:127.0.0.1")}, nil},
		{"example.com", 0, Target{}, errNoPort},
		{"user@example.com:443", 0, Target{}, errUserinfo},
		{"user:pw@example.com:443", 0, Target{}, errUserinfo},
		{"example.com:", 0, Target{}, errBadPort},
		{"example.com:0", 0, Target{}, errBadPort},
		{"example.com:65536", 0, Target{}, errBadPort},
		{"example.com:+443", 0, Target{}, errBadPort},
		{"example.com:0443", 0, Target{}, nil},
		{"::1:443", 0, Target{}, errBadTarget},
		{"[fe80::1%eth0]:443", 0, Target{}, errBadTarget},
		{"[1.2.3.4]:443", 0, Target{}, errBadTarget},
		{"exa mple.com:443", 0, Target{}, errBadTarget},
		{"example.com/x:443", 0, Target{}, errBadTarget},
		{"ex%41mple.com:443", 0, Target{}, errBadTarget},
		{"bücher.example:443", 0, Target{}, errBadHost},
		{"\u212aample.com:443", 0, Target{}, errBadHost},
		{"a..b:443", 0, Target{}, errBadHost},
		{"-a.com:443", 0, Target{}, errBadHost},
		{"a_b.com:443", 0, Target{}, errBadHost},
		{"127.1:443", 0, Target{}, errBadHost},
		{"2130706433:443", 0, Target{}, errBadHost},
		{"0x7f000001:443", 0, Target{}, errBadHost},
		{"0x7f.0.0.1:443", 0, Target{}, errBadHost},
		{"01.02.03.04:443", 0, Target{}, errBadHost},
		{":443", 0, Target{}, errBadHost},
		{strings.Repeat("a", 64) + ".com:443", 0, Target{}, errBadHost},
	}
	for _, tc := range tests {
		got, err := ParseTarget(tc.in, tc.defPort)
		if tc.in == "example.com:0443" { // leading zeros are still the number
			if err != nil || got.Port != 443 {
				t.Errorf("ParseTarget(%q): got %+v %v", tc.in, got, err)
			}
			continue
		}
		if err != tc.err {
			t.Errorf("ParseTarget(%q): got error %v, want %v", tc.in, err, tc.err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("ParseTarget(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestMatch(t *testing.T) {
	pol, errs := compilePolicy([]core.EgressRule{
		{Host: "api.openai.com"},
		{Host: "*.example.com", Ports: []int{8443}},
		{Host: "Mixed.Case.ORG."},
		{Host: "*"},                      // dropped
		{Host: "a.*.com"},                // dropped
		{Host: "x.com", Ports: []int{0}}, // dropped
		{Host: "127.0.0.1", Ports: []int{9000}},
		{Host: "[::1]", Ports: []int{9000}},
	})
	if len(errs) != 3 {
		t.Errorf("compile errors: got %v, want 3", errs)
	}
	tests := []struct {
		target string
		ok     bool
		reason string
	}{
		{"api.openai.com:443", true, ""},
		{"api.openai.com:80", true, ""},
		{"api.openai.com:8080", false, reasonPortNotAllowed},
		{"openai.com:443", false, reasonHostNotAllowed},
		{"xapi.openai.com:443", false, reasonHostNotAllowed},
		{"a.example.com:8443", true, ""},
		{"a.b.example.com:8443", true, ""},
		{"example.com:8443", false, reasonHostNotAllowed},
		{"badexample.com:8443", false, reasonHostNotAllowed},
		{"a.example.com:443", false, reasonPortNotAllowed},
		{"mixed.case.org:443", true, ""},
		{"127.0.0.1:9000", true, ""},
		{"[::1]:9000", true, ""},
		{"[::ffff:127.0.0.1]:9000", false, reasonHostNotAllowed},
		{"x.com:443", false, reasonHostNotAllowed},
	}
	for _, tc := range tests {
		tg, err := ParseTarget(tc.target, 0)
		if err != nil {
			t.Fatalf("ParseTarget(%q): %v", tc.target, err)
		}
		ok, reason := pol.match(tg)
		if ok != tc.ok || (!ok && reason != tc.reason) {
			t.Errorf("match(%q): got %v %q, want %v %q", tc.target, ok, reason, tc.ok, tc.reason)
		}
	}
}

func TestForbiddenAddr(t *testing.T) {
	bad := []string{
		"0.0.0.0", "0.1.2.3", "10.0.0.5", "127.0.0.1", "127.255.0.1", "169.254.169.254", "172.16.0.1",
		"192.168.1.1", "100.64.0.1", "100.100.100.200", "224.0.0.1", "255.255.255.255", "240.0.0.1",
		"198.18.0.1", "192.0.0.1", "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"::127.0.0.1", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "64:ff9b::a00:1", "64:ff9b::7f00:1",
		"2002:a00:1::1", "2002:7f00:1::", "2001:db8::1", "fec0::1",
	}
	for _, s := range bad {
		if _, forbidden := forbiddenAddr(netip.MustParseAddr(s)); !forbidden {
			t.Errorf("forbiddenAddr(%s): got allowed, want forbidden", s)
		}
	}
	good := []string{"1.1.1.1", "8.8.8.8", "93.184.216.34", "100.128.0.1", "::ffff:1.1.1.1",
		"2606:4700:4700::1111", "64:ff9b::101:101", "2002:101:101::1"}
	for _, s := range good {
		if r, forbidden := forbiddenAddr(netip.MustParseAddr(s)); forbidden {
			t.Errorf("forbiddenAddr(%s): got forbidden (%s), want allowed", s, r)
		}
	}
}
