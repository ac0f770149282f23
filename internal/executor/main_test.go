package executor

import (
	"os"
	"testing"

	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

// TestMain lets the test binary serve as the sandbox supervisor of the
// process backend (see process_test.go).
func TestMain(m *testing.M) {
	supervisor.MaybeRun()
	os.Exit(m.Run())
}
