package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/ratelimit/redistest"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// TestSharedNodes: two nodes on one PostgreSQL and one Redis. A deploy on
// node 1 is what node 2 runs next, and node 2 prepares it on the notice
// alone; a rollback on node 2 is what node 1 runs next; a data key
// rotated through node 1 is the one node 2 seals with, and each opens
// what the other sealed.
func TestSharedNodes(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	redisURL := "redis://" + redistest.Start(t) + "/0"
	keyFile := filepath.Join(t.TempDir(), "master.key")
	node := func() *Server {
		return serve(t, Config{AgentDirs: []string{"../../examples/hello"}, Version: "test", Auth: AuthNone,
			StoreURL: url, RedisURL: redisURL, Keyring: KeyringConfig{MasterKeyFile: keyFile}})
	}
	n1 := node()
	n2 := node()
	h1 := runVersion(t, n2)

	h2 := deployChanged(t, n1, "X = 2\n")
	if got := runVersion(t, n2); got != h2 {
		t.Fatalf("node 2's first run after a deploy on node 1: version %s, want the new %s (old %s)", got, h2, h1)
	}

	// Without a run, node 2 gets the next version ready on the notice.
	h3 := deployChanged(t, n1, "X = 3\n")
	shareWait(t, "node 2 to load the version deployed on node 1", func() bool {
		for _, d := range n2.reg.Loaded() {
			if d.AgentID == helloID && d.Hash == h3 {
				return true
			}
		}
		return false
	})

	resp := sharePost(t, n2.URL()+"/api/v1/agents/"+helloID+"/rollback", "application/json", []byte(`{"version":"`+h1+`"}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rollback on node 2: %d %s", resp.StatusCode, shareBody(resp))
	}
	resp.Body.Close()
	if got := runVersion(t, n1); got != h1 {
		t.Fatalf("node 1's first run after a rollback on node 2: version %s, want %s", got, h1)
	}

	old := n2.keyring.ActiveKeyID()
	resp = sharePost(t, n1.URL()+"/api/v1/keyring/rotate", "application/json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate on node 1: %d %s", resp.StatusCode, shareBody(resp))
	}
	resp.Body.Close()
	rotated := n1.keyring.ActiveKeyID()
	if rotated == old {
		t.Fatalf("node 1's active key after the rotation is still %d", old)
	}
	shareWait(t, "node 2 to seal with the rotated data key", func() bool { return n2.keyring.ActiveKeyID() == rotated })
	aad := []byte("test\x00shared")
	for _, tc := range []struct {
		name     string
		from, to *Server
	}{{"node 2 to node 1", n2, n1}, {"node 1 to node 2", n1, n2}} {
		ct, err := tc.from.keyring.Seal([]byte("across nodes"), aad)
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := keyring.KeyID(ct); id != rotated {
			t.Errorf("%s: sealed with key %d, want %d", tc.name, id, rotated)
		}
		if pt, err := tc.to.keyring.Open(ct, aad); err != nil || string(pt) != "across nodes" {
			t.Errorf("%s: Open = %q, %v", tc.name, pt, err)
		}
	}

	// A deleted agent stops on the other node at once.
	req, _ := http.NewRequestWithContext(t.Context(), "DELETE", n1.URL()+"/api/v1/agents/"+helloID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete on node 1: %d %s", resp.StatusCode, shareBody(resp))
	}
	resp.Body.Close()
	resp = sharePost(t, n2.URL()+"/api/v1/agents/"+helloID+"/run", "application/json", echoBody)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("run on node 2 of an agent deleted on node 1: %d %s, want 404", resp.StatusCode, shareBody(resp))
	}
	resp.Body.Close()
}

// runVersion runs hello's echo on s and returns the version the run
// used, from its record.
func runVersion(t *testing.T, s *Server) string {
	t.Helper()
	seen := map[string]bool{}
	invs, err := s.store.Invocations(t.Context(), core.InvocationFilter{AgentID: helloID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range invs {
		seen[inv.ID] = true
	}
	postRun(t, http.DefaultClient, s.URL()+"/api/v1/agents/"+helloID+"/run", echoBody)
	invs, err = s.store.Invocations(t.Context(), core.InvocationFilter{AgentID: helloID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range invs {
		if !seen[inv.ID] {
			return inv.AgentVersion
		}
	}
	t.Fatal("the run left no invocation record")
	return ""
}

// deployChanged deploys hello with extra.py holding extra through s and
// returns the new version.
func deployChanged(t *testing.T, s *Server, extra string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"runagent.config.json", "main.py"} {
		b, err := os.ReadFile(filepath.Join("../../examples/hello", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "extra.py"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, hash, err := bundle.Pack(dir, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	resp := sharePost(t, s.URL()+"/api/v1/agents", "application/gzip", pkg)
	defer resp.Body.Close()
	var env struct {
		Data struct {
			Version string `json:"version"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&env) != nil || env.Data.Version != hash {
		t.Fatalf("deploy: %d, version %q; want 201 and %s", resp.StatusCode, env.Data.Version, hash)
	}
	return hash
}

func sharePost(t *testing.T, url, contentType string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func shareBody(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// shareWait polls cond for up to keyringPoll and a margin (the bound the
// notices have to beat), and fails t if it never holds.
func shareWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(keyringPoll + 5*time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not a timing assertion
	}
}

// TestSharedBlocks: two nodes on one Redis share temporary blocks: a
// client that fails authentication on node 1 is refused on node 2, and an
// owner who lifts the block on node 2 lifts it on node 1.
func TestSharedBlocks(t *testing.T) {
	owner := withOwnerKey(t)
	redisURL := "redis://" + redistest.Start(t) + "/0"
	loopback, err := ParsePrefixes([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	node := func() *Server {
		return serve(t, Config{Version: "test", Auth: AuthKeys, RedisURL: redisURL, TrustedProxies: loopback,
			Block: api.BlockPolicy{After: 2}})
	}
	n1, n2 := node(), node()
	do := func(s *Server, method, path, forwardedFor, token string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, s.URL()+path, nil)
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const client = "192.0.2.9"
	for i := range 2 {
		if status := do(n1, "GET", "/api/v1/agents", client, "ra_wrong"); status != http.StatusUnauthorized {
			t.Fatalf("bad credential %d on node 1: %d, want 401", i, status)
		}
	}
	if status := do(n2, "GET", "/api/v1/agents", client, owner); status != http.StatusTooManyRequests {
		t.Fatalf("the blocked client on node 2: %d, want 429", status)
	}
	if status := do(n2, "DELETE", "/api/v1/blocks/ip:"+client, "", owner); status != http.StatusOK {
		t.Fatalf("lift on node 2: %d, want 200", status)
	}
	if status := do(n1, "GET", "/api/v1/agents", client, owner); status != http.StatusOK {
		t.Fatalf("the client on node 1 after the lift on node 2: %d, want 200", status)
	}
}

// FuzzDecodeNotice: a notice from Redis (which any of its clients can
// publish) either decodes to one of the known kinds with valid fields or
// is an error; it never panics.
func FuzzDecodeNotice(f *testing.F) {
	f.Add(`{"node":"0123abcd","kind":"agent","agent_id":"` + helloID + `","version":"sha256:` + strings.Repeat("ab", 32) + `"}`)
	f.Add(`{"node":"0123abcd","kind":"keyring"}`)
	f.Add(`{"node":"n","kind":"agent","agent_id":"../x","version":"sha256:"}`)
	f.Add(`{"node":"n","kind":"keyring","extra":1}`)
	f.Add(`{"node":"n","kind":"keyring"} {}`)
	f.Add(`null`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, in string) {
		n, err := decodeNotice([]byte(in))
		if err != nil {
			if n != (notice{}) {
				t.Fatalf("decodeNotice(%q) returned %+v with its error", in, n)
			}
			return
		}
		if !validToken(n.Node, 32) {
			t.Fatalf("decodeNotice(%q): node %q", in, n.Node)
		}
		switch n.Kind {
		case noticeAgent:
			if !validToken(n.AgentID, 64) || !validHash(n.Version) {
				t.Fatalf("decodeNotice(%q): agent notice %+v", in, n)
			}
		case noticeKeyring:
			if n.AgentID != "" || n.Version != "" {
				t.Fatalf("decodeNotice(%q): keyring notice %+v", in, n)
			}
		default:
			t.Fatalf("decodeNotice(%q): kind %q", in, n.Kind)
		}
	})
}

func TestDecodeNotice(t *testing.T) {
	version := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"node":"a1","kind":"agent","agent_id":"` + helloID + `","version":"` + version + `"}`, true},
		{`{"node":"a1","kind":"keyring"}`, true},
		{`{"node":"a1","kind":"agent","agent_id":"` + helloID + `","version":"` + strings.ToUpper(version) + `"}`, false},
		{`{"node":"a1","kind":"agent","agent_id":"a/b","version":"` + version + `"}`, false},
		{`{"node":"","kind":"keyring"}`, false},
		{`{"node":"a1","kind":"keyring","agent_id":"x"}`, false},
		{`{"node":"a1","kind":"reboot"}`, false},
		{`{"node":"a1","kind":"keyring","more":true}`, false},
		{`{"node":"a1","kind":"keyring"}{"node":"a1","kind":"keyring"}`, false},
		{`{"node":"a1","kind":"keyring","agent_id":"` + strings.Repeat("x", 2000) + `"}`, false},
	} {
		if _, err := decodeNotice([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("decodeNotice(%.80q) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}
