package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ClientAuthMode says what ServerConfig does with client certificates when
// Options.ClientCAFile is set.
type ClientAuthMode int

const (
	// ClientCertOptional verifies a client certificate if the client sends
	// one and lets clients without one connect; handlers decide with
	// VerifiedClient (for example: mTLS for the control API only).
	ClientCertOptional ClientAuthMode = iota
	// ClientCertRequired refuses the handshake of a client without a
	// certificate signed by a client CA.
	ClientCertRequired
)

// String returns the name ParseClientAuthMode accepts.
func (m ClientAuthMode) String() string {
	switch m {
	case ClientCertOptional:
		return "optional"
	case ClientCertRequired:
		return "require"
	}
	return fmt.Sprintf("ClientAuthMode(%d)", int(m))
}

// ParseClientAuthMode reads a flag value: "optional" or "require".
func ParseClientAuthMode(s string) (ClientAuthMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "optional":
		return ClientCertOptional, nil
	case "require", "required":
		return ClientCertRequired, nil
	}
	return 0, fmt.Errorf("unknown client certificate mode %q (want optional or require)", s)
}

// Options are the choices of ServerConfig beyond the certificate.
type Options struct {
	// ClientCAFile is a PEM file of the CAs whose client certificates are
	// accepted. Empty turns client certificate authentication off. It is
	// read once, by ServerConfig.
	ClientCAFile string
	// ClientAuth applies when ClientCAFile is set.
	ClientAuth ClientAuthMode
}

// tls12Suites are the TLS 1.2 suites offered: forward secret (ECDHE) and
// authenticated encryption (AEAD) only. TLS 1.3 suites are not
// configurable and all meet this bar. Go orders them itself.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ServerConfig returns the TLS configuration of the HTTP server: TLS 1.2 or
// later, ECDHE+AEAD suites for TLS 1.2, Go's defaults otherwise (key
// exchange groups included), HTTP/2 and HTTP/1.1 by ALPN, the certificate
// from src, and client certificate authentication if opts.ClientCAFile is
// set. The error names the client CA file if it cannot be used.
//
// Serve it with http.Server.ServeTLS(ln, "", "") or ListenAndServeTLS("",
// ""), and do not add Certificates: with a certificate in Certificates, Go
// skips GetCertificate for clients that send no server name. net/http
// writes to the config when serving starts, so each http.Server needs its
// own (another call, or Clone).
func ServerConfig(src *Reloader, opts Options) (*tls.Config, error) {
	if src == nil {
		return nil, errors.New("tls server config needs a certificate source")
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   tls12Suites,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: src.GetCertificate,
	}
	if opts.ClientCAFile == "" {
		if opts.ClientAuth == ClientCertRequired {
			return nil, errors.New("client certificates are required but no client CA file is given")
		}
		return cfg, nil
	}
	pool, err := loadCAs(opts.ClientCAFile)
	if err != nil {
		return nil, err
	}
	cfg.ClientCAs = pool
	switch opts.ClientAuth {
	case ClientCertOptional:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientCertRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("unknown client certificate mode %d", int(opts.ClientAuth))
	}
	return cfg, nil
}

// loadCAs reads a PEM file of CA certificates. A private key in it is an
// error: a CA's key has no business on the server.
func loadCAs(name string) (*x509.CertPool, error) {
	data, err := readFile("client CA file", name)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if isKeyBlock(b.Type) {
			return nil, fmt.Errorf("client CA file %q holds a private key; it must hold only CA certificates (keep CA keys off the server)", name)
		}
	}
	chain, err := parseChain(data, "client CA file", name)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range chain {
		pool.AddCert(c)
	}
	return pool, nil
}

// VerifiedClient returns the client certificate of r's connection if the
// client presented one and it was verified against the client CAs. A
// certificate the client sent but that was not verified (impossible with
// ServerConfig, possible with other configurations) does not count.
func VerifiedClient(r *http.Request) (*x509.Certificate, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false
	}
	return r.TLS.VerifiedChains[0][0], true
}
