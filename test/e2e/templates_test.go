package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/pyenv/pyenvtest"
)

// stubDists are the distributions the init templates' requirements name,
// each with the stub modules it provides (internal/scaffold's test stubs:
// just the names the templates import).
var stubDists = map[string][]string{
	"ag2": {"autogen/"}, "agno": {"agno/"}, "openai": {"openai/"}, "crewai": {"crewai/"},
	"autogen-agentchat": {"autogen_agentchat/"}, "autogen-ext": {"autogen_ext/"},
	"langchain": {"langchain/", "langchain_core/"}, "langchain-openai": {"langchain_openai/"}, "langgraph": {"langgraph/"},
	"letta-client": {"letta_client/"}, "llama-index-core": {"llama_index/core/"}, "llama-index-llms-openai": {"llama_index/llms/"},
}

// TestTemplatesDeployE2E: every `runagent init --framework` project deploys
// as written — its requirements.txt installed by pip from an index that
// serves stub packages named like the frameworks, its entrypoints loaded
// by the deploy's load check in the linux sandbox — and answers a call
// without its model key with how to set it.
func TestTemplatesDeployE2E(t *testing.T) {
	needSandbox(t)
	if _, err := os.Stat(pyenvtest.Python); err != nil {
		t.Fatalf("Debian's %s is missing (scripts/deps.sh installs it)", pyenvtest.Python)
	}
	stubs := map[string]string{} // module path → source
	root := "../../internal/scaffold/testdata/stubs"
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		stubs[filepath.ToSlash(rel[strings.IndexByte(rel, filepath.Separator)+1:])] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var wheels []string
	for name, prefixes := range stubDists {
		d := pyenvtest.Dist{Name: name, Version: "2.0", Modules: map[string]string{}}
		for p, src := range stubs {
			for _, pre := range prefixes {
				if strings.HasPrefix(p, pre) {
					d.Modules[p] = src
				}
			}
		}
		if len(d.Modules) == 0 {
			t.Fatalf("no stub modules for %s", name)
		}
		wheels = append(wheels, pyenvtest.BuildWheel(t, "", d))
	}
	ix := pyenvtest.NewIndex(t, wheels...)
	s := startServer(t, "--package-index", ix.URL())

	for _, fw := range []string{"langgraph", "crewai", "langchain", "openai", "agno", "llamaindex", "letta", "autogen", "ag2"} {
		t.Run(fw, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), fw)
			cli(t, s, "init", "--framework", fw, dir)
			out, errOut, err := cliResult(s, "deploy", dir)
			if err != nil || !envRE.MatchString(out) {
				t.Fatalf("deploy: %v\n%s\n%s", err, out, errOut)
			}
			var cfg struct {
				AgentID string `json:"agent_id"`
				Arch    struct {
					Entrypoints []struct{ Tag string } `json:"entrypoints"`
				} `json:"agent_architecture"`
			}
			b, _ := os.ReadFile(filepath.Join(dir, "runagent.config.json"))
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			tag := cfg.Arch.Entrypoints[0].Tag
			input := "message"
			if fw == "crewai" {
				input = "topic"
			}
			body := `{"entrypoint_tag": "` + tag + `", "input_kwargs": {"` + input + `": "hi"}}`
			status, env := s.do(t, "POST", "/api/v1/agents/"+cfg.AgentID+"/run", "application/json", strings.NewReader(body))
			if status != 200 || !strings.Contains(string(env.Data), "is not set") {
				t.Errorf("%s without a key: %d %s %+v", tag, status, env.Data, env.Error)
			}
		})
	}
}
