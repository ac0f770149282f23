package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/agentcfg"
	"github.com/runagent/runagent/internal/core"
)

// templates holds a folder per framework: the files copied into a new
// project as they are, and README.md.tmpl where a template has a README
// of its own. Frameworks without one use README.md.tmpl at the top.
//
//go:embed all:template
var templates embed.FS

// readmeTemplate is the name, in a template folder, of a README to render.
const readmeTemplate = "README.md.tmpl"

// file is one file of a new project.
type file struct {
	name string
	data []byte
}

// Write creates a project named name in dir from the template of
// framework ("" is DefaultFramework): runagent.config.json with a fresh
// agent_id, the template's files and README.md. dir is created if
// needed; it may hold other files, but Write refuses to overwrite any
// file it would write, and refuses outright if dir already has a
// runagent.config.json. It returns the config it wrote.
func Write(dir, name, framework string) (*core.AgentConfig, error) {
	if framework == "" {
		framework = DefaultFramework
	}
	t, ok := Lookup(framework)
	if !ok {
		return nil, fmt.Errorf("unknown framework %q; choose one of %s", framework, strings.Join(FrameworkNames(), ", "))
	}
	cfg := t.config(name, uuid.NewString())
	files, err := t.files(cfg)
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create agent directory: %w", err)
	}
	for _, f := range files {
		_, err := os.Lstat(filepath.Join(dir, f.name))
		switch {
		case err == nil && f.name == agentcfg.FileName:
			return nil, fmt.Errorf("%s already contains %s: it is an agent project already; refusing to overwrite it "+
				"(to give it a fresh agent_id, run `runagent init --existing %s`)", dir, f.name, dir)
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
	parsed, _, err := agentcfg.Parse(files[0].data, agentcfg.FileName)
	if err != nil {
		return nil, fmt.Errorf("parse written config: %w", err) // Marshal guarantees it parses
	}
	return parsed, nil
}

// files returns the files of a project from t with config cfg, the
// config first.
func (t Template) files(cfg *core.AgentConfig) ([]file, error) {
	config, err := agentcfg.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	files := []file{{agentcfg.FileName, config}}
	dir := path.Join("template", t.Framework)
	entries, err := templates.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", t.Framework, err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == readmeTemplate {
			continue
		}
		data, err := templates.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read template: %w", err)
		}
		files = append(files, file{e.Name(), data})
	}
	readme, err := t.readme(cfg, nil)
	if err != nil {
		return nil, err
	}
	return append(files, file{"README.md", readme}), nil
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

// readme renders the project's README; extra lists entrypoints beyond
// the template's two.
func (t Template) readme(cfg *core.AgentConfig, extra []core.Entrypoint) ([]byte, error) {
	name := path.Join("template", t.Framework, readmeTemplate)
	if _, err := fs.Stat(templates, name); err != nil {
		name = path.Join("template", readmeTemplate)
	}
	tmpl, err := template.New(path.Base(name)).Funcs(template.FuncMap{
		"modname": func(file string) string { return strings.TrimSuffix(file, ".py") },
		"code": func(items []string) string {
			quoted := make([]string, len(items))
			for i, s := range items {
				quoted[i] = "`" + s + "`"
			}
			return strings.Join(quoted, ", ")
		},
	}).ParseFS(templates, name)
	if err != nil {
		return nil, fmt.Errorf("parse README template: %w", err)
	}
	requirements, err := t.requirements()
	if err != nil {
		return nil, err
	}
	_, hasEnvExample := t.file(".env.example")
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, struct {
		Template
		Name          string
		AgentID       string
		Extra         []core.Entrypoint
		Requirements  []string
		HasEnvExample bool
	}{t, cfg.AgentName, cfg.AgentID, extra, requirements, hasEnvExample})
	if err != nil {
		return nil, fmt.Errorf("render README: %w", err)
	}
	return buf.Bytes(), nil
}

// file returns a file of the template folder.
func (t Template) file(name string) ([]byte, bool) {
	data, err := templates.ReadFile(path.Join("template", t.Framework, name))
	return data, err == nil
}

// requirements returns the packages the template's requirements.txt names.
func (t Template) requirements() ([]string, error) {
	data, ok := t.file("requirements.txt")
	if !ok {
		return nil, nil
	}
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("template %s: requirements.txt names no package", t.Framework)
	}
	return slices.Clip(out), nil
}
