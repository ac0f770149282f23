package agentcfg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/schema"
	webhooks "github.com/runagent/runagent/internal/webhook"
)

// Limits on field values.
const (
	maxNameLen        = 200
	maxEntrypoints    = 100
	maxTagLen         = 64
	maxPathLen        = 1024
	maxModuleLen      = 256
	maxURLLen         = 2048
	maxTimeoutSeconds = 3600
	maxFolders        = 100
	maxAllowRules     = 256
	maxPortsPerRule   = 64
)

// frameworks are the framework values RunAgent knows.
var frameworks = []string{
	"default", "langgraph", "langchain", "crewai", "agno", "autogen", "ag2",
	"letta", "llamaindex", "openai", "parlant", "n8n",
}

func knownFramework(s string) bool { return slices.Contains(frameworks, strings.ToLower(s)) }

// Entrypoint fields by kind, for "unknown field" messages.
var (
	pythonFields  = []string{"file", "module", "tag", "extractor", "input_schema", "description"}
	webhookFields = []string{"webhook_url", "method", "tag", "timeout", "extractor", "input_schema", "description"}
)

// webhookMethods are the HTTP methods a webhook entrypoint may use.
var webhookMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

func (p *parser) agentName(field string, raw json.RawMessage) string {
	s, ok := p.str(field, raw)
	if !ok {
		return ""
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		p.errorf(field, "must not be empty")
	case utf8.RuneCountInString(s) > maxNameLen:
		p.errorf(field, "is %d characters long; at most %d are allowed", utf8.RuneCountInString(s), maxNameLen)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		p.errorf(field, "must not contain control characters")
	default:
		return s
	}
	return ""
}

func (p *parser) agentID(field string, raw json.RawMessage) string {
	s, ok := p.str(field, raw)
	if !ok || s == "" {
		return "" // an empty id is the same as none
	}
	u, err := uuid.Parse(s)
	switch {
	case len(s) != 36 || err != nil:
		p.errorf(field, "%s is not a UUID (want the form 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b)", quote(s))
	case u == uuid.Nil:
		p.errorf(field, "is the nil UUID, a placeholder (RunAgent's templates ship it) that every copy of such a project shares; run `runagent init --existing <project dir>` to write a fresh agent_id")
	default:
		return u.String()
	}
	return ""
}

func (p *parser) architecture(field string, raw json.RawMessage) []core.Entrypoint {
	members, ok := p.object(field, raw)
	if !ok {
		return nil
	}
	var eps []core.Entrypoint
	have := false
	for _, m := range members {
		if isNull(m.val) {
			continue
		}
		f := fieldName(field, m.key)
		if m.key != "entrypoints" {
			p.warnf(f, "unknown field ignored")
			continue
		}
		have = true
		eps = p.entrypoints(f, m.val)
	}
	if !have {
		p.errorf(field+".entrypoints", "is required: list at least one entrypoint")
	}
	return eps
}

func (p *parser) entrypoints(field string, raw json.RawMessage) []core.Entrypoint {
	items, ok := p.array(field, raw)
	if !ok {
		return nil
	}
	switch {
	case len(items) == 0:
		p.errorf(field, "must list at least one entrypoint")
		return nil
	case len(items) > maxEntrypoints:
		p.errorf(field, "lists %d entrypoints; at most %d are allowed", len(items), maxEntrypoints)
		return nil
	}
	eps := make([]core.Entrypoint, 0, len(items))
	tags := make(map[string]int)
	for i, item := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		ep := p.entrypoint(f, item)
		if ep.Tag != "" {
			if j, dup := tags[ep.Tag]; dup {
				p.errorf(f+".tag", "duplicate tag %s (also entrypoints[%d])", quote(ep.Tag), j)
			} else {
				tags[ep.Tag] = i
			}
		}
		eps = append(eps, ep)
	}
	return eps
}

