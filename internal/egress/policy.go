package egress

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/runagent/runagent/internal/core"
)

// Target is a parsed request target.
type Target struct {
	// Host is a normalised host name (ASCII, punycode, lower case, no
	// trailing dot) or, for an IP literal, the address in canonical form
	// without brackets.
	Host string
	Port int
	// IP is the address when Host is an IP literal, else the zero Addr.
	IP netip.Addr
}

// String is host:port, with brackets around IPv6 literals.
func (t Target) String() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// Target parse errors. Their text is safe to show to clients.
var (
	errUserinfo  = errors.New("userinfo not allowed in target")
	errBadTarget = errors.New("malformed target")
	errNoPort    = errors.New("target needs a port")
	errBadPort   = errors.New("bad port")
	errBadHost   = errors.New("bad host name")
)

// ParseTarget parses an authority ("host:port", "[v6]:port") as found in a
// CONNECT request target or an http:// URI. defaultPort is used when the
// port is missing; 0 means the port is required.
func ParseTarget(authority string, defaultPort int) (Target, error) {
	if authority == "" || len(authority) > 300 {
		return Target{}, errBadTarget
	}
	if strings.Contains(authority, "@") {
		return Target{}, errUserinfo
	}
	for i := 0; i < len(authority); i++ {
		b := authority[i]
		if b <= ' ' || b == 0x7f || strings.IndexByte(`/\?#%"<>{}|^`+"`", b) >= 0 {
			return Target{}, errBadTarget
		}
	}
	var host, port string
	bracketed := false
	if authority[0] == '[' {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return Target{}, errBadTarget
		}
		host, bracketed = authority[1:end], true
		rest := authority[end+1:]
		switch {
		case rest == "":
		case rest[0] == ':':
			port = rest[1:]
			if port == "" {
				return Target{}, errBadPort
			}
		default:
			return Target{}, errBadTarget
		}
	} else {
		switch strings.Count(authority, ":") {
		case 0:
			host = authority
		case 1:
			i := strings.IndexByte(authority, ':')
			host, port = authority[:i], authority[i+1:]
			if port == "" {
				return Target{}, errBadPort
			}
		default: // bare IPv6 without brackets
			return Target{}, errBadTarget
		}
	}
	t := Target{}
	if port == "" {
		if defaultPort == 0 {
			return Target{}, errNoPort
		}
		t.Port = defaultPort
	} else {
		p, err := parsePort(port)
		if err != nil {
			return Target{}, err
		}
		t.Port = p
	}
	if bracketed {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return Target{}, errBadTarget
		}
		t.Host, t.IP = a.String(), a
		return t, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return Target{}, errBadTarget
		}
		t.Host, t.IP = a.String(), a
		return t, nil
	}
	name, err := normalizeName(host)
	if err != nil {
		return Target{}, err
	}
	t.Host = name
	return t, nil
}

func parsePort(s string) (int, error) {
	if len(s) > 5 {
		return 0, errBadPort
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errBadPort
		}
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, errBadPort
	}
	return p, nil
}

// normalizeName turns a host name into its lookup form: lower case, one
// trailing dot dropped, DNS label rules checked (LDH labels of 1–63
// characters, 253 in all). Internationalised names must arrive in their
// ASCII (punycode, "xn--") form, as HTTP clients send them; raw non-ASCII
// names are refused rather than mapped, because UTS #46 mapping needs
// tables this module does not carry and a half-right mapping would let a
// name match a rule it should not. Names whose last label is numeric or hex-looking are
// refused: resolvers may read them as IPv4 addresses ("127.1",
// "0x7f000001"), and no real top-level domain looks like that.
func normalizeName(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", errBadHost
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return "", errBadHost
		}
	}
	a := strings.ToLower(s)
	if a == "" || len(a) > 253 {
		return "", errBadHost
	}
	labels := strings.Split(a, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", errBadHost
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", errBadHost
			}
		}
	}
	if numericLike(labels[len(labels)-1]) {
		return "", errBadHost
	}
	return a, nil
}

