package agentcfg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/runagent/runagent/internal/core"
)

// fileConfig is the on-disk shape of runagent.config.json, in RunAgent's
// layout, with this project's extensions at the end.
type fileConfig struct {
	AgentName         string              `json:"agent_name"`
	Description       string              `json:"description,omitempty"`
	Framework         string              `json:"framework,omitempty"`
	Version           string              `json:"version,omitempty"`
	AgentID           string              `json:"agent_id,omitempty"`
	AgentArchitecture fileArchitecture    `json:"agent_architecture"`
	EnvVars           map[string]string   `json:"env_vars"`
	AuthSettings      fileAuth            `json:"auth_settings"`
	PersistentFolders []string            `json:"persistent_folders,omitempty"`
	Resources         *core.Resources     `json:"resources,omitempty"`
	Network           *core.NetworkPolicy `json:"network,omitempty"`
	RateLimit         *core.RateLimit     `json:"rate_limit,omitempty"`
	StorePayloads     *bool               `json:"store_payloads,omitempty"`
	Runtime           *fileRuntime        `json:"runtime,omitempty"`
	Webhook           *core.WebhookConfig `json:"webhook,omitempty"`
}

type fileRuntime struct {
	Python string `json:"python"`
}

type fileArchitecture struct {
	Entrypoints []fileEntrypoint `json:"entrypoints"`
}

type fileEntrypoint struct {
	File        string            `json:"file,omitempty"`
	Module      string            `json:"module,omitempty"`
	WebhookURL  string            `json:"webhook_url,omitempty"`
	Method      string            `json:"method,omitempty"`
	Tag         string            `json:"tag"`
	Timeout     float64           `json:"timeout,omitempty"`
	Extractor   map[string]string `json:"extractor,omitempty"`
	InputSchema json.RawMessage   `json:"input_schema,omitempty"`
	Description string            `json:"description,omitempty"`
}

type fileAuth struct {
	Type string `json:"type"`
}

// Marshal encodes cfg as an indented runagent.config.json in RunAgent's
// layout. It refuses a config that Parse would reject, so what it writes
// always loads again: Parse(Marshal(cfg)) equals cfg for any cfg that
// Parse returned.
func Marshal(cfg *core.AgentConfig) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("marshal agent config: config is nil")
	}
	fc := fileConfig{
		AgentName:         cfg.AgentName,
		Description:       cfg.Description,
		Framework:         cfg.Framework,
		Version:           cfg.Version,
		AgentID:           cfg.AgentID,
		AgentArchitecture: fileArchitecture{Entrypoints: make([]fileEntrypoint, 0, len(cfg.Entrypoints))},
		EnvVars:           cfg.EnvVars,
		AuthSettings:      fileAuth{Type: cfg.AuthType},
		PersistentFolders: cfg.PersistentFolders,
		RateLimit:         cfg.RateLimit,
		StorePayloads:     cfg.StorePayloads,
		Webhook:           cfg.Webhook,
	}
	if fc.EnvVars == nil {
		fc.EnvVars = map[string]string{} // RunAgent always writes env_vars
	}
	if fc.AuthSettings.Type == "" {
		fc.AuthSettings.Type = core.AuthAPIKey
	}
	if cfg.Runtime != "" {
		fc.Runtime = &fileRuntime{Python: cfg.Runtime}
	}
	if cfg.Resources != (core.Resources{}) {
		r := cfg.Resources
		fc.Resources = &r
	}
	if (cfg.Network.Mode != "" && cfg.Network.Mode != core.NetworkNone) || len(cfg.Network.Allow) > 0 {
		n := cfg.Network
		fc.Network = &n
	}
	for _, ep := range cfg.Entrypoints {
		fe := fileEntrypoint{
			Tag:         ep.Tag,
			Extractor:   ep.Extractor,
			InputSchema: ep.InputSchema,
			Description: ep.Description,
		}
		if ep.Kind == core.KindWebhook || ep.WebhookURL != "" {
			fe.WebhookURL, fe.Method, fe.Timeout = ep.WebhookURL, ep.Method, ep.TimeoutSeconds
		} else {
			fe.File, fe.Module = ep.File, ep.Module
		}
		fc.AgentArchitecture.Entrypoints = append(fc.AgentArchitecture.Entrypoints, fe)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(fc); err != nil {
		return nil, fmt.Errorf("marshal agent config: %w", err)
	}
	if _, _, err := Parse(buf.Bytes(), FileName); err != nil {
		return nil, fmt.Errorf("marshal agent config: invalid config: %w", err)
	}
	return buf.Bytes(), nil
}
