package tlsconf

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTLSVersionsAndSuites(t *testing.T) {
	ca := mustCA(t, "ca")
	c, k := ca.mustIssue(t, leafOpts{cn: "server"})
	certFile, keyFile := mustWritePair(t, t.TempDir(), c, k)
	r := mustReloader(t, certFile, keyFile)
	cfg := mustServerConfig(t, r, Options{})
	addr := startTLS(t, cfg, okHandler)

	// The same server without the version floor, to show that the refusals
	// below are ServerConfig's doing and not the client's.
	lax := cfg.Clone()
	lax.MinVersion, lax.CipherSuites = tls.VersionTLS10, nil
	laxAddr := startTLS(t, lax, okHandler)

	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
	tests := []struct {
		name     string
		min, max uint16
		suites   []uint16
		want     uint16 // negotiated version; 0: refused
	}{
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, nil, 0},
		{"TLS 1.1", tls.VersionTLS11, tls.VersionTLS11, nil, 0},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, nil, tls.VersionTLS12},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, nil, tls.VersionTLS13},
		{"TLS 1.2 with CBC only", tls.VersionTLS12, tls.VersionTLS12, cbc, 0},
		{"any version", 0, 0, nil, tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &tls.Config{RootCAs: ca.pool(), MinVersion: tt.min, MaxVersion: tt.max, CipherSuites: tt.suites}
			st, err := handshake(t, addr, client)
			switch {
			case tt.want == 0 && err == nil:
				t.Fatalf("handshake succeeded with %s, want refused", tls.VersionName(st.Version))
			case tt.want != 0 && err != nil:
				t.Fatalf("handshake: %v, want %s", err, tls.VersionName(tt.want))
			case tt.want != 0 && st.Version != tt.want:
				t.Fatalf("negotiated %s, want %s", tls.VersionName(st.Version), tls.VersionName(tt.want))
			}
			if tt.want == 0 {
				if _, err := handshake(t, laxAddr, client); err != nil {
					t.Fatalf("control server refused too (%v); the test proves nothing", err)
				}
			}
		})
	}
}

func TestHTTP2AndHTTP1(t *testing.T) {
	ca := mustCA(t, "ca")
	c, k := ca.mustIssue(t, leafOpts{cn: "server"})
	certFile, keyFile := mustWritePair(t, t.TempDir(), c, k)
	r := mustReloader(t, certFile, keyFile)
	addr := startTLS(t, mustServerConfig(t, r, Options{}), okHandler)

	for _, tt := range []struct {
		name  string
		force bool
		want  string
	}{{"h2", true, "HTTP/2.0"}, {"http/1.1", false, "HTTP/1.1"}} {
		t.Run(tt.name, func(t *testing.T) {
			client := httpsClient(t, &tls.Config{RootCAs: ca.pool()})
			client.Transport.(*http.Transport).ForceAttemptHTTP2 = tt.force
			resp, err := client.Get("https://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Proto != tt.want {
				t.Errorf("protocol %s, want %s", resp.Proto, tt.want)
			}
		})
	}
}

func TestReloadPicksUpNewPair(t *testing.T) {
	ca := mustCA(t, "ca")
	c1, k1 := ca.mustIssue(t, leafOpts{cn: "one"})
	certFile, keyFile := mustWritePair(t, t.TempDir(), c1, k1)
	var reported errorLog
	r := mustReloader(t, certFile, keyFile, WithCheckInterval(0), WithErrorHandler(reported.add))
	addr := startTLS(t, mustServerConfig(t, r, Options{}), okHandler)

	if got := servedCN(t, addr, ca); got != "one" {
		t.Fatalf("served %q, want one", got)
	}

	// A deploy replaces the certificate first and the key a moment later.
	c2, k2 := ca.mustIssue(t, leafOpts{cn: "two"})
	mustReplace(t, certFile, c2)
	if got := servedCN(t, addr, ca); got != "one" {
		t.Fatalf("with the new certificate and the old key: served %q, want one (the old pair)", got)
	}
	errs := reported.take()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "does not belong to certificate file") {
		t.Fatalf("reported %v, want one mismatch error", errs)
	}
	mustReplace(t, keyFile, k2)
	if got := servedCN(t, addr, ca); got != "two" {
		t.Fatalf("after the key followed: served %q, want two", got)
	}
	if got := r.Leaf().Subject.CommonName; got != "two" {
		t.Errorf("Leaf() is %q, want two", got)
	}

	// Rewriting the files in place works as well.
	c3, k3 := ca.mustIssue(t, leafOpts{cn: "three"})
	if err := os.WriteFile(keyFile, k3, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, c3, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := servedCN(t, addr, ca); got != "three" {
		t.Fatalf("after rewriting in place: served %q, want three", got)
	}
	if errs := reported.take(); len(errs) > 1 {
		t.Errorf("reported %v, want at most the mismatch between the two writes", errs)
	}
}