// entrypoint validates one entrypoint. Its kind is webhook if it has a
// webhook_url, python otherwise. Invalid fields are left empty.
func (p *parser) entrypoint(field string, raw json.RawMessage) core.Entrypoint {
	members, ok := p.object(field, raw)
	if !ok {
		return core.Entrypoint{}
	}
	ep := core.Entrypoint{Kind: core.KindPython}
	allowed := pythonFields
	for _, m := range members {
		if m.key == "webhook_url" && !isNull(m.val) {
			ep.Kind, ep.Method = core.KindWebhook, "POST"
			allowed = webhookFields
		}
	}
	var haveTag, haveFile, haveModule, haveURL bool
	for _, m := range members {
		if isNull(m.val) {
			continue
		}
		f := fieldName(field, m.key)
		if !slices.Contains(allowed, m.key) {
			switch {
			case ep.Kind == core.KindWebhook && slices.Contains(pythonFields, m.key):
				p.errorf(f, "is not allowed in a webhook entrypoint (one with webhook_url)")
			case ep.Kind == core.KindPython && slices.Contains(webhookFields, m.key):
				p.errorf(f, "is only allowed in a webhook entrypoint (one with webhook_url)")
			default:
				p.errorf(f, "unknown field (allowed: %s)", strings.Join(allowed, ", "))
			}
			continue
		}
		switch m.key {
		case "tag":
			haveTag = true
			ep.Tag = p.tag(f, m.val)
		case "file":
			haveFile = true
			if s, ok := p.str(f, m.val); ok {
				ep.File = p.relPath(f, s, ".py")
			}
		case "module":
			haveModule = true
			ep.Module = p.module(f, m.val)
		case "webhook_url":
			haveURL = true
			ep.WebhookURL = p.webhookURL(f, m.val)
		case "method":
			if s, ok := p.str(f, m.val); ok {
				if up := strings.ToUpper(s); slices.Contains(webhookMethods, up) {
					ep.Method = up
				} else {
					p.errorf(f, "%s is not one of %s", quote(s), strings.Join(webhookMethods, ", "))
				}
			}
		case "timeout":
			if t, ok := p.number(f, m.val); ok {
				if t <= 0 || t > maxTimeoutSeconds {
					p.errorf(f, "must be more than 0 and at most %d seconds", maxTimeoutSeconds)
				} else {
					ep.TimeoutSeconds = t
				}
			}
		case "extractor":
			ep.Extractor = p.stringMap(f, m.val)
		case "input_schema":
			ep.InputSchema = p.inputSchema(f, m.val)
		case "description":
			ep.Description, _ = p.str(f, m.val)
		}
	}
	if !haveTag {
		p.errorf(field+".tag", "is required")
	}
	if ep.Kind == core.KindPython {
		if !haveFile {
			p.errorf(field+".file", "is required (the Python file that defines the entrypoint, e.g. \"main.py\")")
		}
		if !haveModule {
			p.errorf(field+".module", "is required (the function to call, e.g. \"generate\")")
		}
	} else if !haveURL {
		p.errorf(field+".webhook_url", "is required")
	}
	return ep
}

func (p *parser) tag(field string, raw json.RawMessage) string {
	s, ok := p.str(field, raw)
	if !ok {
		return ""
	}
	switch {
	case s == "":
		p.errorf(field, "must not be empty")
	case len(s) > maxTagLen:
		p.errorf(field, "is %d characters long; at most %d are allowed", len(s), maxTagLen)
	case !tagChars(s):
		p.errorf(field, "%s may contain only letters, digits, '_' and '-'", quote(s))
	default:
		return s
	}
	return ""
}

func tagChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// relPath checks that s is a clean, slash-separated path relative to the
// project root and, if ext is set, that it ends in ext. It returns s, or
// "" after reporting a problem.
func (p *parser) relPath(field, s, ext string) string {
	switch {
	case s == "":
		p.errorf(field, "must not be empty")
	case len(s) > maxPathLen:
		p.errorf(field, "is %d bytes long; at most %d are allowed", len(s), maxPathLen)
	case strings.ContainsRune(s, 0):
		p.errorf(field, "must not contain NUL")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		p.errorf(field, "%s must not contain control characters", quote(s))
	case strings.ContainsRune(s, '\\'):
		p.errorf(field, "%s must use '/' to separate directories, not '\\'", quote(s))
	case strings.HasPrefix(s, "/"):
		p.errorf(field, "%s must be relative to the agent directory, not absolute", quote(s))
	case slices.Contains(strings.Split(s, "/"), ".."):
		p.errorf(field, "%s must not contain '..'", quote(s))
	case path.Clean(s) == ".":
		p.errorf(field, "%s must name something inside the agent directory, not the directory itself", quote(s))
	case path.Clean(s) != s:
		p.errorf(field, "%s is not a clean path (write %s)", quote(s), quote(path.Clean(s)))
	case ext != "" && (!strings.HasSuffix(s, ext) || path.Base(s) == ext):
		p.errorf(field, "%s must be a file ending in %s", quote(s), ext)
	default:
		return s
	}
	return ""
}

