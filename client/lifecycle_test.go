package client

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDeleteProject: without force the refusal carries what would be
// removed; with force the request says so and the answer is what was.
func TestDeleteProject(t *testing.T) {
	contents := map[string]any{"agents": []string{"a1"}, "principals": []string{"p1", "p2"}, "keys": []string{"k1"}}
	var gotQuery []string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete || r.URL.Path != "/api/v1/projects/acme" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		gotQuery = append(gotQuery, r.URL.RawQuery)
		if r.URL.Query().Get("force") != "true" {
			writeEnvelope(w, http.StatusConflict, nil, map[string]any{"code": "CONFLICT", "message": "project \"acme\" has 1 agent", "details": contents, "field": "project_id"})
			return
		}
		writeEnvelope(w, http.StatusOK, map[string]any{"project_id": "acme", "deleted": true, "removed": contents}, nil)
	}))
	want := &ProjectContents{Agents: []string{"a1"}, Principals: []string{"p1", "p2"}, Keys: []string{"k1"}}

	_, err := c.DeleteProject(t.Context(), "acme", false)
	if !IsCode(err, CodeConflict) {
		t.Fatalf("DeleteProject without force = %v, want CONFLICT", err)
	}
	if diff := cmp.Diff(WouldRemove(err), want); diff != "" {
		t.Errorf("WouldRemove (-got +want):\n%s", diff)
	}
	got, err := c.DeleteProject(t.Context(), "acme", true)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("DeleteProject with force (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(gotQuery, []string{"", "force=true"}); diff != "" {
		t.Errorf("queries (-got +want):\n%s", diff)
	}
	if WouldRemove(&Error{Code: CodeConflict, Details: []byte(`{"x":1}`)}) != nil || WouldRemove(nil) != nil {
		t.Error("WouldRemove of another error is not nil")
	}
}
