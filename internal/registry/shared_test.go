package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// TestSharedFollowsStore: two registries on one store, as two nodes. With
// Shared, a deploy or rollback on either is what the other's next Get
// returns, and a deleted agent is not found at once; without it, a node
// keeps the version it loaded (the single-node behaviour).
func TestSharedFollowsStore(t *testing.T) {
	db := openDB(t)
	n1, n2, plain := newRegistry(t, db), newRegistry(t, db), newRegistry(t, db)
	n1.Shared, n2.Shared = true, true
	var mu sync.Mutex
	var heard []string
	n1.Changed = func(agentID, hash string) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, agentID+" "+hash)
	}
	dir := copyHello(t)
	v1, err := n1.DeployDir(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	h1 := v1.Deployment.Hash
	for name, r := range map[string]*Registry{"node 2": n2, "plain": plain} {
		if d, err := r.Get(t.Context(), helloID); err != nil || d.Hash != h1 {
			t.Fatalf("%s: Get = %v, %v; want v1", name, d, err)
		}
	}

	os.WriteFile(filepath.Join(dir, "extra.py"), []byte("X = 2\n"), 0o644)
	v2, err := n1.DeployDir(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	h2 := v2.Deployment.Hash
	d, err := n2.Get(t.Context(), helloID)
	if err != nil || d.Hash != h2 {
		t.Fatalf("node 2 after a deploy on node 1: got %v, %v; want v2 %s", d, err, h2)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "extra.py")); err != nil {
		t.Errorf("node 2 did not unpack v2: %v", err)
	}
	if d, _ := plain.Get(t.Context(), helloID); d.Hash != h1 {
		t.Errorf("a registry without Shared: got %s, want the v1 it loaded", d.Hash)
	}

	if _, err := n2.Rollback(t.Context(), helloID, h1); err != nil {
		t.Fatal(err)
	}
	if d, err := n1.Get(t.Context(), helloID); err != nil || d.Hash != h1 {
		t.Fatalf("node 1 after a rollback on node 2: got %v, %v; want v1 %s", d, err, h1)
	}
	mu.Lock()
	if want := []string{helloID + " " + h1, helloID + " " + h2}; len(heard) != 2 || heard[0] != want[0] || heard[1] != want[1] {
		t.Errorf("node 1's Changed heard %q, want its two deploys %q (not node 2's rollback)", heard, want)
	}
	mu.Unlock()

	if err := db.DeleteAgent(t.Context(), helloID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Get(t.Context(), helloID); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("node 2 after the agent's deletion: got %v, want not found", err)
	}
	gone, err := n1.Refresh(t.Context(), helloID)
	if !errors.Is(err, core.ErrNotFound) || gone == nil || gone.Hash != h1 {
		t.Errorf("Refresh of a deleted agent = %v, %v; want the forgotten v1 and not found", gone, err)
	}
	if n1.Has(helloID) {
		t.Error("node 1 still holds the deleted agent after Refresh")
	}
}

// TestSharedLoadOnce: runs that meet a new version together wait for
// one load of it.
func TestSharedLoadOnce(t *testing.T) {
	db := openDB(t)
	n1, n2 := newRegistry(t, db), newRegistry(t, db)
	n2.Shared = true
	if _, err := n1.DeployDir(t.Context(), copyHello(t), ""); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	builds := 0
	release := make(chan struct{})
	n2.Environment = func(ctx context.Context, v Version) (string, error) {
		mu.Lock()
		builds++
		mu.Unlock()
		<-release
		return "env", nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			d, err := n2.Get(t.Context(), helloID)
			if err == nil && d.EnvDir != "env" {
				err = errors.New("no environment")
			}
			errs <- err
		})
	}
	// Let the Gets pile up on the one build, then finish it.
	for deadline := time.Now().Add(5 * time.Second); ; {
		mu.Lock()
		n := builds
		mu.Unlock()
		n2.mu.RLock()
		waiting := len(n2.loading)
		n2.mu.RUnlock()
		if n == 1 && waiting == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond) // polling for the Gets to start, not a timing assertion
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if builds != 1 {
		t.Errorf("8 concurrent Gets built the environment %d times, want once", builds)
	}
}