func (p *parser) module(field string, raw json.RawMessage) string {
	s, ok := p.str(field, raw)
	if !ok {
		return ""
	}
	if s == "" {
		p.errorf(field, "must not be empty")
		return ""
	}
	if len(s) > maxModuleLen {
		p.errorf(field, "is %d characters long; at most %d are allowed", len(s), maxModuleLen)
		return ""
	}
	for part := range strings.SplitSeq(s, ".") {
		switch {
		case part == "":
			p.errorf(field, "%s has an empty part: write names separated by single dots, e.g. \"agent.invoke\"", quote(s))
			return ""
		case !pythonIdentifier(part):
			p.errorf(field, "%s is not a valid Python identifier (in %s)", quote(part), quote(s))
			return ""
		case slices.Contains(pythonKeywords, part):
			p.errorf(field, "%s is a Python keyword (in %s)", quote(part), quote(s))
			return ""
		}
	}
	return s
}

// pythonIdentifier reports whether s is an ASCII Python identifier.
func pythonIdentifier(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	return envName(s)
}

// pythonKeywords are Python 3's hard keywords (soft keywords such as
// match and type are valid identifiers).
var pythonKeywords = []string{
	"False", "None", "True", "and", "as", "assert", "async", "await", "break",
	"class", "continue", "def", "del", "elif", "else", "except", "finally",
	"for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
	"not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
}

func (p *parser) webhookURL(field string, raw json.RawMessage) string {
	s, ok := p.str(field, raw)
	if !ok {
		return ""
	}
	if len(s) > maxURLLen {
		p.errorf(field, "is %d bytes long; at most %d are allowed", len(s), maxURLLen)
		return ""
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		p.errorf(field, "must not contain spaces or control characters")
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		p.errorf(field, "%s is not a valid URL", quote(s))
	case u.Scheme != "http" && u.Scheme != "https":
		p.errorf(field, "%s must be an absolute http:// or https:// URL", quote(s))
	case u.Host == "" || u.Hostname() == "":
		p.errorf(field, "%s has no host", quote(s))
	case u.User != nil:
		p.errorf(field, "must not contain credentials; keep them in the secret store")
	default:
		return s
	}
	return ""
}

// inputSchema checks an input_schema, compiles both of its JSON Schemas
// (so that a schema that would fail at request time fails the deploy
// instead) and keeps the document as compact JSON.
func (p *parser) inputSchema(field string, raw json.RawMessage) json.RawMessage {
	if k := kind(raw); k != "object" {
		p.errorf(field, `must be an object with "kwargs" and/or "args", each a JSON Schema; not %s`, article(k))
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		p.errorf(field, "invalid JSON: %v", err)
		return nil
	}
	if _, err := schema.Compile(buf.Bytes()); err != nil {
		if se, ok := errors.AsType[*schema.Error](err); ok {
			p.errorf(subField(field, se.Field), "%s", se.Reason)
		} else {
			p.errorf(field, "%v", err)
		}
		return nil
	}
	return json.RawMessage(buf.Bytes())
}

// subField joins a field path and a path relative to it.
func subField(field, sub string) string {
	switch {
	case sub == "":
		return field
	case strings.HasPrefix(sub, "["):
		return field + sub
	}
	return field + "." + sub
}

// reservedEnv are environment variables the runtime sets itself.
var reservedEnv = []string{
	"PATH", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONINSPECT",
}

// reservedEnvPrefixes reserve whole families of variables: the dynamic
// loader's and runagent's own.
var reservedEnvPrefixes = []string{"LD_", "RUNAGENT_"}

