package keyring_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/keyring"
)

func TestGenerateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "keys")
	path := filepath.Join(dir, "master.key")
	if err := keyring.GenerateKeyFile(path); err != nil {
		t.Fatalf("GenerateKeyFile() = %v", err)
	}
	for _, f := range []struct {
		path string
		want os.FileMode
	}{{path, 0o600}, {dir, 0o700 | os.ModeDir}, {filepath.Dir(dir), 0o700 | os.ModeDir}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != f.want {
			t.Errorf("mode of %s = %v, want %v", f.path, got, f.want)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 45 || b[44] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("key file = %d bytes, want 44 bytes of base64 and a newline", len(b))
	}
	key, err := keyring.ReadKeyFile(path)
	if err != nil {
		t.Fatalf("ReadKeyFile() = %v", err)
	}
	if len(key) != keyring.KeySize || bytes.Equal(key, make([]byte, keyring.KeySize)) {
		t.Errorf("ReadKeyFile() = %d bytes, want %d random bytes", len(key), keyring.KeySize)
	}

	// Never overwrite a master key.
	err = keyring.GenerateKeyFile(path)
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("GenerateKeyFile(existing file) = %v, want an error wrapping os.ErrExist", err)
	}
	if again, _ := keyring.ReadKeyFile(path); !bytes.Equal(again, key) {
		t.Errorf("the refused GenerateKeyFile changed the key")
	}

	// Two files get two keys.
	other := filepath.Join(dir, "other.key")
	if err := keyring.GenerateKeyFile(other); err != nil {
		t.Fatal(err)
	}
	if key2, _ := keyring.ReadKeyFile(other); bytes.Equal(key2, key) {
		t.Errorf("two generated key files hold the same key")
	}
}

func TestReadKeyFile(t *testing.T) {
	key := bytes.Repeat([]byte{0xa5, 0x5a, 0x11, 0x99}, keyring.KeySize/4)
	good := b64(key) + "\n"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr string // "" for success
	}{
		{"0600", good, 0o600, ""},
		{"0400", good, 0o400, ""},
		{"no newline", b64(key), 0o600, ""},
		{"CRLF and spaces", "  " + b64(key) + "\r\n", 0o600, ""},
		{"0644", good, 0o644, "chmod 600 "},
		{"0640", good, 0o640, "chmod 600 "},
		{"0604", good, 0o604, "chmod 600 "},
		{"0620", good, 0o620, "chmod 600 "},
		{"0610", good, 0o610, "chmod 600 "},
		{"short key", b64(key[:31]) + "\n", 0o600, "31-byte key, want 32"},
		{"long key", b64(append(bytes.Clone(key), 1)) + "\n", 0o600, "33-byte key, want 32"},
		{"hex", strings.Repeat("ab", 32) + "\n", 0o600, "48-byte key"},
		{"not base64", "!!" + good[2:], 0o600, "not one line of standard base64"},
		{"URL encoding", strings.NewReplacer("+", "-", "/", "_").Replace(b64(bytes.Repeat([]byte{0xfb, 0xff, 0xbf}, 11)[:32])), 0o600, "not one line of standard base64"},
		{"empty", "", 0o600, "0-byte key"},
		{"huge", strings.Repeat(good, 100), 0o600, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := keyring.ReadKeyFile(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ReadKeyFile(%s) = %v", tt.name, err)
				}
				if !bytes.Equal(got, key) {
					t.Errorf("ReadKeyFile(%s) returned another key", tt.name)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadKeyFile(%s) = nil error, want one containing %q", tt.name, tt.wantErr)
			}
			if got != nil {
				t.Errorf("ReadKeyFile(%s) returned a key with its error", tt.name)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("ReadKeyFile(%s) = %q, want it to contain %q", tt.name, msg, tt.wantErr)
			}
			if strings.HasPrefix(tt.wantErr, "chmod") && !strings.Contains(msg, "chmod 600 "+path) {
				t.Errorf("ReadKeyFile(%s) = %q, want the command to run: chmod 600 %s", tt.name, msg, path)
			}
			checkNoKeyMaterial(t, msg, key)
			if strings.Contains(msg, strings.TrimSpace(tt.content)[:min(8, len(strings.TrimSpace(tt.content)))]) && tt.content != "" {
				t.Errorf("ReadKeyFile(%s) = %q, which quotes the file", tt.name, msg)
			}
		})
	}
}

func TestReadKeyFileNotAFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.ReadKeyFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadKeyFile(directory) = %v, want a 'not a regular file' error", err)
	}
	if _, err := keyring.ReadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadKeyFile(missing) = %v, want os.ErrNotExist", err)
	}
}
