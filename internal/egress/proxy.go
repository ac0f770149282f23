package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox"
)

// Resolver looks up the addresses of a host name (net.Resolver does).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config configures a Proxy. Zero fields take the defaults noted.
type Config struct {
	// Resolver resolves target names (net.DefaultResolver).
	Resolver Resolver
	// Dial opens upstream connections; it is only ever given an IP
	// address, never a name (a net.Dialer with DialTimeout).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// AllowPrefixes are addresses an administrator explicitly allows even
	// though they are private, loopback, link-local, ….
	AllowPrefixes []netip.Prefix
	// Log receives every decision (slog.Default()).
	Log *slog.Logger
	// Events, if set, records every denial as a security event.
	Events core.EventEmitter
	// DefaultBandwidth is bytes per second per sandbox when the sandbox's
	// Network.BandwidthBytes is 0 (10 MB/s).
	DefaultBandwidth int64
	// DefaultMaxConns caps concurrent connections per sandbox when
	// Network.MaxConns is 0 (10).
	DefaultMaxConns int
	// MaxBytes caps the total bytes (both directions) a sandbox may move
	// through the proxy over the listener's life; 0 means unlimited.
	MaxBytes int64
	// DialTimeout bounds name resolution plus connecting (10 s).
	DialTimeout time.Duration
	// IdleTimeout closes a connection with no traffic (2 min).
	IdleTimeout time.Duration
	// HeaderTimeout is how long a client has to send a complete request
	// header (10 s); slow clients are dropped.
	HeaderTimeout time.Duration
	// MaxHeaderBytes caps a request header (32 KiB); larger gets 431.
	MaxHeaderBytes int
}

// Proxy serves the egress policy of sandboxes, one Listener per sandbox.
type Proxy struct {
	cfg Config
	log *slog.Logger
}

// New returns a Proxy with cfg's zero fields set to their defaults.
func New(cfg Config) *Proxy {
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.DefaultBandwidth <= 0 {
		cfg.DefaultBandwidth = 10 << 20
	}
	if cfg.DefaultMaxConns <= 0 {
		cfg.DefaultMaxConns = 10
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 32 << 10
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
		cfg.Dial = d.DialContext
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Proxy{cfg: cfg, log: log}
}

// Listen serves the policy of one sandbox on a new unix socket at
// socketPath until Close. A stale socket at that path is replaced.
//
// The socket is made mode 0666 because the sandbox's processes run as
// another uid than the server: whoever can reach the path can use the
// sandbox's egress, so put it in a directory that only that sandbox can
// reach (bind-mounted into it) and that other sandboxes cannot traverse.
func (p *Proxy) Listen(socketPath, sandboxID, agentID string, n sandbox.Network) (*Listener, error) {
	if fi, err := os.Lstat(socketPath); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(socketPath)
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("egress listen: %w", err)
	}
	if err := os.Chmod(socketPath, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("egress listen: %w", err)
	}
	return p.Serve(ln, sandboxID, agentID, n), nil
}

// Serve serves the policy of one sandbox on ln (any listener; Listen uses
// a unix socket) until Close, which also closes ln.
func (p *Proxy) Serve(ln net.Listener, sandboxID, agentID string, n sandbox.Network) *Listener {
	l := p.newListener(sandboxID, agentID, n)
	l.ln = ln
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// NewListener returns a Listener for one sandbox that serves only the
// connections handed to ServeConn (no socket); useful for tests and for
// callers that accept connections themselves.
func (p *Proxy) NewListener(sandboxID, agentID string, n sandbox.Network) *Listener {
	return p.newListener(sandboxID, agentID, n)
}

func (p *Proxy) newListener(sandboxID, agentID string, n sandbox.Network) *Listener {
	bw := n.BandwidthBytes
	if bw <= 0 {
		bw = p.cfg.DefaultBandwidth
	}
	maxConns := n.MaxConns
	if maxConns <= 0 {
		maxConns = p.cfg.DefaultMaxConns
	}
	// The burst is 1/20 s of traffic, between 1 KiB and 64 KiB: small
	// enough that the cap holds over short transfers, large enough that
	// the limiter is not consulted for every few bytes.
	burst := int(min(max(bw/20, 1<<10), 64<<10))
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		p:        p,
		sandbox:  sandboxID,
		agent:    agentID,
		enabled:  n.Mode == core.NetworkEgress,
		limiter:  rate.NewLimiter(rate.Limit(bw), burst),
		burst:    burst,
		maxConns: int64(maxConns),
		ctx:      ctx,
		cancel:   cancel,
		conns:    make(map[net.Conn]struct{}),
		trusted:  n.Trusted,
	}
	var errs []error
	l.pol, errs = compilePolicy(n.Allow)
	for _, err := range errs {
		p.log.Warn("egress rule ignored", "sandbox", sandboxID, "agent", agentID, "err", err)
	}
	return l
}

