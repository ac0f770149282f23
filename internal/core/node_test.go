package core

import (
	"strings"
	"testing"
	"time"
)

func TestCheckNodeID(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"web-1", true},
		{"a", true},
		{"0", true},
		{"node_2.eu-west", true},
		{strings.Repeat("a", MaxNodeIDLen), true},
		{"", false},
		{strings.Repeat("a", MaxNodeIDLen+1), false},
		{"Web-1", false},
		{"-web", false},
		{".web", false},
		{"_web", false},
		{"web 1", false},
		{"web/1", false},
		{"web:1", false},
		{"wéb", false},
		{"web\n", false},
	} {
		err := CheckNodeID(tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("CheckNodeID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if err != nil && ErrorCode(err) != CodeValidation {
			t.Errorf("CheckNodeID(%q) = %v, want a validation error", tt.id, err)
		}
	}
}

func TestNodeState(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		n    Node
		want NodeState
	}{
		{Node{}, NodeAlive},
		{Node{StoppedAt: &at}, NodeStopped},
		{Node{DeadAt: &at}, NodeDead},
	} {
		if got := tt.n.State(); got != tt.want {
			t.Errorf("State of %+v = %s, want %s", tt.n, got, tt.want)
		}
	}
	n := Node{ID: "web-1", HeartbeatAt: at}
	if got, want := n.DeadMessage(), "node web-1 stopped answering at 2026-12-07T12:00:00Z"; !strings.HasPrefix(got, want) {
		t.Errorf("DeadMessage = %q, want it to start %q", got, want)
	}
}

// FuzzCheckNodeID: an accepted id is short, and made only of the
// characters a file name, URL path segment and log field take as they are.
func FuzzCheckNodeID(f *testing.F) {
	for _, s := range []string{"web-1", "", "-", "Web", "a/b", "a\x00", "node_2.eu", strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if CheckNodeID(id) != nil {
			return
		}
		if len(id) == 0 || len(id) > MaxNodeIDLen || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789._-") != "" || strings.ContainsAny(id[:1], "._-") {
			t.Errorf("CheckNodeID accepted %q", id)
		}
	})
}
