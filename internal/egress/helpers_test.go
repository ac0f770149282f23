package egress

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/sandbox"
)

// fakeResolver answers from a map; unknown names fail. It never touches
// the network.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, fmt.Errorf("no such host %q", host)
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// dialRecorder records every dial and only ever connects to loopback: any
// other address is a test failure and is not dialled.
type dialRecorder struct {
	t     testing.TB
	mu    sync.Mutex
	addrs []string
}

func (d *dialRecorder) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		d.t.Errorf("proxy tried to dial %q: only loopback addresses may be dialled in tests", addr)
		return nil, errors.New("refused by test dialer")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *dialRecorder) calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

func (d *dialRecorder) reset() {
	d.mu.Lock()
	d.addrs = nil
	d.mu.Unlock()
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// decisions returns the logged egress decisions.
func (s *syncBuffer) decisions() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(s.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "egress" {
			out = append(out, m)
		}
	}
	return out
}

// env is a proxy serving one sandbox on a unix socket, with a Relay from
// a loopback TCP port to it (like the sandbox side does).
type env struct {
	p        *Proxy
	l        *Listener
	sock     string
	dials    *dialRecorder
	logs     *syncBuffer
	proxyURL *url.URL // the relay's address, as HTTP_PROXY would be
}

func loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

func newEnv(t *testing.T, cfg Config, n sandbox.Network) *env {
	t.Helper()
	e := &env{dials: &dialRecorder{t: t}, logs: &syncBuffer{}}
	if cfg.Dial == nil {
		cfg.Dial = e.dials.Dial
	}
	cfg.Log = slog.New(slog.NewJSONHandler(e.logs, nil))
	if n.Mode == "" {
		n.Mode = "egress"
	}
	dir, err := os.MkdirTemp("", "egr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e.sock = filepath.Join(dir, "s")
	e.p = New(cfg)
	e.l, err = e.p.Listen(e.sock, "sb-1", "agent-1", n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.l.Close() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Relay(ctx, ln, e.sock) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	e.proxyURL = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	return e
}

// raw sends a raw request on a new connection to the proxy socket and
// returns the response (nil if the proxy closed without answering).
func (e *env) raw(t *testing.T, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// settleGoroutines waits until the goroutine count is at most want.
func settleGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := runtime.NumGoroutine()
		if got <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: got %d, want <= %d\n%s", got, want, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantClosedByPeer reads c to its end and fails unless the peer closed it
// within 5s. A reset counts as closed: a socket closed while bytes it was
// sent sit unread in its receive queue makes the kernel report
// ECONNRESET to the other end instead of EOF (RST for TCP; for unix
// sockets, unix_release_sock sets the peer's sk_err). A connection left
// open fails as a read timeout.
func wantClosedByPeer(t *testing.T, name string, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c)
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("%s: still open 5s after Close", name)
	default:
		t.Errorf("%s after Close: got %v, want EOF or connection reset", name, err)
	}
}

// echoServer is a loopback TCP server that echoes every connection.
func echoServer(t *testing.T) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// connectTunnel opens a CONNECT tunnel through the proxy socket.
func (e *env) connectTunnel(t *testing.T, target string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	c.SetReadDeadline(time.Time{})
	if br.Buffered() > 0 {
		t.Fatalf("CONNECT %s: unexpected bytes after response", target)
	}
	return c, resp
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
