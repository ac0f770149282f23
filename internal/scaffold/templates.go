package scaffold

import (
	"slices"
	"strings"

	"github.com/runagent/runagent/internal/core"
)

// A Template is one project init can write: a framework's usual layout
// with a plain and a streaming entrypoint. Its files are the folder
// template/<Framework>/; README.md and runagent.config.json are made
// from the fields here.
type Template struct {
	Framework string // runagent.config.json's framework, and the folder under template/
	Title     string // the framework as its authors write it
	About     string // one line for init --help

	File      string // the Python file that holds both entrypoints
	Plain     string // module (attribute path) of the plain entrypoint
	Stream    string // module of the streaming entrypoint
	PlainTag  string
	StreamTag string
	PlainDoc  string // what each entrypoint does, for the config and README
	StreamDoc string
	Async     bool   // the entrypoints are coroutines / async generators
	Input     string // the keyword argument both entrypoints take
	Example   string // a value of Input for the README's examples
	Key       string // environment variable holding the model's API key; "" for none
	ModelVar  string // environment variable naming the model, set in env_vars
	Model     string // its value
	Hosts     []string
	ExtraEnv  map[string]string // more env_vars (e.g. telemetry off)
	FileNotes []FileNote        // what each Python file is, for the README
	Note      string            // a paragraph for the README about how the agent works, if any
}

// FileNote says what one file of a template is.
type FileNote struct{ Name, About string }

// DefaultFramework is the template init writes without --framework: the
// standard-library example.
const DefaultFramework = "default"

const (
	chatTag       = "chat"
	chatStreamTag = "chat_stream"
	openAIHost    = "api.openai.com"
	openAIKey     = "OPENAI_API_KEY"
	openAIModel   = "OPENAI_MODEL"
	defaultModel  = "gpt-4o-mini"
	chatDoc       = "Answer a message"
	chatStreamDoc = "Stream the answer as it is written"
)

// openAIChat fills in what the OpenAI-backed chat templates share.
func openAIChat(t Template) Template {
	t.PlainTag, t.StreamTag = chatTag, chatStreamTag
	if t.PlainDoc == "" {
		t.PlainDoc, t.StreamDoc = chatDoc, chatStreamDoc
	}
	if t.Input == "" {
		t.Input, t.Example = "message", "What is a good name for a cat?"
	}
	t.Key, t.ModelVar, t.Model = openAIKey, openAIModel, defaultModel
	t.Hosts = []string{openAIHost}
	return t
}

