package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/sqlite"
)

const helloID = "6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b"

func newRegistry(t *testing.T, db *sqlite.DB) *Registry {
	t.Helper()
	r, err := New(db, filepath.Join(t.TempDir(), "code"), bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// copyHello copies examples/hello to a temp dir the test may change.
func copyHello(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, f := range []string{"runagent.config.json", "main.py"} {
		b, err := os.ReadFile(filepath.Join("../../examples/hello", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, f), b, 0o644)
	}
	return dst
}

func TestDeployIdempotentAndVersioned(t *testing.T) {
	db := openDB(t)
	r := newRegistry(t, db)
	dir := copyHello(t)
	res, err := r.DeployDir(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Deployment.AgentID != helloID || !strings.HasPrefix(res.Deployment.Hash, "sha256:") {
		t.Fatalf("first deploy = %+v", res)
	}
	if _, err := os.Stat(filepath.Join(res.Deployment.Dir, "main.py")); err != nil {
		t.Errorf("code not unpacked: %v", err)
	}
	again, err := r.DeployDir(t.Context(), dir, "")
	if err != nil || again.Created || again.Deployment.Hash != res.Deployment.Hash {
		t.Fatalf("same tree again = %+v, %v; want the same version, not created", again, err)
	}
	os.WriteFile(filepath.Join(dir, "extra.py"), []byte("X = 1\n"), 0o644)
	v2, err := r.DeployDir(t.Context(), dir, "")
	if err != nil || !v2.Created || v2.Deployment.Hash == res.Deployment.Hash {
		t.Fatalf("changed tree = %+v, %v; want a new version", v2, err)
	}
	cur, err := r.Get(t.Context(), helloID)
	if err != nil || cur.Hash != v2.Deployment.Hash {
		t.Errorf("Get = %+v, %v; want the new version", cur, err)
	}
	a, err := db.Agent(t.Context(), helloID)
	if err != nil || a.CurrentVersion != v2.Deployment.Hash {
		t.Errorf("store's current version = %+v, %v", a, err)
	}
	// The old version's files are still there for runs under way.
	if _, err := os.Stat(filepath.Join(res.Deployment.Dir, "main.py")); err != nil {
		t.Errorf("old version's code removed: %v", err)
	}
}

func TestDeployRejectsBadPackages(t *testing.T) {
	r := newRegistry(t, openDB(t))
	for name, pkg := range map[string][]byte{
		"garbage": []byte("not gzip"),
		"empty":   nil,
	} {
		if _, err := r.Deploy(t.Context(), pkg, ""); core.ErrorCode(err) != core.CodeValidation {
			t.Errorf("%s: Deploy = %v, want VALIDATION_ERROR", name, err)
		}
	}
	// A valid archive whose config is broken.
	dir := copyHello(t)
	os.WriteFile(filepath.Join(dir, "runagent.config.json"), []byte(`{"agent_name":"x"}`), 0o644)
	pkg, _, err := bundle.Pack(dir, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Deploy(t.Context(), pkg, "")
	if core.ErrorCode(err) != core.CodeValidation || !strings.Contains(err.Error(), "agent_architecture") {
		t.Errorf("broken config: Deploy = %v, want a VALIDATION_ERROR naming agent_architecture", err)
	}
	// Nothing is left behind in the code directory.
	entries, _ := os.ReadDir(r.dir)
	if len(entries) != 0 {
		t.Errorf("code dir holds %d entries after failed deploys", len(entries))
	}
}

// TestGetLoadsFromSharedStore: a second registry (another node, or the
// same server after a restart) serves an agent it never deployed.
func TestGetLoadsFromSharedStore(t *testing.T) {
	db := openDB(t)
	first := newRegistry(t, db)
	res, err := first.DeployDir(t.Context(), copyHello(t), "")
	if err != nil {
		t.Fatal(err)
	}
	second := newRegistry(t, db)
	var wg sync.WaitGroup
	got := make([]*Deployment, 8)
	for i := range got {
		wg.Go(func() {
			d, err := second.Get(t.Context(), helloID)
			if err != nil {
				t.Error(err)
			}
			got[i] = d
		})
	}
	wg.Wait()
	for _, d := range got {
		if d == nil || d.Hash != res.Deployment.Hash || d.Config.AgentName != "hello" {
			t.Fatalf("Get on the second registry = %+v", d)
		}
		if _, err := os.Stat(filepath.Join(d.Dir, "main.py")); err != nil {
			t.Errorf("code not unpacked on the second node: %v", err)
		}
	}
	if _, err := second.Get(t.Context(), "11111111-2222-3333-4444-555555555555"); core.ErrorCode(err) != core.CodeNotFound {
		t.Errorf("Get(unknown) = %v, want NOT_FOUND", err)
	}
}

// failingPuts is a store whose version writes fail.
type failingPuts struct{ core.AgentStore }

func (failingPuts) PutAgentVersion(context.Context, *core.AgentVersion) (bool, error) {
	return false, errors.New("disk full")
}

// TestFailedDeployLeavesNothing: a deploy refused before it writes (by
// the caller check, or for an agent of another project) and one whose
// store write fails leave the code directory as it was, and the version
// that was current stays current.
func TestFailedDeployLeavesNothing(t *testing.T) {
	db := openDB(t)
	r := newRegistry(t, db)
	dir := copyHello(t)
	first, err := r.DeployDir(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateProject(t.Context(), &core.Project{ID: "other", Name: "other"}); err != nil {
		t.Fatal(err)
	}
	files := func() []string {
		var out []string
		filepath.WalkDir(r.dir, func(p string, _ fs.DirEntry, err error) error {
			if err == nil {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	before := files()
	os.WriteFile(filepath.Join(dir, "changed.py"), []byte("x = 1\n"), 0o644)
	pkg, _, err := bundle.Pack(dir, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	refused := errors.New("not yours")
	if _, err := r.DeployAs(t.Context(), pkg, "", DeployOptions{Allow: func(string, bool) error { return refused }}); err != refused {
		t.Errorf("DeployAs with a refusing check = %v, want its error", err)
	}
	if _, err := r.DeployAs(t.Context(), pkg, "other", DeployOptions{}); core.ErrorCode(err) != core.CodeConflict {
		t.Errorf("deploy of an agent into another project = %v, want CONFLICT", err)
	}
	broken := &Registry{store: failingPuts{db}, dir: r.dir, limits: r.limits, now: r.now, current: map[string]*Deployment{}}
	if _, err := broken.Deploy(t.Context(), pkg, ""); err == nil {
		t.Error("deploy with a failing store succeeded")
	}
	if after := files(); !slices.Equal(before, after) {
		t.Errorf("failed deploys left files:\nbefore %v\nafter  %v", before, after)
	}
	if d, err := r.Get(t.Context(), helloID); err != nil || d.Hash != first.Deployment.Hash {
		t.Errorf("current version after failed deploys: %+v, %v; want %s", d, err, first.Deployment.Hash)
	}
}

// TestPrepare: a version is made ready before it becomes current; a
// failed Prepare leaves the previous version current and nothing on
// disk; a version loaded from the store gets its environment from
// Environment.
func TestPrepare(t *testing.T) {
	db := openDB(t)
	r := newRegistry(t, db)
	dir := copyHello(t)
	var steps []string
	r.Prepare = func(ctx context.Context, v Version, progress func(Progress)) (Prepared, error) {
		if _, err := os.Stat(filepath.Join(v.Dir, "main.py")); err != nil {
			t.Errorf("Prepare's tree lacks main.py: %v", err)
		}
		progress(Progress{Step: "built", Message: "built"})
		if _, err := os.Stat(filepath.Join(v.Dir, "broken")); err == nil {
			return Prepared{}, &core.Error{Code: core.CodeValidation, Message: "entrypoint generate does not load"}
		}
		return Prepared{EnvDir: "/envs/" + v.Hash}, nil
	}
	first, err := r.DeployAs(t.Context(), mustPack(t, dir), "", DeployOptions{Progress: func(p Progress) { steps = append(steps, p.Step) }})
	if err != nil {
		t.Fatal(err)
	}
	if first.Deployment.EnvDir != "/envs/"+first.Deployment.Hash || fmt.Sprint(steps) != "[unpacked built done]" {
		t.Errorf("deployment env %q, steps %v", first.Deployment.EnvDir, steps)
	}
	os.WriteFile(filepath.Join(dir, "broken"), []byte("1"), 0o644)
	entries := func() int { e, _ := os.ReadDir(filepath.Join(r.dir, helloID)); return len(e) }
	before := entries()
	if _, err := r.Deploy(t.Context(), mustPack(t, dir), ""); core.ErrorCode(err) != core.CodeValidation {
		t.Fatalf("deploy of a version that does not load = %v, want its VALIDATION error", err)
	}
	if d, _ := r.Get(t.Context(), helloID); d.Hash != first.Deployment.Hash {
		t.Errorf("current version after a failed prepare: %s, want %s", d.Hash, first.Deployment.Hash)
	}
	if entries() != before {
		t.Errorf("a failed prepare left files in the agent's code directory")
	}
	// Another registry on the same store loads the version and asks for
	// its environment.
	other := newRegistry(t, db)
	other.Environment = func(ctx context.Context, v Version) (string, error) { return "/envs/loaded-" + v.Hash, nil }
	d, err := other.Get(t.Context(), helloID)
	if err != nil || d.EnvDir != "/envs/loaded-"+first.Deployment.Hash {
		t.Errorf("loaded deployment %+v, %v", d, err)
	}
}

func mustPack(t *testing.T, dir string) []byte {
	t.Helper()
	pkg, _, err := bundle.Pack(dir, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}
