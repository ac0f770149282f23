package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/agentcfg"
	"github.com/runagent/runagent/internal/core"
)

//go:embed template/main.py template/README.md.tmpl
var templates embed.FS

// Write creates an example agent named name in dir: runagent.config.json
// with a fresh agent_id, main.py and README.md. dir is created if needed;
// it may hold other files, but Write refuses to overwrite any of the three
// it writes, and refuses outright if dir already has a
// runagent.config.json. It returns the config it wrote.
func Write(dir, name string) (*core.AgentConfig, error) {
	cfg := exampleConfig(name, uuid.NewString())
	config, err := agentcfg.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	mainPy, err := templates.ReadFile("template/main.py")
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	readme, err := renderREADME(cfg, nil)
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
	}{
		{agentcfg.FileName, config},
		{"main.py", mainPy},
		{"README.md", readme},
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create agent directory: %w", err)
	}
	for _, f := range files {
		_, err := os.Lstat(filepath.Join(dir, f.name))
		switch {
		case err == nil && f.name == agentcfg.FileName:
			return nil, fmt.Errorf("%s already contains %s: it is an agent project already; refusing to overwrite it", dir, f.name)
		case err == nil:
			return nil, fmt.Errorf("%s already contains %s; refusing to overwrite it (move it away or choose another directory)", dir, f.name)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("check %s: %w", f.name, err)
		}
	}
	var written []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeNew(p, f.data); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return nil, err
		}
		written = append(written, p)
	}
	parsed, _, err := agentcfg.Parse(config, agentcfg.FileName)
	if err != nil {
		return nil, fmt.Errorf("parse written config: %w", err) // Marshal guarantees it parses
	}
	return parsed, nil
}

// writeNew creates path with data, failing if it exists.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// exampleConfig is the config of the example agent.
func exampleConfig(name, agentID string) *core.AgentConfig {
	return &core.AgentConfig{
		AgentName:   name,
		Description: "Example agent created by runagent init",
		Framework:   "default",
		Version:     "1.0.0",
		AgentID:     agentID,
		Entrypoints: []core.Entrypoint{
			{Tag: "generate", Kind: core.KindPython, File: "main.py", Module: "generate",
				Description: "Reply to a message"},
			{Tag: "generate_stream", Kind: core.KindPython, File: "main.py", Module: "generate_stream",
				Description: "Stream a reply one word at a time"},
		},
		AuthType: core.AuthAPIKey,
		Network:  core.NetworkPolicy{Mode: core.NetworkNone},
	}
}

// renderREADME renders the agent's README; extra lists entrypoints beyond
// the two of every example.
func renderREADME(cfg *core.AgentConfig, extra []core.Entrypoint) ([]byte, error) {
	tmpl, err := template.ParseFS(templates, "template/README.md.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parse README template: %w", err)
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, struct {
		Name    string
		AgentID string
		Extra   []core.Entrypoint
	}{cfg.AgentName, cfg.AgentID, extra})
	if err != nil {
		return nil, fmt.Errorf("render README: %w", err)
	}
	return buf.Bytes(), nil
}
