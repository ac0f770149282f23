package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runagent/runagent/client"
)

// TestResolveVersion: --to takes a whole hash or a unique prefix, with or
// without "sha256:"; an unknown or ambiguous one is refused with what to do.
func TestResolveVersion(t *testing.T) {
	a := "sha256:" + strings.Repeat("ab", 32)
	b := "sha256:" + "abc" + strings.Repeat("0", 61)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"success":true,"data":{"versions":[{"version":"` + b + `"},{"version":"` + a + `"}]}}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ in, want, wantErr string }{
		{in: a, want: a},
		{in: "abab", want: a},
		{in: "sha256:abc", want: b},
		{in: "ab", wantErr: "ambiguous"},
		{in: "ff", wantErr: "no version"},
		{in: "sha256:", wantErr: "empty"},
	} {
		got, err := resolveVersion(t.Context(), c, "agent", tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("resolveVersion(%q) = %q, %v; want an error saying %q", tt.in, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("resolveVersion(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