// Listener serves one sandbox's egress. It implements io.Closer.
type Listener struct {
	p        *Proxy
	sandbox  string
	agent    string
	enabled  bool
	pol      policy
	limiter  *rate.Limiter
	burst    int
	maxConns int64
	ln       net.Listener
	// trusted are the targets whose addresses are dialed even when
	// private (sandbox.Network.Trusted).
	trusted []string

	ctx    context.Context // canceled by Close; bounds limiter waits and dials
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	once   sync.Once

	active   atomic.Int64
	refusing atomic.Int64
	used     atomic.Int64 // bytes reserved against MaxBytes
	stats    struct {
		bytesIn, bytesOut, conns, denials, refused atomic.Int64
	}
}

// Stats are a sandbox's egress counters.
type Stats struct {
	BytesIn  int64 // upstream → sandbox
	BytesOut int64 // sandbox → upstream
	Conns    int64 // client connections accepted (including refused ones)
	Active   int64 // client connections being served now
	Denials  int64 // requests refused by policy or as malformed
	Refused  int64 // connections refused by MaxConns
}

// Stats returns the listener's counters.
func (l *Listener) Stats() Stats {
	return Stats{
		BytesIn:  l.stats.bytesIn.Load(),
		BytesOut: l.stats.bytesOut.Load(),
		Conns:    l.stats.conns.Load(),
		Active:   l.active.Load(),
		Denials:  l.stats.denials.Load(),
		Refused:  l.stats.refused.Load(),
	}
}

// Addr is the listener's address (nil for NewListener).
func (l *Listener) Addr() net.Addr {
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Close stops accepting, closes every client and upstream connection of
// the sandbox and waits for their goroutines to end.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		if l.ln != nil {
			err = l.ln.Close()
		}
		l.mu.Lock()
		l.closed = true
		for c := range l.conns {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// track registers c so Close can close it; false if already closed.
func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *Listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.p.log.Warn("egress accept", "sandbox", l.sandbox, "err", err)
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serve(c)
		}()
	}
}

// ServeConn serves one client connection of the sandbox and closes it.
// It counts against the sandbox's caps like an accepted connection.
func (l *Listener) ServeConn(c net.Conn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.wg.Add(1)
	l.mu.Unlock()
	defer l.wg.Done()
	l.serve(c)
}

func (l *Listener) serve(c net.Conn) {
	defer c.Close()
	if !l.track(c) {
		return
	}
	defer l.untrack(c)
	l.stats.conns.Add(1)
	if l.active.Add(1) > l.maxConns {
		l.active.Add(-1)
		l.refuse(c)
		return
	}
	defer l.active.Add(-1)

	tc := &timeoutConn{Conn: c, idle: l.p.cfg.IdleTimeout}
	lr := &io.LimitedReader{R: tc, N: math.MaxInt64}
	br := bufio.NewReaderSize(lr, 4<<10)
	for {
		lr.N = int64(l.p.cfg.MaxHeaderBytes)
		tc.fixed = time.Now().Add(l.p.cfg.HeaderTimeout)
		pending := br.Buffered()
		req, err := http.ReadRequest(br)
		tc.fixed = time.Time{}
		if err != nil {
			if pending == 0 && br.Buffered() == 0 && lr.N == int64(l.p.cfg.MaxHeaderBytes) {
				// Nothing of a request arrived: the client closed or
				// stayed idle (between keep-alive requests too) for
				// HeaderTimeout. Not a decision; just hang up.
				return
			}
			l.badRequest(tc, lr, err)
			return
		}
		lr.N = math.MaxInt64
		if req.Method == http.MethodConnect {
			l.connect(tc, br, req)
			return
		}
		if !l.forward(tc, req) {
			return
		}
	}
}

