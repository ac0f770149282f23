package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestMemoryCommands: list prints a table, export writes the archive to
// -o only once complete (mode 0600) and leaves nothing on failure,
// delete names the user; a user id with a slash stays one path segment.
func TestMemoryCommands(t *testing.T) {
	var (
		mu   sync.Mutex
		last string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Method + " " + r.URL.EscapedPath()
		mu.Unlock()
		switch {
		case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/memory"):
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"success":true,"data":{"memories":[{"user_id":"alice","used_bytes":1048576,"files":3,"cap_bytes":104857600,"created_at":"2026-12-01T00:00:00Z","last_used_at":"2026-12-02T00:00:00Z"}]}}`))
		case r.Method == "GET" && strings.Contains(r.URL.Path, "/memory/alice/export"):
			w.Header().Set("Content-Type", "application/x-tar")
			w.Write([]byte("TARBYTES"))
		case r.Method == "GET":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"success":false,"error":{"code":"NOT_FOUND","message":"agent a1 keeps no memory for user \"bob\""}}`))
		case r.Method == "DELETE":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"success":true,"data":{"deleted":true}}`))
		}
	}))
	defer srv.Close()
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := Main(t.Context(), append(args, "--server", srv.URL), strings.NewReader(""), &out, &out)
		return code, out.String()
	}
	if code, out := run("memory", "list", "a1"); code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "1.0 MiB") {
		t.Errorf("memory list = %d %q", code, out)
	}
	file := filepath.Join(t.TempDir(), "alice.tar")
	if code, out := run("memory", "export", "a1", "alice", "-o", file); code != 0 {
		t.Fatalf("memory export = %d %q", code, out)
	}
	b, err := os.ReadFile(file)
	if string(b) != "TARBYTES" || err != nil {
		t.Errorf("exported file = %q, %v", b, err)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("exported file mode %o, want 0600", st.Mode().Perm())
	}
	bad := filepath.Join(t.TempDir(), "bob.tar")
	if code, out := run("memory", "export", "a1", "bob", "-o", bad); code == 0 || !strings.Contains(out, "keeps no memory") {
		t.Errorf("export of an unknown user = %d %q, want the server's error", code, out)
	}
	if ents, _ := os.ReadDir(filepath.Dir(bad)); len(ents) != 0 {
		t.Errorf("a failed export left %v", ents)
	}
	if code, out := run("memory", "delete", "a1", "team/bob"); code != 0 || !strings.Contains(out, `"team/bob"`) {
		t.Errorf("memory delete = %d %q", code, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if last != "DELETE /api/v1/agents/a1/memory/team%2Fbob" {
		t.Errorf("delete went to %q, want the user id as one escaped segment", last)
	}
}
