package tlsconf

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// CheckBind judges a listen address before the server binds it. On a
// loopback address (localhost, 127.0.0.0/8, ::1) anything goes. Any other
// address (also "", 0.0.0.0, :: and host names other than localhost, whose
// addresses could change) reaches the network, so:
//
//   - without authentication it returns an error: anyone who can reach the
//     address could use the server;
//   - without TLS it returns a warning for the operator, since credentials
//     and agent data would cross the network in clear text.
//
// An address that is not host:port is an error.
func CheckBind(addr string, tlsOn bool, authOn bool) (warning string, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: want host:port, like 127.0.0.1:8080: %w", addr, err)
	}
	if isLoopback(host) {
		return "", nil
	}
	where := "all interfaces"
	if host != "" {
		where = host
	}
	if !authOn {
		return "", fmt.Errorf("refusing to listen on %s (%s) with authentication disabled: anyone who can reach it could invoke agents and read their data; enable authentication, or listen on loopback (127.0.0.1 or localhost)", addr, where)
	}
	if !tlsOn {
		return fmt.Sprintf("listening on %s (%s) without TLS: credentials and agent data travel in clear text; use --tls-cert and --tls-key, or listen on loopback behind a TLS-terminating proxy", addr, where), nil
	}
	return "", nil
}

// isLoopback reports whether a listen host can only be reached from this
// machine. Host names other than localhost count as reachable, and so does
// anything in doubt.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" { // a zone on a loopback address is odd enough to doubt
		return false
	}
	return ip.Unmap().IsLoopback()
}