// badRequest answers a request that could not be read, if there is any
// point in answering.
func (l *Listener) badRequest(c net.Conn, lr *io.LimitedReader, err error) {
	var ne net.Error
	switch {
	case lr.N <= 0:
		l.deny(c, "", 0, "", http.StatusRequestHeaderFieldsTooLarge, "request header too large")
	case errors.As(err, &ne) && ne.Timeout():
		l.decision("", 0, "", "deny", "request header timeout")
		l.stats.denials.Add(1)
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		// The client closed between requests.
	default:
		l.deny(c, "", 0, "", http.StatusBadRequest, "malformed request")
	}
}

// refuse answers a connection over the MaxConns cap with 429. It reads the
// request first (briefly) so the client sees the answer rather than a
// reset, and so the log names the target.
func (l *Listener) refuse(c net.Conn) {
	l.stats.refused.Add(1)
	defer l.refusing.Add(-1)
	if l.refusing.Add(1) > l.maxConns {
		l.decision("", 0, "", "deny", "too many connections")
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(min(l.p.cfg.HeaderTimeout, 2*time.Second)))
	br := bufio.NewReaderSize(io.LimitReader(c, int64(l.p.cfg.MaxHeaderBytes)), 4<<10)
	host, port := "", 0
	if req, err := http.ReadRequest(br); err == nil {
		host = req.Host
		if t, err := ParseTarget(req.Host, 80); err == nil {
			host, port = t.Host, t.Port
		}
	}
	l.writeStatus(c, http.StatusTooManyRequests, "too many connections",
		fmt.Sprintf("too many connections open at once (this sandbox may have %d)", l.maxConns))
	l.decision(host, port, "", "deny", "too many connections")
}

// decision logs one policy decision; a denial is also a security event.
func (l *Listener) decision(host string, port int, ip, decision, reason string) {
	l.p.log.Info("egress", "sandbox", l.sandbox, "agent", l.agent, "host", host,
		"port", port, "ip", ip, "decision", decision, "reason", reason)
	if decision == "deny" && l.p.cfg.Events != nil {
		l.p.cfg.Events.Emit(core.SecurityEvent{
			Type: core.EventEgressDenied, AgentID: l.agent,
			Message: "egress denied: " + reason,
			Details: map[string]string{"sandbox": l.sandbox, "host": host, "port": strconv.Itoa(port), "ip": ip, "reason": reason},
		})
	}
}

// deny logs a denial and answers it.
func (l *Listener) deny(c net.Conn, host string, port int, ip string, status int, reason string) {
	l.stats.denials.Add(1)
	l.decision(host, port, ip, "deny", reason)
	l.writeStatus(c, status, reason, reason)
}

// EgressHeader is the response header of every answer the proxy itself
// gives instead of a connection: `denied; reason="…"` for a refusal (4xx),
// `failed; reason="…"` when an allowed target could not be reached (5xx).
// The reason is also the body.
const EgressHeader = "X-Runagent-Egress"

// writeStatus writes a short error response. reason is one of this
// package's constant strings (the X-Egress-Reason header and the log's
// reason); detail, the body and EgressHeader's reason, says what the
// agent's developer can do about it and may name the target as the proxy
// parsed and validated it, but never a resolved address or an internal
// error.
func (l *Listener) writeStatus(c net.Conn, status int, reason, detail string) {
	detail = headerSafe(detail)
	body := detail + "\n"
	kind := "denied"
	if status >= 500 {
		kind = "failed"
	}
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nX-Egress-Reason: %s\r\n%s: %s; reason=%s\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), reason, EgressHeader, kind, quoteParam(detail), body)
	_ = c.SetWriteDeadline(time.Time{})
}

