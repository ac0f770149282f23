package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
)

// PythonSpec is one interpreter of Config.Python: a path, and the name
// agents choose it by ("3.12"; "" until resolved: its major.minor
// version).
type PythonSpec struct {
	Name string
	Path string
}

// String writes s as ParsePythons reads it.
func (s PythonSpec) String() string {
	if s.Name == "" {
		return s.Path
	}
	return s.Name + "=" + s.Path
}

// ParsePythons reads Config.Python (--python, $RUNAGENT_PYTHON): one
// interpreter or a comma-separated list, each a path (a name on PATH
// also does), named by its major.minor version, or name=path, where
// name is a version as agents write it ("3.12", "python3.12", stored as
// "3.12"). The first is the default, for agents that name none. It
// checks the syntax; resolvePythons checks the interpreters.
func ParsePythons(s string) ([]PythonSpec, error) {
	var specs []PythonSpec
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%q: an empty interpreter (use a path, or name=path entries separated by commas: 3.11=/usr/bin/python3.11,3.12=/opt/py/bin/python3)", s)
		}
		name, path, named := strings.Cut(item, "=")
		if !named {
			specs = append(specs, PythonSpec{Path: item})
			continue
		}
		v, ok := core.PythonVersion(name)
		if !ok || v == "" {
			return nil, fmt.Errorf("%q: %q is not a Python version to name an interpreter by (such as 3.12)", item, strings.TrimSpace(name))
		}
		if path = strings.TrimSpace(path); path == "" {
			return nil, fmt.Errorf("%q: no path after the name", item)
		}
		specs = append(specs, PythonSpec{Name: v, Path: path})
	}
	for i, a := range specs {
		for _, b := range specs[:i] {
			if a.Name != "" && a.Name == b.Name {
				return nil, fmt.Errorf("two interpreters are named %s (%s, %s)", a.Name, b.Path, a.Path)
			}
		}
	}
	return specs, nil
}

// agentPython is an interpreter agents may choose, resolved.
type agentPython struct {
	Name string // its major.minor version
	python.Interpreter
}

// resolvePythons resolves every interpreter of spec (ParsePythons): each
// must run and be a Python the shim supports (python.Resolve), its name
// must be its major.minor version, and no two may share a name. The
// first is the default.
func resolvePythons(ctx context.Context, spec string) ([]agentPython, error) {
	specs, err := ParsePythons(spec)
	if err != nil {
		return nil, fmt.Errorf("--python: %w", err)
	}
	var out []agentPython
	for _, s := range specs {
		in, err := python.Resolve(ctx, s.Path)
		if err != nil {
			return nil, fmt.Errorf("--python %s: %w", s, err)
		}
		v := majorMinor(in.Version)
		if s.Name != "" && s.Name != v {
			return nil, fmt.Errorf("--python %s: %s is Python %s; name it %s", s, in.Path, in.Version, v)
		}
		for _, o := range out {
			if o.Name == v {
				return nil, fmt.Errorf("--python: %s and %s are both Python %s: agents choose by major.minor version, so keep one", o.Path, in.Path, v)
			}
		}
		out = append(out, agentPython{Name: v, Interpreter: in})
	}
	return out, nil
}

// majorMinor is "3.12" of "3.12.1".
func majorMinor(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return version
	}
	return parts[0] + "." + parts[1]
}

// pythonChecker is a backend that can tell whether its sandboxes can
// run an interpreter (the linux backend shows its guests the host's
// system directories only).
type pythonChecker interface {
	CheckPython(path string) error
}

// installShims writes the shim to the runtime directory and compiles it
// for every interpreter: the executor's interpreters.
func installShims(ctx context.Context, dataDir string, pythons []agentPython) ([]executor.Interpreter, error) {
	src, err := python.WriteShim(filepath.Join(dataDir, "runtime"))
	if err != nil {
		return nil, fmt.Errorf("install the Python guest runtime: %w", err)
	}
	var out []executor.Interpreter
	for _, py := range pythons {
		// Precompiled, the shim starts ~3 ms sooner on every invocation;
		// the .pyc is named by the interpreter's cache tag.
		shim, err := python.CompileShim(ctx, py.Path, src)
		if err != nil {
			return nil, fmt.Errorf("install the Python guest runtime for Python %s: %w", py.Name, err)
		}
		out = append(out, executor.Interpreter{Name: py.Name, Python: py.Path, ShimPath: shim})
	}
	if len(out) == 0 {
		return nil, errors.New("no Python interpreter configured")
	}
	return out, nil
}

// pythonNames lists pythons for messages: "3.11 (default), 3.12".
func pythonNames(pythons []agentPython) string {
	names := make([]string, len(pythons))
	for i, p := range pythons {
		names[i] = p.Name
	}
	if len(names) > 0 {
		names[0] += " (default)"
	}
	return strings.Join(names, ", ")
}
