package tlsconf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority made up for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var lastSerial atomic.Int64

func mustKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustCA(tb testing.TB, cn string) *testCA {
	tb.Helper()
	key := mustKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(lastSerial.Add(1)),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leafOpts describe a certificate to issue; zero times mean valid from an
// hour ago for a day.
type leafOpts struct {
	cn                  string
	notBefore, notAfter time.Time
	client              bool // for client authentication rather than a server
}

// mustIssue returns a certificate signed by ca and its key, both PEM.
func (ca *testCA) mustIssue(tb testing.TB, o leafOpts) (certPEM, keyPEM []byte) {
	tb.Helper()
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(24 * time.Hour)
	}
	key := mustKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(lastSerial.Add(1)),
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if o.client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames, tmpl.IPAddresses = nil, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// mustClientCert is a client certificate for tls.Config.Certificates.
func (ca *testCA) mustClientCert(tb testing.TB, cn string) tls.Certificate {
	tb.Helper()
	c, k := ca.mustIssue(tb, leafOpts{cn: cn, client: true})
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// mustReplace puts data at name the way deploy tools do: write a temporary
// file next to it, then rename it over the old one.
func mustReplace(tb testing.TB, name string, data []byte) {
	tb.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		tb.Fatal(err)
	}
}

// mustWritePair writes a pair into dir and returns the file names.
func mustWritePair(tb testing.TB, dir string, certPEM, keyPEM []byte) (certFile, keyFile string) {
	tb.Helper()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	mustReplace(tb, certFile, certPEM)
	mustReplace(tb, keyFile, keyPEM)
	return certFile, keyFile
}

// errorLog collects the errors a Reloader reports.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) take() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := l.errs
	l.errs = nil
	return errs
}

// quiet keeps reload logs out of test output.
var quiet = WithLogger(slog.New(slog.DiscardHandler))

func mustReloader(tb testing.TB, certFile, keyFile string, opts ...Option) *Reloader {
	tb.Helper()
	r, err := NewReloader(certFile, keyFile, append([]Option{quiet}, opts...)...)
	if err != nil {
		tb.Fatalf("NewReloader(%q, %q): %v", certFile, keyFile, err)
	}
	return r
}

func mustServerConfig(tb testing.TB, r *Reloader, opts Options) *tls.Config {
	tb.Helper()
	cfg, err := ServerConfig(r, opts)
	if err != nil {
		tb.Fatalf("ServerConfig(%+v): %v", opts, err)
	}
	return cfg
}

// startTLS serves h with cfg on a loopback port until the test ends and
// returns the address.
func startTLS(tb testing.TB, cfg *tls.Config, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         cfg.Clone(), // ServeTLS writes to its config; tests share theirs between servers
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // refused handshakes are the point of some tests
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	tb.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("ServeTLS: %v", err)
		}
	})
	return ln.Addr().String()
}

// handshake connects to addr with cfg and returns the connection's state
// after one round trip of application data, so that a client certificate
// the server refuses after a TLS 1.3 handshake also shows as an error.
func handshake(tb testing.TB, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	tc := c.(*tls.Conn)
	state := tc.ConnectionState()
	if state.NegotiatedProtocol == "h2" {
		return state, nil // an HTTP/1.1 request would not be understood; the handshake is what counts
	}
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return state, err
	}
	if _, err := io.ReadAll(tc); err != nil {
		return state, err
	}
	return state, nil
}

// servedCN is the common name of the certificate a fresh client sees.
func servedCN(tb testing.TB, addr string, ca *testCA) string {
	tb.Helper()
	st, err := handshake(tb, addr, &tls.Config{RootCAs: ca.pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		tb.Fatalf("handshake with %s: %v", addr, err)
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// httpsClient is a client that trusts ca, speaks HTTP/2 when offered and
// drops its connections when the test ends.
func httpsClient(tb testing.TB, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "ok")
})
