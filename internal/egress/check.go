package egress

import (
	"net/netip"

	"github.com/runagent/runagent/internal/core"
)

// Allows reports whether an agent's allow rules let a connection to t
// through, as the proxy's policy decides it (rules that cannot match
// anything are ignored). Other parts of the server that connect on an
// agent's behalf — its completion webhooks — apply the same rules.
func Allows(rules []core.EgressRule, t Target) bool {
	p, _ := compilePolicy(rules)
	ok, _ := p.match(t)
	return ok
}

// ForbiddenAddr reports whether a is an address the proxy does not dial
// unless an administrator allowed it (private, loopback, link-local,
// metadata, …, also in IPv4-mapped, NAT64 and 6to4 form), and which kind
// it is.
func ForbiddenAddr(a netip.Addr) (kind string, forbidden bool) { return forbiddenAddr(a) }
