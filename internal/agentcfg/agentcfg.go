package agentcfg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/runagent/runagent/internal/core"
	webhooks "github.com/runagent/runagent/internal/webhook"
)

// FileName is the name of the agent config file at a project's root.
const FileName = "runagent.config.json"

// MaxSize is the largest config file accepted, in bytes.
const MaxSize = 1 << 20

// maxErrors caps how many problems one Parse reports.
const maxErrors = 50

// Error is one problem in an agent config. Its text reads
// "file: field: reason", e.g.
//
//	runagent.config.json: agent_architecture.entrypoints[1].tag: duplicate tag "chat" (also entrypoints[0])
type Error struct {
	File   string // config file name; may be empty
	Field  string // JSON path of the offending field; empty for the whole file
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Errors is every problem found in a config, in file order. Parse and Load
// return a non-empty Errors for any invalid config; errors.As finds the
// individual *Error values too.
type Errors []*Error

func (es Errors) Error() string {
	switch len(es) {
	case 0:
		return "no errors"
	case 1:
		return es[0].Error()
	}
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return fmt.Sprintf("%d problems:\n%s", len(es), strings.Join(lines, "\n"))
}

// Unwrap returns the individual errors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Parse validates data, the contents of a runagent.config.json, and
// returns the config and warnings about things that are accepted but
// probably wrong. file names the file in errors and warnings. On any
// problem it returns a nil config and Errors listing all of them.
//
// Parse does not require agent_id (runagent init generates one) and does
// not look at the file system; Load does both.
func Parse(data []byte, file string) (*core.AgentConfig, []string, error) {
	p := &parser{file: file}
	cfg := p.parse(data)
	if err := p.err(); err != nil {
		return nil, p.warns, err
	}
	return cfg, p.warns, nil
}

// Load reads and validates dir/runagent.config.json for deployment. On
// top of Parse's rules it requires agent_id and checks that the file of
// every Python entrypoint exists inside dir as a regular file; a symlink
// whose target lies outside dir (or whose path passes through "..") does
// not count. Errors name files relative to dir, never dir itself.
func Load(dir string) (*core.AgentConfig, []string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("open agent directory: %w", err)
	}
	defer root.Close()

	data, err := readConfig(root)
	if err != nil {
		return nil, nil, err
	}
	p := &parser{file: FileName}
	cfg := p.parse(data)
	if cfg != nil {
		if cfg.AgentID == "" && !p.sawAgentID {
			p.errorf("agent_id", "is missing: run `runagent init --existing <project dir>` to write a fresh one")
		}
		for i, ep := range cfg.Entrypoints {
			if ep.Kind != core.KindPython || ep.File == "" {
				continue // absent or invalid: already reported
			}
			field := fmt.Sprintf("agent_architecture.entrypoints[%d].file", i)
			fi, err := root.Stat(ep.File)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				p.errorf(field, "%s does not exist in the agent directory", quote(ep.File))
			case err != nil:
				p.errorf(field, "%s cannot be used: it leads outside the agent directory or cannot be read", quote(ep.File))
			case !fi.Mode().IsRegular():
				p.errorf(field, "%s is not a regular file", quote(ep.File))
			}
		}
	}
	if err := p.err(); err != nil {
		return nil, p.warns, err
	}
	return cfg, p.warns, nil
}

// readConfig reads FileName from root, reading at most MaxSize+1 bytes so
// that Parse reports an oversized file.
func readConfig(root *os.Root) ([]byte, error) {
	f, err := root.Open(FileName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Errors{{File: FileName, Reason: "not found in the agent directory; run `runagent init` to create one"}}
	}
	if err != nil {
		return nil, Errors{{File: FileName, Reason: "cannot be opened: it leads outside the agent directory or is unreadable"}}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", FileName, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, Errors{{File: FileName, Reason: "is not a regular file"}}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", FileName, err)
	}
	return data, nil
}

// parser collects problems and warnings while decoding one file.
type parser struct {
	file       string
	errs       Errors
	dropped    int
	warns      []string
	sawAgentID bool
}

