package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/server"
)

// TestUsersFlag: --users takes comma-separated lists, repeatable; a bad
// entry is refused before any request, naming it and what is wrong.
func TestUsersFlag(t *testing.T) {
	for _, tt := range []struct {
		in      []string
		want    []string
		wantErr string
	}{
		{nil, nil, ""},
		{[]string{"alice"}, []string{"alice"}, ""},
		{[]string{"alice,team-*", "bob"}, []string{"alice", "team-*", "bob"}, ""},
		{[]string{"*"}, []string{"*"}, ""},
		{[]string{"a*b"}, nil, "* may stand only"},
		{[]string{"a,,b"}, nil, "empty entry"},
		{[]string{""}, nil, "names no user"},
		{slices.Repeat([]string{"a,b"}, 51), nil, "at most 100"},
	} {
		got, err := usersFlag(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("usersFlag(%q) = %q, %v; want an error saying %q", tt.in, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || !slices.Equal(got, tt.want)):
			t.Errorf("usersFlag(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestKeysUsers runs keys create, list and rotate against a real server:
// the owner's first key hands out users, the key lists and keeps them
// through rotation, and a key asking for more users than it holds is
// refused naming users.
func TestKeysUsers(t *testing.T) {
	s, owner := ownedServer(t, server.Config{})
	run := func(key string, args ...string) (int, string, string) {
		t.Helper()
		t.Setenv("RUNAGENT_API_KEY", key)
		var out, errOut strings.Builder
		code := Main(t.Context(), append(args, "--server", s.URL()), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := run(owner, "keys", "create", "--name", "support", "--role", "admin", "--users", "alice,team-*", "--users", "bob")
	if code != 0 {
		t.Fatalf("keys create: exit %d: %s", code, errOut)
	}
	support := strings.TrimSpace(out)
	if !strings.Contains(errOut, "users alice,team-*,bob") {
		t.Errorf("keys create does not show the users: %s", errOut)
	}
	code, out, errOut = run(owner, "keys", "list")
	if code != 0 || !strings.Contains(out, "USERS") || !strings.Contains(out, "alice,team-*,bob") {
		t.Errorf("keys list: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = run(support, "keys", "create", "--name", "wider", "--users", "*")
	if code == 0 || !strings.Contains(errOut, "users") {
		t.Errorf("a key with users alice,team-*,bob made a * key: exit %d: %s", code, errOut)
	}
	code, _, errOut = run(support, "keys", "create", "--name", "narrower", "--users", "team-blue*")
	if code != 0 || !strings.Contains(errOut, "users team-blue*") {
		t.Errorf("a key with team-* made a team-blue* key: exit %d: %s", code, errOut)
	}
	k, err := apikey.Parse(support)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run(owner, "keys", "rotate", k.ID)
	if code != 0 || !strings.Contains(errOut, "users alice,team-*,bob") {
		t.Errorf("keys rotate: exit %d: %s", code, errOut)
	}
	code, _, errOut = run(owner, "keys", "create", "--name", "bad", "--users", "a*b")
	if code == 0 || !strings.Contains(errOut, "--users") {
		t.Errorf("keys create --users a*b: exit %d: %s", code, errOut)
	}
	code, out, _ = run(owner, "keys", "create", "--help")
	if code != 0 || !strings.Contains(out, "--users") || !strings.Contains(out, "team-*") {
		t.Errorf("keys create --help does not teach --users:\n%s", out)
	}
}

// TestKeysListFollowsPages: the server answers keys a page of 100 at a
// time; `keys list` follows the cursors and lists every key once.
func TestKeysListFollowsPages(t *testing.T) {
	s, owner := ownedServer(t, server.Config{RateLimit: ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}})
	c, err := client.New(s.URL(), client.WithAPIKey(owner))
	if err != nil {
		t.Fatal(err)
	}
	const made = 130
	for i := range made {
		if _, err := c.CreateKey(t.Context(), client.KeyRequest{Name: fmt.Sprintf("k%03d", i), Role: "viewer"}); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("RUNAGENT_API_KEY", owner)
	var out, errOut strings.Builder
	if code := Main(t.Context(), []string{"keys", "list", "--json", "--server", s.URL()}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("keys list: exit %d: %s", code, errOut.String())
	}
	var keys []string // one JSON object a line
	ids := map[string]bool{}
	for line := range strings.Lines(out.String()) {
		var k struct {
			ID string `json:"key_id"`
		}
		if err := json.Unmarshal([]byte(line), &k); err != nil || k.ID == "" {
			t.Fatalf("keys list --json: line %q: %v", line, err)
		}
		keys = append(keys, k.ID)
		ids[k.ID] = true
	}
	// The owner's key and the made ones, each once.
	if len(keys) != made+1 || len(ids) != made+1 {
		t.Errorf("keys list: %d keys, %d distinct; want %d", len(keys), len(ids), made+1)
	}
}

// ownedServer starts a real server, with the echo sandbox and cfg's
// other settings, whose first owner key is the one it returns; the
// server stops when the test ends.
func ownedServer(t *testing.T, cfg server.Config) (*server.Server, string) {
	t.Helper()
	owner, _, _ := apikey.New()
	file := filepath.Join(t.TempDir(), "owner.key")
	if err := os.WriteFile(file, []byte(owner), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(server.BootstrapKeyEnv, file)
	cfg.Addr, cfg.DataDir, cfg.Backend = "127.0.0.1:0", t.TempDir(), sandboxtest.EchoBackend{}
	cfg.LocalRegistry, cfg.DrainTimeout = server.LocalRegistryOff, 5*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	return s, owner
}
