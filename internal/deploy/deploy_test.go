package deploy

import (
	"testing"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/pyenv"
)

// TestPython: an agent gets the interpreter its Runtime names, or the
// first; one naming another is refused with the list.
func TestPython(t *testing.T) {
	p := New(Config{Pythons: []pyenv.Interpreter{{Name: "3.11", Path: "/usr/bin/python3"}, {Name: "3.12", Path: "/opt/py/bin/python3"}}})
	for runtime, want := range map[string]string{"": "/usr/bin/python3", "3.11": "/usr/bin/python3", "3.12": "/opt/py/bin/python3"} {
		in, err := p.python(&core.AgentConfig{Runtime: runtime})
		if err != nil || in.Path != want {
			t.Errorf("python for runtime %q = %s, %v; want %s", runtime, in.Path, err, want)
		}
	}
	err := p.Check(&core.AgentConfig{Runtime: "3.13"})
	const msg = "the agent asks for Python 3.13; this server has 3.11 (default), 3.12"
	if core.ErrorCode(err) != core.CodeValidation || core.ErrorMessage(err) != msg {
		t.Errorf("Check(3.13) = %v; want VALIDATION_ERROR %q", err, msg)
	}
}