// headerSafe replaces anything but printable ASCII with '?', so a detail
// can go in a header. Validated targets are ASCII already.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// quoteParam quotes s as an HTTP quoted-string (RFC 9110 section 5.6.4).
func quoteParam(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// refusal is why open did not return a connection.
type refusal struct {
	status int
	reason string // constant: X-Egress-Reason and the log
	detail string // for the agent's developer: the body
}

// open applies the policy to t and, if allowed, dials a vetted address.
// Every outcome is logged.
func (l *Listener) open(t Target, parseErr error) (net.Conn, *refusal) {
	deny := func(ip string, status int, reason, detail string) (net.Conn, *refusal) {
		l.stats.denials.Add(1)
		l.decision(t.Host, t.Port, ip, "deny", reason)
		return nil, &refusal{status, reason, detail}
	}
	if parseErr != nil {
		return deny("", http.StatusBadRequest, parseErr.Error(), parseErr.Error())
	}
	if !l.enabled {
		return deny("", http.StatusForbidden, "egress disabled",
			`egress is off for this agent: its network.mode is not "egress"`)
	}
	if limit := l.p.cfg.MaxBytes; limit > 0 && l.used.Load() >= limit {
		return deny("", http.StatusForbidden, "byte limit exceeded",
			"this sandbox has used up its egress byte limit")
	}
	trusted := slices.Contains(l.trusted, t.String())
	if t.IP.IsValid() && !trusted && !l.p.allowed(t.IP) {
		return deny(t.IP.String(), http.StatusForbidden, "ip literal not allowed",
			"IP-address targets are not allowed, only host names on the allow-list: "+t.String())
	}
	ok, why := l.pol.match(t)
	if !ok {
		detail := "host not on the allow-list: " + t.String()
		if why == reasonPortNotAllowed {
			detail = "port not on the allow-list for this host: " + t.String()
		}
		return deny("", http.StatusForbidden, why, detail)
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.p.cfg.DialTimeout)
	defer cancel()
	addrs := []netip.Addr{t.IP}
	if !t.IP.IsValid() {
		var err error
		addrs, err = l.p.cfg.Resolver.LookupNetIP(ctx, "ip", t.Host)
		if err != nil || len(addrs) == 0 {
			// The host is allowed: a name that does not resolve is a
			// typo, an outage or a DNS problem, not an attempt to get
			// out, so it is logged as an error and is no security event.
			l.p.log.Info("egress", "sandbox", l.sandbox, "agent", l.agent, "host", t.Host,
				"port", t.Port, "ip", "", "decision", "error", "reason", "name did not resolve", "err", err)
			return nil, &refusal{http.StatusBadGateway, "name did not resolve",
				"the host is allowed but its name did not resolve: " + t.Host}
		}
	}
	// Refuse if ANY answer is forbidden: a name that mixes public and
	// internal answers is a rebinding attempt or a misconfiguration.
	for _, a := range addrs {
		if kind, bad := forbiddenAddr(a); bad && !trusted && !l.p.allowed(a) {
			// The client learns only that the address was refused, not
			// what kind it was: the sandbox has no DNS of its own and
			// should not learn how internal names resolve.
			l.stats.denials.Add(1)
			l.decision(t.Host, t.Port, a.String(), "deny", "address not allowed ("+kind+")")
			return nil, &refusal{http.StatusForbidden, "address not allowed",
				"host resolved to a private or internal address, which the proxy does not dial: " + t.String()}
		}
	}
	var lastErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(t.Port))
		up, err := l.p.cfg.Dial(ctx, "tcp", ap.String())
		if err != nil {
			lastErr = err
			continue
		}
		if !l.track(up) {
			up.Close()
			return nil, &refusal{http.StatusServiceUnavailable, "proxy closing", "the sandbox is closing"}
		}
		l.decision(t.Host, t.Port, ap.Addr().String(), "allow", why)
		return &meteredConn{Conn: up, l: l}, nil
	}
	l.p.log.Info("egress", "sandbox", l.sandbox, "agent", l.agent, "host", t.Host,
		"port", t.Port, "ip", addrs[0].String(), "decision", "error", "reason", "upstream unreachable", "err", lastErr)
	return nil, &refusal{http.StatusBadGateway, "upstream unreachable", "could not connect to " + t.String()}
}

