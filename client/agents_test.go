package client

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAgentVersionsRollbackDelete: the requests Versions (following the
// pages' cursors), Rollback and DeleteAgent send and how they read the
// answers (docs/api.md).
func TestAgentVersionsRollbackDelete(t *testing.T) {
	const agent = "6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b"
	created := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var got []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/agents/{id}/versions", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		// Two pages: Versions follows the cursor.
		if r.URL.Query().Get("cursor") == "" {
			writeEnvelope(w, 200, map[string]any{"agent_id": agent, "limit": 1, "next_cursor": "sha256:bb", "versions": []map[string]any{
				{"version": "sha256:bb", "size": 20, "created_at": created, "current": true},
			}}, nil)
			return
		}
		writeEnvelope(w, 200, map[string]any{"agent_id": agent, "limit": 1, "versions": []map[string]any{
			{"version": "sha256:aa", "size": 10, "created_at": created},
		}}, nil)
	})
	mux.HandleFunc("POST /api/v1/agents/{id}/rollback", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		writeEnvelope(w, 200, map[string]any{"agent_id": agent, "agent_name": "a", "version": "sha256:aa", "previous_version": "sha256:bb"}, nil)
	})
	mux.HandleFunc("DELETE /api/v1/agents/{id}", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path)
		writeEnvelope(w, 404, nil, map[string]any{"code": "NOT_FOUND", "message": "agent not found"})
	})
	c := newTestClient(t, mux)

	vs, err := c.Versions(t.Context(), agent)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(vs, []Version{
		{Version: "sha256:bb", Size: 20, CreatedAt: created, Current: true},
		{Version: "sha256:aa", Size: 10, CreatedAt: created},
	}); diff != "" {
		t.Errorf("Versions (-got +want):\n%s", diff)
	}
	res, err := c.Rollback(t.Context(), agent, "sha256:aa")
	if err != nil || res.Version != "sha256:aa" || res.PreviousVersion != "sha256:bb" {
		t.Errorf("Rollback = %+v, %v", res, err)
	}
	if err := c.DeleteAgent(t.Context(), agent); err == nil {
		t.Errorf("DeleteAgent of an unknown agent = nil, want the 404")
	}
	body, _ := json.Marshal(map[string]string{"version": "sha256:aa"})
	if diff := cmp.Diff(got, []string{
		"GET /api/v1/agents/" + agent + "/versions",
		"GET /api/v1/agents/" + agent + "/versions?cursor=sha256%3Abb",
		"POST /api/v1/agents/" + agent + "/rollback " + string(body),
		"DELETE /api/v1/agents/" + agent,
	}); diff != "" {
		t.Errorf("requests (-got +want):\n%s", diff)
	}
}
