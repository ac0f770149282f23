package scaffold

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/agentcfg"
)

// runAgentTemplate is a config as RunAgent's templates ship it: the nil
// agent_id last, fields this project does not know, no final newline.
const runAgentTemplate = `{
  "agent_name": "problem_solver",
  "description": "A simple agent that responds to basic queries",
  "framework": "langgraph",
  "template": "problem_solver",
  "version": "1.0.0",
  "created_at": "2025-06-25 13:42:03",
  "template_source": {
    "repo_url": "https://github.com/runagent-dev/runagent.git",
    "path": "templates/langgraph/problem_solver",
    "author": "sawradip"
  },
  "agent_architecture": {
    "entrypoints": [
      {
        "file": "agents.py",
        "module": "app_invoke",
        "tag": "generic"
      },
      {
        "file": "agents.py",
        "module": "app_stream",
        "tag": "generic_stream"
      }
    ]
  },
  "metadata": {"runtime": "python"},
  "agent_id": "00000000-0000-0000-0000-000000000000"
}`

const validID = "6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b"

// project writes files into a new directory and returns it.
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAssignID(t *testing.T) {
	withoutID := strings.Replace(runAgentTemplate, ",\n  \"agent_id\": \"00000000-0000-0000-0000-000000000000\"", "", 1) + "\n"
	compact := `{"agent_name":"a","agent_architecture":{"entrypoints":[{"file":"agents.py","module":"f","tag":"t"}]}}`
	tabs := "{\n\t\"agent_name\": \"a\",\n\t\"agent_architecture\": {\"entrypoints\": [{\"file\": \"agents.py\", \"module\": \"f\", \"tag\": \"t\"}]}\n}\n"
	tests := []struct {
		name   string
		config string
		force  bool
		old    string
		want   func(id string) string // the file after the change
	}{
		{"RunAgent's nil id", runAgentTemplate, false, `"00000000-0000-0000-0000-000000000000"`, func(id string) string {
			return strings.Replace(runAgentTemplate, "00000000-0000-0000-0000-000000000000", id, 1)
		}},
		{"no id, indented", withoutID, false, "", func(id string) string {
			return strings.Replace(withoutID, "\"python\"}\n}", "\"python\"},\n  \"agent_id\": \""+id+"\"\n}", 1)
		}},
		{"no id, compact", compact, false, "", func(id string) string {
			return strings.TrimSuffix(compact, "}") + `, "agent_id":"` + id + `"}`
		}},
		{"no id, tabs", tabs, false, "", func(id string) string {
			return strings.Replace(tabs, "}]}\n}", "}]},\n\t\"agent_id\": \""+id+"\"\n}", 1)
		}},
		{"null id", strings.Replace(runAgentTemplate, `"00000000-0000-0000-0000-000000000000"`, "null", 1), false, "null", func(id string) string {
			return strings.Replace(runAgentTemplate, "00000000-0000-0000-0000-000000000000", id, 1)
		}},
		{"id not a UUID", strings.Replace(runAgentTemplate, "00000000-0000-0000-0000-000000000000", "agent-1", 1), false, `"agent-1"`, func(id string) string {
			return strings.Replace(runAgentTemplate, "00000000-0000-0000-0000-000000000000", id, 1)
		}},
		{"valid id with force", strings.Replace(runAgentTemplate, "00000000-0000-0000-0000-000000000000", validID, 1), true, `"` + validID + `"`, func(id string) string {
			return strings.Replace(runAgentTemplate, "00000000-0000-0000-0000-000000000000", id, 1)
		}},
		{"byte order mark", "\xef\xbb\xbf" + runAgentTemplate, false, `"00000000-0000-0000-0000-000000000000"`, func(id string) string {
			return "\xef\xbb\xbf" + strings.Replace(runAgentTemplate, "00000000-0000-0000-0000-000000000000", id, 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, map[string]string{agentcfg.FileName: tt.config, "agents.py": "def app_invoke(): pass\ndef app_stream(): yield 1\ndef f(): pass\n"})
			p := filepath.Join(dir, agentcfg.FileName)
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
			change, err := AssignID(dir, tt.force)
			if err != nil {
				t.Fatalf("AssignID: %v", err)
			}
			if _, err := uuid.Parse(change.New); err != nil || change.New == tt.old {
				t.Errorf("new agent_id %q is not a fresh UUID", change.New)
			}
			if change.Old != tt.old || change.Path != p {
				t.Errorf("change = %+v, want Old %s and Path %s", change, tt.old, p)
			}
			if change.Problems != nil {
				t.Errorf("Problems = %v, want none", change.Problems)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(change.New); string(got) != want {
				t.Errorf("file after AssignID:\n%s\nwant:\n%s", got, want)
			}
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode after AssignID = %v, %v; want 0600 kept", fi.Mode(), err)
			}
			cfg, _, err := agentcfg.Load(dir)
			if err != nil {
				t.Fatalf("Load after AssignID: %v", err)
			}
			if cfg.AgentID != change.New {
				t.Errorf("loaded agent_id = %s, want %s", cfg.AgentID, change.New)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 2 {
				t.Errorf("AssignID left %d files, want the config and agents.py", len(ents))
			}
		})
	}
}

func TestAssignIDRefuses(t *testing.T) {
	valid := strings.Replace(runAgentTemplate, "00000000-0000-0000-0000-000000000000", validID, 1)
	twice := strings.Replace(runAgentTemplate, `"agent_id"`, `"agent_id": null, "agent_id"`, 1)
	tests := []struct {
		name   string
		config string // "" for none
		want   string
	}{
		{"no config", "", "has no runagent.config.json: --existing gives an existing agent project a fresh agent_id; to create a project there, run `runagent init "},
		{"valid id", valid, "already has agent_id " + validID + "; nothing changed."},
		{"valid id names --force", valid, "pass --force"},
		{"not JSON", "{agent_name: x}", "invalid JSON at line 1, column 2"},
		{"not an object", `["agent_id"]`, "must be an object"},
		{"agent_id twice", twice, "has agent_id twice; keep one and run again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			if tt.config != "" {
				files[agentcfg.FileName] = tt.config
			}
			dir := project(t, files)
			_, err := AssignID(dir, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("AssignID error = %v, want one containing %q", err, tt.want)
			}
			if tt.config == "" {
				return
			}
			if got, _ := os.ReadFile(filepath.Join(dir, agentcfg.FileName)); string(got) != tt.config {
				t.Errorf("refused AssignID changed the file:\n%s", got)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("refused AssignID left %d files, want only the config", len(ents))
			}
		})
	}
}

