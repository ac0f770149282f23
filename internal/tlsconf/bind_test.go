package tlsconf

import (
	"net"
	"strings"
	"testing"
)

func TestCheckBind(t *testing.T) {
	type want int
	const (
		ok want = iota
		warn
		fail
	)
	tests := []struct {
		addr          string
		tlsOn, authOn bool
		want          want
	}{
		// Loopback: anything goes.
		{"127.0.0.1:8080", false, false, ok},
		{"127.1.2.3:8080", false, false, ok},
		{"[::1]:8080", false, false, ok},
		{"localhost:8080", false, false, ok},
		{"LocalHost:8080", false, false, ok},
		{"[::ffff:127.0.0.1]:8080", false, false, ok},
		{"127.0.0.1:0", true, true, ok},
		// Everything else reaches the network.
		{":8080", false, true, warn},
		{":8080", true, true, ok},
		{":8080", true, false, fail},
		{":8080", false, false, fail},
		{"0.0.0.0:8080", false, true, warn},
		{"0.0.0.0:8080", true, false, fail},
		{"[::]:8080", false, true, warn},
		{"[::]:8080", true, false, fail},
		{"192.168.1.10:8080", false, true, warn},
		{"192.168.1.10:8080", true, true, ok},
		{"10.0.0.1:443", true, false, fail},
		{"[2001:db8::1]:443", false, true, warn},
		{"[fe80::1%eth0]:443", false, true, warn},
		{"[::1%lo]:443", false, true, warn}, // zoned: in doubt, not loopback
		{"example.com:443", false, true, warn},
		{"example.com:443", true, false, fail},
		{"localhost.:8080", false, true, warn}, // not the literal name; could resolve anywhere
		{"foo.localhost:8080", false, true, warn},
		{"127.1:8080", false, true, warn}, // not an IP address to the parser, so a host name
		{"my-host:8080", true, true, ok},
		// Not host:port.
		{"127.0.0.1", true, true, fail},
		{"::1", true, true, fail},
		{"", true, true, fail},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			warning, err := CheckBind(tt.addr, tt.tlsOn, tt.authOn)
			got := ok
			switch {
			case err != nil:
				got = fail
			case warning != "":
				got = warn
			}
			if got != tt.want {
				t.Fatalf("CheckBind(%q, tls %v, auth %v) = %q, %v; want %v (0 ok, 1 warning, 2 error)",
					tt.addr, tt.tlsOn, tt.authOn, warning, err, tt.want)
			}
			switch got {
			case warn:
				for _, s := range []string{tt.addr, "without TLS", "clear text", "--tls-cert", "proxy"} {
					if !strings.Contains(warning, s) {
						t.Errorf("warning %q does not say %q", warning, s)
					}
				}
			case fail:
				if !tt.authOn && !strings.Contains(err.Error(), "enable authentication") {
					t.Errorf("error %q does not say what to do", err)
				}
			}
		})
	}
}

func FuzzCheckBind(f *testing.F) {
	for _, s := range []string{"127.0.0.1:80", ":80", "[::1]:80", "localhost:80", "[::ffff:127.0.0.1]:1", "example.com:443", "[fe80::1%lo]:1", "", ":", "[]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		host, _, splitErr := net.SplitHostPort(addr)
		for _, tlsOn := range []bool{false, true} {
			for _, authOn := range []bool{false, true} {
				warning, err := CheckBind(addr, tlsOn, authOn)
				if splitErr != nil {
					if err == nil {
						t.Fatalf("CheckBind(%q) accepted an address SplitHostPort refuses: %v", addr, splitErr)
					}
					continue
				}
				if warning != "" && err != nil {
					t.Fatalf("CheckBind(%q) = %q and %v; want a warning or an error", addr, warning, err)
				}
				// An independent oracle for loopback.
				ip := net.ParseIP(host)
				loop := strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()
				if loop && (warning != "" || err != nil) {
					t.Fatalf("CheckBind(%q, %v, %v) = %q, %v for a loopback host", addr, tlsOn, authOn, warning, err)
				}
				if !loop && !authOn && err == nil {
					t.Fatalf("CheckBind(%q) without authentication accepted a host that is not loopback", addr)
				}
				if !loop && authOn && !tlsOn && warning == "" {
					t.Fatalf("CheckBind(%q) without TLS did not warn for a host that is not loopback", addr)
				}
				if authOn && tlsOn && (warning != "" || err != nil) {
					t.Fatalf("CheckBind(%q) with TLS and authentication = %q, %v", addr, warning, err)
				}
			}
		}
	})
}