// allowed reports whether an administrator allowed a explicitly.
func (p *Proxy) allowed(a netip.Addr) bool {
	a = a.WithZone("")
	for _, pr := range p.cfg.AllowPrefixes {
		if pr.Contains(a) || pr.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

func (l *Listener) closeUp(up net.Conn) {
	if m, ok := up.(*meteredConn); ok {
		l.untrack(m.Conn)
	}
	up.Close()
}

// connect serves a CONNECT request: a tunnel to the target.
func (l *Listener) connect(c *timeoutConn, br *bufio.Reader, req *http.Request) {
	t, err := ParseTarget(req.RequestURI, 0)
	up, ref := l.open(t, err)
	if ref != nil {
		l.writeStatus(c, ref.status, ref.reason, ref.detail)
		return
	}
	defer l.closeUp(up)
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	tu := &timeoutConn{Conn: up, idle: l.p.cfg.IdleTimeout}
	l.splice(c, br, tu, t)
}

// splice copies bytes both ways until both sides have finished, honouring
// half-closes; an error either way closes both.
func (l *Listener) splice(client *timeoutConn, clientR io.Reader, up *timeoutConn, t Target) {
	errc := make(chan error, 2)
	go func() { errc <- pipe(up, clientR, client) }()
	go func() { errc <- pipe(client, up, up) }()
	for range 2 {
		if err := <-errc; err != nil {
			if errors.Is(err, errByteLimit) {
				l.decision(t.Host, t.Port, "", "deny", "byte limit exceeded")
			}
			client.Close()
			up.Close()
		}
	}
}

// pipe copies src (which reads from srcConn) to dst, then half-closes dst.
// Each read pushes back the idle deadline of both connections, so a
// one-way transfer does not time out the quiet direction.
func pipe(dst *timeoutConn, src io.Reader, srcConn *timeoutConn) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			dst.touch()
			srcConn.touch()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			closeWrite(dst.Conn)
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// hopHeaders are removed when forwarding (RFC 9110 section 7.6.1), plus
// Proxy-Authorization (meant for this proxy) and Expect (the proxy sends
// the body without waiting).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect",
}

func stripHop(h http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	return h
}

// rawAuthority returns the authority of an absolute http:// request target.
func rawAuthority(uri string) (string, bool) {
	const scheme = "http://"
	if len(uri) < len(scheme) || !strings.EqualFold(uri[:len(scheme)], scheme) {
		return "", false
	}
	rest := uri[len(scheme):]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest, true
}

// forward serves a plain HTTP proxy request and reports whether the client
// connection may be used for another request.
func (l *Listener) forward(c *timeoutConn, req *http.Request) bool {
	defer req.Body.Close()
	authority, ok := rawAuthority(req.RequestURI)
	if !ok {
		drain(req.Body)
		l.deny(c, "", 0, "", http.StatusBadRequest, "proxy requests need CONNECT or an absolute http:// URI")
		return false
	}
	t, err := ParseTarget(authority, 80)
	up, ref := l.open(t, err)
	if ref != nil {
		drain(req.Body)
		l.writeStatus(c, ref.status, ref.reason, ref.detail)
		return false
	}
	defer l.closeUp(up)
	tu := &timeoutConn{Conn: up, idle: l.p.cfg.IdleTimeout}

	host := t.Host
	if t.IP.Is6() {
		host = "[" + host + "]"
	}
	if t.Port != 80 {
		host = t.String()
	}
	out := &http.Request{
		Method:           req.Method,
		URL:              &url.URL{Scheme: "http", Host: host, Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery},
		Proto:            "HTTP/1.1",
		ProtoMajor:       1,
		ProtoMinor:       1,
		Header:           stripHop(req.Header),
		Body:             req.Body,
		ContentLength:    req.ContentLength,
		TransferEncoding: req.TransferEncoding,
		Host:             host,
		Close:            true,
	}
	if out.URL.Path == "" {
		out.URL.Path = "/"
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // do not add Go's
	}
	bw := bufio.NewWriter(tu)
	err = out.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		l.upstreamFailed(c, t, err)
		return false
	}
	// The upstream's response header is capped like the client's; 1xx
	// interim responses are skipped (the proxy does not relay them).
	ulr := &io.LimitedReader{R: tu, N: maxResponseHeader}
	ubr := bufio.NewReader(ulr)
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(ubr, out)
		if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
			resp.Body.Close()
			err = errors.New("unexpected 101 response")
		}
		if err != nil {
			l.upstreamFailed(c, t, err)
			return false
		}
		if resp.StatusCode >= 200 {
			break
		}
		resp.Body.Close()
		ulr.N = maxResponseHeader
	}
	ulr.N = math.MaxInt64
	defer resp.Body.Close()
	keep := req.ProtoAtLeast(1, 1) && !req.Close
	if resp.ContentLength < 0 && !slices.Contains(resp.TransferEncoding, "chunked") && req.Method != http.MethodHead {
		// The body ends when the upstream closes, so the client can only
		// see its end if we close too.
		keep = false
	}
	cr := &http.Response{
		Status:           resp.Status,
		StatusCode:       resp.StatusCode,
		Proto:            "HTTP/1.1",
		ProtoMajor:       1,
		ProtoMinor:       1,
		Header:           stripHop(resp.Header),
		Body:             resp.Body,
		ContentLength:    resp.ContentLength,
		TransferEncoding: resp.TransferEncoding,
		Close:            !keep,
		Request:          req,
	}
	cw := bufio.NewWriterSize(c, 32<<10)
	if err := cr.Write(cw); err != nil || cw.Flush() != nil {
		if errors.Is(err, errByteLimit) {
			l.decision(t.Host, t.Port, "", "deny", "byte limit exceeded")
		}
		return false
	}
	return keep
}

