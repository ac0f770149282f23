package pyenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Interpreter is a Python an environment is built for.
type Interpreter struct {
	Name     string // what agents choose it by ("3.11")
	Path     string // host path
	Version  string // sys.version, whole
	Platform string // sysconfig.get_platform() and the ABI tag
}

// probeScript prints what an environment built for an interpreter
// depends on: its exact version and build, its platform and its ABI.
const probeScript = `import sys, sysconfig
print(sys.version.replace("\n", " "))
print(sysconfig.get_platform() + " " + sys.implementation.cache_tag + " " + (sysconfig.get_config_var("SOABI") or ""))
print("%d.%d" % sys.version_info[:2])`

// Probe asks the interpreter at path what it is. name "" means its
// major.minor version.
func Probe(ctx context.Context, name, path string) (Interpreter, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-I", "-c", probeScript)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return Interpreter{}, fmt.Errorf("python %s does not run: %v %s", path, err, strings.TrimSpace(errOut.String()))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		return Interpreter{}, fmt.Errorf("python %s answered the probe with %q", path, out.String())
	}
	in := Interpreter{Name: name, Path: path, Version: lines[0], Platform: lines[1]}
	if in.Name == "" {
		in.Name = lines[2]
	}
	return in, nil
}

// keyVersion changes when the layout of a built environment does, so
// that no environment of an older layout is reused.
const keyVersion = "runagent-pyenv-1"

// Key names the environment of d for in: the SHA-256 of the dependency
// set (its lines as a set, its constraints, its vendored wheels' hashes),
// the interpreter's version and the platform. Two projects with the same
// set share one environment.
func Key(d Deps, in Interpreter) string {
	h := sha256.New()
	field := func(tag string, vs ...string) {
		fmt.Fprintf(h, "%s %d\n", tag, len(vs))
		for _, v := range vs {
			fmt.Fprintf(h, "%d:%s\n", len(v), v)
		}
	}
	field("version", keyVersion)
	lines := slices.Clone(d.Lines)
	slices.Sort(lines)
	field("requirements", lines...)
	cons := slices.Clone(d.Constraints)
	slices.Sort(cons)
	field("constraints", cons...)
	var wheels []string
	for _, w := range d.Wheels {
		wheels = append(wheels, w.Name+" "+w.SHA256)
	}
	slices.Sort(wheels)
	field("wheels", wheels...)
	field("python", in.Version, in.Platform)
	return hex.EncodeToString(h.Sum(nil))
}
