package agentcfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/core"
)

const testID = "6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b"

// doc returns a valid minimal config with top-level fields changed: a nil
// value deletes the field. Values are encoded with encoding/json, so a
// json.RawMessage is inserted verbatim.
func doc(tb testing.TB, changes map[string]any) []byte {
	tb.Helper()
	m := map[string]any{
		"agent_name": "test agent",
		"agent_id":   testID,
		"agent_architecture": map[string]any{
			"entrypoints": []any{ep(nil)},
		},
	}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		tb.Fatalf("marshal test config: %v", err)
	}
	return data
}

// ep returns a valid python entrypoint with fields changed (nil deletes).
func ep(changes map[string]any) map[string]any {
	m := map[string]any{"file": "main.py", "module": "generate", "tag": "generate"}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// webhook returns a valid webhook entrypoint with fields changed.
func webhook(changes map[string]any) map[string]any {
	m := map[string]any{"webhook_url": "https://n8n.example.com/webhook/abc", "method": "POST", "tag": "hook", "timeout": 30}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// eps returns an agent_architecture holding the given entrypoints.
func eps(list ...any) map[string]any {
	return map[string]any{"entrypoints": list}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

const completeConfig = `{
  "agent_name": "  Support bot  ",
  "description": "Answers questions",
  "framework": "langgraph",
  "template": "default",
  "version": "1.2.0",
  "created_at": "2025-06-25 13:42:03",
  "template_source": {"repo_url": "https://github.com/runagent-dev/runagent.git", "path": "templates/langgraph/default", "author": "x"},
  "agent_architecture": {
    "entrypoints": [
      {"file": "agent/main.py", "module": "agent.invoke", "tag": "chat", "description": "one answer",
       "input_schema": {
         "kwargs": {"type": "object", "properties": {"message": {"type": "string"}}},
         "args": {"maxItems": 0}
       }},
      {"file": "agent/main.py", "module": "agent.stream", "tag": "chat_stream", "extractor": {"text": "$.content"}},
      {"webhook_url": "https://n8n.example.com/webhook/1", "method": "put", "tag": "n8n-hook", "timeout": 12.5},
      {"webhook_url": "http://hooks.example.org/x", "tag": "hook2", "input_schema": {"kwargs": true, "args": null}}
    ]
  },
  "env_vars": {"LOG_LEVEL": "debug", "MODEL": "gpt-4o"},
  "agent_id": "6D2C2F5E-7A51-4B6C-9A43-0C1D2E3F4A5B",
  "auth_settings": {"type": "none"},
  "persistent_folders": ["data", "cache/models"],
  "resources": {"cpu": 1.5, "memory_mb": 512, "disk_mb": 1024, "processes": 64, "open_files": 256, "bandwidth_mbps": 2.5, "timeout_seconds": 300, "no_process_creation": true, "reuse_per_user": true},
  "rate_limit": {"requests": 60, "period_seconds": 60},
  "store_payloads": false,
  "runtime": {"python": "python3.12"},
  "metadata": {"runtime": "py3.12", "region": "eu"},
  "network": {"mode": "egress", "allow": [{"host": "API.OpenAI.com", "ports": [443]}, {"host": "*.example.com"}]}
}`

func completeWant() *core.AgentConfig {
	return &core.AgentConfig{
		AgentName:   "Support bot",
		Description: "Answers questions",
		Framework:   "langgraph",
		Version:     "1.2.0",
		AgentID:     testID,
		Entrypoints: []core.Entrypoint{
			{Tag: "chat", Kind: core.KindPython, File: "agent/main.py", Module: "agent.invoke", Description: "one answer",
				InputSchema: json.RawMessage(`{"kwargs":{"type":"object","properties":{"message":{"type":"string"}}},"args":{"maxItems":0}}`)},
			{Tag: "chat_stream", Kind: core.KindPython, File: "agent/main.py", Module: "agent.stream",
				Extractor: map[string]string{"text": "$.content"}},
			{Tag: "n8n-hook", Kind: core.KindWebhook, WebhookURL: "https://n8n.example.com/webhook/1", Method: "PUT", TimeoutSeconds: 12.5},
			{Tag: "hook2", Kind: core.KindWebhook, WebhookURL: "http://hooks.example.org/x", Method: "POST", InputSchema: json.RawMessage(`{"kwargs":true,"args":null}`)},
		},
		EnvVars:           map[string]string{"LOG_LEVEL": "debug", "MODEL": "gpt-4o"},
		AuthType:          core.AuthNone,
		PersistentFolders: []string{"data", "cache/models"},
		Resources: core.Resources{CPU: 1.5, MemoryMB: 512, DiskMB: 1024, Processes: 64, OpenFiles: 256,
			BandwidthMBps: 2.5, TimeoutSeconds: 300, NoProcessCreation: true, ReusePerUser: true},
		RateLimit:     &core.RateLimit{Requests: 60, PeriodSeconds: 60},
		StorePayloads: new(false),
		Runtime:       "3.12",
		Network: core.NetworkPolicy{Mode: core.NetworkEgress, Allow: []core.EgressRule{
			{Host: "api.openai.com", Ports: []int{443}},
			{Host: "*.example.com"},
		}},
	}
}

func TestParseComplete(t *testing.T) {
	got, warnings, err := Parse([]byte(completeConfig), FileName)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(completeWant(), got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q, want none", warnings)
	}
}

func TestParseDefaults(t *testing.T) {
	got, warnings, err := Parse([]byte(`{"agent_name":"a","agent_architecture":{"entrypoints":[{"file":"main.py","module":"run","tag":"t"}]}}`), FileName)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &core.AgentConfig{
		AgentName:   "a",
		Entrypoints: []core.Entrypoint{{Tag: "t", Kind: core.KindPython, File: "main.py", Module: "run"}},
		AuthType:    core.AuthAPIKey,
		Network:     core.NetworkPolicy{Mode: core.NetworkNone},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q, want none", warnings)
	}
}

func TestParseNullIsAbsent(t *testing.T) {
	in := `{"agent_name":"a","agent_id":null,"framework":null,"env_vars":null,"auth_settings":null,"resources":null,"network":null,
		"agent_architecture":{"entrypoints":[{"file":"main.py","module":"run","tag":"t","extractor":null,"input_schema":null,"description":null}]}}`
	got, _, err := Parse([]byte(in), FileName)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &core.AgentConfig{
		AgentName:   "a",
		Entrypoints: []core.Entrypoint{{Tag: "t", Kind: core.KindPython, File: "main.py", Module: "run"}},
		AuthType:    core.AuthAPIKey,
		Network:     core.NetworkPolicy{Mode: core.NetworkNone},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		check func(*core.AgentConfig) string
	}{
		{"byte order mark", append([]byte("\xef\xbb\xbf"), doc(t, nil)...), nil},
		{"input_schema kept compact", doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"input_schema": raw(`{ "kwargs" : { "type" : "object",
			"required": ["message"] } }`)}))}), func(c *core.AgentConfig) string {
			return cmp.Diff(`{"kwargs":{"type":"object","required":["message"]}}`, string(c.Entrypoints[0].InputSchema))
		}},
		{"input_schema empty", doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"input_schema": raw(`{}`)}))}), func(c *core.AgentConfig) string {
			return cmp.Diff(`{}`, string(c.Entrypoints[0].InputSchema))
		}},
		{"input_schema local refs and draft-07", doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"input_schema": raw(
			`{"kwargs":{"$defs":{"msg":{"type":"string","maxLength":4000}},"properties":{"message":{"$ref":"#/$defs/msg"}}},` +
				`"args":{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"n":{"type":"number"}},"items":{"$ref":"#/definitions/n"}}}`)}))}), nil},
		{"input_schema recursive tree", doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"input_schema": raw(
			`{"kwargs":{"$defs":{"json":{"anyOf":[{"type":["string","number","boolean","null"]},{"type":"array","items":{"$ref":"#/$defs/json"}},{"type":"object","additionalProperties":{"$ref":"#/$defs/json"}}]}},"$ref":"#/$defs/json"}}`)}))}), nil},
		{"input_schema of 64 KiB", doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"input_schema": raw(
			`{"kwargs":{"description":"` + strings.Repeat("x", 64<<10-len(`{"kwargs":{"description":""}}`)) + `"}}`)}))}), nil},
		{"empty agent_id is absent", doc(t, map[string]any{"agent_id": ""}), func(c *core.AgentConfig) string {
			return cmp.Diff("", c.AgentID)
		}},
		{"agent_id absent", doc(t, map[string]any{"agent_id": nil}), func(c *core.AgentConfig) string {
			return cmp.Diff("", c.AgentID)
		}},
		{"name of 200 characters", doc(t, map[string]any{"agent_name": strings.Repeat("é", 200)}), nil},
		{"tag of 64 characters", doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"tag": strings.Repeat("a", 64)}))}), nil},
		{"soft keyword module", doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"module": "match.type._"}))}), nil},
		{"nested file", doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"file": "src/pkg/agent.py"}))}), nil},
		{"whole-number float", doc(t, map[string]any{"resources": raw(`{"memory_mb": 5.12e2}`)}), func(c *core.AgentConfig) string {
			return cmp.Diff(int64(512), c.Resources.MemoryMB)
		}},
		{"zero means default", doc(t, map[string]any{"resources": raw(`{"memory_mb": 0, "bandwidth_mbps": 0}`)}), nil},
		{"no_process_creation false", doc(t, map[string]any{"resources": raw(`{"no_process_creation": false}`)}), func(c *core.AgentConfig) string {
			return cmp.Diff(core.Resources{}, c.Resources)
		}},
		{"no_process_creation alone", doc(t, map[string]any{"resources": raw(`{"no_process_creation": true}`)}), func(c *core.AgentConfig) string {
			return cmp.Diff(core.Resources{NoProcessCreation: true}, c.Resources)
		}},
		{"webhook without method", doc(t, map[string]any{"agent_architecture": eps(webhook(map[string]any{"method": nil, "timeout": nil}))}), func(c *core.AgentConfig) string {
			return cmp.Diff("POST", c.Entrypoints[0].Method)
		}},
		{"completion webhook on the allow list", doc(t, map[string]any{
			"network": raw(`{"mode":"egress","allow":[{"host":"*.example.com","ports":[8443]}]}`),
			"webhook": raw(`{"url":"https://Hooks.Example.com:8443/runagent?token=t#frag"}`)}), func(c *core.AgentConfig) string {
			return cmp.Diff(&core.WebhookConfig{URL: "https://Hooks.Example.com:8443/runagent?token=t"}, c.Webhook)
		}},
		{"completion webhook null", doc(t, map[string]any{"webhook": nil}), func(c *core.AgentConfig) string {
			return cmp.Diff((*core.WebhookConfig)(nil), c.Webhook)
		}},
		{"mode none without allow", doc(t, map[string]any{"network": raw(`{"mode":"none","allow":[]}`)}), nil},
		{"empty env value with secret name", doc(t, map[string]any{"env_vars": map[string]string{"API_KEY": ""}}), nil},
		{"max entrypoints", doc(t, map[string]any{"agent_architecture": eps(manyEntrypoints(100)...)}), nil},
		{"runtime.python", doc(t, map[string]any{"runtime": map[string]any{"python": "3.12"}}), runtime("3.12")},
		{"runtime.python python3.13", doc(t, map[string]any{"runtime": map[string]any{"python": "python3.13"}}), runtime("3.13")},
		{"runtime.python Python 3.10", doc(t, map[string]any{"runtime": map[string]any{"python": " Python 3.10 "}}), runtime("3.10")},
		{"runtime.python python3 is the default", doc(t, map[string]any{"runtime": map[string]any{"python": "python3"}}), runtime("")},
		{"runtime empty", doc(t, map[string]any{"runtime": map[string]any{}}), runtime("")},
		{"metadata.runtime py3.11", doc(t, map[string]any{"metadata": map[string]any{"runtime": "py3.11"}}), runtime("3.11")},
		{"metadata.runtime python is the default", doc(t, map[string]any{"metadata": map[string]any{"runtime": "python"}}), runtime("")},
		{"metadata without runtime", doc(t, map[string]any{"metadata": map[string]any{"gateway_url": 1, "tags": []string{"a"}}}), runtime("")},
		{"metadata.runtime null", doc(t, map[string]any{"metadata": raw(`{"runtime": null}`)}), runtime("")},
		{"runtime and metadata agree", doc(t, map[string]any{"runtime": map[string]any{"python": "3.12"}, "metadata": map[string]any{"runtime": "python3.12"}}), runtime("3.12")},
		{"metadata python and a runtime version", doc(t, map[string]any{"runtime": map[string]any{"python": "3.12"}, "metadata": map[string]any{"runtime": "python"}}), runtime("3.12")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := Parse(tt.in, FileName)
			if err != nil {
				t.Fatalf("Parse(%s): %v", tt.in, err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings = %q, want none", warnings)
			}
			if tt.check != nil {
				if diff := tt.check(got); diff != "" {
					t.Errorf("mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// runtime checks a config's Runtime.
func runtime(want string) func(*core.AgentConfig) string {
	return func(c *core.AgentConfig) string { return cmp.Diff(want, c.Runtime) }
}

func manyEntrypoints(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = ep(map[string]any{"tag": fmt.Sprintf("t%d", i)})
	}
	return out
}

func TestParseErrors(t *testing.T) {
	withEP := func(changes map[string]any) []byte {
		return doc(t, map[string]any{"agent_architecture": eps(ep(changes))})
	}
	withHook := func(changes map[string]any) []byte {
		return doc(t, map[string]any{"agent_architecture": eps(webhook(changes))})
	}
	const ep0 = "agent_architecture.entrypoints[0]"
	tests := []struct {
		name   string
		in     []byte
		field  string
		reason string // substring of the reason
	}{
		// Whole file.
		{"not JSON", []byte(`{"agent_name": }`), "", "invalid JSON at line 1, column 16"},
		{"trailing data", append(doc(t, nil), " x"...), "", "invalid JSON"},
		{"not an object", []byte(`[1, 2]`), "", "must be an object, not an array"},
		{"empty input", nil, "", "invalid JSON"},
		{"too large", append(doc(t, nil), make([]byte, MaxSize)...), "", "at most 1048576"},
		{"invalid UTF-8", []byte("{\"agent_name\": \"\xff\"}"), "", "not valid UTF-8"},
		{"duplicate key", []byte(`{"agent_name":"a","agent_name":"b","agent_architecture":{"entrypoints":[{"file":"main.py","module":"m","tag":"t"}]}}`), "agent_name", "duplicate key"},

		// runtime and metadata.
		{"runtime not object", doc(t, map[string]any{"runtime": "3.12"}), "runtime", "must be an object, not a string"},
		{"runtime unknown field", doc(t, map[string]any{"runtime": map[string]any{"node": "20"}}), "runtime.node", "unknown field (allowed: python)"},
		{"runtime.python number", doc(t, map[string]any{"runtime": map[string]any{"python": 3.12}}), "runtime.python", "must be a string, not a number"},
		{"runtime.python patch level", doc(t, map[string]any{"runtime": map[string]any{"python": "3.12.1"}}), "runtime.python", `"3.12.1" is not a Python 3 version: name one as major.minor, e.g. "3.12"`},
		{"runtime.python 2.7", doc(t, map[string]any{"runtime": map[string]any{"python": "python2.7"}}), "runtime.python", "is not a Python 3 version"},
		{"runtime.python word", doc(t, map[string]any{"runtime": map[string]any{"python": "latest"}}), "runtime.python", "is not a Python 3 version"},
		{"runtime.python empty", doc(t, map[string]any{"runtime": map[string]any{"python": ""}}), "runtime.python", "is not a Python 3 version"},
		{"metadata not object", doc(t, map[string]any{"metadata": []int{1}}), "metadata", "must be an object, not an array"},
		{"metadata.runtime gateway", doc(t, map[string]any{"metadata": map[string]any{"runtime": "openclaw-gateway"}}), "metadata.runtime",
			`"openclaw-gateway" is not a runtime this server runs: it runs Python agents ("python", or a version such as "python3.12")`},
		{"metadata.runtime number", doc(t, map[string]any{"metadata": map[string]any{"runtime": 3}}), "metadata.runtime", "must be a string, not a number"},
		{"runtime and metadata disagree", doc(t, map[string]any{"runtime": map[string]any{"python": "3.12"}, "metadata": map[string]any{"runtime": "python3.11"}}),
			"runtime.python", "asks for Python 3.12, but metadata.runtime asks for 3.11"},

		// agent_name.
		{"name missing", doc(t, map[string]any{"agent_name": nil}), "agent_name", "is required"},
		{"name null", doc(t, map[string]any{"agent_name": raw("null")}), "agent_name", "is required"},
		{"name empty", doc(t, map[string]any{"agent_name": "  "}), "agent_name", "must not be empty"},
		{"name not string", doc(t, map[string]any{"agent_name": 5}), "agent_name", "must be a string, not a number"},
		{"name too long", doc(t, map[string]any{"agent_name": strings.Repeat("a", 201)}), "agent_name", "at most 200"},
		{"name control character", doc(t, map[string]any{"agent_name": "a\x1b[31m"}), "agent_name", "control characters"},

		// agent_id.
		{"id not UUID", doc(t, map[string]any{"agent_id": "agent-1"}), "agent_id", "is not a UUID"},
		{"id braces", doc(t, map[string]any{"agent_id": "{" + testID + "}"}), "agent_id", "is not a UUID"},
		{"id without dashes", doc(t, map[string]any{"agent_id": strings.ReplaceAll(testID, "-", "")}), "agent_id", "is not a UUID"},
		{"id nil UUID", doc(t, map[string]any{"agent_id": "00000000-0000-0000-0000-000000000000"}), "agent_id", "is the nil UUID, a placeholder (RunAgent's templates ship it) that every copy of such a project shares; run `runagent init --existing <project dir>` to write a fresh agent_id"},
		{"id number", doc(t, map[string]any{"agent_id": 7}), "agent_id", "must be a string"},

		// Plain strings.
		{"framework not string", doc(t, map[string]any{"framework": true}), "framework", "must be a string, not a boolean"},
		{"version not string", doc(t, map[string]any{"version": 1.0}), "version", "must be a string"},
		{"description not string", doc(t, map[string]any{"description": raw(`["a"]`)}), "description", "must be a string, not an array"},

		// agent_architecture.
		{"architecture missing", doc(t, map[string]any{"agent_architecture": nil}), "agent_architecture.entrypoints", "is required"},
		{"architecture not object", doc(t, map[string]any{"agent_architecture": "x"}), "agent_architecture", "must be an object"},
		{"entrypoints missing", doc(t, map[string]any{"agent_architecture": map[string]any{}}), "agent_architecture.entrypoints", "is required"},
		{"entrypoints empty", doc(t, map[string]any{"agent_architecture": eps()}), "agent_architecture.entrypoints", "at least one"},
		{"entrypoints not list", doc(t, map[string]any{"agent_architecture": map[string]any{"entrypoints": map[string]any{}}}), "agent_architecture.entrypoints", "must be a list"},
		{"too many entrypoints", doc(t, map[string]any{"agent_architecture": eps(manyEntrypoints(101)...)}), "agent_architecture.entrypoints", "at most 100"},
		{"entrypoint not object", doc(t, map[string]any{"agent_architecture": eps("main.py")}), ep0, "must be an object, not a string"},
		{"entrypoint unknown field", withEP(map[string]any{"modul": "x"}), ep0 + ".modul", "unknown field"},
		{"entrypoint hostile field name", withEP(map[string]any{"a\nb": "x"}), ep0 + `["a\nb"]`, "unknown field"},

		// Tags.
		{"tag missing", withEP(map[string]any{"tag": nil}), ep0 + ".tag", "is required"},
		{"tag empty", withEP(map[string]any{"tag": ""}), ep0 + ".tag", "must not be empty"},
		{"tag too long", withEP(map[string]any{"tag": strings.Repeat("a", 65)}), ep0 + ".tag", "at most 64"},
		{"tag with space", withEP(map[string]any{"tag": "a b"}), ep0 + ".tag", "only letters"},
		{"tag with slash", withEP(map[string]any{"tag": "a/b"}), ep0 + ".tag", "only letters"},
		{"tag not string", withEP(map[string]any{"tag": 1}), ep0 + ".tag", "must be a string"},
		{"duplicate tag", doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"tag": "chat"}), ep(map[string]any{"tag": "chat"}))}),
			"agent_architecture.entrypoints[1].tag", `duplicate tag "chat" (also entrypoints[0])`},
		{"duplicate tag across kinds", doc(t, map[string]any{"agent_architecture": eps(ep(nil), webhook(map[string]any{"tag": "generate"}))}),
			"agent_architecture.entrypoints[1].tag", "duplicate tag"},

		// file.
		{"file missing", withEP(map[string]any{"file": nil}), ep0 + ".file", "is required"},
		{"file empty", withEP(map[string]any{"file": ""}), ep0 + ".file", "must not be empty"},
		{"file absolute", withEP(map[string]any{"file": "/etc/main.py"}), ep0 + ".file", "not absolute"},
		{"file dotdot", withEP(map[string]any{"file": "../main.py"}), ep0 + ".file", "'..'"},
		{"file inner dotdot", withEP(map[string]any{"file": "a/../../main.py"}), ep0 + ".file", "'..'"},
		{"file backslash", withEP(map[string]any{"file": `agent\main.py`}), ep0 + ".file", `not '\'`},
		{"file NUL", withEP(map[string]any{"file": "main\x00.py"}), ep0 + ".file", "NUL"},
		{"file unclean", withEP(map[string]any{"file": "./main.py"}), ep0 + ".file", `write "main.py"`},
		{"file double slash", withEP(map[string]any{"file": "a//main.py"}), ep0 + ".file", "not a clean path"},
		{"file not python", withEP(map[string]any{"file": "main.js"}), ep0 + ".file", "ending in .py"},
		{"file only extension", withEP(map[string]any{"file": "a/.py"}), ep0 + ".file", "ending in .py"},
		{"file is dot", withEP(map[string]any{"file": "."}), ep0 + ".file", "not the directory itself"},
		{"file not string", withEP(map[string]any{"file": []string{"main.py"}}), ep0 + ".file", "must be a string"},

		// module.
		{"module missing", withEP(map[string]any{"module": nil}), ep0 + ".module", "is required"},
		{"module empty", withEP(map[string]any{"module": ""}), ep0 + ".module", "must not be empty"},
		{"module empty part", withEP(map[string]any{"module": "agent..run"}), ep0 + ".module", "empty part"},
		{"module leading dot", withEP(map[string]any{"module": ".run"}), ep0 + ".module", "empty part"},
		{"module hyphen", withEP(map[string]any{"module": "my-func"}), ep0 + ".module", "not a valid Python identifier"},
		{"module digit start", withEP(map[string]any{"module": "agent.1run"}), ep0 + ".module", "not a valid Python identifier"},
		{"module keyword", withEP(map[string]any{"module": "agent.class"}), ep0 + ".module", "Python keyword"},
		{"module call syntax", withEP(map[string]any{"module": "run()"}), ep0 + ".module", "not a valid Python identifier"},
		{"module too long", withEP(map[string]any{"module": strings.Repeat("a", 257)}), ep0 + ".module", "at most 256"},

		// Kind mixing.
		{"method on python", withEP(map[string]any{"method": "GET"}), ep0 + ".method", "only allowed in a webhook"},
		{"timeout on python", withEP(map[string]any{"timeout": 5}), ep0 + ".timeout", "only allowed in a webhook"},
		{"file on webhook", withHook(map[string]any{"file": "main.py"}), ep0 + ".file", "not allowed in a webhook"},
		{"module on webhook", withHook(map[string]any{"module": "run"}), ep0 + ".module", "not allowed in a webhook"},

		// Webhooks.
		{"webhook relative URL", withHook(map[string]any{"webhook_url": "/hook"}), ep0 + ".webhook_url", "absolute http"},
		{"webhook ftp URL", withHook(map[string]any{"webhook_url": "ftp://example.com/x"}), ep0 + ".webhook_url", "absolute http"},
		{"webhook no host", withHook(map[string]any{"webhook_url": "http:///x"}), ep0 + ".webhook_url", "no host"},
		{"webhook credentials", withHook(map[string]any{"webhook_url": "https://u:p@example.com/"}), ep0 + ".webhook_url", "credentials"},
		{"webhook space", withHook(map[string]any{"webhook_url": "https://example.com/a b"}), ep0 + ".webhook_url", "spaces"},
		{"webhook empty URL", withHook(map[string]any{"webhook_url": ""}), ep0 + ".webhook_url", "absolute http"},
		{"webhook URL not string", withHook(map[string]any{"webhook_url": 1}), ep0 + ".webhook_url", "must be a string"},
		{"webhook bad method", withHook(map[string]any{"method": "TRACE"}), ep0 + ".method", "not one of GET, POST"},
		{"webhook zero timeout", withHook(map[string]any{"timeout": 0}), ep0 + ".timeout", "more than 0"},
		{"webhook negative timeout", withHook(map[string]any{"timeout": -1}), ep0 + ".timeout", "more than 0"},
		{"webhook huge timeout", withHook(map[string]any{"timeout": 3601}), ep0 + ".timeout", "at most 3600"},
		{"webhook timeout string", withHook(map[string]any{"timeout": "30"}), ep0 + ".timeout", "must be a number, not a string"},
		{"webhook timeout overflow", withHook(map[string]any{"timeout": raw("1e400")}), ep0 + ".timeout", "out of range"},
		{"webhook unknown field", withHook(map[string]any{"headers": map[string]any{}}), ep0 + ".headers", "unknown field"},

		// extractor, input_schema, description.
		{"extractor not object", withEP(map[string]any{"extractor": "$.a"}), ep0 + ".extractor", "must be an object"},
		{"extractor value not string", withEP(map[string]any{"extractor": map[string]any{"a": 1}}), ep0 + ".extractor.a", "must be a string"},
		{"extractor empty key", withEP(map[string]any{"extractor": map[string]any{"": "$.a"}}), ep0 + `.extractor[""]`, "must not be empty"},
		{"input_schema string", withEP(map[string]any{"input_schema": "object"}), ep0 + ".input_schema", `must be an object with "kwargs" and/or "args"`},
		{"input_schema list", withEP(map[string]any{"input_schema": []int{}}), ep0 + ".input_schema", `must be an object with "kwargs" and/or "args"`},
		{"input_schema boolean", withEP(map[string]any{"input_schema": true}), ep0 + ".input_schema", `must be an object with "kwargs" and/or "args"`},
		{"input_schema bare schema", withEP(map[string]any{"input_schema": raw(`{"type":"object"}`)}), ep0 + ".input_schema.type", `unknown field; input_schema holds "kwargs"`},
		{"input_schema member not schema", withEP(map[string]any{"input_schema": raw(`{"kwargs":"object"}`)}), ep0 + ".input_schema.kwargs", "must be a JSON Schema (an object or a boolean), not a string"},
		{"input_schema not compiling", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"properties":{"message":{"minLength":"1"}}}}`)}), ep0 + ".input_schema.kwargs.properties.message.minLength", "is not a valid JSON Schema: type: want integer, got string"},
		{"input_schema unknown type", withEP(map[string]any{"input_schema": raw(`{"args":{"type":"strin"}}`)}), ep0 + ".input_schema.args.type", "is not a valid JSON Schema"},
		{"input_schema bad regex", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"pattern":"(?<=a)b"}}`)}), ep0 + ".input_schema.kwargs.pattern", "regular expression"},
		{"input_schema missing $ref target", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"$ref":"#/$defs/missing"}}`)}), ep0 + ".input_schema.kwargs", `"#/$defs/missing" not found`},
		{"input_schema https $ref", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"$ref":"https://example.com/schema.json"}}`)}), ep0 + ".input_schema.kwargs", `"https://example.com/schema.json" is outside the schema`},
		{"input_schema http $ref", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"properties":{"a":{"$ref":"http://127.0.0.1:1/x"}}}}`)}), ep0 + ".input_schema.kwargs", "nothing is fetched"},
		{"input_schema file $ref", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"$ref":"file:///etc/passwd"}}`)}), ep0 + ".input_schema.kwargs", `"file:///etc/passwd" is outside the schema`},
		{"input_schema relative $ref", withEP(map[string]any{"input_schema": raw(`{"args":{"$ref":"common.json#/$defs/a"}}`)}), ep0 + ".input_schema.args", `"common.json" is outside the schema`},
		{"input_schema remote $schema", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"$schema":"https://example.com/meta"}}`)}), ep0 + ".input_schema.kwargs", "is outside the schema"},
		{"input_schema self $ref", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"$ref":"#"}}`)}), ep0 + ".input_schema.kwargs", "applies itself to the same value again"},
		{"input_schema exponential", withEP(map[string]any{"input_schema": raw(`{"args":{"$defs":{"n":{"anyOf":[{"items":{"$ref":"#/$defs/n"}},{"items":{"$ref":"#/$defs/n"}}]}},"$ref":"#/$defs/n"}}`)}), ep0 + ".input_schema.args", "can apply more than 1000 subschemas"},
		{"input_schema too large", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"description":"` + strings.Repeat("x", 64<<10) + `"}}`)}), ep0 + ".input_schema", "at most 65536 are allowed"},
		{"input_schema too deep", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"enum":` + strings.Repeat(`[`, 70) + strings.Repeat("]", 70) + `}}`)}),
			ep0 + ".input_schema.kwargs.enum" + strings.Repeat("[0]", 62), "nested deeper than 64 levels"},
		{"input_schema duplicate key", withEP(map[string]any{"input_schema": raw(`{"kwargs":{"properties":{"a":{},"a":{"type":"string"}}}}`)}), ep0 + ".input_schema.kwargs.properties.a", "duplicate key"},
		{"input_schema duplicate member", withEP(map[string]any{"input_schema": raw(`{"kwargs":{},"kwargs":{"type":"object"}}`)}), ep0 + ".input_schema.kwargs", "duplicate key"},
		{"description not string", withEP(map[string]any{"description": 1}), ep0 + ".description", "must be a string"},

		// env_vars.
		{"env not object", doc(t, map[string]any{"env_vars": []string{"A=1"}}), "env_vars", "must be an object"},
		{"env value not string", doc(t, map[string]any{"env_vars": map[string]any{"PORT": 8080}}), "env_vars.PORT", "must be a string, not a number"},
		{"env bad name", doc(t, map[string]any{"env_vars": map[string]any{"MY-VAR": "x"}}), "env_vars.MY-VAR", "not a valid variable name"},
		{"env digit name", doc(t, map[string]any{"env_vars": map[string]any{"1A": "x"}}), "env_vars.1A", "not a valid variable name"},
		{"env empty name", doc(t, map[string]any{"env_vars": map[string]any{"": "x"}}), `env_vars[""]`, "not a valid variable name"},
		{"env equals in name", doc(t, map[string]any{"env_vars": map[string]any{"A=B": "x"}}), `env_vars["A=B"]`, "not a valid variable name"},
		{"env PATH", doc(t, map[string]any{"env_vars": map[string]any{"PATH": "/tmp"}}), "env_vars.PATH", "reserved"},
		{"env PYTHONPATH", doc(t, map[string]any{"env_vars": map[string]any{"PYTHONPATH": "x"}}), "env_vars.PYTHONPATH", "reserved"},
		{"env PYTHONHOME", doc(t, map[string]any{"env_vars": map[string]any{"PYTHONHOME": "x"}}), "env_vars.PYTHONHOME", "reserved"},
		{"env LD_PRELOAD", doc(t, map[string]any{"env_vars": map[string]any{"LD_PRELOAD": "x.so"}}), "env_vars.LD_PRELOAD", "reserved"},
		{"env LD_LIBRARY_PATH", doc(t, map[string]any{"env_vars": map[string]any{"LD_LIBRARY_PATH": "x"}}), "env_vars.LD_LIBRARY_PATH", "reserved"},
		{"env RUNAGENT_", doc(t, map[string]any{"env_vars": map[string]any{"RUNAGENT_API_KEY": "x"}}), "env_vars.RUNAGENT_API_KEY", "reserved"},
		{"env lower-case reserved", doc(t, map[string]any{"env_vars": map[string]any{"ld_preload": "x"}}), "env_vars.ld_preload", "reserved"},
		{"env NUL value", doc(t, map[string]any{"env_vars": map[string]any{"A": "x\x00y"}}), "env_vars.A", "NUL"},

		// auth_settings.
		{"auth not object", doc(t, map[string]any{"auth_settings": "none"}), "auth_settings", "must be an object"},
		{"auth bad type", doc(t, map[string]any{"auth_settings": map[string]any{"type": "oauth"}}), "auth_settings.type", `is not "none" or "api_key"`},
		{"auth type not string", doc(t, map[string]any{"auth_settings": map[string]any{"type": false}}), "auth_settings.type", "must be a string"},

		// persistent_folders.
		{"folders not list", doc(t, map[string]any{"persistent_folders": "data"}), "persistent_folders", "must be a list"},
		{"folder absolute", doc(t, map[string]any{"persistent_folders": []string{"/data"}}), "persistent_folders[0]", "not absolute"},
		{"folder dotdot", doc(t, map[string]any{"persistent_folders": []string{"ok", "../data"}}), "persistent_folders[1]", "'..'"},
		{"folder unclean", doc(t, map[string]any{"persistent_folders": []string{"data/"}}), "persistent_folders[0]", `write "data"`},
		{"folder dot", doc(t, map[string]any{"persistent_folders": []string{"."}}), "persistent_folders[0]", "not the directory itself"},
		{"folder duplicate", doc(t, map[string]any{"persistent_folders": []string{"data", "data"}}), "persistent_folders[1]", "duplicate folder"},
		{"folder not string", doc(t, map[string]any{"persistent_folders": []any{1}}), "persistent_folders[0]", "must be a string"},
		{"too many folders", doc(t, map[string]any{"persistent_folders": manyFolders(101)}), "persistent_folders", "at most 100"},

		// resources.
		{"resources not object", doc(t, map[string]any{"resources": 1}), "resources", "must be an object"},
		{"resources unknown", doc(t, map[string]any{"resources": raw(`{"memory": 512}`)}), "resources.memory", "unknown field"},
		{"cpu zero", doc(t, map[string]any{"resources": raw(`{"cpu": 0}`)}), "resources.cpu", "more than 0"},
		{"cpu too many", doc(t, map[string]any{"resources": raw(`{"cpu": 65}`)}), "resources.cpu", "at most 64"},
		{"cpu string", doc(t, map[string]any{"resources": raw(`{"cpu": "1"}`)}), "resources.cpu", "must be a number"},
		{"memory negative", doc(t, map[string]any{"resources": raw(`{"memory_mb": -1}`)}), "resources.memory_mb", "between 0"},
		{"memory fraction", doc(t, map[string]any{"resources": raw(`{"memory_mb": 1.5}`)}), "resources.memory_mb", "whole number"},
		{"memory huge", doc(t, map[string]any{"resources": raw(`{"memory_mb": 1048577}`)}), "resources.memory_mb", "1048576"},
		{"memory overflow", doc(t, map[string]any{"resources": raw(`{"memory_mb": 99999999999999999999}`)}), "resources.memory_mb", "out of range"},
		{"disk huge", doc(t, map[string]any{"resources": raw(`{"disk_mb": 1e12}`)}), "resources.disk_mb", "1048576"},
		{"disk beyond float precision", doc(t, map[string]any{"resources": raw(`{"disk_mb": 1e300}`)}), "resources.disk_mb", "out of range"},
		{"disk negative", doc(t, map[string]any{"resources": raw(`{"disk_mb": -5}`)}), "resources.disk_mb", "between 0"},
		{"processes huge", doc(t, map[string]any{"resources": raw(`{"processes": 65537}`)}), "resources.processes", "65536"},
		{"open_files huge", doc(t, map[string]any{"resources": raw(`{"open_files": 2000000}`)}), "resources.open_files", "between 0"},
		{"bandwidth negative", doc(t, map[string]any{"resources": raw(`{"bandwidth_mbps": -0.5}`)}), "resources.bandwidth_mbps", "between 0"},
		{"timeout_seconds zero", doc(t, map[string]any{"resources": raw(`{"timeout_seconds": 0}`)}), "resources.timeout_seconds", "more than 0"},
		{"timeout_seconds huge", doc(t, map[string]any{"resources": raw(`{"timeout_seconds": 7200}`)}), "resources.timeout_seconds", "at most 3600"},
		{"no_process_creation string", doc(t, map[string]any{"resources": raw(`{"no_process_creation": "true"}`)}), "resources.no_process_creation", "must be a boolean (true or false), not a string"},
		{"no_process_creation number", doc(t, map[string]any{"resources": raw(`{"no_process_creation": 1}`)}), "resources.no_process_creation", "must be a boolean (true or false), not a number"},
		{"no_process_creation object", doc(t, map[string]any{"resources": raw(`{"no_process_creation": {}}`)}), "resources.no_process_creation", "not an object"},
		{"reuse_per_user string", doc(t, map[string]any{"resources": raw(`{"reuse_per_user": "yes"}`)}), "resources.reuse_per_user", "must be a boolean"},
		{"rate_limit zero", doc(t, map[string]any{"rate_limit": raw(`{"requests": 0, "period_seconds": 60}`)}), "rate_limit.requests", "from 1 to 1000000"},
		{"rate_limit period", doc(t, map[string]any{"rate_limit": raw(`{"requests": 5, "period_seconds": 90000}`)}), "rate_limit.period_seconds", "86400"},
		{"rate_limit half", doc(t, map[string]any{"rate_limit": raw(`{"requests": 5}`)}), "rate_limit", "needs both"},
		{"store_payloads not bool", doc(t, map[string]any{"store_payloads": "no"}), "store_payloads", "true or false"},
		{"rate_limit unknown", doc(t, map[string]any{"rate_limit": raw(`{"requests": 5, "period_seconds": 60, "burst": 2}`)}), "rate_limit.burst", "unknown field"},
		{"no_process_creation misspelt", doc(t, map[string]any{"resources": raw(`{"no_processes": true}`)}), "resources.no_processes", "no_process_creation"},
		{"no_process_creation duplicate", doc(t, map[string]any{"resources": raw(`{"no_process_creation": true, "no_process_creation": false}`)}), "resources.no_process_creation", "duplicate key"},

		// webhook (completion).
		{"completion webhook not object", hookDoc(t, `"https://hooks.example.com/"`), "webhook", "must be an object"},
		{"completion webhook unknown field", hookDoc(t, `{"url":"https://hooks.example.com/","secret":"s"}`), "webhook.secret", "unknown field (allowed: url)"},
		{"completion webhook without url", hookDoc(t, `{}`), "webhook.url", "is required"},
		{"completion webhook url not string", hookDoc(t, `{"url":1}`), "webhook.url", "must be a string"},
		{"completion webhook plain http", hookDoc(t, `{"url":"http://hooks.example.com/"}`), "webhook.url", "must be https"},
		{"completion webhook credentials", hookDoc(t, `{"url":"https://u:p@hooks.example.com/"}`), "webhook.url", "user name or password"},
		{"completion webhook not on allow list", hookDoc(t, `{"url":"https://other.example.com/"}`), "webhook.url", `add {"host": "other.example.com", "ports": [443]} to network.allow`},
		{"completion webhook port not allowed", hookDoc(t, `{"url":"https://hooks.example.com:8443/"}`), "webhook.url", `"ports": [8443]`},
		{"completion webhook without egress", doc(t, map[string]any{"webhook": raw(`{"url":"https://hooks.example.com/"}`)}), "webhook.url", "not on network.allow"},
		// network.
		{"network not object", doc(t, map[string]any{"network": "egress"}), "network", "must be an object"},
		{"network unknown", doc(t, map[string]any{"network": raw(`{"mode":"egress","alow":[]}`)}), "network.alow", "unknown field"},
		{"network bad mode", doc(t, map[string]any{"network": raw(`{"mode":"all"}`)}), "network.mode", `is not "none" or "egress"`},
		{"allow without egress", doc(t, map[string]any{"network": raw(`{"allow":[{"host":"example.com"}]}`)}), "network.allow", `only allowed with mode "egress"`},
		{"allow with mode none", doc(t, map[string]any{"network": raw(`{"mode":"none","allow":[{"host":"example.com"}]}`)}), "network.allow", `only allowed with mode "egress"`},
		{"allow not list", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":{"host":"example.com"}}`)}), "network.allow", "must be a list"},
		{"rule not object", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":["example.com"]}`)}), "network.allow[0]", "must be an object"},
		{"rule unknown field", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":"example.com","port":443}]}`)}), "network.allow[0].port", "unknown field"},
		{"host missing", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":[{"ports":[443]}]}`)}), "network.allow[0].host", "is required"},
		{"host IPv4", egressDoc(t, `"10.0.0.1"`), "network.allow[0].host", "IP address"},
		{"host IPv6", egressDoc(t, `"::1"`), "network.allow[0].host", "IP address"},
		{"host bracketed IPv6", egressDoc(t, `"[fe80::1]"`), "network.allow[0].host", "IP address"},
		{"host numeric", egressDoc(t, `"127.1"`), "network.allow[0].host", "IP address"},
		{"host single label", egressDoc(t, `"localhost"`), "network.allow[0].host", "fully qualified"},
		{"host wildcard TLD", egressDoc(t, `"*.com"`), "network.allow[0].host", "too broad"},
		{"host bare wildcard", egressDoc(t, `"*"`), "network.allow[0].host", "'*' only"},
		{"host inner wildcard", egressDoc(t, `"api.*.com"`), "network.allow[0].host", "'*' only"},
		{"host with port", egressDoc(t, `"example.com:443"`), "network.allow[0].host", "IP address"},
		{"host with scheme", egressDoc(t, `"https//example.com"`), "network.allow[0].host", "not a valid DNS name"},
		{"host underscore", egressDoc(t, `"a_b.example.com"`), "network.allow[0].host", "not a valid DNS name"},
		{"host empty label", egressDoc(t, `"a..example.com"`), "network.allow[0].host", "1 to 63"},
		{"host trailing dot", egressDoc(t, `"example.com."`), "network.allow[0].host", "1 to 63"},
		{"host hyphen edge", egressDoc(t, `"-a.example.com"`), "network.allow[0].host", "start or end with '-'"},
		{"host long label", egressDoc(t, `"`+strings.Repeat("a", 64)+`.com"`), "network.allow[0].host", "1 to 63"},
		{"host not string", egressDoc(t, `1`), "network.allow[0].host", "must be a string"},
		{"host duplicate", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":"a.example.com"},{"host":"A.example.com"}]}`)}), "network.allow[1].host", "duplicate host"},
		{"port zero", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":"example.com","ports":[0]}]}`)}), "network.allow[0].ports[0]", "between 1 and 65535"},
		{"port too big", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":"example.com","ports":[443,65536]}]}`)}), "network.allow[0].ports[1]", "between 1 and 65535"},
		{"port string", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":"example.com","ports":["443"]}]}`)}), "network.allow[0].ports[0]", "whole number"},
		{"port duplicate", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":"example.com","ports":[443,443]}]}`)}), "network.allow[0].ports[1]", "duplicate port"},
		{"ports not list", doc(t, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":"example.com","ports":443}]}`)}), "network.allow[0].ports", "must be a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Parse(tt.in, FileName)
			if err == nil {
				t.Fatalf("Parse(%.300s) = %+v, nil; want an error at %q containing %q", tt.in, cfg, tt.field, tt.reason)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with an error: %+v", cfg)
			}
			if !hasError(err, tt.field, tt.reason) {
				t.Errorf("Parse(%.300s) error:\n%v\nwant one at field %q containing %q", tt.in, err, tt.field, tt.reason)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Errorf("error is %T, want Errors", err)
			}
		})
	}
}

func egressDoc(tb testing.TB, host string) []byte {
	return doc(tb, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":` + host + `}]}`)})
}

func manyFolders(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("d%d", i)
	}
	return out
}

// hasError reports whether err holds an *Error at field whose reason
// contains reason.
func hasError(err error, field, reason string) bool {
	var es Errors
	if !errors.As(err, &es) {
		return false
	}
	for _, e := range es {
		if e.Field == field && strings.Contains(e.Reason, reason) {
			return true
		}
	}
	return false
}

func hookDoc(tb testing.TB, hook string) []byte {
	return doc(tb, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":"hooks.example.com"}]}`), "webhook": raw(hook)})
}

func TestParseReportsAllProblems(t *testing.T) {
	in := `{
  "agent_name": "",
  "agent_id": "nope",
  "agent_architecture": {"entrypoints": [
    {"file": "../x.py", "module": "a-b", "tag": "chat"},
    {"file": "main.py", "module": "run", "tag": "chat"}
  ]},
  "env_vars": {"PATH": "/bin"},
  "resources": {"cpu": -1}
}`
	_, _, err := Parse([]byte(in), FileName)
	want := []struct{ field, reason string }{
		{"agent_name", "must not be empty"},
		{"agent_id", "is not a UUID"},
		{"agent_architecture.entrypoints[0].file", "'..'"},
		{"agent_architecture.entrypoints[0].module", "identifier"},
		{"agent_architecture.entrypoints[1].tag", "duplicate tag"},
		{"env_vars.PATH", "reserved"},
		{"resources.cpu", "more than 0"},
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse error = %v (%T), want Errors", err, err)
	}
	if len(es) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(es), len(want), err)
	}
	for _, w := range want {
		if !hasError(err, w.field, w.reason) {
			t.Errorf("missing error at %q containing %q in:\n%v", w.field, w.reason, err)
		}
	}
}

func TestParseCapsErrors(t *testing.T) {
	var items []any
	for range maxEntrypoints {
		items = append(items, ep(map[string]any{"tag": "bad tag", "module": "bad-module"}))
	}
	_, _, err := Parse(doc(t, map[string]any{"agent_architecture": eps(items...)}), FileName)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse error = %v, want Errors", err)
	}
	if got, want := len(es), maxErrors+1; got != want {
		t.Errorf("got %d errors, want %d", got, want)
	}
	if last := es[len(es)-1].Reason; !strings.Contains(last, "150 more problems not shown") {
		t.Errorf("last error = %q, want a count of the problems left out", last)
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"full", &Error{File: "runagent.config.json", Field: "agent_architecture.entrypoints[1].tag", Reason: `duplicate tag "chat" (also entrypoints[0])`},
			`runagent.config.json: agent_architecture.entrypoints[1].tag: duplicate tag "chat" (also entrypoints[0])`},
		{"no field", &Error{File: "f.json", Reason: "invalid JSON"}, "f.json: invalid JSON"},
		{"no file", &Error{Field: "agent_name", Reason: "is required"}, "agent_name: is required"},
		{"one of many", Errors{{File: "f", Field: "a", Reason: "x"}}, "f: a: x"},
		{"many", Errors{{File: "f", Field: "a", Reason: "x"}, {File: "f", Field: "b", Reason: "y"}}, "2 problems:\nf: a: x\nf: b: y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseDuplicateTagMessage(t *testing.T) {
	in := doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"tag": "chat"}), ep(map[string]any{"tag": "chat"}))})
	_, _, err := Parse(in, FileName)
	want := `runagent.config.json: agent_architecture.entrypoints[1].tag: duplicate tag "chat" (also entrypoints[0])`
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v, want %q", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Field != "agent_architecture.entrypoints[1].tag" {
		t.Errorf("errors.As(*Error) = %v, want the tag error", e)
	}
}

