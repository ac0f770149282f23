package registry

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/runagent/runagent/internal/core"
)

// TestRollback: a rollback makes an older version current here and in
// the store, unpacked and with its environment; one to an unknown
// version changes nothing; a registry that never held the old version's
// code unpacks it from the store.
func TestRollback(t *testing.T) {
	db := openDB(t)
	r := newRegistry(t, db)
	dir := copyHello(t)
	v1, err := r.DeployDir(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "extra.py"), []byte("X = 1\n"), 0o644)
	v2, err := r.DeployDir(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := v1.Deployment.Hash, v2.Deployment.Hash

	if _, err := r.Rollback(t.Context(), helloID, "sha256:unknown"); core.ErrorCode(err) != core.CodeNotFound {
		t.Errorf("Rollback(unknown version) = %v, want NOT_FOUND", err)
	}
	if d, _ := r.Get(t.Context(), helloID); d.Hash != h2 {
		t.Errorf("current after a refused rollback = %s, want %s", d.Hash, h2)
	}

	// Another registry on the same store has v2 loaded and no code of v1.
	other := newRegistry(t, db)
	var envFor []string
	other.Environment = func(_ context.Context, v Version) (string, error) {
		envFor = append(envFor, v.Hash)
		return "env-" + v.Hash, nil
	}
	if _, err := other.Get(t.Context(), helloID); err != nil {
		t.Fatal(err)
	}
	d, err := other.Rollback(t.Context(), helloID, h1)
	if err != nil {
		t.Fatalf("Rollback(v1) = %v", err)
	}
	if d.Hash != h1 || d.EnvDir != "env-"+h1 {
		t.Errorf("Rollback(v1) = %+v, want version %s with its environment", d, h1)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "main.py")); err != nil {
		t.Errorf("v1 not unpacked: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "extra.py")); err == nil {
		t.Errorf("v1's directory has v2's extra.py")
	}
	if cur, err := other.Get(t.Context(), helloID); err != nil || cur.Hash != h1 {
		t.Errorf("Get after rollback = %+v, %v; want %s", cur, err, h1)
	}
	if a, err := db.Agent(t.Context(), helloID); err != nil || a.CurrentVersion != h1 {
		t.Errorf("stored agent after rollback = %+v, %v; want current %s", a, err, h1)
	}
	if len(envFor) == 0 || envFor[len(envFor)-1] != h1 {
		t.Errorf("Environment asked for %v, want %s last", envFor, h1)
	}
}