// secretWords mark variable names whose values are likely secrets.
var secretWords = []string{"KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL"}

func (p *parser) envVars(field string, raw json.RawMessage) map[string]string {
	members, ok := p.object(field, raw)
	if !ok {
		return nil
	}
	var out map[string]string
	for _, m := range members {
		f := fieldName(field, m.key)
		value, ok := p.str(f, m.val)
		if !ok {
			continue
		}
		upper := strings.ToUpper(m.key)
		switch {
		case m.key == "" || !envName(m.key) || m.key[0] >= '0' && m.key[0] <= '9':
			p.errorf(f, "%s is not a valid variable name (letters, digits and '_', not starting with a digit)", quote(m.key))
			continue
		case slices.Contains(reservedEnv, upper) || slices.ContainsFunc(reservedEnvPrefixes, func(pre string) bool { return strings.HasPrefix(upper, pre) }):
			p.errorf(f, "%s is reserved for the runtime and cannot be set", m.key)
			continue
		case strings.ContainsRune(value, 0):
			p.errorf(f, "value must not contain NUL")
			continue
		}
		if value != "" && slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(upper, w) }) {
			p.warnf(f, "looks like a secret; keep it in the secret store, not in %s", FileName)
		}
		if out == nil {
			out = make(map[string]string, len(members))
		}
		out[m.key] = value
	}
	return out
}

// envName reports whether s consists of ASCII letters, digits and '_'.
func envName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// authSettings returns the auth type, or "" if none is given or it is
// invalid (already reported).
func (p *parser) authSettings(field string, raw json.RawMessage) string {
	members, ok := p.object(field, raw)
	if !ok {
		return ""
	}
	typ := ""
	for _, m := range members {
		if isNull(m.val) {
			continue
		}
		f := fieldName(field, m.key)
		if m.key != "type" {
			p.warnf(f, "unknown field ignored")
			continue
		}
		s, ok := p.str(f, m.val)
		if !ok {
			continue
		}
		if s != core.AuthNone && s != core.AuthAPIKey {
			p.errorf(f, "%s is not %q or %q", quote(s), core.AuthNone, core.AuthAPIKey)
			continue
		}
		typ = s
	}
	return typ
}

func (p *parser) persistentFolders(field string, raw json.RawMessage) []string {
	items, ok := p.array(field, raw)
	if !ok {
		return nil
	}
	if len(items) > maxFolders {
		p.errorf(field, "lists %d folders; at most %d are allowed", len(items), maxFolders)
		return nil
	}
	var out []string
	seen := make(map[string]int)
	for i, item := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.str(f, item)
		if !ok {
			continue
		}
		if s = p.relPath(f, s, ""); s == "" {
			continue
		}
		if j, dup := seen[s]; dup {
			p.errorf(f, "duplicate folder %s (also %s[%d])", quote(s), field, j)
			continue
		}
		seen[s] = i
		out = append(out, s)
	}
	return out
}

// Upper bounds of resources; see core.Resources for units.
const (
	maxCPU          = 64
	maxMemoryMB     = 1 << 20 // 1 TiB
	maxDiskMB       = 1 << 20 // 1 TiB
	maxProcesses    = 65536
	maxOpenFiles    = 1 << 20
	maxBandwidthMBs = 100000
)

var resourceFields = []string{"cpu", "memory_mb", "disk_mb", "processes", "open_files", "bandwidth_mbps", "timeout_seconds", "no_process_creation", "reuse_per_user", "persistent_mb"}

