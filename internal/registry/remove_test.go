package registry

import (
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// TestRemove: an agent deleted with its project in the store is still
// served from memory until Remove, and then no longer, on every registry
// that calls it.
func TestRemove(t *testing.T) {
	db := openDB(t)
	if err := db.CreateProject(t.Context(), &core.Project{ID: "doomed", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	first, second := newRegistry(t, db), newRegistry(t, db)
	res, err := first.DeployDir(t.Context(), copyHello(t), "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Get(t.Context(), helloID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteProject(t.Context(), "doomed", true, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*Registry{"first": first, "second": second} {
		if _, err := r.Get(t.Context(), helloID); err != nil {
			t.Errorf("%s: Get before Remove = %v, want the loaded deployment", name, err)
		}
		removed := r.Remove(helloID, "11111111-2222-3333-4444-555555555555")
		if len(removed) != 1 || removed[0].Hash != res.Deployment.Hash {
			t.Errorf("%s: Remove = %+v, want the one loaded deployment", name, removed)
		}
		if d, err := r.Get(t.Context(), helloID); core.ErrorCode(err) != core.CodeNotFound {
			t.Errorf("%s: Get after Remove = %+v, %v; want NOT_FOUND", name, d, err)
		}
		if n := r.Count(); n != 0 {
			t.Errorf("%s: Count after Remove = %d, want 0", name, n)
		}
	}
}
