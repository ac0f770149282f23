package sqlite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
)

// TestNothingInClear: secrets and invocation payloads written through a
// sealed store appear nowhere in the database files, yet read back.
func TestNothingInClear(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "runagent.db")
	db := mustOpenSealed(t, path)
	ctx := t.Context()
	marks := map[string]string{
		"args": "ARGS-7d1f3c", "kwargs": "KWARGS-9a2e4b", "output": "OUTPUT-4c8d1e",
		"logs": "LOGS-2b7f9a", "error": "ERROR-6e3a5c", "secret": "sk-SECRET-1f8b2d",
	}
	inv := &core.Invocation{ID: "inv-1", AgentID: "a1", EntrypointTag: "chat",
		InputArgs: json.RawMessage(`["` + marks["args"] + `"]`), InputKwargs: json.RawMessage(`{"m":"` + marks["kwargs"] + `"}`)}
	if err := db.CreateInvocation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	inv.Status, inv.Output, inv.ErrorCode, inv.ErrorMessage = core.StatusFailed, json.RawMessage(`"`+marks["output"]+`"`), "AGENT_ERROR", marks["error"]
	if err := db.FinishInvocation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if err := db.SetInvocationLogs(ctx, "inv-1", "log line "+marks["logs"]+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSecret(ctx, &core.Secret{AgentID: "a1", Name: "API_KEY", UpdatedBy: "t"}, marks["secret"]); err != nil {
		t.Fatal(err)
	}
	got, err := db.Invocation(ctx, "inv-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got.InputArgs), marks["args"]) || !strings.Contains(string(got.InputKwargs), marks["kwargs"]) ||
		!strings.Contains(string(got.Output), marks["output"]) || !strings.Contains(got.Logs, marks["logs"]) || got.ErrorMessage != marks["error"] {
		t.Errorf("read back %+v", got)
	}
	if list, err := db.Invocations(ctx, core.InvocationFilter{}); err != nil || len(list) != 1 || list[0].ErrorMessage != marks["error"] {
		t.Errorf("Invocations = %v, %v", list, err)
	}
	if v, err := db.SecretValues(ctx, "a1"); err != nil || v["API_KEY"] != marks["secret"] {
		t.Errorf("SecretValues = %v, %v", v, err)
	}
	// Everything SQLite wrote: the database, its WAL and shared memory.
	files, _ := filepath.Glob(path + "*")
	if len(files) < 2 {
		t.Fatalf("database files: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for what, m := range marks {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("%s holds the %s in clear", filepath.Base(f), what)
			}
		}
	}
}

