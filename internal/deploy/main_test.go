package deploy_test

import (
	"os"
	"testing"

	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

func TestMain(m *testing.M) {
	supervisor.MaybeRun() // this test binary serves the sandboxes' supervisor role
	os.Exit(m.Run())
}
