package egress

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox"
)

// TestRefusalWatch reads what the proxy really sends, as the supervisor's
// relay does, a byte at a time and in one piece.
func TestRefusalWatch(t *testing.T) {
	e := newEnv(t, Config{Resolver: fakeResolver{}}, sandbox.Network{Allow: []core.EgressRule{{Host: "allowed.test"}}})
	proxied := func(req string) []byte {
		c, err := net.Dial("unix", e.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, req)
		b, _ := io.ReadAll(c)
		return b
	}
	tests := []struct {
		name, req, want string
	}{
		{"not listed", "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org\r\n\r\n",
			`403 denied; reason="host not on the allow-list: example.org:443"`},
		{"does not resolve", "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
			`502 failed; reason="the host is allowed but its name did not resolve: allowed.test"`},
	}
	for _, tc := range tests {
		stream := proxied(tc.req)
		var whole, bytewise RefusalWatch
		whole.Write(stream)
		for i := range stream {
			bytewise.Write(stream[i : i+1])
		}
		if got := whole.Refusal(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if got := bytewise.Refusal(); got != tc.want {
			t.Errorf("%s, a byte at a time: got %q, want %q", tc.name, got, tc.want)
		}
		var long RefusalWatch
		long.Write(bytes.Repeat([]byte("x"), 5000))
		long.Write(stream)
		if got := long.Refusal(); got != tc.want {
			t.Errorf("%s after 5000 bytes: got %q, want %q", tc.name, got, tc.want)
		}
	}

	for _, s := range []string{"", "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", strings.Repeat("y", 100)} {
		var w RefusalWatch
		w.Write([]byte(s))
		if got := w.Refusal(); got != "" {
			t.Errorf("%q: got %q, want no refusal", s, got)
		}
	}
}
