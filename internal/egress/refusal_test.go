package egress

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events/eventstest"
	"github.com/runagent/runagent/internal/sandbox"
)

// TestRefusalSaysWhy: a Go HTTP client going through the relay, as an
// agent's would, reads from the refusal what to change — the target that
// is not on the allow-list, the port — in the body and in
// X-Runagent-Egress, and never the address a name resolved to.
func TestRefusalSaysWhy(t *testing.T) {
	rec := &eventstest.Recorder{}
	resolver := fakeResolver{"ten.test": {"10.1.2.3"}, "allowed.test": {"93.184.216.34"}}
	e := newEnv(t, Config{Resolver: resolver, Events: rec}, sandbox.Network{Allow: []core.EgressRule{
		{Host: "allowed.test"}, {Host: "ten.test"}, {Host: "gone.test"},
	}})
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(e.proxyURL)}}
	tests := []struct {
		url    string
		status int
		header string
	}{
		{"http://example.org/", 403, `denied; reason="host not on the allow-list: example.org:80"`},
		{"http://allowed.test:8080/", 403, `denied; reason="port not on the allow-list for this host: allowed.test:8080"`},
		{"http://ten.test/", 403, `denied; reason="host resolved to a private or internal address, which the proxy does not dial: ten.test:80"`},
		{"http://10.1.2.3/", 403, `denied; reason="IP-address targets are not allowed, only host names on the allow-list: 10.1.2.3:80"`},
		{"http://gone.test/", 502, `failed; reason="the host is allowed but its name did not resolve: gone.test"`},
	}
	for _, tc := range tests {
		resp, err := client.Get(tc.url)
		if err != nil {
			t.Errorf("GET %s: %v", tc.url, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := resp.Header.Get(EgressHeader)
		if resp.StatusCode != tc.status || got != tc.header {
			t.Errorf("GET %s: got %d %s: %s, want %d %s", tc.url, resp.StatusCode, EgressHeader, got, tc.status, tc.header)
		}
		if want := tc.header[strings.Index(tc.header, `"`)+1:len(tc.header)-1] + "\n"; string(body) != want {
			t.Errorf("GET %s: got body %q, want %q", tc.url, body, want)
		}
		if strings.Contains(got, "10.1.2") && !strings.Contains(tc.url, "10.1.2.3") {
			t.Errorf("GET %s: the refusal shows the resolved address: %s", tc.url, got)
		}
	}

	// A CONNECT (HTTPS) refusal carries the same header.
	resp := e.raw(t, "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
	if got, want := resp.Header.Get(EgressHeader), `denied; reason="host not on the allow-list: example.org:443"`; got != want {
		t.Errorf("CONNECT example.org:443: got %s: %s, want %s", EgressHeader, got, want)
	}
}

// TestUnresolvableAllowedHostIsNoSecurityEvent: an allowed name that does
// not resolve is a typo or an outage, logged as an error; the policy
// denials around it are egress_denied events (which the "suspicious" alert
// rule counts).
func TestUnresolvableAllowedHostIsNoSecurityEvent(t *testing.T) {
	rec := &eventstest.Recorder{}
	e := newEnv(t, Config{Resolver: fakeResolver{}, Events: rec},
		sandbox.Network{Allow: []core.EgressRule{{Host: "gone.test"}}})
	for range 3 {
		if resp := e.raw(t, "CONNECT gone.test:443 HTTP/1.1\r\nHost: gone.test:443\r\n\r\n"); resp == nil || resp.StatusCode != 502 {
			t.Fatalf("CONNECT gone.test:443: got %v, want 502", resp)
		}
	}
	if evs := rec.Events(); len(evs) != 0 {
		t.Errorf("an allowed name that does not resolve made events %+v, want none", evs)
	}
	if got := e.l.Stats().Denials; got != 0 {
		t.Errorf("got %d denials, want 0 (not a policy decision)", got)
	}
	var sawError bool
	for _, d := range e.logs.decisions() {
		if d["decision"] == "error" && d["reason"] == "name did not resolve" && d["host"] == "gone.test" {
			sawError = true
		}
		if d["decision"] == "deny" {
			t.Errorf("logged a denial: %v", d)
		}
	}
	if !sawError {
		t.Errorf("no error decision logged for gone.test: %v", e.logs.decisions())
	}

	if resp := e.raw(t, "CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n"); resp == nil || resp.StatusCode != 403 {
		t.Fatalf("CONNECT other.test:443: got %v, want 403", resp)
	}
	if got := rec.OfType(core.EventEgressDenied); len(got) != 1 {
		t.Errorf("a host not on the allow-list made %d egress_denied events, want 1", len(got))
	}
}
