package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// TestBootstrapKeyFileOnOwnedDir: a bootstrap key file naming a key the
// data directory lacks is refused once it has an owner; its own key (the
// same file at every start) is not.
func TestBootstrapKeyFileOnOwnedDir(t *testing.T) {
	withOwnerKey(t)
	dir := t.TempDir()
	_, stop := serveKeys(t, dir, &bytes.Buffer{})
	stop()
	_, stop = serveKeys(t, dir, &bytes.Buffer{}) // same file: fine
	stop()

	withOwnerKey(t) // a new key: refused
	_, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir, Backend: sandboxtest.EchoBackend{}})
	if !errors.Is(err, ErrBootstrapOwnerExists) || !strings.Contains(err.Error(), "runagent keys recover") {
		t.Errorf("Open with a new bootstrap key on an owned directory: %v, want %v", err, ErrBootstrapOwnerExists)
	}
	file := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(file, []byte("not-a-key"), 0o600)
	t.Setenv(BootstrapKeyEnv, file)
	if _, err := Open(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir, Backend: sandboxtest.EchoBackend{}}); !errors.Is(err, ErrBootstrapOwnerExists) {
		t.Errorf("Open with a malformed bootstrap key on an owned directory: %v, want %v", err, ErrBootstrapOwnerExists)
	}
}

func TestRecoverOwner(t *testing.T) {
	t.Setenv(BootstrapKeyEnv, "")
	dir := t.TempDir()
	_, stop := serveKeys(t, dir, &bytes.Buffer{}) // its key is "lost"
	stop()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "runagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rec, err := RecoverOwner(context.Background(), st, &out, time.Now())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	key := keyRE.FindString(out.String())
	if k, err := apikey.Parse(key); err != nil || k.ID != rec.KeyID {
		t.Fatalf("printed %q: key %v (id %s), want key %s", out.String(), err, k.ID, rec.KeyID)
	}
	var console bytes.Buffer
	s, stop := serveKeys(t, dir, &console)
	defer stop()
	if strings.Contains(console.String(), "rak_") {
		t.Errorf("the restart printed a key: %q", console.String())
	}
	if got := get(t, s.URL()+"/api/v1/agents", key); got != http.StatusOK {
		t.Errorf("recovered owner key: %d, want 200", got)
	}
}

// TestOwnerKeysActForEveryUser: the first owner key and a recovered one
// hold users ["*"], so that an owner can hand out keys that act for end
// users (keys made before users existed hold none).
func TestOwnerKeysActForEveryUser(t *testing.T) {
	t.Setenv(BootstrapKeyEnv, "")
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "runagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var out bytes.Buffer
	if err := bootstrap(t.Context(), st, &out, time.Now()); err != nil {
		t.Fatal(err)
	}
	first, err := apikey.Parse(keyRE.FindString(out.String()))
	if err != nil {
		t.Fatalf("bootstrap printed %q: %v", out.String(), err)
	}
	rec, err := RecoverOwner(t.Context(), st, &bytes.Buffer{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for what, id := range map[string]string{"bootstrap": first.ID, "recovered": rec.KeyID} {
		k, err := st.APIKey(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(k.Users, []string{"*"}) {
			t.Errorf("%s owner key users %q, want [*]", what, k.Users)
		}
	}
}