func (l *Listener) upstreamFailed(c net.Conn, t Target, err error) {
	if errors.Is(err, errByteLimit) {
		l.decision(t.Host, t.Port, "", "deny", "byte limit exceeded")
		return
	}
	l.writeStatus(c, http.StatusBadGateway, "upstream failed", "the connection to "+t.String()+" failed before a response")
}

// drain reads a little of an unwanted request body so the client sees the
// answer rather than a reset.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) }

// timeoutConn sets a deadline before each Read and Write: fixed when set
// (the header deadline), else now plus idle.
type timeoutConn struct {
	net.Conn
	idle  time.Duration
	fixed time.Time
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	d := c.fixed
	if d.IsZero() {
		d = time.Now().Add(c.idle)
	}
	_ = c.Conn.SetReadDeadline(d)
	return c.Conn.Read(p)
}

func (c *timeoutConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}

// touch pushes back the read deadline (for a read already waiting).
func (c *timeoutConn) touch() { _ = c.Conn.SetReadDeadline(time.Now().Add(c.idle)) }

// maxResponseHeader caps an upstream response header.
const maxResponseHeader = 1 << 20

var errByteLimit = errors.New("egress byte limit exceeded")

// meteredConn is an upstream connection: it counts bytes both ways,
// draws them from the sandbox's token bucket in chunks of at most the
// burst, and stops at the sandbox's byte cap.
type meteredConn struct {
	net.Conn
	l *Listener
}

func (m *meteredConn) Read(p []byte) (int, error) {
	want := min(len(p), m.l.burst)
	if want == 0 {
		return 0, nil
	}
	got := m.l.reserve(want)
	if got == 0 {
		return 0, errByteLimit
	}
	n, err := m.Conn.Read(p[:got])
	m.l.refund(got - n)
	if n > 0 {
		m.l.stats.bytesIn.Add(int64(n))
		if werr := m.l.limiter.WaitN(m.l.ctx, n); werr != nil && err == nil {
			err = net.ErrClosed
		}
	}
	return n, err
}

func (m *meteredConn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		want := min(len(p)-written, m.l.burst)
		got := m.l.reserve(want)
		if got == 0 {
			return written, errByteLimit
		}
		if err := m.l.limiter.WaitN(m.l.ctx, got); err != nil {
			m.l.refund(got)
			return written, net.ErrClosed
		}
		n, err := m.Conn.Write(p[written : written+got])
		m.l.refund(got - n)
		m.l.stats.bytesOut.Add(int64(n))
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

func (m *meteredConn) CloseWrite() error {
	if cw, ok := m.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// reserve takes up to want bytes from the MaxBytes budget and returns how
// many it got (want when there is no cap).
func (l *Listener) reserve(want int) int {
	limit := l.p.cfg.MaxBytes
	if limit <= 0 {
		return want
	}
	for {
		u := l.used.Load()
		rem := limit - u
		if rem <= 0 {
			return 0
		}
		n := int64(want)
		if n > rem {
			n = rem
		}
		if l.used.CompareAndSwap(u, u+n) {
			return int(n)
		}
	}
}

func (l *Listener) refund(n int) {
	if n > 0 && l.p.cfg.MaxBytes > 0 {
		l.used.Add(int64(-n))
	}
}