func (p *parser) resources(field string, raw json.RawMessage) core.Resources {
	var r core.Resources
	members, ok := p.object(field, raw)
	if !ok {
		return r
	}
	// positive reads a number in (0, max]; nonNegative one in [0, max]
	// where 0 means "server default".
	positive := func(f string, v json.RawMessage, max float64, unit string) float64 {
		x, ok := p.number(f, v)
		if ok && (x <= 0 || x > max) {
			p.errorf(f, "must be more than 0 and at most %g%s", max, unit)
			return 0
		}
		return x
	}
	nonNegative := func(f string, v json.RawMessage, max float64, unit string) float64 {
		x, ok := p.number(f, v)
		if ok && (x < 0 || x > max) {
			p.errorf(f, "must be between 0 (server default) and %g%s", max, unit)
			return 0
		}
		return x
	}
	whole := func(f string, v json.RawMessage, max int64, unit string) int64 {
		n, ok := p.integer(f, v)
		if ok && (n < 0 || n > max) {
			p.errorf(f, "must be between 0 (server default) and %d%s", max, unit)
			return 0
		}
		return n
	}
	for _, m := range members {
		if isNull(m.val) {
			continue
		}
		f := fieldName(field, m.key)
		switch m.key {
		case "cpu":
			r.CPU = positive(f, m.val, maxCPU, " cores")
		case "memory_mb":
			r.MemoryMB = whole(f, m.val, maxMemoryMB, " MiB")
		case "disk_mb":
			r.DiskMB = whole(f, m.val, maxDiskMB, " MiB")
		case "processes":
			r.Processes = whole(f, m.val, maxProcesses, "")
		case "open_files":
			r.OpenFiles = whole(f, m.val, maxOpenFiles, "")
		case "bandwidth_mbps":
			r.BandwidthMBps = nonNegative(f, m.val, maxBandwidthMBs, " MB/s")
		case "timeout_seconds":
			r.TimeoutSeconds = positive(f, m.val, maxTimeoutSeconds, " seconds")
		case "no_process_creation":
			r.NoProcessCreation, _ = p.boolean(f, m.val)
		case "reuse_per_user":
			r.ReusePerUser, _ = p.boolean(f, m.val)
		case "persistent_mb":
			r.PersistentMB = whole(f, m.val, maxDiskMB, " MiB")
		default:
			p.errorf(f, "unknown field (allowed: %s)", strings.Join(resourceFields, ", "))
		}
	}
	return r
}

func (p *parser) network(field string, raw json.RawMessage) core.NetworkPolicy {
	np := core.NetworkPolicy{Mode: core.NetworkNone}
	members, ok := p.object(field, raw)
	if !ok {
		return np
	}
	var allowRaw json.RawMessage
	for _, m := range members {
		if isNull(m.val) {
			continue
		}
		f := fieldName(field, m.key)
		switch m.key {
		case "mode":
			if s, ok := p.str(f, m.val); ok {
				if s != core.NetworkNone && s != core.NetworkEgress {
					p.errorf(f, "%s is not %q or %q", quote(s), core.NetworkNone, core.NetworkEgress)
				} else {
					np.Mode = s
				}
			}
		case "allow":
			allowRaw = m.val
		default:
			p.errorf(f, "unknown field (allowed: mode, allow)")
		}
	}
	if allowRaw != nil {
		np.Allow = p.allowList(field+".allow", allowRaw)
		if len(np.Allow) > 0 && np.Mode != core.NetworkEgress {
			p.errorf(field+".allow", "is only allowed with mode %q", core.NetworkEgress)
		}
	}
	if np.Mode == core.NetworkEgress && len(np.Allow) == 0 {
		p.warnf(field+".allow", "is empty: mode %q without rules allows no host", core.NetworkEgress)
	}
	return np
}

func (p *parser) allowList(field string, raw json.RawMessage) []core.EgressRule {
	items, ok := p.array(field, raw)
	if !ok {
		return nil
	}
	if len(items) > maxAllowRules {
		p.errorf(field, "lists %d rules; at most %d are allowed", len(items), maxAllowRules)
		return nil
	}
	var rules []core.EgressRule
	seen := make(map[string]int)
	for i, item := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		members, ok := p.object(f, item)
		if !ok {
			continue
		}
		var rule core.EgressRule
		haveHost, valid := false, true
		for _, m := range members {
			if isNull(m.val) {
				continue
			}
			mf := fieldName(f, m.key)
			switch m.key {
			case "host":
				haveHost = true
				s, ok := p.str(mf, m.val)
				if !ok {
					valid = false
					continue
				}
				h, reason := egressHost(s)
				if reason != "" {
					p.errorf(mf, "%s %s", quote(s), reason)
					valid = false
					continue
				}
				rule.Host = h
			case "ports":
				ports, ok := p.ports(mf, m.val)
				valid = valid && ok
				rule.Ports = ports
			default:
				p.errorf(mf, "unknown field (allowed: host, ports)")
				valid = false
			}
		}
		if !haveHost {
			p.errorf(f+".host", "is required")
			continue
		}
		if !valid {
			continue
		}
		if j, dup := seen[rule.Host]; dup {
			p.errorf(f+".host", "duplicate host %s (also allow[%d])", quote(rule.Host), j)
			continue
		}
		seen[rule.Host] = i
		rules = append(rules, rule)
	}
	return rules
}

