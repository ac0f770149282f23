package egress

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox"
)

func serverPort(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConnectGoClient(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer srv.Close()
	port := serverPort(t, srv.URL)
	e := newEnv(t, Config{
		Resolver:      fakeResolver{"example.com": {"127.0.0.1"}},
		AllowPrefixes: loopback(),
	}, sandbox.Network{Allow: []core.EgressRule{{Host: "example.com", Ports: []int{port}}}})

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr := &http.Transport{Proxy: http.ProxyURL(e.proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(fmt.Sprintf("https://example.com:%d/tls", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := string(body), "hello /tls"; got != want {
		t.Errorf("body: got %q, want %q", got, want)
	}
	if got, want := e.dials.calls(), []string{"127.0.0.1:" + strconv.Itoa(port)}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("dials: got %v, want %v", got, want)
	}
	st := e.l.Stats()
	if st.BytesIn == 0 || st.BytesOut == 0 || st.Conns != 1 || st.Denials != 0 {
		t.Errorf("stats: got %+v", st)
	}
	d := e.logs.decisions()
	if len(d) != 1 || d[0]["decision"] != "allow" || d[0]["host"] != "example.com" ||
		d[0]["ip"] != "127.0.0.1" || d[0]["reason"] != `allowed by rule "example.com"` || d[0]["sandbox"] != "sb-1" || d[0]["agent"] != "agent-1" || d[0]["port"] != float64(port) {
		t.Errorf("decision log: got %v", d)
	}
}

func TestForwardGoClient(t *testing.T) {
	type seen struct {
		host, proxyAuth, xff, secret, conn, path string
	}
	got := make(chan seen, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.Header.Get("Proxy-Authorization"), r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Secret"), r.Header.Get("Connection"), r.URL.RequestURI()}
		w.Header().Set("Keep-Alive", "timeout=5")
		fmt.Fprint(w, "plain ok")
	}))
	defer srv.Close()
	port := serverPort(t, srv.URL)
	e := newEnv(t, Config{
		Resolver:      fakeResolver{"api.example.com": {"127.0.0.1"}},
		AllowPrefixes: loopback(),
	}, sandbox.Network{Allow: []core.EgressRule{{Host: "*.example.com", Ports: []int{port}}}})

	pu := *e.proxyURL
	pu.User = url.UserPassword("user", "secret")
	tr := &http.Transport{Proxy: http.ProxyURL(&pu)}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range 2 {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://API.example.com.:%d/p?q=%d", port, i), nil)
		req.Header.Set("Connection", "X-Secret")
		req.Header.Set("X-Secret", "hop")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "plain ok" || resp.StatusCode != 200 {
			t.Fatalf("response %d: got %d %q", i, resp.StatusCode, body)
		}
		if resp.Header.Get("Keep-Alive") != "" {
			t.Errorf("hop-by-hop Keep-Alive header reached the client")
		}
		s := <-got
		want := seen{host: fmt.Sprintf("api.example.com:%d", port), conn: "close", path: fmt.Sprintf("/p?q=%d", i)}
		if s != want {
			t.Errorf("upstream saw %+v, want %+v", s, want)
		}
	}
	if st := e.l.Stats(); st.Conns != 1 {
		t.Errorf("client connections: got %d, want 1 (keep-alive)", st.Conns)
	}
	if n := len(e.dials.calls()); n != 2 {
		t.Errorf("upstream dials: got %d, want 2 (one per request)", n)
	}
}

func TestPythonClient(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the tests (scripts/deps.sh installs it)")
	}
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "python tls ok")
	}))
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "python plain ok")
	}))
	defer plainSrv.Close()
	tlsPort, plainPort := serverPort(t, tlsSrv.URL), serverPort(t, plainSrv.URL)
	e := newEnv(t, Config{
		Resolver:      fakeResolver{"example.com": {"127.0.0.1"}},
		AllowPrefixes: loopback(),
	}, sandbox.Network{Allow: []core.EgressRule{{Host: "example.com", Ports: []int{tlsPort, plainPort}}}})

	certFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, urllib.request
