package scaffold

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/agentcfg"
	"github.com/runagent/runagent/internal/core"
)

// debianPython is the interpreter the template tests run: Debian's, with
// nothing on its path but the standard library, a framework's stubs
// (testdata/stubs/<framework>) and the project.
const debianPython = "/usr/bin/python3"

// checkResult is what testdata/check.py prints.
type checkResult struct {
	Resolved []string `json:"resolved"`
	Plain    any      `json:"plain"`
	Stream   []any    `json:"stream"`
	Foreign  []string `json:"foreign"`
}

// TestTemplatesLoad writes every framework's project and loads it the way
// the runtime does, against stub packages: each entrypoint resolves,
// without the API key both entrypoints answer with how to set it, and with
// a key they reach the (stub) framework and pass the input on.
func TestTemplatesLoad(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		t.Fatalf("%s is required by the tests (scripts/deps.sh installs python3): %v", debianPython, err)
	}
	for _, tmpl := range Templates() {
		if tmpl.Framework == DefaultFramework {
			continue // TestWriteRuns runs it
		}
		t.Run(tmpl.Framework, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			written, err := Write(dir, "my "+tmpl.Framework+" agent", tmpl.Framework)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			checkProject(t, dir, tmpl, written)

			noKey := runCheck(t, dir, tmpl, "")
			if diff := cmp.Diff([]string{tmpl.PlainTag, tmpl.StreamTag}, noKey.Resolved); diff != "" {
				t.Errorf("resolved entrypoints (-want +got):\n%s", diff)
			}
			if len(noKey.Foreign) > 0 {
				t.Errorf("the project imports %q, which is neither the standard library nor its framework's packages", noKey.Foreign)
			}
			msg, _ := noKey.Plain.(string)
			for _, want := range []string{tmpl.Key + " is not set", "runagent secrets set --agent <agent_id> " + tmpl.Key, ".env"} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s without %s returned %#v, want a message containing %q", tmpl.PlainTag, tmpl.Key, noKey.Plain, want)
				}
			}
			if diff := cmp.Diff([]any{msg}, noKey.Stream); diff != "" {
				t.Errorf("%s without %s (-want +got):\n%s", tmpl.StreamTag, tmpl.Key, diff)
			}

			withKey := runCheck(t, dir, tmpl, "sk-stub")
			if got, _ := withKey.Plain.(string); !strings.Contains(got, "echo: ") || !strings.Contains(got, tmpl.Example) {
				t.Errorf("%s with a key returned %#v, want the stub model's echo of %q", tmpl.PlainTag, withKey.Plain, tmpl.Example)
			}
			if len(withKey.Stream) == 0 {
				t.Errorf("%s with a key sent no chunk", tmpl.StreamTag)
			}
			if got := streamText(t, withKey.Stream); !strings.Contains(got, tmpl.Example) {
				t.Errorf("%s with a key sent %s, want the stub model's echo of %q", tmpl.StreamTag, got, tmpl.Example)
			}
		})
	}
}