func TestReloadKeepsServingOnBadFiles(t *testing.T) {
	ca := mustCA(t, "ca")
	tests := []struct {
		name  string
		spoil func(t *testing.T, certFile, keyFile string)
		want  string // in the reported error
	}{
		{"garbage certificate", func(t *testing.T, certFile, _ string) {
			mustReplace(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n"))
		}, "is not PEM"},
		{"half-written certificate", func(t *testing.T, certFile, _ string) {
			c, _ := ca.mustIssue(t, leafOpts{cn: "half"})
			mustReplace(t, certFile, c[:len(c)/2])
		}, "is not PEM"},
		{"garbage key", func(t *testing.T, _, keyFile string) {
			mustReplace(t, keyFile, []byte("garbage"))
		}, "is not PEM"},
		{"key of another certificate", func(t *testing.T, _, keyFile string) {
			_, k := ca.mustIssue(t, leafOpts{cn: "other"})
			mustReplace(t, keyFile, k)
		}, "private key does not match public key"},
		{"expired certificate", func(t *testing.T, certFile, keyFile string) {
			c, k := ca.mustIssue(t, leafOpts{cn: "old", notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
			mustReplace(t, certFile, c)
			mustReplace(t, keyFile, k)
		}, "expired on"},
		{"key file removed", func(t *testing.T, _, keyFile string) {
			if err := os.Remove(keyFile); err != nil {
				t.Fatal(err)
			}
		}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c1, k1 := ca.mustIssue(t, leafOpts{cn: "good"})
			certFile, keyFile := mustWritePair(t, t.TempDir(), c1, k1)
			var reported errorLog
			r := mustReloader(t, certFile, keyFile, WithCheckInterval(0), WithErrorHandler(reported.add))
			addr := startTLS(t, mustServerConfig(t, r, Options{}), okHandler)

			tt.spoil(t, certFile, keyFile)
			for range 3 {
				if got := servedCN(t, addr, ca); got != "good" {
					t.Fatalf("served %q, want good (the previous pair)", got)
				}
			}
			errs := reported.take()
			if len(errs) != 1 {
				t.Fatalf("reported %d errors %v, want 1 (once per state of the files)", len(errs), errs)
			}
			if msg := errs[0].Error(); !strings.Contains(msg, tt.want) ||
				!strings.Contains(msg, certFile) && !strings.Contains(msg, keyFile) {
				t.Errorf("reported %q, want it to name the file and say %q", msg, tt.want)
			}

			// A good pair afterwards is served.
			c2, k2 := ca.mustIssue(t, leafOpts{cn: "fixed"})
			mustWritePair(t, filepath.Dir(certFile), c2, k2)
			if got := servedCN(t, addr, ca); got != "fixed" {
				t.Fatalf("after the fix: served %q, want fixed", got)
			}
		})
	}
}

// A file rewritten within the tick of its modification time keeps its
// stamp (inode, size, time); the check must look at the contents then.
func TestReloadSeesRewriteWithinOneTick(t *testing.T) {
	ca := mustCA(t, "ca")
	c1, k1 := ca.mustIssue(t, leafOpts{cn: "one"})
	certFile, keyFile := mustWritePair(t, t.TempDir(), c1, k1)
	var reported errorLog
	r := mustReloader(t, certFile, keyFile, WithCheckInterval(0), WithErrorHandler(reported.add))

	before, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// The stamp includes the size: issue keys until one has the first's
	// (PEM sizes of ECDSA keys differ only now and then).
	_, k2 := ca.mustIssue(t, leafOpts{cn: "two"})
	for i := 0; len(k2) != len(k1); i++ {
		if i == 100 {
			t.Fatalf("no key of %d bytes in 100 tries", len(k1))
		}
		_, k2 = ca.mustIssue(t, leafOpts{cn: "two"})
	}
	if err := os.WriteFile(keyFile, k2, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(keyFile, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(keyFile); !sameFile(before, after) {
		t.Fatal("the rewrite changed the stamp; the test proves nothing")
	}
	if _, err := r.GetCertificate(nil); err != nil {
		t.Fatal(err)
	}
	if errs := reported.take(); len(errs) != 1 {
		t.Fatalf("reported %v, want the mismatch of the rewritten key", errs)
	}
}

func TestReloadChecksAtMostOncePerInterval(t *testing.T) {
	ca := mustCA(t, "ca")
	c1, k1 := ca.mustIssue(t, leafOpts{cn: "one"})
	certFile, keyFile := mustWritePair(t, t.TempDir(), c1, k1)
	clock := newFakeClock()
	r := mustReloader(t, certFile, keyFile, WithClock(clock.Now))
	addr := startTLS(t, mustServerConfig(t, r, Options{}), okHandler)

	c2, k2 := ca.mustIssue(t, leafOpts{cn: "two"})
	mustWritePair(t, filepath.Dir(certFile), c2, k2)
	clock.Advance(DefaultCheckInterval - time.Millisecond)
	if got := servedCN(t, addr, ca); got != "one" {
		t.Fatalf("before the interval passed: served %q, want one", got)
	}
	clock.Advance(time.Millisecond)
	if got := servedCN(t, addr, ca); got != "two" {
		t.Fatalf("after the interval: served %q, want two", got)
	}
}

func TestReloadMethod(t *testing.T) {
	ca := mustCA(t, "ca")
	c1, k1 := ca.mustIssue(t, leafOpts{cn: "one"})
	certFile, keyFile := mustWritePair(t, t.TempDir(), c1, k1)
	var reported errorLog
	r := mustReloader(t, certFile, keyFile, WithCheckInterval(time.Hour), WithErrorHandler(reported.add))

	mustReplace(t, keyFile, []byte("garbage"))
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("Reload with a garbage key: %v, want an error naming %s", err, keyFile)
	}
	if got := r.Leaf().Subject.CommonName; got != "one" {
		t.Fatalf("after a failed Reload: serving %q, want one", got)
	}
	c2, k2 := ca.mustIssue(t, leafOpts{cn: "two"})
	mustWritePair(t, filepath.Dir(certFile), c2, k2)
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	cert, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || cert.Leaf.Subject.CommonName != "two" {
		t.Fatalf("GetCertificate after Reload: %v, %v; want two", cert.Leaf.Subject, err)
	}
	if errs := reported.take(); len(errs) != 0 {
		t.Errorf("Reload reported %v; it should only return its error", errs)
	}
}

func TestNewReloaderErrors(t *testing.T) {
	ca := mustCA(t, "ca")
	goodCert, goodKey := ca.mustIssue(t, leafOpts{cn: "good"})
	_, otherKey := ca.mustIssue(t, leafOpts{cn: "other"})
	expiredCert, expiredKey := ca.mustIssue(t, leafOpts{cn: "expired",
		notBefore: time.Now().Add(-72 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	futureCert, futureKey := ca.mustIssue(t, leafOpts{cn: "future",
		notBefore: time.Now().Add(24 * time.Hour), notAfter: time.Now().Add(72 * time.Hour)})
	encryptedKey := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})

	const missing = "\x00missing" // marks a file not to create
	tests := []struct {
		name      string
		cert, key []byte
		wantFile  string // "cert" or "key": which file the error names
		want      string
	}{
		{"missing certificate", []byte(missing), goodKey, "cert", "no such file"},
		{"missing key", goodCert, []byte(missing), "key", "no such file"},
		{"certificate not PEM", []byte("hello"), goodKey, "cert", "is not PEM"},
		{"key not PEM", goodCert, []byte("hello"), "key", "is not PEM"},
		{"empty certificate", []byte{}, goodKey, "cert", "is not PEM"},
		{"files swapped", goodKey, goodCert, "cert", "swapped"},
		{"certificate twice", goodCert, goodCert, "key", "swapped"},
		{"key of another certificate", goodCert, otherKey, "key", "private key does not match public key"},
		{"encrypted key", goodCert, encryptedKey, "key", "encrypted"},
		{"issuer first", append(append([]byte{}, ca.pem...), goodCert...), goodKey, "key", "must come first"},
		{"corrupt certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}), goodKey, "cert", "certificate 1"},
		{"corrupt key", goodCert, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")}), "key", "not a PKCS #8"},
		{"expired certificate", expiredCert, expiredKey, "cert", "expired on"},
		{"certificate not valid yet", futureCert, futureKey, "cert", "not valid before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			for name, data := range map[string][]byte{certFile: tt.cert, keyFile: tt.key} {
				if string(data) != missing {
					mustReplace(t, name, data)
				}
			}
			r, err := NewReloader(certFile, keyFile, quiet)
			if err == nil {
				t.Fatalf("NewReloader succeeded (serving %v), want an error", r.Leaf().Subject)
			}
			named := map[string]string{"cert": certFile, "key": keyFile}[tt.wantFile]
			if msg := err.Error(); !strings.Contains(msg, named) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to name %s and say %q", msg, named, tt.want)
			}
		})
	}

	t.Run("missing file is fs.ErrNotExist", func(t *testing.T) {
		_, err := NewReloader(filepath.Join(t.TempDir(), "nope"), "nope.key", quiet)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v, want one that is fs.ErrNotExist", err)
		}
	})
	t.Run("no file names", func(t *testing.T) {
		if _, err := NewReloader("", "", quiet); err == nil {
			t.Error("NewReloader with no files succeeded")
		}
	})
}

func TestWarning(t *testing.T) {
	ca := mustCA(t, "ca")
	tests := []struct {
		name     string
		left     time.Duration
		opts     []Option
		want     string // in the warning; "" for none
		wantNone bool
	}{
		{"far from expiry", 90 * 24 * time.Hour, nil, "", true},
		{"ten days left", 10*24*time.Hour + time.Hour, nil, "expires in 10 days", false},
		{"hours left", 5 * time.Hour, nil, "expires in 5h0m0s", false},
		{"ten days left, warning at five", 10*24*time.Hour + time.Hour, []Option{WithExpiryWarning(5 * 24 * time.Hour)}, "", true},
		{"warnings off", time.Hour, []Option{WithExpiryWarning(0)}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			c, k := ca.mustIssue(t, leafOpts{cn: "soon", notAfter: clock.Now().Add(tt.left)})
			certFile, keyFile := mustWritePair(t, t.TempDir(), c, k)
			r := mustReloader(t, certFile, keyFile, append(tt.opts, WithClock(clock.Now))...)
			got := r.Warning()
			if tt.wantNone {
				if got != "" {
					t.Errorf("Warning() = %q, want none", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) || !strings.Contains(got, certFile) {
				t.Errorf("Warning() = %q, want it to name %s and say %q", got, certFile, tt.want)
			}
		})
	}
}

func TestGetCertificateConcurrentWithReloads(t *testing.T) {
	ca := mustCA(t, "ca")
	c, k := ca.mustIssue(t, leafOpts{cn: "a"})
	certFile, keyFile := mustWritePair(t, t.TempDir(), c, k)
	r := mustReloader(t, certFile, keyFile, WithCheckInterval(0))
	pairs := make([][2][]byte, 4)
	for i := range pairs {
		pairs[i][0], pairs[i][1] = ca.mustIssue(t, leafOpts{cn: "n"})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			p := pairs[i%len(pairs)]
			for name, data := range map[string][]byte{certFile: p[0], keyFile: p[1]} {
				if err := os.WriteFile(name+".tmp", data, 0o600); err != nil {
					t.Error(err)
					return
				}
				if err := os.Rename(name+".tmp", name); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		cert, err := r.GetCertificate(nil)
		if err != nil || cert == nil || cert.Leaf == nil {
			t.Fatalf("GetCertificate = %v, %v", cert, err)
		}
	}
}

func BenchmarkGetCertificate(b *testing.B) {
	ca := mustCA(b, "ca")
	c, k := ca.mustIssue(b, leafOpts{cn: "bench"})
	certFile, keyFile := mustWritePair(b, b.TempDir(), c, k)
	r := mustReloader(b, certFile, keyFile)
	hello := &tls.ClientHelloInfo{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.GetCertificate(hello); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func FuzzParsePair(f *testing.F) {
	ca := mustCA(f, "ca")
	c, k := ca.mustIssue(f, leafOpts{cn: "fuzz"})
	f.Add(c, k)
	f.Add(k, c)
	f.Add(append(c, ca.pem...), k)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), []byte{})
	now := time.Now()
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		cert, err := parsePair(certPEM, keyPEM, "c", "k", now)
		if err != nil {
			if !strings.Contains(err.Error(), `"c"`) && !strings.Contains(err.Error(), `"k"`) {
				t.Errorf("error %q names neither file", err)
			}
			return
		}
		if cert.Leaf == nil || cert.PrivateKey == nil || len(cert.Certificate) == 0 {
			t.Fatalf("accepted an incomplete pair: %+v", cert)
		}
		if now.Before(cert.Leaf.NotBefore) || now.After(cert.Leaf.NotAfter) {
			t.Errorf("accepted a certificate valid %v to %v at %v", cert.Leaf.NotBefore, cert.Leaf.NotAfter, now)
		}
	})
}