var templateList = []Template{
	{
		Framework: DefaultFramework, Title: "Python",
		About: "plain Python, standard library only; no model, no key (the default)",
		File:  "main.py", Plain: "generate", Stream: "generate_stream",
		PlainTag: "generate", StreamTag: "generate_stream",
		PlainDoc: "Reply to a message", StreamDoc: "Stream a reply one word at a time",
		Input: "message", Example: "hi",
	},
	openAIChat(Template{
		Framework: "langgraph", Title: "LangGraph",
		About: "a StateGraph (agent.py) run by invoke/stream (main.py), OpenAI chat model",
		File:  "main.py", Plain: "invoke", Stream: "stream",
		FileNotes: []FileNote{
			{"agent.py", "the graph: its state, its one node (respond) and its edges"},
			{"main.py", "the entrypoints: invoke runs the graph, stream yields its tokens"},
		},
	}),
	openAIChat(Template{
		Framework: "langchain", Title: "LangChain",
		About: "a prompt | model | parser chain, OpenAI chat model",
		File:  "main.py", Plain: "run", Stream: "run_stream",
		FileNotes: []FileNote{{"main.py", "the chain and the entrypoints"}},
	}),
	openAIChat(Template{
		Framework: "crewai", Title: "CrewAI",
		About: "a crew of a researcher and a writer with one task each",
		File:  "crew.py", Plain: "run", Stream: "run_stream",
		PlainDoc:  "Research a topic and return the written answer",
		StreamDoc: "Stream each task's output as it finishes",
		Input:     "topic", Example: "the history of the bicycle",
		ExtraEnv:  map[string]string{"CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true"},
		FileNotes: []FileNote{{"crew.py", "the agents, their tasks, the crew and the entrypoints"}},
	}),
	openAIChat(Template{
		Framework: "openai", Title: "OpenAI",
		About: "the OpenAI Python SDK's chat completions, no framework",
		File:  "assistant.py", Plain: "get_response", Stream: "get_response_stream",
		FileNotes: []FileNote{{"assistant.py", "the entrypoints, each a chat completion"}},
	}),
	openAIChat(Template{
		Framework: "agno", Title: "Agno",
		About: "an Agno Agent with an OpenAI model",
		File:  "agent.py", Plain: "run", Stream: "run_stream",
		ExtraEnv:  map[string]string{"AGNO_TELEMETRY": "false"},
		FileNotes: []FileNote{{"agent.py", "the agent and the entrypoints"}},
	}),
	openAIChat(Template{
		Framework: "llamaindex", Title: "LlamaIndex",
		About: "a FunctionAgent with one tool, OpenAI LLM (async entrypoints)",
		File:  "agent.py", Plain: "run", Stream: "run_stream", Async: true,
		FileNotes: []FileNote{{"agent.py", "the agent, its tool (utc_now) and the entrypoints"}},
	}),
	{
		Framework: "letta", Title: "Letta",
		About: "a client of a stateful agent on Letta Cloud or your own Letta server",
		File:  "agent.py", Plain: "chat", Stream: "chat_stream",
		PlainTag: chatTag, StreamTag: chatStreamTag,
		PlainDoc: "Send a message to the Letta agent and return its reply", StreamDoc: "Stream the Letta agent's reply as it is written",
		Input: "message", Example: "Remember that my favourite colour is green.",
		Key: "LETTA_API_KEY", ModelVar: "LETTA_MODEL", Model: "openai/gpt-4o-mini",
		Hosts:     []string{"api.letta.com"},
		FileNotes: []FileNote{{"agent.py", "the Letta client and the entrypoints"}},
		Note: "Letta agents live on a Letta server and keep their memory there; this project is their client. " +
			"`LETTA_AGENT_ID` names the agent to talk to; without it one is created on the first call " +
			"(its id is printed to the invocation's log) and kept while the sandbox lives. " +
			"For a server of your own, set `LETTA_BASE_URL` and put its host in `network.allow`.",
	},
	openAIChat(Template{
		Framework: "autogen", Title: "AutoGen",
		About: "an AgentChat AssistantAgent, OpenAI model client (async entrypoints)",
		File:  "assistant.py", Plain: "run", Stream: "run_stream", Async: true,
		FileNotes: []FileNote{{"assistant.py", "the assistant, its model client and the entrypoints"}},
	}),
	openAIChat(Template{
		Framework: "ag2", Title: "AG2",
		About: "an AG2 ConversableAgent (the AutoGen fork on PyPI as ag2)",
		File:  "conversation.py", Plain: "invoke", Stream: "stream",
		StreamDoc: "Stream the assistant's messages as they are sent",
		FileNotes: []FileNote{{"conversation.py", "the assistant and the entrypoints"}},
	}),
}

// Templates returns every template init can write, the default first.
func Templates() []Template { return slices.Clone(templateList) }

// Lookup returns the template for framework (any case).
func Lookup(framework string) (Template, bool) {
	for _, t := range templateList {
		if strings.EqualFold(t.Framework, framework) {
			return t, true
		}
	}
	return Template{}, false
}

// FrameworkNames lists the frameworks that have a template, the default first.
func FrameworkNames() []string {
	out := make([]string, len(templateList))
	for i, t := range templateList {
		out[i] = t.Framework
	}
	return out
}

// config is the runagent.config.json of a project from t.
func (t Template) config(name, agentID string) *core.AgentConfig {
	cfg := &core.AgentConfig{
		AgentName:   name,
		Description: "Example agent created by runagent init",
		Framework:   t.Framework,
		Version:     "1.0.0",
		AgentID:     agentID,
		Entrypoints: []core.Entrypoint{
			{Tag: t.PlainTag, Kind: core.KindPython, File: t.File, Module: t.Plain, Description: t.PlainDoc},
			{Tag: t.StreamTag, Kind: core.KindPython, File: t.File, Module: t.Stream, Description: t.StreamDoc},
		},
		AuthType: core.AuthAPIKey,
		Network:  core.NetworkPolicy{Mode: core.NetworkNone},
	}
	if t.Framework != DefaultFramework {
		cfg.Description = t.Title + " agent created by runagent init"
	}
	if t.ModelVar != "" || len(t.ExtraEnv) > 0 {
		cfg.EnvVars = map[string]string{}
		if t.ModelVar != "" {
			cfg.EnvVars[t.ModelVar] = t.Model
		}
		for k, v := range t.ExtraEnv {
			cfg.EnvVars[k] = v
		}
	}
	if len(t.Hosts) > 0 {
		cfg.Network.Mode = core.NetworkEgress
		for _, h := range t.Hosts {
			cfg.Network.Allow = append(cfg.Network.Allow, core.EgressRule{Host: h, Ports: []int{443}})
		}
	}
	return cfg
}
