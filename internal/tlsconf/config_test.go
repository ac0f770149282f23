package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerConfigDefaults(t *testing.T) {
	ca := mustCA(t, "ca")
	c, k := ca.mustIssue(t, leafOpts{cn: "server"})
	certFile, keyFile := mustWritePair(t, t.TempDir(), c, k)
	cfg := mustServerConfig(t, mustReloader(t, certFile, keyFile), Options{})

	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %s, want TLS 1.2", tls.VersionName(cfg.MinVersion))
	}
	if got := strings.Join(cfg.NextProtos, ","); got != "h2,http/1.1" {
		t.Errorf("NextProtos %s, want h2,http/1.1", got)
	}
	if len(cfg.Certificates) != 0 || cfg.GetCertificate == nil {
		t.Errorf("Certificates %d, GetCertificate set %v; want only GetCertificate", len(cfg.Certificates), cfg.GetCertificate != nil)
	}
	if cfg.ClientAuth != tls.NoClientCert {
		t.Errorf("ClientAuth %v without a client CA file, want NoClientCert", cfg.ClientAuth)
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !strings.Contains(name, "GCM") && !strings.Contains(name, "CHACHA20_POLY1305") {
			t.Errorf("suite %s is not ECDHE with AEAD", name)
		}
	}
	for _, s := range tls.InsecureCipherSuites() {
		for _, id := range cfg.CipherSuites {
			if id == s.ID {
				t.Errorf("insecure suite %s offered", s.Name)
			}
		}
	}
}

// whoHandler answers with the verified client's common name, or "anonymous".
var whoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if c, ok := VerifiedClient(r); ok {
		io.WriteString(w, c.Subject.CommonName)
		return
	}
	io.WriteString(w, "anonymous")
})

func TestClientCertificates(t *testing.T) {
	serverCA, clientCA, otherCA := mustCA(t, "server ca"), mustCA(t, "client ca"), mustCA(t, "other ca")
	c, k := serverCA.mustIssue(t, leafOpts{cn: "server"})
	dir := t.TempDir()
	certFile, keyFile := mustWritePair(t, dir, c, k)
	caFile := filepath.Join(dir, "client-ca.pem")
	mustReplace(t, caFile, clientCA.pem)
	r := mustReloader(t, certFile, keyFile)

	good := clientCA.mustClientCert(t, "alice")
	foreign := otherCA.mustClientCert(t, "mallory")
	// A certificate from the right CA but for servers, not clients.
	sc, sk := clientCA.mustIssue(t, leafOpts{cn: "server-as-client"})
	serverUse, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		mode   ClientAuthMode
		client string
		certs  []tls.Certificate
		want   string // response body; "" for a refused connection
	}{
		{ClientCertRequired, "no certificate", nil, ""},
		{ClientCertRequired, "certificate of another CA", []tls.Certificate{foreign}, ""},
		{ClientCertRequired, "server certificate", []tls.Certificate{serverUse}, ""},
		{ClientCertRequired, "good certificate", []tls.Certificate{good}, "alice"},
		{ClientCertOptional, "no certificate", nil, "anonymous"},
		{ClientCertOptional, "certificate of another CA", []tls.Certificate{foreign}, ""},
		{ClientCertOptional, "good certificate", []tls.Certificate{good}, "alice"},
	}
	addrs := map[ClientAuthMode]string{}
	for _, mode := range []ClientAuthMode{ClientCertOptional, ClientCertRequired} {
		cfg := mustServerConfig(t, r, Options{ClientCAFile: caFile, ClientAuth: mode})
		addrs[mode] = startTLS(t, cfg, whoHandler)
	}
	for _, tt := range tests {
		for _, proto := range []string{"h2", "http/1.1"} {
			for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				name := tt.mode.String() + "/" + tt.client + "/" + proto + "/" + tls.VersionName(version)
				t.Run(name, func(t *testing.T) {
					client := httpsClient(t, &tls.Config{
						RootCAs: serverCA.pool(), MaxVersion: version,
						// Send the certificate even when the server's list of
						// acceptable CAs does not name its issuer; left to
						// itself, Go's client would send none.
						GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
							if len(tt.certs) == 0 {
								return &tls.Certificate{}, nil
							}
							return &tt.certs[0], nil
						},
					})
					client.Transport.(*http.Transport).ForceAttemptHTTP2 = proto == "h2"
					resp, err := client.Get("https://" + addrs[tt.mode] + "/")
					if tt.want == "" {
						if err == nil {
							resp.Body.Close()
							t.Fatalf("request succeeded with status %s, want the connection refused", resp.Status)
						}
						return
					}
					if err != nil {
						t.Fatalf("request: %v, want %q", err, tt.want)
					}
					defer resp.Body.Close()
					body, err := io.ReadAll(resp.Body)
					if err != nil {
						t.Fatal(err)
					}
					if string(body) != tt.want {
						t.Errorf("VerifiedClient saw %q, want %q", body, tt.want)
					}
				})
			}
		}
	}
}

func TestVerifiedClientWithoutTLS(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if c, ok := VerifiedClient(r); ok || c != nil {
		t.Errorf("VerifiedClient of a plain request = %v, %v; want nil, false", c, ok)
	}
	// A certificate the client sent but nobody verified does not count.
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{mustCA(t, "self").cert}}
	if c, ok := VerifiedClient(r); ok || c != nil {
		t.Errorf("VerifiedClient of an unverified certificate = %v, %v; want nil, false", c, ok)
	}
}

func TestServerConfigErrors(t *testing.T) {
	ca := mustCA(t, "ca")
	c, k := ca.mustIssue(t, leafOpts{cn: "server"})
	dir := t.TempDir()
	certFile, keyFile := mustWritePair(t, dir, c, k)
	r := mustReloader(t, certFile, keyFile)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPEM := write("not-pem.pem", []byte("hello"))
	withKey := write("with-key.pem", append(append([]byte{}, ca.pem...), k...))
	goodCA := write("ca.pem", ca.pem)

	tests := []struct {
		name string
		src  *Reloader
		opts Options
		want string
	}{
		{"no source", nil, Options{}, "certificate source"},
		{"required without CA file", r, Options{ClientAuth: ClientCertRequired}, "no client CA file"},
		{"missing CA file", r, Options{ClientCAFile: filepath.Join(dir, "nope.pem")}, "no such file"},
		{"CA file not PEM", r, Options{ClientCAFile: notPEM}, "is not PEM"},
		{"CA file with a private key", r, Options{ClientCAFile: withKey}, "holds a private key"},
		{"unknown mode", r, Options{ClientCAFile: goodCA, ClientAuth: 7}, "unknown client certificate mode 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ServerConfig(tt.src, tt.opts)
			if err == nil {
				t.Fatalf("ServerConfig succeeded (ClientAuth %v), want an error saying %q", cfg.ClientAuth, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
			if f := tt.opts.ClientCAFile; f != "" && f != goodCA && !strings.Contains(err.Error(), f) {
				t.Errorf("error %q does not name the file %s", err, f)
			}
		})
	}
}

func TestParseClientAuthMode(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    ClientAuthMode
		wantErr bool
	}{
		{"", ClientCertOptional, false},
		{"optional", ClientCertOptional, false},
		{"require", ClientCertRequired, false},
		{" Required ", ClientCertRequired, false},
		{"yes", 0, true},
	} {
		got, err := ParseClientAuthMode(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseClientAuthMode(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			if back, _ := ParseClientAuthMode(got.String()); back != got {
				t.Errorf("ParseClientAuthMode(%q.String()) = %v", got, back)
			}
		}
	}
}
