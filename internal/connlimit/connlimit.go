// Package connlimit caps the TCP connections a listener holds open, in
// total and per client IP address, so that one client (a slowloris
// opening connections and never finishing a request, say) cannot use up
// the server's file descriptors and goroutines. A connection over a cap is
// closed as soon as it is accepted — the client sees a reset or EOF — and
// Accept goes on to the next one; it never blocks the listener. IPv6
// clients are counted per /64, since one host usually has a whole /64.
// net/http's own timeouts (ReadHeaderTimeout and friends) then bound how
// long each admitted connection can idle.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Limits are the caps; zero means no cap.
type Limits struct {
	Total int // connections open at once
	PerIP int // connections open at once from one address (/64 for IPv6)
}

// Listener is a net.Listener that enforces Limits.
type Listener struct {
	net.Listener
	lim Limits

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int

	refused atomic.Uint64
	// OnRefuse, if set, is called (without locks held) with the client's
	// address key for every connection refused.
	OnRefuse func(ip netip.Addr, total bool)
}

// Wrap returns l with lim enforced.
func Wrap(l net.Listener, lim Limits) *Listener {
	return &Listener{Listener: l, lim: lim, perIP: map[netip.Addr]int{}}
}

// Refused returns how many connections were refused so far.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Open returns the connections open now, in total and from ip's group.
func (l *Listener) Open(ip netip.Addr) (total, fromIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perIP[Group(ip)]
}

// Accept returns the next connection within the caps.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := Group(peerAddr(c))
		if over, total := l.admit(ip); over {
			l.refused.Add(1)
			c.Close()
			if l.OnRefuse != nil {
				l.OnRefuse(ip, total)
			}
			continue
		}
		return &conn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

// admit counts a connection from ip, or reports that a cap refuses it.
func (l *Listener) admit(ip netip.Addr) (over, total bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Total > 0 && l.total >= l.lim.Total {
		return true, true
	}
	if l.lim.PerIP > 0 && l.perIP[ip] >= l.lim.PerIP {
		return true, false
	}
	l.total++
	l.perIP[ip]++
	return false, false
}

func (l *Listener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
}

// Group maps an address to what is counted together: IPv4 (and
// IPv4-mapped IPv6) addresses as they are, IPv6 addresses by their /64.
func Group(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

func peerAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr()
	}
	return netip.Addr{} // not TCP: all such connections count as one client
}

// conn releases its slot once, when closed.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
