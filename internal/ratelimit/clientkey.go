package ratelimit

import (
	"net/netip"
	"strings"
)

// ClientKey returns the rate-limit key for the client of a request:
// "ip:" and the address for IPv4, "ip:" and the /64 prefix for IPv6 (one
// host usually has a whole /64, so per-address limits would not hold it),
// or "ip:unknown" when no address can be found. See ClientAddr for which
// address that is.
func ClientKey(remoteAddr, xff string, trustedProxies []netip.Prefix) string {
	return AddrKey(ClientAddr(remoteAddr, xff, trustedProxies))
}

// AddrKey returns the rate-limit key for a, as ClientKey does.
func AddrKey(a netip.Addr) string {
	var buf [64]byte
	b := append(buf[:0], "ip:"...)
	switch {
	case !a.IsValid():
		b = append(b, "unknown"...)
	case a.Is4():
		b = a.AppendTo(b)
	default:
		p, _ := a.Prefix(64) // cannot fail for a valid IPv6 address
		b = p.AppendTo(b)
	}
	return string(b)
}

// ClientAddr returns the address of the client of a request whose direct
// peer is remoteAddr (http.Request.RemoteAddr: "ip:port" or a bare
// address) and whose X-Forwarded-For header is xff (several header lines
// joined with ","). The header is believed only as far as proxies in
// trustedProxies vouch for it: starting from the peer, while the current
// hop is a trusted proxy the next entry to its left is taken as the hop
// before it. The first untrusted hop is the client; if every hop is
// trusted, the leftmost one is. An entry that is not an address stops the
// walk at the trusted proxy that passed it on, so a malformed header keys
// on that proxy rather than on anything a client chose. IPv4-mapped IPv6
// addresses are unmapped and zones dropped. The result is the zero Addr
// only if remoteAddr is not an address.
func ClientAddr(remoteAddr, xff string, trustedProxies []netip.Prefix) netip.Addr {
	hop := parseHop(remoteAddr)
	if !hop.IsValid() {
		return netip.Addr{}
	}
	for trusted(hop, trustedProxies) && xff != "" {
		var entry string
		if i := strings.LastIndexByte(xff, ','); i >= 0 {
			xff, entry = xff[:i], xff[i+1:]
		} else {
			xff, entry = "", xff
		}
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		prev := parseHop(entry)
		if !prev.IsValid() {
			break
		}
		hop = prev
	}
	return hop
}

// parseHop parses "addr", "ipv4:port" or "[ipv6]:port". It picks the
// form by its syntax rather than by trying each: a failed parse allocates
// its error, and this runs on every request.
func parseHop(s string) netip.Addr {
	var a netip.Addr
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}
		}
		a = ap.Addr()
	} else {
		var err error
		if a, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}
		}
	}
	return a.WithZone("").Unmap()
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
