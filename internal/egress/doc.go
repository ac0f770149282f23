// Package egress is the host-side egress proxy of runagent sandboxes.
//
// A sandbox's network namespace holds only loopback. The supervisor inside
// it listens on 127.0.0.1:3128 and hands every connection to Relay, which
// forwards it to a per-sandbox unix socket served by a Listener of this
// package. The proxy therefore knows which sandbox a connection came from by
// the socket it arrived on, and applies that sandbox's policy:
//
//   - Default deny. Only targets named by the sandbox's allow rules
//     (core.EgressRule) are reachable: "host" matches exactly, "*.suffix"
//     matches any subdomain of suffix but not the bare suffix. A rule with
//     no ports allows 80 and 443.
//   - Names are the policy. Host names are normalised (lower case, one
//     trailing dot dropped; internationalised names only in punycode
//     form, raw non-ASCII is refused) before matching, rules likewise. IP-literal
//     targets are refused unless the address is in Config.AllowPrefixes
//     and a rule names that literal. Targets with userinfo, percent signs,
//     zones or numeric-looking last labels ("127.1", "0x7f000001") are
//     rejected as malformed.
//   - The resolved addresses are checked again: if ANY address of the
//     answer is private, loopback, link-local, unspecified, multicast,
//     CGNAT, reserved, documentation or a cloud metadata address (also in
//     IPv4-mapped, NAT64 and 6to4 forms) and not in Config.AllowPrefixes,
//     the request is refused. The proxy then dials the vetted addresses
//     themselves, never the name, so DNS rebinding cannot swap in another
//     address between check and use.
//   - Every decision is logged at Info with the fields sandbox, agent,
//     host, port, ip, decision (allow, deny or error) and reason; a denial
//     is also an egress_denied security event. A name of an allowed host
//     that does not resolve is an error, not a denial: no event (it is an
//     outage or a typo, not an attempt to get out).
//   - Clients get a short status, the constant reason in X-Egress-Reason,
//     and in the body and X-Runagent-Egress (`denied; reason="host not on
//     the allow-list: example.org:443"`, `failed; reason="…"` for 5xx)
//     what the agent's developer can act on: the target as the proxy
//     parsed it, never a resolved address ("resolved to a private or
//     internal address", not which) or an internal error.
//
// The protocol is HTTP/1.1: CONNECT host:port for TLS (and anything else
// tunnelled), and plain forward proxying of absolute-form "http://" requests.
// Plain requests keep the client connection alive between requests (each
// request is checked again and gets its own upstream connection, which is
// closed after the response; an idle client connection is closed after
// Config.HeaderTimeout); hop-by-hop headers, Expect and Proxy-Authorization
// are removed, X-Forwarded-For is never added, the Host header is set from
// the request URI, 1xx interim responses are dropped. Anything else
// (origin-form requests, other schemes, garbage) gets 400; a request header
// over Config.MaxHeaderBytes gets 431; a client that does not finish its
// header within Config.HeaderTimeout is dropped; a tunnel or request with no
// traffic for Config.IdleTimeout is closed.
//
// Status codes: 403 for policy denials, 400 for malformed targets, 429 over
// MaxConns, 502 when the name does not resolve or the upstream fails. A
// sandbox whose Network.Mode is not "egress" still gets a Listener, which
// refuses (and logs) everything.
//
// Caps per sandbox: concurrent client connections (MaxConns; excess gets
// 429), bandwidth (one token bucket shared by all connections of the
// sandbox, counting bytes in both directions, headers included, as they
// cross the upstream connection) and total bytes (Config.MaxBytes; the
// connection that would exceed it is closed).
package egress