func (p *parser) ports(field string, raw json.RawMessage) ([]int, bool) {
	items, ok := p.array(field, raw)
	if !ok {
		return nil, false
	}
	if len(items) > maxPortsPerRule {
		p.errorf(field, "lists %d ports; at most %d are allowed", len(items), maxPortsPerRule)
		return nil, false
	}
	var ports []int
	valid := true
	for i, item := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		n, ok := p.integer(f, item)
		if !ok {
			valid = false
			continue
		}
		if n < 1 || n > 65535 {
			p.errorf(f, "port %d is not between 1 and 65535", n)
			valid = false
			continue
		}
		if slices.Contains(ports, int(n)) {
			p.errorf(f, "duplicate port %d", n)
			valid = false
			continue
		}
		ports = append(ports, int(n))
	}
	return ports, valid
}

// egressHost validates an allow-list host: a DNS name with at least two
// labels, or "*." followed by one. It returns the host in lower case, or
// a reason it is not acceptable.
func egressHost(s string) (host, reason string) {
	h := strings.ToLower(s)
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil || strings.ContainsAny(h, ":[]") {
		return "", "is an IP address; only DNS names are allowed"
	}
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return "", "may use '*' only as a leading \"*.\" (e.g. \"*.example.com\")"
	}
	if len(name) > 253 {
		return "", "is longer than 253 characters"
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		if name != h {
			return "", "is too broad: a wildcard needs a suffix of at least two labels (e.g. \"*.example.com\")"
		}
		return "", "is not a fully qualified DNS name (e.g. \"api.example.com\")"
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", "is not a valid DNS name (each label must have 1 to 63 characters)"
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", "is not a valid DNS name (labels cannot start or end with '-')"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", "is not a valid DNS name (letters, digits, '-' and '.' only)"
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return "", "looks like an IP address; only DNS names are allowed"
	}
	return h, ""
}

// rateLimit parses rate_limit: {"requests": N, "period_seconds": S}, the
// most calls of the agent from all callers together per period.
func (p *parser) rateLimit(field string, raw json.RawMessage) *core.RateLimit {
	members, ok := p.object(field, raw)
	if !ok {
		return nil
	}
	var rl core.RateLimit
	for _, m := range members {
		f := fieldName(field, m.key)
		switch m.key {
		case "requests":
			if n, ok := p.integer(f, m.val); ok {
				if n < 1 || n > 1_000_000 {
					p.errorf(f, "must be from 1 to 1000000")
				} else {
					rl.Requests = int(n)
				}
			}
		case "period_seconds":
			if n, ok := p.integer(f, m.val); ok {
				if n < 1 || n > 86400 {
					p.errorf(f, "must be from 1 to 86400 (a day)")
				} else {
					rl.PeriodSeconds = int(n)
				}
			}
		default:
			p.errorf(f, "unknown field (allowed: requests, period_seconds)")
		}
	}
	if rl.Requests == 0 || rl.PeriodSeconds == 0 {
		p.errorf(field, "needs both requests and period_seconds, e.g. {\"requests\": 60, \"period_seconds\": 60}")
		return nil
	}
	return &rl
}

// runtimeRequest is one place a config names the Python it wants.
type runtimeRequest struct {
	field   string
	version string // core.PythonVersion's; "" for any
}

// runtime reads this project's "runtime": {"python": "3.12"}.
func (p *parser) runtime(field string, raw json.RawMessage) (runtimeRequest, bool) {
	members, ok := p.object(field, raw)
	if !ok {
		return runtimeRequest{}, false
	}
	var req runtimeRequest
	have := false
	for _, m := range members {
		if isNull(m.val) {
			continue
		}
		f := fieldName(field, m.key)
		if m.key != "python" {
			p.errorf(f, "unknown field (allowed: python)")
			continue
		}
		s, ok := p.str(f, m.val)
		if !ok {
			continue
		}
		v, ok := core.PythonVersion(s)
		if !ok {
			p.errorf(f, "%s is not a Python 3 version: name one as major.minor, e.g. \"3.12\"", quote(s))
			continue
		}
		req, have = runtimeRequest{field: f, version: v}, true
	}
	return req, have
}