func numericLike(l string) bool {
	if strings.HasPrefix(l, "0x") {
		l = l[2:]
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// rule is a compiled core.EgressRule.
type rule struct {
	src    string // the rule as written, for logs
	exact  string // normalised name or canonical IP literal
	suffix string // for "*.suffix": the normalised suffix
	ports  []int
}

// policy is a sandbox's compiled allow list.
type policy struct {
	rules []rule
}

// compilePolicy compiles the allow rules. Rules that cannot match anything
// (bad syntax, a bare "*", "a.*.b") are dropped and returned as errors so
// the caller can log them.
func compilePolicy(allow []core.EgressRule) (policy, []error) {
	var p policy
	var errs []error
	for _, r := range allow {
		cr, err := compileRule(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.rules = append(p.rules, cr)
	}
	return p, errs
}

func compileRule(r core.EgressRule) (rule, error) {
	cr := rule{src: r.Host}
	h := strings.TrimSpace(r.Host)
	if suffix, ok := strings.CutPrefix(h, "*."); ok {
		n, err := normalizeName(suffix)
		if err != nil {
			return rule{}, errors.New("egress rule " + strconv.Quote(r.Host) + ": bad wildcard suffix")
		}
		cr.suffix = n
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
			cr.exact = a.String()
		} else if n, err := normalizeName(h); err == nil {
			cr.exact = n
		} else {
			return rule{}, errors.New("egress rule " + strconv.Quote(r.Host) + ": bad host")
		}
	}
	if len(r.Ports) == 0 {
		cr.ports = []int{80, 443}
	}
	for _, p := range r.Ports {
		if p < 1 || p > 65535 {
			return rule{}, errors.New("egress rule " + strconv.Quote(r.Host) + ": bad port " + strconv.Itoa(p))
		}
		cr.ports = append(cr.ports, p)
	}
	return cr, nil
}

func (r rule) matchHost(host string) bool {
	if r.suffix != "" {
		return len(host) > len(r.suffix) && strings.HasSuffix(host, r.suffix) && host[len(host)-len(r.suffix)-1] == '.'
	}
	return host == r.exact
}

// Denial reasons (shown to clients and logged).
const (
	reasonHostNotAllowed = "host not allowed"
	reasonPortNotAllowed = "port not allowed"
)

// match reports whether t is allowed by a rule, and why not.
func (p policy) match(t Target) (bool, string) {
	hostSeen := false
	for _, r := range p.rules {
		if !r.matchHost(t.Host) {
			continue
		}
		hostSeen = true
		for _, port := range r.ports {
			if port == t.Port {
				return true, "allowed by rule " + strconv.Quote(r.src)
			}
		}
	}
	if hostSeen {
		return false, reasonPortNotAllowed
	}
	return false, reasonHostNotAllowed
}

var forbiddenPrefixes = []struct {
	p      netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT) address"}, // includes 100.100.100.200 (Alibaba metadata)
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local address"}, // includes 169.254.169.254 (metadata)
	{netip.MustParsePrefix("172.16.0.0/12"), "private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved address"}, // includes 255.255.255.255
	{netip.MustParsePrefix("::/96"), "reserved address"},       // ::, ::1, IPv4-compatible
	{netip.MustParsePrefix("100::/64"), "discard address"},
	{netip.MustParsePrefix("2001::/32"), "Teredo address"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64 address"},
	{netip.MustParsePrefix("fc00::/7"), "private address"}, // includes fd00:ec2::254 (metadata)
	{netip.MustParsePrefix("fe80::/10"), "link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "multicast address"},
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// forbiddenAddr reports whether a is an address egress must not reach
// (unless an administrator allowed it), and which kind it is. IPv4-mapped
// addresses are judged by their IPv4 form; NAT64 (64:ff9b::/96) and 6to4
// (2002::/16) addresses by the IPv4 address they embed.
func forbiddenAddr(a netip.Addr) (string, bool) {
	if !a.IsValid() {
		return "invalid address", true
	}
	a = a.WithZone("").Unmap()
	if a.IsUnspecified() {
		return "unspecified address", true
	}
	if a.IsLoopback() {
		return "loopback address", true
	}
	if a.IsMulticast() {
		return "multicast address", true
	}
	if a.IsLinkLocalUnicast() {
		return "link-local address", true
	}
	if a.IsPrivate() {
		return "private address", true
	}
	for _, f := range forbiddenPrefixes {
		if f.p.Contains(a) {
			return f.reason, true
		}
	}
	if a.Is6() {
		b := a.As16()
		var v4 netip.Addr
		switch {
		case nat64Prefix.Contains(a):
			v4 = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(a):
			v4 = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if v4.IsValid() {
			if r, bad := forbiddenAddr(v4); bad {
				return r + " (embedded)", true
			}
		}
	}
	return "", false
}
