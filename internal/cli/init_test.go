package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/agentcfg"
	"github.com/runagent/runagent/internal/scaffold"
)

// runCLI runs the command line and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out strings.Builder
	code := Main(t.Context(), args, strings.NewReader(""), &out, &out)
	return code, out.String()
}

func TestInitHelpListsFrameworks(t *testing.T) {
	code, out := runCLI(t, "init", "--help")
	if code != 0 {
		t.Fatalf("init --help exited %d: %s", code, out)
	}
	want := []string{"--framework", "--existing", "--force", "runagent secrets set", ".env", "00000000-0000-0000-0000-000000000000"}
	for _, tmpl := range scaffold.Templates() {
		want = append(want, "  "+tmpl.Framework+" ")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("init --help lacks %q:\n%s", w, out)
		}
	}
}

var idLine = regexp.MustCompile(`agent_id: ([0-9a-f-]{36})`)

func TestInitFramework(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "graph")
	code, out := runCLI(t, "init", "--framework", "langgraph", dir)
	if code != 0 {
		t.Fatalf("init --framework langgraph exited %d: %s", code, out)
	}
	m := idLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("init output has no agent_id:\n%s", out)
	}
	for _, want := range []string{"Created LangGraph agent \"graph\"", ".env.example", "OPENAI_API_KEY", "--tag chat ", "--tag chat_stream "} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	cfg, _, err := agentcfg.Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Framework != "langgraph" || cfg.AgentID != m[1] {
		t.Errorf("config framework %q id %s, want langgraph %s", cfg.Framework, cfg.AgentID, m[1])
	}

	// Again into the same directory: refused, pointing at --existing.
	code, out = runCLI(t, "init", "--framework", "langgraph", dir)
	if code == 0 || !strings.Contains(out, "runagent init --existing "+dir) {
		t.Errorf("init into a project: exit %d, want a refusal that suggests --existing:\n%s", code, out)
	}
}

func TestInitErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"init", "--framework", "langgraf", filepath.Join(dir, "a")}, `unknown framework "langgraf"; choose one of default, langgraph,`},
		{[]string{"init", "--existing", "--framework", "crewai", dir}, "takes no --framework or --name"},
		{[]string{"init", "--force", filepath.Join(dir, "b")}, "--force goes with --existing"},
		{[]string{"init", "--existing", dir}, "has no runagent.config.json"},
	} {
		code, out := runCLI(t, tt.args...)
		if code == 0 || !strings.Contains(out, tt.want) {
			t.Errorf("%q: exit %d, want an error containing %q:\n%s", tt.args, code, tt.want, out)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed inits left %d files", len(ents))
	}
}

// TestInitExisting: a project as RunAgent's templates ship it, with the nil
// id that serve and deploy refuse, gets a fresh id and loads.
func TestInitExisting(t *testing.T) {
	dir := t.TempDir()
	const config = `{
  "agent_name": "Demo Agent",
  "framework": "openai",
  "template": "default",
  "template_source": {"repo_url": "https://github.com/runagent-dev/runagent.git", "path": "templates/default"},
  "agent_architecture": {"entrypoints": [{"file": "simple_assistant.py", "module": "get_response", "tag": "simple_assistant"}]},
  "agent_id": "00000000-0000-0000-0000-000000000000"
}`
	if err := os.WriteFile(filepath.Join(dir, agentcfg.FileName), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "simple_assistant.py"), []byte("def get_response(): pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := agentcfg.Load(dir); err == nil || !strings.Contains(err.Error(), "runagent init --existing") {
		t.Fatalf("Load before: %v, want the nil id refused with a hint", err)
	}
	code, out := runCLI(t, "init", "--existing", dir)
	if code != 0 {
		t.Fatalf("init --existing exited %d: %s", code, out)
	}
	m := idLine.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, `agent_id "00000000-0000-0000-0000-000000000000" -> "`+m[1]+`"`) {
		t.Fatalf("init --existing output does not say what changed:\n%s", out)
	}
	cfg, _, err := agentcfg.Load(dir)
	if err != nil || cfg.AgentID != m[1] {
		t.Fatalf("Load after: %v, %v; want agent_id %s", cfg, err, m[1])
	}
	got, err := os.ReadFile(filepath.Join(dir, agentcfg.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(config, "00000000-0000-0000-0000-000000000000", m[1], 1); string(got) != want {
		t.Errorf("config after init --existing:\n%s\nwant:\n%s", got, want)
	}

	// Now the id is valid: kept unless --force.
	if code, out := runCLI(t, "init", "--existing", dir); code == 0 || !strings.Contains(out, "--force") {
		t.Errorf("init --existing on a valid id: exit %d:\n%s", code, out)
	}
	if code, out := runCLI(t, "init", "--existing", "--force", dir); code != 0 {
		t.Errorf("init --existing --force: exit %d:\n%s", code, out)
	}
	if cfg, _, err := agentcfg.Load(dir); err != nil || cfg.AgentID == m[1] {
		t.Errorf("after --force: %v, %v; want an agent_id other than %s", cfg, err, m[1])
	}
}