// TestSealedPayloadBound: a sealed value copied into another invocation's
// row does not open there; a sealed row read without the keyring is an
// error, not ciphertext; rows written before the keyring stay readable.
func TestSealedPayloadBound(t *testing.T) {
	path := tempPath(t)
	ctx := t.Context()
	plain := mustOpen(t, path)
	legacy := &core.Invocation{ID: "old", AgentID: "a1", InputKwargs: json.RawMessage(`{"x":1}`)}
	if err := plain.CreateInvocation(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	master := make([]byte, keyring.KeySize)
	kr, err := keyring.Open(ctx, plain, keyring.Master{Key: master})
	if err != nil {
		t.Fatal(err)
	}
	sealed := mustOpen(t, path)
	sealed.SetSealer(kr)
	for _, id := range []string{"inv-a", "inv-b"} {
		if err := sealed.CreateInvocation(ctx, &core.Invocation{ID: id, AgentID: "a1", InputKwargs: json.RawMessage(`{"id":"` + id + `"}`), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := sealed.Invocation(ctx, "old"); err != nil || string(got.InputKwargs) != `{"x":1}` {
		t.Errorf("legacy row through the sealed store: %v, %v", got, err)
	}
	if _, err := plain.Invocation(ctx, "inv-a"); !errors.Is(err, errSealedNoKeyring) {
		t.Errorf("sealed row without the keyring: %v", err)
	}
	// An attacker with write access to the file moves a's input to b.
	if _, err := sealed.write.ExecContext(ctx, `UPDATE invocations SET input_kwargs = (SELECT input_kwargs FROM invocations WHERE id = 'inv-a') WHERE id = 'inv-b'`); err != nil {
		t.Fatal(err)
	}
	if _, err := sealed.Invocation(ctx, "inv-b"); !errors.Is(err, keyring.ErrDecrypt) {
		t.Errorf("moved ciphertext: %v, want ErrDecrypt", err)
	}
	if _, err := sealed.Invocation(ctx, "inv-a"); err != nil {
		t.Errorf("the original row: %v", err)
	}
}

// TestReencrypt: after a data key rotation, Reencrypt seals every value
// (and every value stored in the clear before the keyring) with the new
// key; all of them read back unchanged.
func TestReencrypt(t *testing.T) {
	path := tempPath(t)
	ctx := t.Context()
	db := mustOpen(t, path)
	plain := &core.Invocation{ID: "plain", AgentID: "a1", InputKwargs: json.RawMessage(`{"p":1}`)}
	if err := db.CreateInvocation(ctx, plain); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Open(ctx, db, keyring.Master{Key: make([]byte, keyring.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	db.SetSealer(kr)
	for i := range 450 { // more than two batches
		inv := &core.Invocation{ID: fmt.Sprintf("inv-%03d", i), AgentID: "a1", InputArgs: json.RawMessage(`[1]`), InputKwargs: json.RawMessage(`{"i":` + fmt.Sprint(i) + `}`)}
		if err := db.CreateInvocation(ctx, inv); err != nil {
			t.Fatal(err)
		}
		inv.Status, inv.Output, inv.Logs = core.StatusCompleted, json.RawMessage(`"out"`), "log line"
		if err := db.FinishInvocation(ctx, inv); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutSecret(ctx, &core.Secret{AgentID: "a1", Name: "TOKEN", UpdatedBy: "t"}, "tok-value"); err != nil {
		t.Fatal(err)
	}
	hook := "https://hooks.example.com/x?token=t0k"
	if err := db.CreateWebhookDelivery(ctx, &core.WebhookDelivery{ID: "whd_1", InvocationID: "inv-000", AgentID: "a1",
		Source: core.WebhookFromRequest, URL: hook, Status: core.DeliveryPending}); err != nil {
		t.Fatal(err)
	}
	fsKey := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	ad := core.MemoryKeyAD("p1", "a1", "alice", "img1")
	sealedKey, err := kr.Seal(fsKey, ad)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := db.CreateMemory(ctx, &core.Memory{ProjectID: "p1", AgentID: "a1", UserID: "alice", Image: "img1", SealedKey: sealedKey,
		CapBytes: 1 << 20, CreatedAt: now, LastUsedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.RotateDataKey(ctx); err != nil {
		t.Fatal(err)
	}
	stale := func(ct []byte) bool { id, ok := keyring.KeyID(ct); return ok && id != kr.ActiveKeyID() }
	n, err := db.Reencrypt(ctx, stale)
	// 450 invocations × (args, kwargs, output, logs; the error message
	// is empty, and empty values are not sealed) + the plain row's kwargs
	// + the secret + the delivery's URL + the memory key.
	if err != nil || n != 450*4+1+1+1+1 {
		t.Fatalf("Reencrypt = %d, %v; want %d", n, err, 450*4+4)
	}
	if d, err := db.WebhookDelivery(ctx, "whd_1"); err != nil || d.URL != hook {
		t.Errorf("the delivery after Reencrypt: %+v, %v", d, err)
	}
	m, err := db.Memory(ctx, "p1", "a1", "alice")
	if err != nil || stale(m.SealedKey) {
		t.Fatalf("the memory key after Reencrypt: %v, stale %v", err, err == nil && stale(m.SealedKey))
	}
	if got, err := kr.Open(m.SealedKey, ad); err != nil || string(got) != string(fsKey) {
		t.Errorf("the re-sealed memory key opens to %q, %v", got, err)
	}
	if n, err := db.Reencrypt(ctx, stale); err != nil || n != 0 {
		t.Errorf("second Reencrypt = %d, %v; want nothing left", n, err)
	}
	// Every stored value is sealed with the active key.
	rows, err := db.read.QueryContext(ctx, `SELECT input_kwargs FROM invocations`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		if staleText(s, stale) || !strings.HasPrefix(s, sealedPrefix) {
			t.Fatalf("after Reencrypt a value is %.40q", s)
		}
	}
	rows.Close()
	if got, err := db.Invocation(ctx, "plain"); err != nil || string(got.InputKwargs) != `{"p":1}` {
		t.Errorf("the formerly plain row: %v, %v", got, err)
	}
	if got, err := db.Invocation(ctx, "inv-449"); err != nil || string(got.InputKwargs) != `{"i":449}` || got.Logs != "log line" {
		t.Errorf("a reencrypted row: %+v, %v", got, err)
	}
	if v, err := db.SecretValues(ctx, "a1"); err != nil || v["TOKEN"] != "tok-value" {
		t.Errorf("secret after Reencrypt: %v, %v", v, err)
	}
}