// checkProject checks the files Write made for tmpl in dir.
func checkProject(t *testing.T, dir string, tmpl Template, written *core.AgentConfig) {
	t.Helper()
	loaded, warnings, err := agentcfg.Load(dir)
	if err != nil {
		t.Fatalf("agentcfg.Load of the written project: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("agentcfg.Load warnings: %q", warnings)
	}
	if diff := cmp.Diff(written, loaded); diff != "" {
		t.Errorf("returned config differs from the loaded one (-returned +loaded):\n%s", diff)
	}
	if loaded.Framework != tmpl.Framework {
		t.Errorf("framework = %q, want %q", loaded.Framework, tmpl.Framework)
	}
	if loaded.Network.Mode != core.NetworkEgress || len(loaded.Network.Allow) == 0 {
		t.Errorf("network = %+v, want egress to the model's API", loaded.Network)
	}

	reqs, err := os.ReadFile(filepath.Join(dir, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(bytes.TrimSpace(reqs)) == 0 {
		t.Errorf("requirements.txt is empty")
	}
	env, err := os.ReadFile(filepath.Join(dir, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte("\n"+tmpl.Key+"=\n")) {
		t.Errorf(".env.example lacks %s=:\n%s", tmpl.Key, env)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"runagent init --framework " + tmpl.Framework,
		"cp .env.example .env",
		"runagent secrets set --agent " + written.AgentID + " " + tmpl.Key,
		"runagent serve .",
		"runagent run --id " + written.AgentID + " --tag " + tmpl.PlainTag,
		"runagent run-stream --id " + written.AgentID + " --tag " + tmpl.StreamTag,
	} {
		if !bytes.Contains(readme, []byte(want)) {
			t.Errorf("README.md lacks %q:\n%s", want, readme)
		}
	}
	if bytes.Contains(readme, []byte("<no value>")) {
		t.Errorf("README.md has an unfilled field:\n%s", readme)
	}
}

// runCheck runs testdata/check.py on the project in dir with tmpl's stubs
// and, unless key is empty, tmpl.Key set to key.
func runCheck(t *testing.T, dir string, tmpl Template, key string) checkResult {
	t.Helper()
	stubs, err := filepath.Abs(filepath.Join("testdata", "stubs", tmpl.Framework))
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "check.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), debianPython, "-B", "-s", script, dir, stubs, tmpl.Input, tmpl.Example)
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + dir,
		"PYTHONPATH=" + stubs + string(os.PathListSeparator) + dir,
		"PYTHONDONTWRITEBYTECODE=1",
	}
	if key != "" {
		cmd.Env = append(cmd.Env, tmpl.Key+"="+key)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("check.py (key %q): %v\n%s", key, err, stderr.Bytes())
	}
	var got checkResult
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("check.py output %q: %v", out, err)
	}
	return got
}

// streamText joins a stream's chunks: strings as they are, anything else
// as JSON.
func streamText(t *testing.T, chunks []any) string {
	t.Helper()
	var b strings.Builder
	for _, c := range chunks {
		if s, ok := c.(string); ok {
			b.WriteString(s)
			continue
		}
		j, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
	}
	return b.String()
}

// TestTemplateFolders: every folder under template/ has an entry in the
// table and every entry a folder with its entrypoint file; every stub
// folder belongs to a template.
func TestTemplateFolders(t *testing.T) {
	entries, err := fs.ReadDir(templates, "template")
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, e := range entries {
		if e.IsDir() {
			folders = append(folders, e.Name())
		}
	}
	names := FrameworkNames()
	slices.Sort(names)
	if diff := cmp.Diff(names, folders); diff != "" {
		t.Errorf("template folders vs. the table (-table +folders):\n%s", diff)
	}
	for _, tmpl := range Templates() {
		if _, ok := tmpl.file(tmpl.File); !ok {
			t.Errorf("%s: template/%s/%s does not exist", tmpl.Framework, tmpl.Framework, tmpl.File)
		}
		_, hasReqs := tmpl.file("requirements.txt")
		if hasReqs != (tmpl.Framework != DefaultFramework) {
			t.Errorf("%s: has requirements.txt = %v", tmpl.Framework, hasReqs)
		}
		if tmpl.Framework != DefaultFramework && !strings.HasSuffix(tmpl.StreamTag, "_stream") {
			t.Errorf("%s: stream tag %q does not end in _stream", tmpl.Framework, tmpl.StreamTag)
		}
	}
	stubs, err := os.ReadDir(filepath.Join("testdata", "stubs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range stubs {
		if _, ok := Lookup(e.Name()); !ok || e.Name() == DefaultFramework {
			t.Errorf("testdata/stubs/%s belongs to no framework template", e.Name())
		}
	}
	for _, p := range []string{"__pycache__", ".pyc"} {
		fs.WalkDir(templates, "template", func(path string, d fs.DirEntry, err error) error {
			if strings.Contains(path, p) {
				t.Errorf("embedded template has %s", path)
			}
			return nil
		})
	}
}

func TestWriteUnknownFramework(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x")
	_, err := Write(dir, "x", "langgraf")
	const want = `unknown framework "langgraf"; choose one of default, langgraph, langchain, crewai, openai, agno, llamaindex, letta, autogen, ag2`
	if err == nil || err.Error() != want {
		t.Errorf("Write(langgraf) error = %v\nwant %s", err, want)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("Write with an unknown framework created %s", dir)
	}
	if tmpl, ok := Lookup("LangGraph"); !ok || tmpl.Framework != "langgraph" {
		t.Errorf("Lookup(LangGraph) = %q, %v; want langgraph", tmpl.Framework, ok)
	}
}

// TestREADMEListsTemplates keeps the README's table of templates in step
// with them: a row per framework naming its entrypoint file and packages.
func TestREADMEListsTemplates(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for line := range strings.SplitSeq(string(readme), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			if name, _, ok := strings.Cut(rest, "`"); ok {
				rows[name] = line
			}
		}
	}
	for _, tmpl := range Templates() {
		row, ok := rows[tmpl.Framework]
		if !ok {
			t.Errorf("README.md has no row for --framework %s", tmpl.Framework)
			continue
		}
		reqs, err := tmpl.requirements()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range append([]string{tmpl.File, tmpl.Plain, tmpl.Stream}, reqs...) {
			if !strings.Contains(row, "`"+want) {
				t.Errorf("README.md's row for %s lacks %s:\n%s", tmpl.Framework, want, row)
			}
		}
	}
}