for u in sys.argv[1:]:
    with urllib.request.urlopen(u, timeout=20) as r:
        print(r.status, r.read().decode())
`
	cmd := exec.Command(py, "-c", script,
		fmt.Sprintf("https://example.com:%d/", tlsPort),
		fmt.Sprintf("http://example.com:%d/", plainPort))
	p := e.proxyURL.String()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"HTTP_PROXY=" + p, "HTTPS_PROXY=" + p, "http_proxy=" + p, "https_proxy=" + p,
		"NO_PROXY=", "no_proxy=", "SSL_CERT_FILE=" + certFile}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if got, want := string(out), "200 python tls ok\n200 python plain ok\n"; got != want {
		t.Errorf("python output: got %q, want %q", got, want)
	}
	if n := len(e.dials.calls()); n != 2 {
		t.Errorf("dials: got %d, want 2", n)
	}
}

func TestDenials(t *testing.T) {
	backend := echoServer(t) // only reachable for the allowed case
	bp := strconv.Itoa(backend)
	resolver := fakeResolver{
		"a.b.example.net": {"127.0.0.1"},
		"example.net":     {"127.0.0.1"},
		"lo.test":         {"127.0.0.1"},
		"ten.test":        {"10.0.0.5"},
		"meta.test":       {"169.254.169.254"},
		"v6lo.test":       {"::1"},
		"mapped.test":     {"::ffff:127.0.0.1"},
		"ll.test":         {"fe80::1"},
		"cgnat.test":      {"100.64.0.1"},
		"ec2.test":        {"fd00:ec2::254"},
		"ali.test":        {"100.100.100.200"},
		"nat64.test":      {"64:ff9b::a00:1"},
		"mixed.test":      {"1.1.1.1", "10.1.2.3"},
	}
	rules := []core.EgressRule{
		{Host: "example.com"},
		{Host: "*.example.net", Ports: []int{backend}},
		{Host: "*.test", Ports: []int{443}},
		{Host: "127.0.0.1", Ports: []int{443}},
		{Host: "1.1.1.1", Ports: []int{443}},
	}
	// One sandbox whose admin allowed loopback (for the wildcard cases),
	// one without (for the address checks).
	withLo := newEnv(t, Config{Resolver: resolver, AllowPrefixes: loopback()}, sandbox.Network{Allow: rules})
	noLo := newEnv(t, Config{Resolver: resolver}, sandbox.Network{Allow: rules})
	off := newEnv(t, Config{Resolver: resolver}, sandbox.Network{Mode: "none", Allow: rules})

	connect := func(target string) string {
		return "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"
	}
	tests := []struct {
		name   string
		e      *env
		req    string
		status int
		reason string
	}{
		{"name not listed", noLo, connect("other.org:443"), 403, "host not allowed"},
		{"port not allowed", noLo, connect("example.com:8443"), 403, "port not allowed"},
		{"default ports only", noLo, connect("example.com:22"), 403, "port not allowed"},
		{"wildcard excludes bare suffix", withLo, connect("example.net:" + bp), 403, "host not allowed"},
		{"loopback without AllowPrefixes", noLo, connect("lo.test:443"), 403, "address not allowed"},
		{"private 10/8", noLo, connect("ten.test:443"), 403, "address not allowed"},
		{"metadata", noLo, connect("meta.test:443"), 403, "address not allowed"},
		{"ipv6 loopback", noLo, connect("v6lo.test:443"), 403, "address not allowed"},
		{"ipv4-mapped loopback", noLo, connect("mapped.test:443"), 403, "address not allowed"},
		{"ipv6 link-local", noLo, connect("ll.test:443"), 403, "address not allowed"},
		{"cgnat", noLo, connect("cgnat.test:443"), 403, "address not allowed"},
		{"ec2 v6 metadata", noLo, connect("ec2.test:443"), 403, "address not allowed"},
		{"alibaba metadata", noLo, connect("ali.test:443"), 403, "address not allowed"},
		{"nat64 private", noLo, connect("nat64.test:443"), 403, "address not allowed"},
		{"any answer private", noLo, connect("mixed.test:443"), 403, "address not allowed"},
		{"ip literal loopback", noLo, connect("127.0.0.1:443"), 403, "ip literal not allowed"},
		{"ip literal public", noLo, connect("1.1.1.1:443"), 403, "ip literal not allowed"},
		{"ip literal v6", noLo, connect("[::1]:443"), 403, "ip literal not allowed"},
		{"ip literal plain http", noLo, "GET http://10.0.0.1/ HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n", 403, "ip literal not allowed"},
		{"numeric host", noLo, connect("2130706433:443"), 400, "bad host name"},
		{"userinfo connect", noLo, connect("user@example.com:443"), 400, "userinfo not allowed in target"},
		{"userinfo plain", noLo, "GET http://user:pw@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, "userinfo not allowed in target"},
		{"connect without port", noLo, connect("example.com"), 400, "target needs a port"},
		{"egress mode none", off, connect("example.com:443"), 403, "egress disabled"},
		{"name not listed plain", noLo, "GET http://other.org/x HTTP/1.1\r\nHost: other.org\r\n\r\n", 403, "host not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.e.dials.reset()
			resp := tc.e.raw(t, tc.req)
			if resp == nil {
				t.Fatalf("%q: no response", tc.req)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || resp.Header.Get("X-Egress-Reason") != tc.reason {
				t.Errorf("%q: got %d %q, want %d %q", tc.req, resp.StatusCode, resp.Header.Get("X-Egress-Reason"), tc.status, tc.reason)
			}
			if got, want := resp.Header.Get(EgressHeader), "denied; reason="+strconv.Quote(strings.TrimSuffix(string(body), "\n")); got != want {
				t.Errorf("%q: got %s %q, want %q (the body)", tc.req, EgressHeader, got, want)
			}
			if d := tc.e.dials.calls(); len(d) != 0 {
				t.Errorf("%q: dialled %v, want no dial", tc.req, d)
			}
		})
	}

	t.Run("wildcard allows deep subdomain", func(t *testing.T) {
		withLo.dials.reset()
		c, resp := withLo.connectTunnel(t, "a.b.example.net:"+bp)
		if resp.StatusCode != 200 {
			t.Fatalf("got %d, want 200", resp.StatusCode)
		}
		io.WriteString(c, "ping")
		buf := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Errorf("echo: got %q %v", buf, err)
		}
		if got := withLo.dials.calls(); len(got) != 1 || got[0] != "127.0.0.1:"+bp {
			t.Errorf("dials: got %v", got)
		}
	})

	// The log (not the client) says what the name resolved to and why
	// that was refused.
	wantLog := map[string][2]string{
		"lo.test":     {"127.0.0.1", "loopback address"},
		"ten.test":    {"10.0.0.5", "private address"},
		"meta.test":   {"169.254.169.254", "link-local address"},
		"v6lo.test":   {"::1", "loopback address"},
		"mapped.test": {"::ffff:127.0.0.1", "loopback address"},
		"ll.test":     {"fe80::1", "link-local address"},
		"cgnat.test":  {"100.64.0.1", "shared (CGNAT) address"},
		"ec2.test":    {"fd00:ec2::254", "private address"},
		"ali.test":    {"100.100.100.200", "shared (CGNAT) address"},
		"nat64.test":  {"64:ff9b::a00:1", "private address (embedded)"},
		"mixed.test":  {"10.1.2.3", "private address"},
	}
	for _, d := range noLo.logs.decisions() {
		host, _ := d["host"].(string)
		w, ok := wantLog[host]
		if !ok {
			continue
		}
		delete(wantLog, host)
		if d["ip"] != w[0] || d["reason"] != "address not allowed ("+w[1]+")" || d["decision"] != "deny" {
			t.Errorf("log for %s: got ip %v reason %v, want %s %q", host, d["ip"], d["reason"], w[0], w[1])
		}
	}
	if len(wantLog) != 0 {
		t.Errorf("no decision logged for %v", wantLog)
	}

	// Every denial was logged with the decision fields.
	var denies int
	for _, d := range noLo.logs.decisions() {
		for _, k := range []string{"sandbox", "agent", "host", "port", "ip", "decision", "reason"} {
			if _, ok := d[k]; !ok {
				t.Errorf("decision log lacks %q: %v", k, d)
			}
		}
		if d["decision"] == "deny" {
			denies++
		}
	}
	if st := noLo.l.Stats(); int64(denies) != st.Denials || denies < 20 {
		t.Errorf("denials: logged %d, stats %d", denies, st.Denials)
	}
}

func TestMalformed(t *testing.T) {
	e := newEnv(t, Config{Resolver: fakeResolver{}, HeaderTimeout: 300 * time.Millisecond},
		sandbox.Network{Allow: []core.EgressRule{{Host: "example.com"}}})
	tests := []struct {
		name, req string
		status    int
	}{
		{"garbage", "HELLO\r\n\r\n", 400},
		{"binary", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400},
		{"origin form", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
		{"https absolute", "GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
		{"ftp", "GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
		{"huge header", "GET http://example.com/ HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431},
		{"huge request line", "GET http://example.com/" + strings.Repeat("a", 64<<10) + " HTTP/1.1\r\n\r\n", 431},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.raw(t, tc.req)
			if resp == nil || resp.StatusCode != tc.status {
				t.Errorf("%.40q: got %v, want %d", tc.req, resp, tc.status)
			}
		})
	}
	if d := e.dials.calls(); len(d) != 0 {
		t.Errorf("dialled %v", d)
	}

	t.Run("slowloris", func(t *testing.T) {
		c, err := net.Dial("unix", e.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		io.WriteString(c, "GET http://example.com/ HTTP/1.1\r\nX-Slow: ")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range 3 { // keep dribbling; the deadline is for the whole header
			time.Sleep(100 * time.Millisecond)
			io.WriteString(c, "a")
		}
		n, err := c.Read(make([]byte, 1))
		el := time.Since(start)
		// EOF, or a reset when the proxy hung up with our last byte
		// unread; not our own read deadline.
		var ne net.Error
		if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() || el < 250*time.Millisecond || el > 3*time.Second {
			t.Errorf("slow client: got n=%d err=%v after %v, want the connection dropped after ~300ms", n, err, el)
		}
	})
}

func TestMaxConns(t *testing.T) {
	port := strconv.Itoa(echoServer(t))
	e := newEnv(t, Config{Resolver: fakeResolver{"echo.example": {"127.0.0.1"}}, AllowPrefixes: loopback()},
		sandbox.Network{MaxConns: 2, Allow: []core.EgressRule{{Host: "echo.example", Ports: []int{serverPortInt(port)}}}})
	c1, r1 := e.connectTunnel(t, "echo.example:"+port)
	_, r2 := e.connectTunnel(t, "echo.example:"+port)
	if r1.StatusCode != 200 || r2.StatusCode != 200 {
		t.Fatalf("first two tunnels: got %d %d", r1.StatusCode, r2.StatusCode)
	}
	e.dials.reset()
	resp := e.raw(t, "CONNECT echo.example:"+port+" HTTP/1.1\r\n\r\n")
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third tunnel: got %v, want 429", resp)
	}
	if d := e.dials.calls(); len(d) != 0 {
		t.Errorf("dialled %v for a refused connection", d)
	}
	if st := e.l.Stats(); st.Refused != 1 || st.Active != 2 {
		t.Errorf("stats: got %+v", st)
	}
	c1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for e.l.Stats().Active != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, r := e.connectTunnel(t, "echo.example:"+port); r.StatusCode != 200 {
		t.Errorf("after one closed: got %d, want 200", r.StatusCode)
	}
	var logged bool
	for _, d := range e.logs.decisions() {
		if d["reason"] == "too many connections" && d["host"] == "echo.example" {
			logged = true
		}
	}
	if !logged {
		t.Errorf("refusal not logged: %v", e.logs.decisions())
	}
}

func serverPortInt(s string) int { n, _ := strconv.Atoi(s); return n }

func bigServer(t *testing.T, size int) *httptest.Server {
	t.Helper()
	data := bytes.Repeat([]byte("x"), size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestMaxBytes(t *testing.T) {
	srv := bigServer(t, 1<<20)
	port := serverPort(t, srv.URL)
	const limit = 100_000
	e := newEnv(t, Config{Resolver: fakeResolver{"big.example": {"127.0.0.1"}}, AllowPrefixes: loopback(), MaxBytes: limit},
		sandbox.Network{Allow: []core.EgressRule{{Host: "big.example", Ports: []int{port}}}})
	tr := &http.Transport{Proxy: http.ProxyURL(e.proxyURL)}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://big.example:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil || n >= limit {
		t.Errorf("download: got %d bytes, err %v; want cut short below %d", n, err, limit)
	}
	if st := e.l.Stats(); st.BytesIn+st.BytesOut != limit {
		t.Errorf("bytes: got in %d + out %d, want %d in all", st.BytesIn, st.BytesOut, limit)
	}
	var logged bool
	for _, d := range e.logs.decisions() {
		logged = logged || d["reason"] == "byte limit exceeded"
	}
	if !logged {
		t.Error("byte limit not logged")
	}
	// The budget is spent: the next request is refused before any dial.
	e.dials.reset()
	resp2 := e.raw(t, fmt.Sprintf("GET http://big.example:%d/ HTTP/1.1\r\nHost: big.example\r\n\r\n", port))
	if resp2 == nil || resp2.StatusCode != 403 || resp2.Header.Get("X-Egress-Reason") != "byte limit exceeded" {
		t.Errorf("second download: got %v, want 403 byte limit exceeded", resp2)
	}
	if d := e.dials.calls(); len(d) != 0 {
		t.Errorf("dialled %v after the budget was spent", d)
	}
}

func TestBandwidth(t *testing.T) {
	const (
		bw   = 1 << 20
		size = 3 << 20
	)
	srv := bigServer(t, size)
	port := serverPort(t, srv.URL)
	e := newEnv(t, Config{Resolver: fakeResolver{"big.example": {"127.0.0.1"}}, AllowPrefixes: loopback()},
		sandbox.Network{BandwidthBytes: bw, Allow: []core.EgressRule{{Host: "big.example", Ports: []int{port}}}})
	tr := &http.Transport{Proxy: http.ProxyURL(e.proxyURL)}
	defer tr.CloseIdleConnections()
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(fmt.Sprintf("http://big.example:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	el := time.Since(start)
	if err != nil || n != size {
		t.Fatalf("download: got %d bytes, %v", n, err)
	}
	st := e.l.Stats()
	rate := float64(st.BytesIn+st.BytesOut) / el.Seconds()
	t.Logf("moved %d bytes in %v: %.0f B/s, cap %d B/s (%.1f%%)", st.BytesIn+st.BytesOut, el, rate, bw, 100*(rate-bw)/bw)
	if rate < 0.85*bw || rate > 1.15*bw {
		t.Errorf("rate: got %.0f B/s, want within 15%% of %d", rate, bw)
	}
}

func TestBandwidthShared(t *testing.T) {
	// Two downloads at once share one sandbox's bucket.
	const (
		bw   = 1 << 20
		size = 3 << 19 // each; 3 MiB in all
	)
	srv := bigServer(t, size)
	port := serverPort(t, srv.URL)
	e := newEnv(t, Config{Resolver: fakeResolver{"big.example": {"127.0.0.1"}}, AllowPrefixes: loopback()},
		sandbox.Network{BandwidthBytes: bw, Allow: []core.EgressRule{{Host: "big.example", Ports: []int{port}}}})
	tr := &http.Transport{Proxy: http.ProxyURL(e.proxyURL)}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	start := time.Now()
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := client.Get(fmt.Sprintf("http://big.example:%d/", port))
			if err != nil {
				errc <- err
				return
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil && n != size {
				err = fmt.Errorf("got %d bytes, want %d", n, size)
			}
			errc <- err
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	el := time.Since(start)
	st := e.l.Stats()
	rate := float64(st.BytesIn+st.BytesOut) / el.Seconds()
	t.Logf("two connections moved %d bytes in %v: %.0f B/s, cap %d B/s (%.1f%%)", st.BytesIn+st.BytesOut, el, rate, bw, 100*(rate-bw)/bw)
	if rate < 0.85*bw || rate > 1.15*bw {
		t.Errorf("rate: got %.0f B/s, want within 15%% of %d", rate, bw)
	}
}

func TestCloseNoLeak(t *testing.T) {
	port := echoServer(t)
	ps := strconv.Itoa(port)
	// An upstream that accepts and never answers.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	hangConns := make(chan net.Conn, 1)
	go func() {
		c, err := hang.Accept()
		if err == nil {
			hangConns <- c
		}
	}()
	hangPort := hang.Addr().(*net.TCPAddr).Port
	dir, err := os.MkdirTemp("", "egr")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	settleGoroutines(t, runtime.NumGoroutine())
	before := runtime.NumGoroutine()

	d := &dialRecorder{t: t}
	p := New(Config{Resolver: fakeResolver{"echo.example": {"127.0.0.1"}, "hang.example": {"127.0.0.1"}},
		AllowPrefixes: loopback(), Dial: d.Dial, Log: discardLogger()})
	l, err := p.Listen(sock, "sb", "ag", sandbox.Network{Mode: "egress", Allow: []core.EgressRule{
		{Host: "echo.example", Ports: []int{port}}, {Host: "hang.example", Ports: []int{hangPort}}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{l: l, sock: sock}
	tunnel, resp := e.connectTunnel(t, "echo.example:"+ps)
	if resp.StatusCode != 200 {
		t.Fatalf("tunnel: got %d", resp.StatusCode)
	}
	io.WriteString(tunnel, "x")
	if _, err := io.ReadFull(tunnel, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	half, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	io.WriteString(half, "GET http://echo.example/ HTTP/1.1\r\n")
	waiting, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	fmt.Fprintf(waiting, "GET http://hang.example:%d/ HTTP/1.1\r\nHost: hang.example\r\n\r\n", hangPort)
	var hc net.Conn
	select {
	case hc = <-hangConns:
		defer hc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("forward to the hanging upstream never dialled")
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().Active != 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := l.Stats().Active; got != 3 {
		l.Close()
		t.Fatalf("active connections before Close: got %d, want 3", got)
	}

	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// half may see a reset rather than EOF: Active counts a connection
	// before its goroutine has read anything, so Close can close it with
	// the partial request line still unread.
	for _, cc := range []struct {
		name string
		c    net.Conn
	}{{"tunnel", tunnel}, {"half-sent request", half}, {"request waiting on upstream", waiting}} {
		wantClosedByPeer(t, cc.name, cc.c)
		cc.c.Close()
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file after Close: %v", err)
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Error("dial after Close succeeded")
	}
	// The upstream side was closed too.
	wantClosedByPeer(t, "upstream connection", hc)
	hc.Close()
	hang.Close()
	settleGoroutines(t, before)
}

func TestSocketMode(t *testing.T) {
	e := newEnv(t, Config{Resolver: fakeResolver{}}, sandbox.Network{})
	fi, err := os.Stat(e.sock)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o666 {
		t.Errorf("socket mode: got %o, want 666", got)
	}
}

func TestForwardRawUpstream(t *testing.T) {
	tests := []struct {
		name, upstream string
		want           string // what the client reads, up to EOF
		clientHeader   string
	}{
		{"unknown length ends with close",
			"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
			"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nuntil close", ""},
		{"1xx skipped",
			"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
			"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "Connection: close\r\n"},
		{"huge response header",
			"HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 2<<20) + "\r\n\r\n",
			"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: LEN\r\nX-Egress-Reason: upstream failed\r\n" +
				"X-Runagent-Egress: failed; reason=\"DETAIL\"\r\nConnection: close\r\n\r\nDETAIL\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				http.ReadRequest(bufioReader(c))
				io.WriteString(c, tc.upstream)
			}()
			port := ln.Addr().(*net.TCPAddr).Port
			e := newEnv(t, Config{Resolver: fakeResolver{"old.example": {"127.0.0.1"}}, AllowPrefixes: loopback()},
				sandbox.Network{Allow: []core.EgressRule{{Host: "old.example", Ports: []int{port}}}})
			c, err := net.Dial("unix", e.sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Without clientHeader a keep-alive request: the proxy must
			// still end the exchange itself when it has to.
			fmt.Fprintf(c, "GET http://old.example:%d/ HTTP/1.1\r\nHost: old.example\r\n%s\r\n", port, tc.clientHeader)
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			all, err := io.ReadAll(c)
			detail := fmt.Sprintf("the connection to old.example:%d failed before a response", port)
			want := strings.NewReplacer("DETAIL", detail, "LEN", strconv.Itoa(len(detail)+1)).Replace(tc.want)
			if err != nil || string(all) != want {
				t.Errorf("got %q %v, want %q then EOF", all, err, want)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	port := echoServer(t)
	e := newEnv(t, Config{Resolver: fakeResolver{"echo.example": {"127.0.0.1"}}, AllowPrefixes: loopback(), IdleTimeout: 300 * time.Millisecond},
		sandbox.Network{Allow: []core.EgressRule{{Host: "echo.example", Ports: []int{port}}}})
	c, resp := e.connectTunnel(t, "echo.example:"+strconv.Itoa(port))
	if resp.StatusCode != 200 {
		t.Fatalf("tunnel: got %d", resp.StatusCode)
	}
	// Traffic keeps it open past the timeout…
	buf := make([]byte, 1)
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c, "x")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("tunnel closed while active: %v", err)
		}
	}
	// …silence closes it.
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("idle tunnel: got %d %v, want EOF", n, err)
	}
	if el := time.Since(start); el < 200*time.Millisecond || el > 3*time.Second {
		t.Errorf("idle tunnel closed after %v, want ~300ms", el)
	}
}

func TestServeConnWithoutSocket(t *testing.T) {
	d := &dialRecorder{t: t}
	p := New(Config{Resolver: fakeResolver{}, Dial: d.Dial, Log: discardLogger()})
	l := p.NewListener("sb", "ag", sandbox.Network{Mode: core.NetworkEgress})
	defer l.Close()
	client, server := net.Pipe()
	go l.ServeConn(server)
	defer client.Close()
	client.SetDeadline(time.Now().Add(5 * time.Second))
	go io.WriteString(client, "CONNECT example.com:443 HTTP/1.1\r\n\r\n")
	resp, err := http.ReadResponse(bufioReader(client), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("got %v %v, want 403", resp, err)
	}
	if len(d.calls()) != 0 || l.Stats().Denials != 1 {
		t.Errorf("dials %v, stats %+v", d.calls(), l.Stats())
	}
}

// TestTrustedTargets: a target the operator trusts (a package index on a
// private or loopback address) is dialed; the same address under another
// port or name, or a trusted name that is not on the allow-list, is not.
func TestTrustedTargets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "index") }))
	defer srv.Close()
	port := serverPort(t, srv.URL)
	resolver := fakeResolver{"index.internal": {"127.0.0.1"}, "other.internal": {"127.0.0.1"}}
	index := fmt.Sprintf("index.internal:%d", port)
	literal := fmt.Sprintf("127.0.0.1:%d", port)
	e := newEnv(t, Config{Resolver: resolver}, sandbox.Network{Mode: core.NetworkEgress,
		Allow: []core.EgressRule{{Host: "index.internal", Ports: []int{port}}, {Host: "other.internal", Ports: []int{port}},
			{Host: "127.0.0.1", Ports: []int{port}}},
		Trusted: []string{index, literal, "absent.internal:80"}})
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(e.proxyURL)}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	get := func(target string) int {
		t.Helper()
		resp, err := client.Get("http://" + target + "/simple/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for target, want := range map[string]int{
		index:                                  http.StatusOK,
		literal:                                http.StatusOK,
		fmt.Sprintf("other.internal:%d", port): http.StatusForbidden, // allowed name, untrusted: loopback refused
		"absent.internal:80":                   http.StatusForbidden, // trusted but not allowed
	} {
		if got := get(target); got != want {
			t.Errorf("GET via proxy to %s: %d, want %d", target, got, want)
		}
	}
}
