package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// TestMasterKeyFromEnv: the master key itself in $RUNAGENT_MASTER_KEY
// opens the keyring (no key file needed); a wrong key refuses to start; a malformed one, or one given
// beside a key file, is refused without quoting it; the printed
// configuration names the variable, never the key.
func TestMasterKeyFromEnv(t *testing.T) {
	raw := []byte("0123456789abcdef0123456789abcdef")
	key := base64.StdEncoding.EncodeToString(raw)
	dir := t.TempDir()
	t.Setenv(MasterKeyEnv, key)
	s, stop := open(t, Config{DataDir: dir, Auth: AuthNone, Keyring: KeyringFromEnv(KeyringConfig{})})
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	if got, want := s.keyring.MasterKeyID(), keyring.MasterKeyID(raw); got != want {
		t.Errorf("master key id = %s, want the environment key's %s", got, want)
	}
	b, err := json.Marshal(Config{DataDir: dir}.Effective())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), key) || !strings.Contains(string(b), "key from $"+MasterKeyEnv) {
		t.Errorf("effective config: %s; want the variable named and the key left out", b)
	}
	stop()
	stop = nil

	for _, tc := range []struct {
		name, env string
		file      string
		want      error
		wantText  string
	}{
		{"wrong key", base64.StdEncoding.EncodeToString([]byte("another key, 32 bytes long......")), "", keyring.ErrWrongMasterKey, "does not match"},
		{"not base64", "this is not a key!", "", nil, "not one line of standard base64"},
		{"short", base64.StdEncoding.EncodeToString([]byte("short")), "", nil, "5-byte key"},
		{"with a key file", key, filepath.Join(dir, "other.key"), nil, "one way only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(MasterKeyEnv, tc.env)
			srv, err := Open(t.Context(), Config{DataDir: dir, Auth: AuthNone, Addr: "127.0.0.1:0", Backend: sandboxtest.EchoBackend{},
				Keyring: KeyringFromEnv(KeyringConfig{MasterKeyFile: tc.file})})
			if err == nil {
				srv.Close()
				t.Fatal("Open succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Open = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("Open = %q, want it to say %q", err, tc.wantText)
			}
			if strings.Contains(err.Error(), tc.env) {
				t.Errorf("Open's error quotes the key: %q", err)
			}
		})
	}
}
