package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

const reuseID = "5e0f3a1c-9d2b-4c7e-8f61-2a4b6c8d0e1f"

// TestReusePerUser: an agent with resources.reuse_per_user keeps one
// sandbox per user_id — its globals and /tmp carry over for that user and
// are never seen by another user or by a call without a user_id — and
// every invocation still records only its own logs.
func TestReusePerUser(t *testing.T) {
	needSandbox(t)
	s := startServer(t, "testdata/reuse")
	visit := func(user, note string) (count int, notes []string, invocation string) {
		t.Helper()
		body := map[string]any{"entrypoint_tag": "visit", "input_kwargs": map[string]any{"note": note}}
		if user != "" {
			body["user_id"] = user
		}
		b, _ := json.Marshal(body)
		status, env := s.do(t, http.MethodPost, "/api/v1/agents/"+reuseID+"/run", "application/json", strings.NewReader(string(b)))
		if status != http.StatusOK || !env.Success {
			t.Fatalf("visit as %q: status %d error %+v", user, status, env.Error)
		}
		var str string
		json.Unmarshal(env.Data, &str)
		_, v := decodeStructured(t, str)
		m, _ := v.(map[string]any)
		for _, n := range m["notes"].([]any) {
			notes = append(notes, n.(string))
		}
		return int(num(m["count"])), notes, env.InvocationID
	}

	steps := []struct {
		user, note string
		count      int
		notes      []string
	}{
		{"alice", "a1", 1, []string{"a1"}},
		{"alice", "a2", 2, []string{"a1", "a2"}},
		{"bob", "b1", 1, []string{"b1"}},
		{"alice", "", 3, []string{"a1", "a2"}},
		{"", "anon", 1, []string{"anon"}},
		{"", "", 1, nil},
	}
	var aliceThird string
	for i, st := range steps {
		count, notes, inv := visit(st.user, st.note)
		if count != st.count || !slices.Equal(notes, st.notes) {
			t.Errorf("step %d (user %q): count %d notes %v; want %d %v", i, st.user, count, notes, st.count, st.notes)
		}
		if i == 3 {
			aliceThird = inv
		}
	}
	// The third call in alice's sandbox logged only its own line.
	if logs := invocationLogs(t, s, aliceThird); logs != "visit 3\n" {
		t.Errorf("logs of alice's third visit = %q, want %q", logs, "visit 3\n")
	}
}
