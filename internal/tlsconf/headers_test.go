package tlsconf

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// wantHeaders are the headers of every response; HSTS is added over TLS.
var wantHeaders = map[string]string{
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Resource-Policy": "same-origin",
}

const wantHSTS = "max-age=63072000; includeSubDomains"

// headerTestMux has the kinds of response the headers must be on.
func headerTestMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
		}
	})
	mux.HandleFunc("GET /secret", func(w http.ResponseWriter, r *http.Request) {
		NoStore(w)
		io.WriteString(w, "s3cret")
	})
	mux.HandleFunc("GET /own-csp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		io.WriteString(w, "<p>docs</p>")
	})
	mux.HandleFunc("GET /upgrade", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "test")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		brw.WriteString("hello after upgrade\n")
		brw.Flush()
	})
	return mux
}

func checkHeaders(t *testing.T, got http.Header, hsts bool) {
	t.Helper()
	want := map[string]string{}
	for k, v := range wantHeaders {
		want[k] = v
	}
	if hsts {
		want["Strict-Transport-Security"] = wantHSTS
	}
	have := map[string]string{}
	for k := range wantHeaders {
		have[k] = got.Get(k)
	}
	if v := got.Get("Strict-Transport-Security"); v != "" || hsts {
		have["Strict-Transport-Security"] = v
	}
	if diff := cmp.Diff(have, want); diff != "" {
		t.Errorf("security headers (-got +want):\n%s", diff)
	}
}

func TestSecurityHeaders(t *testing.T) {
	ca := mustCA(t, "ca")
	c, k := ca.mustIssue(t, leafOpts{cn: "server"})
	certFile, keyFile := mustWritePair(t, t.TempDir(), c, k)
	cfg := mustServerConfig(t, mustReloader(t, certFile, keyFile), Options{})

	plain := httptest.NewServer(SecurityHeaders(headerTestMux(), HeaderOptions{}))
	t.Cleanup(plain.Close)
	servers := []struct {
		name   string
		url    string
		client *http.Client
		hsts   bool
	}{
		{"plain HTTP", plain.URL, plain.Client(), false},
		{"TLS", "https://" + startTLS(t, cfg, SecurityHeaders(headerTestMux(), HeaderOptions{})),
			httpsClient(t, &tls.Config{RootCAs: ca.pool()}), true},
		{"TLS without HSTS", "https://" + startTLS(t, cfg, SecurityHeaders(headerTestMux(), HeaderOptions{DisableHSTS: true})),
			httpsClient(t, &tls.Config{RootCAs: ca.pool()}), false},
	}
	paths := []struct {
		path   string
		status int
	}{
		{"/ok", 200},
		{"/missing", 404},
		{"/error", 500},
		{"/stream", 200},
		{"/secret", 200},
		{"/ok", 405}, // by POST, below
	}
	for _, srv := range servers {
		for _, p := range paths {
			t.Run(fmt.Sprintf("%s/%d%s", srv.name, p.status, p.path), func(t *testing.T) {
				method := "GET"
				if p.status == 405 {
					method = "POST"
				}
				req, err := http.NewRequestWithContext(t.Context(), method, srv.url+p.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := srv.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != p.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, p.status)
				}
				checkHeaders(t, resp.Header, srv.hsts)
			})
		}
	}

	t.Run("NoStore", func(t *testing.T) {
		resp, err := plain.Client().Get(plain.URL + "/secret")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, got2 := resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"); got != "no-store" || got2 != "no-cache" {
			t.Errorf("Cache-Control %q, Pragma %q; want no-store, no-cache", got, got2)
		}
		resp, err = plain.Client().Get(plain.URL + "/ok")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Cache-Control"); got != "" {
			t.Errorf("Cache-Control %q on a response without NoStore", got)
		}
	})

	t.Run("handler may replace a header", func(t *testing.T) {
		resp, err := plain.Client().Get(plain.URL + "/own-csp")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Values("Content-Security-Policy"); len(got) != 1 || got[0] != "default-src 'self'" {
			t.Errorf("Content-Security-Policy %q, want the handler's only", got)
		}
	})

	t.Run("hijacked upgrade", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", plain.Listener.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		checkHeaders(t, resp.Header, false)
		line, err := br.ReadString('\n')
		if err != nil || line != "hello after upgrade\n" {
			t.Errorf("after the upgrade read %q, %v", line, err)
		}
	})
}
