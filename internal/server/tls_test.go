package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir.
type pki struct {
	caPool                    *x509.CertPool
	caFile, certFile, keyFile string
	client                    tls.Certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, ip bool) ([]byte, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := pki{caPool: x509.NewCertPool()}
	p.caPool.AddCert(ca)
	p.caFile = write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := leaf(2, x509.ExtKeyUsageServerAuth, true)
	p.certFile = write("cert.pem", "CERTIFICATE", srvDER)
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	p.keyFile = write("key.pem", "EC PRIVATE KEY", kb)
	cliDER, cliKey := leaf(3, x509.ExtKeyUsageClientAuth, false)
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	return p
}

// TestServeTLS: with --tls-cert/--tls-key the server speaks only TLS (1.2
// or later), sends HSTS, and with --tls-client-ca the control API also
// needs a client certificate while invoking does not.
func TestServeTLS(t *testing.T) {
	p := newPKI(t)
	owner := withOwnerKey(t)
	s := serve(t, Config{TLSCert: p.certFile, TLSKey: p.keyFile, TLSClientCA: p.caFile})
	if s.URL()[:8] != "https://" {
		t.Fatalf("URL %s, want https", s.URL())
	}

	client := func(cert *tls.Certificate, maxVersion uint16) *http.Client {
		cfg := &tls.Config{RootCAs: p.caPool, MaxVersion: maxVersion}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	call := func(c *http.Client, path string) (int, http.Header, error) {
		req, _ := http.NewRequest("GET", s.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+owner)
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header, nil
	}
	status, h, err := call(client(nil, 0), "/api/v1/agents")
	if err != nil || status != http.StatusOK {
		t.Fatalf("over TLS without a client certificate: %d, %v", status, err)
	}
	if h.Get("Strict-Transport-Security") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers over TLS: %v", h)
	}
	if status, _, _ := call(client(nil, 0), "/api/v1/keys"); status != http.StatusForbidden {
		t.Errorf("control API without a client certificate: %d, want 403", status)
	}
	if status, _, err := call(client(&p.client, 0), "/api/v1/keys"); err != nil || status != http.StatusOK {
		t.Errorf("control API with a client certificate: %d, %v", status, err)
	}
	if _, _, err := call(client(nil, tls.VersionTLS11), "/api/v1/health"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	resp, err := http.Get("http://" + s.Addr() + "/api/v1/health")
	if err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP was served on the TLS port")
		}
		resp.Body.Close()
	}
}
