package ratelimit

import (
	"net/netip"
	"strings"
	"testing"
)

var testProxies = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
	netip.MustParsePrefix("127.0.0.1/32"),
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct {
		name, remote, xff string
		proxies           []netip.Prefix
		want              string
	}{
		{"ipv4 peer", "192.0.2.7:5123", "", nil, "ip:192.0.2.7"},
		{"bare address", "192.0.2.7", "", nil, "ip:192.0.2.7"},
		{"ipv6 grouped by /64", "[2001:db8:1:2:3:4:5:6]:443", "", nil, "ip:2001:db8:1:2::/64"},
		{"same /64 same key", "[2001:db8:1:2::ffff]:1", "", nil, "ip:2001:db8:1:2::/64"},
		{"ipv4-mapped ipv6 is ipv4", "[::ffff:192.0.2.7]:80", "", nil, "ip:192.0.2.7"},
		{"zone dropped", "[fe80::1%eth0]:80", "", nil, "ip:fe80::/64"},
		{"unparsable peer", "@", "", nil, "ip:unknown"},
		{"empty peer", "", "198.51.100.1", testProxies, "ip:unknown"},

		{"xff ignored without trusted proxies", "192.0.2.7:1", "198.51.100.1", nil, "ip:192.0.2.7"},
		{"xff ignored from untrusted peer", "192.0.2.7:1", "198.51.100.1", testProxies, "ip:192.0.2.7"},
		{"xff from trusted peer", "10.1.2.3:1", "198.51.100.1", testProxies, "ip:198.51.100.1"},
		{"rightmost untrusted wins over spoofed left", "10.1.2.3:1", "6.6.6.6, 198.51.100.1", testProxies, "ip:198.51.100.1"},
		{"trusted hops skipped", "10.1.2.3:1", "6.6.6.6, 198.51.100.1, 10.9.9.9, 127.0.0.1", testProxies, "ip:198.51.100.1"},
		{"spoofed trusted address left of client", "10.1.2.3:1", "10.0.0.1, 198.51.100.1", testProxies, "ip:198.51.100.1"},
		{"all hops trusted: leftmost", "10.1.2.3:1", "10.0.0.5,10.0.0.6", testProxies, "ip:10.0.0.5"},
		{"ipv6 client through proxy", "[fd00::1]:1", "2001:db8:a:b::1", testProxies, "ip:2001:db8:a:b::/64"},
		{"entry with port", "10.1.2.3:1", "198.51.100.1:4711", testProxies, "ip:198.51.100.1"},
		{"bracketed ipv6 entry with port", "10.1.2.3:1", "[2001:db8::1]:4711", testProxies, "ip:2001:db8::/64"},
		{"empty entries skipped", "10.1.2.3:1", " , 198.51.100.1 ,, ", testProxies, "ip:198.51.100.1"},
		{"garbage stops at the proxy", "10.1.2.3:1", "198.51.100.1, unknown", testProxies, "ip:10.1.2.3"},
		{"garbage further left is not reached", "10.1.2.3:1", "garbage, 198.51.100.1", testProxies, "ip:198.51.100.1"},
		{"garbage behind a trusted hop", "10.1.2.3:1", "198.51.100.1, nonsense, 10.0.0.9", testProxies, "ip:10.0.0.9"},
		{"whitespace only", "10.1.2.3:1", "  ", testProxies, "ip:10.1.2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClientKey(tc.remote, tc.xff, tc.proxies); got != tc.want {
				t.Errorf("ClientKey(%q, %q) = %q, want %q", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
}

func TestAddrKeyAllocs(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(100, func() { AddrKey(a) }); n > 1 {
		t.Errorf("AddrKey: %v allocations, want at most 1", n)
	}
}

// FuzzClientKey: whatever the inputs, ClientKey does not panic, returns a
// well-formed key, ignores the header unless the peer is trusted, and
// names either the peer or an address written in the header.
func FuzzClientKey(f *testing.F) {
	for _, s := range [][2]string{
		{"192.0.2.7:5123", ""},
		{"10.1.2.3:1", "6.6.6.6, 198.51.100.1, 10.9.9.9"},
		{"[fd00::1]:1", "2001:db8:a:b::1, [2001:db8::2]:80"},
		{"127.0.0.1:9", "unknown, ,::ffff:1.2.3.4"},
		{"[fe80::1%eth0]:80", "fe80::2%lo"},
		{"@", "1.2.3.4"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		key := ClientKey(remote, xff, testProxies)
		rest, ok := strings.CutPrefix(key, "ip:")
		if !ok {
			t.Fatalf("ClientKey(%q, %q) = %q: no ip: prefix", remote, xff, key)
		}
		addr := ClientAddr(remote, xff, testProxies)
		if key != AddrKey(addr) {
			t.Fatalf("ClientKey = %q, AddrKey(ClientAddr) = %q", key, AddrKey(addr))
		}
		peer := parseHop(remote)
		switch {
		case !peer.IsValid():
			if rest != "unknown" || addr.IsValid() {
				t.Fatalf("unparsable peer %q: got key %q, addr %v", remote, key, addr)
			}
			return
		case addr.Is4():
			if a, err := netip.ParseAddr(rest); err != nil || a != addr {
				t.Fatalf("key %q for %v does not name the address", key, addr)
			}
		default:
			p, err := netip.ParsePrefix(rest)
			if err != nil || p.Bits() != 64 || !p.Contains(addr) || p.Masked() != p {
				t.Fatalf("key %q for %v is not its /64", key, addr)
			}
		}
		if addr.Zone() != "" || addr.Is4In6() {
			t.Fatalf("ClientAddr = %v: zone or mapped address left in", addr)
		}
		if !trusted(peer, testProxies) {
			if addr != peer {
				t.Fatalf("untrusted peer %v: got %v, want the peer (header ignored)", peer, addr)
			}
			return
		}
		if addr == peer {
			return
		}
		for e := range strings.SplitSeq(xff, ",") {
			if parseHop(strings.TrimSpace(e)) == addr {
				return
			}
		}
		t.Fatalf("ClientAddr(%q, %q) = %v: neither the peer nor in the header", remote, xff, addr)
	})
}