// TestAssignIDProblems: the id is written even when the project has other
// problems, and they are reported.
func TestAssignIDProblems(t *testing.T) {
	dir := project(t, map[string]string{agentcfg.FileName: runAgentTemplate}) // no agents.py
	change, err := AssignID(dir, false)
	if err != nil {
		t.Fatalf("AssignID: %v", err)
	}
	if change.Problems == nil || !strings.Contains(change.Problems.Error(), `"agents.py" does not exist`) {
		t.Errorf("Problems = %v, want the missing agents.py", change.Problems)
	}
	cfg, _, err := agentcfg.Parse(must(os.ReadFile(filepath.Join(dir, agentcfg.FileName))), agentcfg.FileName)
	if err != nil || cfg.AgentID != change.New {
		t.Errorf("Parse after AssignID = %v, %v; want agent_id %s", cfg, err, change.New)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzWithAgentID: for any JSON object, setting agent_id leaves valid JSON
// whose agent_id is the new one and whose other members are unchanged.
func FuzzWithAgentID(f *testing.F) {
	f.Add([]byte(runAgentTemplate))
	f.Add([]byte(`{}`))
	f.Add([]byte(` { "a" : 1 , "agent_id" : null } `))
	f.Add([]byte("{\n\t\"x\": [1, {\"agent_id\": 2}]\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var before map[string]any
		if json.Unmarshal(data, &before) != nil || before == nil {
			return
		}
		loc, err := locateAgentID(data)
		if err != nil {
			if strings.Contains(err.Error(), "twice") {
				return // encoding/json lets the last one win; AssignID refuses
			}
			t.Fatalf("locateAgentID(%q): %v", data, err)
		}
		edited := withAgentID(data, loc, validID)
		var after map[string]any
		if err := json.Unmarshal(edited, &after); err != nil {
			t.Fatalf("after setting agent_id, %q is not JSON: %v", edited, err)
		}
		before["agent_id"] = validID
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("members changed (-want +got):\n%s", diff)
		}
	})
}
