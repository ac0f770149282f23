package scaffold

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/agentcfg"
	"github.com/runagent/runagent/internal/core"
)

var update = flag.Bool("update", false, "rewrite examples/hello from the templates")

const (
	helloDir = "../../examples/hello"
	helloID  = "6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b"
)

// echoSource is what examples/hello/main.py adds to the template.
const echoSource = `

def echo(*args, **kwargs):
    """Return the positional and keyword arguments unchanged: handy for
    tests and demos."""
    return {"args": list(args), "kwargs": kwargs}
`

var echoEntrypoint = core.Entrypoint{Tag: "echo", Kind: core.KindPython, File: "main.py", Module: "echo",
	Description: "Return the arguments unchanged"}

func tags(cfg *core.AgentConfig) []string {
	var out []string
	for _, ep := range cfg.Entrypoints {
		out = append(out, ep.Tag)
	}
	return out
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-agent")
	cfg, err := Write(dir, "My agent", "")
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, err := uuid.Parse(cfg.AgentID); err != nil {
		t.Errorf("agent_id %q is not a UUID: %v", cfg.AgentID, err)
	}
	loaded, warnings, err := agentcfg.Load(dir)
	if err != nil {
		t.Fatalf("Load of the written agent: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("Load warnings: %q", warnings)
	}
	if diff := cmp.Diff(cfg, loaded); diff != "" {
		t.Errorf("returned config differs from the loaded one (-returned +loaded):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"generate", "generate_stream"}, tags(loaded)); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if loaded.AgentName != "My agent" || loaded.Framework != "default" || loaded.AuthType != core.AuthAPIKey {
		t.Errorf("config = %+v", loaded)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# My agent",
		"runagent serve .",
		"runagent run --id " + cfg.AgentID + " --tag generate --message=hi",
		"runagent run-stream --id " + cfg.AgentID + " --tag generate_stream",
	} {
		if !bytes.Contains(readme, []byte(want)) {
			t.Errorf("README.md lacks %q:\n%s", want, readme)
		}
	}

	// Two agents get different ids.
	other, err := Write(filepath.Join(t.TempDir(), "b"), "b", DefaultFramework)
	if err != nil {
		t.Fatal(err)
	}
	if other.AgentID == cfg.AgentID {
		t.Errorf("two agents share the id %s", cfg.AgentID)
	}
}

func TestWriteRuns(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, "runs", ""); err != nil {
		t.Fatal(err)
	}
	got := runPython(t, dir)
	want := map[string]any{
		"generate": map[string]any{"reply": "You said: hi You said: hi", "length": 2.0, "repeat": 2.0},
		"default":  map[string]any{"reply": "You said: hello", "length": 5.0, "repeat": 1.0},
		"stream":   []any{"one ", "two ", "one"},
		"empty":    []any{},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("python results (-want +got):\n%s", diff)
	}
}

// runPython imports main.py from dir, calls its functions and returns
// what they returned.
func runPython(t *testing.T, dir string) map[string]any {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the tests (scripts/deps.sh installs it)")
	}
	const script = `
import json, sys, time
sys.path.insert(0, sys.argv[1])
import main
start = time.monotonic()
stream = list(main.generate_stream(message="one two", words=3))
elapsed = time.monotonic() - start
out = {
    "generate": main.generate("hi", repeat=2),
    "default": main.generate(),
    "stream": stream,
    "empty": list(main.generate_stream(words=0)),
}
if hasattr(main, "echo"):
    out["echo"] = main.echo(1, "a", k=[1, None])
assert elapsed > 0.2, "chunks should be spaced out"
print(json.dumps(out))
`
	cmd := exec.CommandContext(t.Context(), python, "-B", "-c", script, dir)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.Bytes())
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	return got
}

func TestWriteRefuses(t *testing.T) {
	tests := []struct {
		name     string
		existing string
		want     string
	}{
		{"existing agent", agentcfg.FileName, "already contains runagent.config.json"},
		{"existing main.py", "main.py", "already contains main.py"},
		{"existing README", "README.md", "already contains README.md"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.existing), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Write(dir, "x", "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write error = %v, want one containing %q", err, tt.want)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("Write left %d files, want only the existing one", len(ents))
			}
			if data, _ := os.ReadFile(filepath.Join(dir, tt.existing)); string(data) != "mine" {
				t.Errorf("%s was overwritten: %q", tt.existing, data)
			}
		})
	}
	t.Run("bad name", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "x")
		if _, err := Write(dir, "  ", ""); err == nil || !strings.Contains(err.Error(), "agent_name") {
			t.Errorf("Write with an empty name: %v, want an agent_name error", err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("Write with a bad name created %s", dir)
		}
	})
	t.Run("other files are fine", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Write(dir, "x", ""); err != nil {
			t.Errorf("Write next to other files: %v", err)
		}
	})
}

// helloFiles returns the files examples/hello must contain.
func helloFiles(t *testing.T) map[string][]byte {
	t.Helper()
	std, _ := Lookup(DefaultFramework)
	cfg := std.config("hello", helloID)
	cfg.Entrypoints = append(cfg.Entrypoints, echoEntrypoint)
	config, err := agentcfg.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mainPy, err := templates.ReadFile("template/default/main.py")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := std.readme(cfg, []core.Entrypoint{echoEntrypoint})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		agentcfg.FileName: config,
		"main.py":         append(mainPy, echoSource...),
		"README.md":       readme,
	}
}

// TestExampleHello keeps the committed example in step with the
// templates. Run with -update to rewrite it.
func TestExampleHello(t *testing.T) {
	for name, want := range helloFiles(t) {
		p := filepath.Join(helloDir, name)
		if *update {
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("examples/hello/%s is out of date (run go test ./internal/scaffold -update) (-want +got):\n%s", name, diff)
		}
	}
}

func TestExampleHelloLoads(t *testing.T) {
	cfg, warnings, err := agentcfg.Load(helloDir)
	if err != nil {
		t.Fatalf("Load(%s): %v", helloDir, err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if cfg.AgentID != helloID || cfg.AgentName != "hello" {
		t.Errorf("agent = %q %q, want %q hello", cfg.AgentID, cfg.AgentName, helloID)
	}
	if diff := cmp.Diff([]string{"generate", "generate_stream", "echo"}, tags(cfg)); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
}

func TestExampleHelloRuns(t *testing.T) {
	start := time.Now()
	got := runPython(t, helloDir)
	want := map[string]any{"args": []any{1.0, "a"}, "kwargs": map[string]any{"k": []any{1.0, nil}}}
	if diff := cmp.Diff(want, got["echo"]); diff != "" {
		t.Errorf("echo (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"one ", "two ", "one"}, got["stream"]); diff != "" {
		t.Errorf("generate_stream (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(helloDir, "__pycache__")); err == nil {
		t.Errorf("running the example left __pycache__ in %s (after %v)", helloDir, time.Since(start))
	}
}