func TestSyntaxErrorPosition(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{`{"a": }`, "line 1, column 7"},
		{"{\n  \"a\": 1,\n}", "line 3, column 1"},
		{"{\n  \"é\": tru }", "line 2, column 11"},
		{`{"a": 1`, "line 1, column 8"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.in), FileName)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []string
	}{
		{"unknown framework", doc(t, map[string]any{"framework": "mystery"}),
			[]string{`runagent.config.json: framework: unknown framework "mystery"`}},
		{"known framework any case", doc(t, map[string]any{"framework": "LangGraph"}), nil},
		{"unknown top-level field", doc(t, map[string]any{"deployment": map[string]any{}}),
			[]string{"runagent.config.json: deployment: unknown field ignored"}},
		{"unknown architecture field", doc(t, map[string]any{"agent_architecture": map[string]any{"entrypoints": []any{ep(nil)}, "graph": 1}}),
			[]string{"agent_architecture.graph: unknown field ignored"}},
		{"unknown auth field", doc(t, map[string]any{"auth_settings": map[string]any{"type": "api_key", "scopes": []string{}}}),
			[]string{"auth_settings.scopes: unknown field ignored"}},
		{"secret-looking env", doc(t, map[string]any{"env_vars": map[string]string{"OPENAI_API_KEY": "sk-123", "DB_PASSWORD": "hunter2", "GITHUB_TOKEN": "t", "CLIENT_SECRET": "s", "PLAIN": "p"}}),
			[]string{"env_vars.CLIENT_SECRET: looks like a secret", "env_vars.DB_PASSWORD: looks like a secret", "env_vars.GITHUB_TOKEN: looks like a secret", "env_vars.OPENAI_API_KEY: looks like a secret; keep it in the secret store"}},
		{"webhook to loopback", doc(t, map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1:9000/hook"}}),
			[]string{`webhook.url: is an IP address or localhost`}},
		{"egress without rules", doc(t, map[string]any{"network": map[string]any{"mode": "egress"}}),
			[]string{`network.allow: is empty`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := Parse(tt.in, FileName)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(warnings) != len(tt.want) {
				t.Fatalf("warnings = %q, want %d matching %q", warnings, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning[%d] = %q, want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}

func TestSecretWarningHidesValue(t *testing.T) {
	_, warnings, err := Parse(doc(t, map[string]any{"env_vars": map[string]string{"API_KEY": "sk-very-secret"}}), FileName)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(warnings) != 1 {
		t.Fatalf("warnings = %q, want one", warnings)
	}
	if strings.Contains(warnings[0], "sk-very-secret") {
		t.Errorf("warning %q repeats the secret value", warnings[0])
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, in := range [][]byte{
		[]byte(completeConfig), doc(t, nil), doc(t, map[string]any{"agent_id": nil}),
		doc(t, map[string]any{"resources": raw(`{"no_process_creation": true}`)}),
		doc(t, map[string]any{"metadata": map[string]any{"runtime": "python3.13"}}),
	} {
		cfg, _, err := Parse(in, FileName)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		out, err := Marshal(cfg)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, _, err := Parse(out, FileName)
		if err != nil {
			t.Fatalf("Parse(Marshal(cfg)): %v\n%s", err, out)
		}
		if diff := cmp.Diff(cfg, again); diff != "" {
			t.Errorf("round trip mismatch (-before +after):\n%s\n%s", diff, out)
		}
	}
}

func TestMarshalShape(t *testing.T) {
	cfg := &core.AgentConfig{
		AgentName: "hello",
		Framework: "default",
		AgentID:   testID,
		Entrypoints: []core.Entrypoint{
			{Tag: "generate", Kind: core.KindPython, File: "main.py", Module: "generate"},
		},
	}
	got, err := Marshal(cfg)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	want := `{
  "agent_name": "hello",
  "framework": "default",
  "agent_id": "6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b",
  "agent_architecture": {
    "entrypoints": [
      {
        "file": "main.py",
        "module": "generate",
        "tag": "generate"
      }
    ]
  },
  "env_vars": {},
  "auth_settings": {
    "type": "api_key"
  }
}
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("Marshal mismatch (-want +got):\n%s", diff)
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  *core.AgentConfig
	}{
		{"nil", nil},
		{"no entrypoints", &core.AgentConfig{AgentName: "a"}},
		{"bad tag", &core.AgentConfig{AgentName: "a", Entrypoints: []core.Entrypoint{{Tag: "a b", Kind: core.KindPython, File: "m.py", Module: "m"}}}},
		{"bad schema", &core.AgentConfig{AgentName: "a", Entrypoints: []core.Entrypoint{{Tag: "t", Kind: core.KindPython, File: "m.py", Module: "m", InputSchema: json.RawMessage(`{`)}}}},
		{"reserved env", &core.AgentConfig{AgentName: "a", EnvVars: map[string]string{"PATH": "x"}, Entrypoints: []core.Entrypoint{{Tag: "t", Kind: core.KindPython, File: "m.py", Module: "m"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := Marshal(tt.cfg); err == nil {
				t.Errorf("Marshal = %s, nil; want an error", out)
			}
		})
	}
}

// project writes files (path → content) into a new directory.
func project(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	good := string(doc(t, nil))
	cfg, warnings, err := Load(project(t, map[string]string{FileName: good, "main.py": "def generate(): pass\n"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warnings) != 0 || cfg.AgentID != testID || len(cfg.Entrypoints) != 1 {
		t.Errorf("Load = %+v, %q", cfg, warnings)
	}
}

func TestLoadErrors(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "evil.py"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	const ep0File = "agent_architecture.entrypoints[0].file"
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		config string
		field  string
		reason string
	}{
		{"no config", nil, "", "", "not found"},
		{"config is a directory", func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, FileName))
		}, "", "", "not a regular file"},
		{"config symlink outside", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(outside, FileName), doc(t, nil), 0o644); err != nil {
				t.Fatal(err)
			}
			symlink(t, filepath.Join(outside, FileName), filepath.Join(dir, FileName))
		}, "", "", "leads outside"},
		{"invalid config", nil, `{"agent_name": 1}`, "agent_name", "must be a string"},
		{"missing agent_id", nil, string(doc(t, map[string]any{"agent_id": nil})), "agent_id", "is missing: run `runagent init --existing <project dir>` to write a fresh one"},
		{"missing file", nil, string(doc(t, nil)), ep0File, `"main.py" does not exist`},
		{"file is a directory", func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, "main.py"))
		}, string(doc(t, nil)), ep0File, "not a regular file"},
		{"file symlink outside", func(t *testing.T, dir string) {
			symlink(t, filepath.Join(outside, "evil.py"), filepath.Join(dir, "main.py"))
		}, string(doc(t, nil)), ep0File, "leads outside"},
		{"file relative symlink outside", func(t *testing.T, dir string) {
			symlink(t, "../../../../../../../../"+filepath.Join(outside, "evil.py"), filepath.Join(dir, "main.py"))
		}, string(doc(t, nil)), ep0File, "leads outside"},
		{"dangling symlink", func(t *testing.T, dir string) {
			symlink(t, "nothere.py", filepath.Join(dir, "main.py"))
		}, string(doc(t, nil)), ep0File, "does not exist"},
		{"dir symlink outside", func(t *testing.T, dir string) {
			symlink(t, outside, filepath.Join(dir, "src"))
		}, string(doc(t, map[string]any{"agent_architecture": eps(ep(map[string]any{"file": "src/evil.py"}))})), ep0File, "leads outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.config != "" {
				if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tt.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			cfg, _, err := Load(dir)
			if err == nil {
				t.Fatalf("Load = %+v, nil; want an error", cfg)
			}
			if !hasError(err, tt.field, tt.reason) {
				t.Errorf("Load error:\n%v\nwant one at field %q containing %q", err, tt.field, tt.reason)
			}
			if strings.Contains(err.Error(), dir) {
				t.Errorf("Load error %q names the directory %q", err, dir)
			}
		})
	}
}

func TestLoadSymlinkInside(t *testing.T) {
	dir := project(t, map[string]string{FileName: string(doc(t, nil)), "src/agent.py": "def generate(): pass\n"})
	symlink(t, "src/agent.py", filepath.Join(dir, "main.py"))
	if _, _, err := Load(dir); err != nil {
		t.Errorf("Load with an in-tree symlink: %v", err)
	}
}

func TestLoadReportsAll(t *testing.T) {
	in := doc(t, map[string]any{"agent_id": nil, "agent_architecture": eps(ep(nil), ep(map[string]any{"tag": "b", "file": "b.py"}))})
	_, _, err := Load(project(t, map[string]string{FileName: string(in)}))
	for _, w := range []struct{ field, reason string }{
		{"agent_id", "is missing"},
		{"agent_architecture.entrypoints[0].file", "does not exist"},
		{"agent_architecture.entrypoints[1].file", "does not exist"},
	} {
		if !hasError(err, w.field, w.reason) {
			t.Errorf("Load error:\n%v\nwant one at %q containing %q", err, w.field, w.reason)
		}
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(completeConfig))
	f.Add(doc(f, nil))
	f.Add([]byte(`{"agent_name":"a","agent_architecture":{"entrypoints":[{"webhook_url":"http://a.b/","tag":"t","timeout":1e-5}]}}`))
	f.Add([]byte(`{"agent_name":"\u0000","agent_architecture":{"entrypoints":[{"file":"a.py","module":"a","tag":"t","input_schema":{"a":"\u2028<>&"}}]},"env_vars":{"A":"\ud800"}}`))
	f.Add(doc(f, map[string]any{"resources": raw(`{"no_process_creation": true, "processes": 8}`)}))
	f.Add(doc(f, map[string]any{"resources": raw(`{"no_process_creation": "yes"}`)}))
	f.Add(doc(f, map[string]any{"runtime": map[string]any{"python": "py3.12"}, "metadata": map[string]any{"runtime": "Python 3.12", "x": nil}}))
	f.Add(doc(f, map[string]any{"metadata": map[string]any{"runtime": "openclaw-gateway"}}))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[`))
	f.Add(doc(f, map[string]any{"agent_architecture": eps(ep(map[string]any{"input_schema": raw(
		`{"kwargs":{"type":"object","required":["m"],"properties":{"m":{"type":"string","minLength":1,"pattern":"^[a-z<>&]+$"}},"$defs":{"x":{"$ref":"#/$defs/x"}}},"args":{"prefixItems":[{"enum":[1,"a",null]}],"items":false}}`)}))}))
	f.Add(doc(f, map[string]any{"agent_architecture": eps(ep(map[string]any{"input_schema": raw(`{"args":{"$ref":"http://example.com/"}}`)}))}))
	f.Add(doc(f, map[string]any{"network": raw(`{"mode":"egress","allow":[{"host":"*.example.com","ports":[443]}]}`), "webhook": raw(`{"url":"https://h.example.com/x?t=1#f"}`)}))
	f.Add(doc(f, map[string]any{"webhook": raw(`{"url":"http://[::1]:9000/","url":"x"}`)}))
	f.Add(doc(f, map[string]any{"webhook": raw(`{"url":"https://u@h.example.com/"}`)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Parse(data, FileName)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config with error %v", err)
			}
			if _, ok := err.(Errors); !ok {
				t.Fatalf("Parse error is %T, want Errors", err)
			}
			return
		}
		out, err := Marshal(cfg)
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v\ninput: %q", err, data)
		}
		again, _, err := Parse(out, FileName)
		if err != nil {
			t.Fatalf("Parse(Marshal(cfg)): %v\n%s", err, out)
		}
		if diff := cmp.Diff(cfg, again); diff != "" {
			t.Fatalf("round trip mismatch (-before +after):\n%s", diff)
		}
	})
}

// TestRunAgentTemplateID: a config in the shape RunAgent's own templates
// ship (template_source an object, created_at, the nil agent_id) fails on
// the id alone, and the error says how to get a fresh one.
func TestRunAgentTemplateID(t *testing.T) {
	const in = `{
  "agent_name": "problem_solver",
  "framework": "langgraph",
  "template": "problem_solver",
  "version": "1.0.0",
  "created_at": "2025-06-25 13:42:03",
  "template_source": {"repo_url": "https://github.com/runagent-dev/runagent.git", "path": "templates/langgraph/problem_solver"},
  "agent_architecture": {"entrypoints": [
    {"file": "agents.py", "module": "app_invoke", "tag": "generic"},
    {"file": "agents.py", "module": "app_stream", "tag": "generic_stream"}
  ]},
  "agent_id": "00000000-0000-0000-0000-000000000000"
}`
	_, _, err := Parse([]byte(in), FileName)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("Parse error = %v, want exactly one problem", err)
	}
	const want = "runagent.config.json: agent_id: is the nil UUID, a placeholder (RunAgent's templates ship it) that every copy of such a project shares; run `runagent init --existing <project dir>` to write a fresh agent_id"
	if got := es[0].Error(); got != want {
		t.Errorf("error = %q\nwant    %q", got, want)
	}
}
