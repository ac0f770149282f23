package connlimit

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// serve accepts on l and holds every connection until the test ends,
// counting what it got.
func serve(t *testing.T, lim Limits) (*Listener, string, chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Wrap(ln, lim)
	got := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			got <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		close(got)
		for c := range got {
			c.Close()
		}
	})
	return l, ln.Addr().String(), got
}

// refused reports whether the server closed c at once.
func refused(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false // still open: admitted
	}
	return err == io.EOF || err != nil
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPerIPCap(t *testing.T) {
	l, addr, got := serve(t, Limits{PerIP: 3})
	var held []net.Conn
	for i := range 3 {
		c := dial(t, addr)
		if refused(t, c) {
			t.Fatalf("connection %d refused under the cap", i)
		}
		held = append(held, c)
	}
	if c := dial(t, addr); !refused(t, c) {
		t.Error("a 4th connection from one address was admitted with PerIP 3")
	}
	if l.Refused() != 1 {
		t.Errorf("Refused = %d, want 1", l.Refused())
	}
	// Closing one (on the server side, as net/http does when a client
	// goes away) frees its slot.
	(<-got).Close()
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, n := l.Open(netip.MustParseAddr("127.0.0.1")); n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed connection's slot was not released")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c := dial(t, addr); refused(t, c) {
		t.Error("a connection after one closed was refused")
	}
}

func TestTotalCap(t *testing.T) {
	l, addr, _ := serve(t, Limits{Total: 2})
	dial(t, addr)
	dial(t, addr)
	if c := dial(t, addr); !refused(t, c) {
		t.Error("a 3rd connection was admitted with Total 2")
	}
	if total, _ := l.Open(netip.Addr{}); total != 2 {
		t.Errorf("Open total = %d, want 2", total)
	}
}

func TestGroup(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::",
		"2001:db8:1:3::1":      "2001:db8:1:3::",
		"::1":                  "::",
		"fe80::1%eth0":         "fe80::",
	} {
		if got := Group(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("Group(%s) = %s, want %s", in, got, want)
		}
	}
}