func (p *parser) errorf(field, format string, args ...any) {
	if len(p.errs) >= maxErrors {
		p.dropped++
		return
	}
	p.errs = append(p.errs, &Error{File: p.file, Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(field, format string, args ...any) {
	if len(p.warns) >= maxErrors {
		return
	}
	w := &Error{File: p.file, Field: field, Reason: fmt.Sprintf(format, args...)}
	p.warns = append(p.warns, w.Error())
}

func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	if p.dropped > 0 {
		return append(p.errs, &Error{File: p.file, Reason: fmt.Sprintf("%d more problems not shown", p.dropped)})
	}
	return p.errs
}

// parse decodes and validates data. It returns nil if data is not a JSON
// object at all; otherwise a config holding the valid parts, with every
// entrypoint at its index in the file.
func (p *parser) parse(data []byte) *core.AgentConfig {
	if len(data) > MaxSize {
		p.errorf("", "file is %d bytes; at most %d are allowed", len(data), MaxSize)
		return nil
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	if !utf8.Valid(data) {
		p.errorf("", "file is not valid UTF-8")
		return nil
	}
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se)
			p.errorf("", "invalid JSON at line %d, column %d: %s", line, col, se.Error())
		} else {
			p.errorf("", "invalid JSON: %v", err)
		}
		return nil
	}
	members, ok := p.object("", raw)
	if !ok {
		return nil
	}

	cfg := &core.AgentConfig{
		AuthType: core.AuthAPIKey,
		Network:  core.NetworkPolicy{Mode: core.NetworkNone},
	}
	var haveName, haveArch bool
	var runtimes []runtimeRequest
	var hook *webhooks.Target
	for _, m := range members {
		if isNull(m.val) {
			continue // null means absent
		}
		f := m.key
		switch m.key {
		case "agent_name":
			haveName = true
			cfg.AgentName = p.agentName(f, m.val)
		case "agent_id":
			p.sawAgentID = true
			cfg.AgentID = p.agentID(f, m.val)
		case "framework":
			if s, ok := p.str(f, m.val); ok {
				cfg.Framework = s
				if !knownFramework(s) {
					p.warnf(f, "unknown framework %s; accepted (known: %s)", quote(s), strings.Join(frameworks, ", "))
				}
			}
		case "version":
			cfg.Version, _ = p.str(f, m.val)
		case "description":
			cfg.Description, _ = p.str(f, m.val)
		case "created_at", "template", "template_source":
			// Informational; any JSON value is tolerated and not kept.
		case "agent_architecture":
			haveArch = true
			cfg.Entrypoints = p.architecture(f, m.val)
		case "env_vars":
			cfg.EnvVars = p.envVars(f, m.val)
		case "auth_settings":
			if t := p.authSettings(f, m.val); t != "" {
				cfg.AuthType = t
			}
		case "persistent_folders":
			cfg.PersistentFolders = p.persistentFolders(f, m.val)
		case "resources":
			cfg.Resources = p.resources(f, m.val)
		case "network":
			cfg.Network = p.network(f, m.val)
		case "rate_limit":
			cfg.RateLimit = p.rateLimit(f, m.val)
		case "store_payloads":
			if v, ok := p.boolean(f, m.val); ok {
				cfg.StorePayloads = &v
			}
		case "runtime":
			if r, ok := p.runtime(f, m.val); ok {
				runtimes = append(runtimes, r)
			}
		case "metadata":
			if r, ok := p.metadata(f, m.val); ok {
				runtimes = append(runtimes, r)
			}
		case "webhook":
			if t, ok := p.webhook(f, m.val); ok {
				hook = &t
				cfg.Webhook = &core.WebhookConfig{URL: t.URL}
			}
		default:
			p.warnf(fieldName("", m.key), "unknown field ignored")
		}
	}
	cfg.Runtime = p.settleRuntime(runtimes)
	if hook != nil {
		p.webhookAllowed("webhook.url", *hook, cfg.Network)
	}
	if !haveName {
		p.errorf("agent_name", "is required")
	}
	if !haveArch {
		p.errorf("agent_architecture.entrypoints", "is required: list at least one entrypoint")
	}
	return cfg
}

// position returns the 1-based line and column (in characters) of a
// syntax error in data.
func position(data []byte, se *json.SyntaxError) (line, col int) {
	off := int(se.Offset)
	// Offset counts the bytes read, including the offending one; at an
	// unexpected end it is len(data).
	if off > 0 && off <= len(data) && !strings.HasPrefix(se.Error(), "unexpected end") {
		off--
	}
	off = min(max(off, 0), len(data))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	start := bytes.LastIndexByte(before, '\n') + 1
	col = 1 + utf8.RuneCount(before[start:])
	return line, col
}
