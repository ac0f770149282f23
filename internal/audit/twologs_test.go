package audit_test

import (
	"testing"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// TestTwoWritersOneTrail: two Logs on one database file, as a running
// server and an offline `runagent db cleanup`, append in turns; each
// chains after the other's records (retrying once when the head moved)
// and the trail verifies.
func TestTwoWritersOneTrail(t *testing.T) {
	db, path := mustOpen(t)
	other, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	a := mustNew(t, db, audit.Options{})
	b := mustNew(t, other, audit.Options{})
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if _, err := l.Append(t.Context(), record(i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if rep := mustVerify(t, db); !rep.OK || rep.Checked != 10 {
		t.Errorf("Verify = %+v, want OK with 10 records", rep)
	}
}
