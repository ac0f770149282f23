package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/store/sqlite"
)

const (
	testAgent  = "agent-1"
	testSecret = "whsec-0123456789abcdef-not-for-production"
)

// mustStore opens a sealed SQLite store in dir (reopenable: a restart).
func mustStore(t *testing.T, dir string, master []byte) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "runagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kr, err := keyring.Open(t.Context(), db, keyring.Master{Key: master})
	if err != nil {
		t.Fatal(err)
	}
	db.SetSealer(kr)
	return db
}

func newMaster() []byte {
	m := make([]byte, keyring.KeySize)
	rand.Read(m)
	return m
}

// env is a store with a finished invocation of testAgent and, unless
// noSecret, its signing secret.
type env struct {
	dir    string
	master []byte
	store  *sqlite.DB
	inv    *core.Invocation
	logs   *syncBuffer
}

func newEnv(t *testing.T, noSecret bool) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), master: newMaster(), logs: &syncBuffer{}}
	e.store = mustStore(t, e.dir, e.master)
	ctx := t.Context()
	created := time.Now().UTC().Add(-2 * time.Second).Truncate(time.Millisecond)
	e.inv = &core.Invocation{ID: "inv-1", AgentID: testAgent, ProjectID: "proj-1", EntrypointTag: "main",
		Transport: "rest", UserID: "user-7", InputKwargs: json.RawMessage(`{"q":"hi"}`), CreatedAt: created}
	if err := e.store.CreateInvocation(ctx, e.inv); err != nil {
		t.Fatal(err)
	}
	done := created.Add(1500 * time.Millisecond)
	e.inv.Status, e.inv.Output, e.inv.CompletedAt, e.inv.DurationMS = core.StatusCompleted, json.RawMessage(`{"answer":42}`), &done, 1500
	if err := e.store.FinishInvocation(ctx, e.inv); err != nil {
		t.Fatal(err)
	}
	if !noSecret {
		if err := e.store.PutSecret(ctx, &core.Secret{AgentID: testAgent, Name: SecretName, UpdatedBy: "admin"}, testSecret); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// config is a dispatcher configuration for tests: fast retries, loopback
// allowed.
func (e *env) config() Config {
	return Config{
		Store: e.store, Log: slog.New(slog.NewTextHandler(e.logs, nil)),
		Timeout: 2 * time.Second, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		AllowPrefixes: loopback(),
	}
}

func loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

func mustDispatcher(t *testing.T, cfg Config) *Dispatcher {
	t.Helper()
	d, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func mustTarget(t *testing.T, u string, allow ...core.EgressRule) Target {
	t.Helper()
	tg, err := ParseURL(u)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	tg.Source, tg.Allow, tg.WithOutput = core.WebhookFromRequest, allow, true
	return tg
}

// waitDone waits for the invocation's only delivery to leave pending.
func (e *env) waitDone(t *testing.T, within time.Duration) *core.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ds, err := e.store.WebhookDeliveries(t.Context(), e.inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status != core.DeliveryPending {
			return ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery still pending after %s: %+v", within, ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// got is one request a receiver got.
type got struct {
	header http.Header
	body   []byte
}

// receiver is a webhook receiver on loopback; answer decides each
// request's fate by its number (1-based).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []got
	hits chan int
}

func newReceiver(t *testing.T, tls bool, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{hits: make(chan int, 100)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, got{r.Header.Clone(), body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		select {
		case rc.hits <- n:
		default:
		}
		answer(n, w, r)
	})
	if tls {
		rc.Server = httptest.NewTLSServer(h)
	} else {
		rc.Server = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		rc.CloseClientConnections()
		rc.Close()
	})
	return rc
}

func (rc *receiver) got() []got {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]got(nil), rc.reqs...)
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// reset drops the connection without an answer.
func reset(w http.ResponseWriter) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) // RST, not FIN
	}
	c.Close()
}

// fakeResolver answers from a map and never touches the network.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, fmt.Errorf("no such host %q", host)
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