// metadata reads RunAgent's free-form "metadata" object, of which only
// "runtime" means anything here: "python", or a Python version
// ("python3.12"); another runtime (RunAgent's "openclaw-gateway") is
// one this server cannot run. The other members are RunAgent's
// business and are not kept.
func (p *parser) metadata(field string, raw json.RawMessage) (runtimeRequest, bool) {
	members, ok := p.object(field, raw)
	if !ok {
		return runtimeRequest{}, false
	}
	for _, m := range members {
		if m.key != "runtime" || isNull(m.val) {
			continue
		}
		f := fieldName(field, m.key)
		s, ok := p.str(f, m.val)
		if !ok {
			return runtimeRequest{}, false
		}
		v, ok := core.PythonVersion(s)
		if !ok {
			p.errorf(f, "%s is not a runtime this server runs: it runs Python agents (\"python\", or a version such as \"python3.12\")", quote(s))
			return runtimeRequest{}, false
		}
		return runtimeRequest{field: f, version: v}, true
	}
	return runtimeRequest{}, false
}

// settleRuntime returns the Python version the config's requests agree
// on ("" for the server's default), reporting requests that disagree.
func (p *parser) settleRuntime(reqs []runtimeRequest) string {
	var settled runtimeRequest
	for _, r := range reqs {
		switch {
		case r.version == "":
		case settled.version == "":
			settled = r
		case r.version != settled.version:
			p.errorf(r.field, "asks for Python %s, but %s asks for %s", r.version, settled.field, settled.version)
		}
	}
	return settled.version
}

// webhook parses "webhook": {"url": "https://…"}, the completion webhook
// every run of the agent reports to (project extension).
func (p *parser) webhook(field string, raw json.RawMessage) (webhooks.Target, bool) {
	members, ok := p.object(field, raw)
	if !ok {
		return webhooks.Target{}, false
	}
	var (
		t    webhooks.Target
		have bool
	)
	for _, m := range members {
		if isNull(m.val) {
			continue
		}
		f := fieldName(field, m.key)
		if m.key != "url" {
			p.errorf(f, "unknown field (allowed: url)")
			continue
		}
		s, ok := p.str(f, m.val)
		if !ok {
			continue
		}
		var err error
		if t, err = webhooks.ParseURL(s); err != nil {
			p.errorf(f, "%s", strings.TrimPrefix(core.ErrorMessage(err), "webhook: "))
			continue
		}
		have = true
	}
	if !have && !p.failedAt(field) {
		p.errorf(field+".url", "is required, e.g. \"webhook\": {\"url\": \"https://hooks.example.com/runagent\"}")
	}
	return t, have
}

// failedAt reports whether a problem was already reported at or under
// field.
func (p *parser) failedAt(field string) bool {
	for _, e := range p.errs {
		if e.Field == field || strings.HasPrefix(e.Field, field+".") {
			return true
		}
	}
	return false
}

// webhookAllowed checks the webhook against the agent's egress rules,
// which apply to it as to the agent's own connections.
func (p *parser) webhookAllowed(field string, t webhooks.Target, np core.NetworkPolicy) {
	if t.Literal() {
		p.warnf(field, "is an IP address or localhost: the server delivers to it only if its operator allows that range (runagent serve --webhook-allow-cidr); use a host name on network.allow")
		return
	}
	if !t.AllowedBy(np.Allow) {
		u, _ := url.Parse(t.URL)
		port := u.Port()
		if port == "" {
			port = "443"
		}
		p.errorf(field, "host %s is not on network.allow: egress rules apply to the webhook too; add {\"host\": %s, \"ports\": [%s]} to network.allow (with \"mode\": \"egress\")",
			quote(u.Hostname()), quote(strings.ToLower(u.Hostname())), port)
	}
}
