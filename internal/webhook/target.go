package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"unicode"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/egress"
)

// SecretName is the agent secret that signs its completion webhooks.
const SecretName = core.WebhookSecretName

// MaxURLLen is the longest target URL accepted, in bytes.
const MaxURLLen = 2048

// Target is where a completion webhook goes.
type Target struct {
	// URL is the target as given, less any fragment. It may hold a token
	// in its query: show it with ShownURL.
	URL string
	// Source is core.WebhookFromConfig or core.WebhookFromRequest.
	Source string
	// Allow are the agent's egress rules the target's host must match
	// (For sets them from the agent's config).
	Allow []core.EgressRule
	// WithOutput puts the invocation's output in the body; For sets it
	// when the agent keeps payloads.
	WithOutput bool

	host egress.Target
}

// badTarget is the error of a target that does not parse or is refused.
// It never quotes the URL, which may hold a token.
func badTarget(format string, args ...any) error {
	return &core.Error{Code: core.CodeValidation, Field: "webhook", Message: "webhook: " + fmt.Sprintf(format, args...)}
}

// ParseTarget parses a run request's webhook field: a URL string, or an
// object {"url": "…"} as an agent's config writes it. The target's Source
// is core.WebhookFromRequest. Errors are CodeValidation and never quote
// the URL.
func ParseTarget(raw json.RawMessage) (Target, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Target{}, badTarget("is empty: give a URL, or an object {\"url\": \"https://…\"}")
	}
	var s string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return Target{}, badTarget("is not a valid JSON string")
		}
	case '{':
		var obj map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&obj); err != nil || dec.More() {
			return Target{}, badTarget("is not a valid JSON object")
		}
		for k := range obj {
			if k != "url" {
				return Target{}, badTarget("unknown field %q (allowed: url)", clipKey(k))
			}
		}
		u, ok := obj["url"]
		if !ok {
			return Target{}, badTarget("needs a url, e.g. {\"url\": \"https://example.com/hooks/runagent\"}")
		}
		if err := json.Unmarshal(u, &s); err != nil {
			return Target{}, badTarget("url must be a string")
		}
	default:
		return Target{}, badTarget("must be a URL string or an object {\"url\": \"https://…\"}")
	}
	t, err := ParseURL(s)
	if err != nil {
		return Target{}, err
	}
	t.Source = core.WebhookFromRequest
	return t, nil
}

func clipKey(k string) string {
	if len(k) > 40 {
		return k[:40] + "…"
	}
	return k
}

// ParseURL checks a target URL: absolute https, or http to a loopback
// address ("localhost", 127.0.0.0/8, ::1); a host egress accepts (a DNS
// name, an IPv4 literal or a bracketed IPv6 literal); no user name or
// password (the signature authenticates). The fragment is dropped.
// Errors are CodeValidation and never quote the URL.
func ParseURL(s string) (Target, error) {
	if len(s) > MaxURLLen {
		return Target{}, badTarget("URL is %d bytes long; at most %d are allowed", len(s), MaxURLLen)
	}
	if s == "" {
		return Target{}, badTarget("URL is empty")
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return Target{}, badTarget("URL must not contain spaces or control characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse quotes the URL in its error.
		return Target{}, badTarget("URL does not parse")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return Target{}, badTarget("URL must be an absolute https:// URL")
	case u.Opaque != "" || u.Host == "":
		return Target{}, badTarget("URL has no host")
	case u.User != nil:
		return Target{}, badTarget("URL must not hold a user name or password: deliveries are authenticated by their signature (secret %s)", SecretName)
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	h, err := egress.ParseTarget(u.Host, port)
	if err != nil {
		return Target{}, badTarget("URL host: %v", err)
	}
	if u.Scheme == "http" && !loopbackHost(h) {
		return Target{}, badTarget("URL must be https (plain http only to a loopback address)")
	}
	u.Fragment, u.RawFragment = "", ""
	return Target{URL: u.String(), host: h}, nil
}

// loopbackHost reports whether h names this machine.
func loopbackHost(h egress.Target) bool {
	if h.IP.IsValid() {
		return h.IP.Unmap().IsLoopback()
	}
	return h.Host == "localhost"
}

// literal returns the address a target names without DNS: its IP
// literal, or 127.0.0.1 for "localhost" (which no allow rule can name).
func (t Target) literal() (netip.Addr, bool) {
	if t.host.IP.IsValid() {
		return t.host.IP, true
	}
	if t.host.Host == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	return netip.Addr{}, false
}

// Literal reports whether t names an address rather than a host name:
// an IP literal or "localhost", which no allow rule can name and only the
// operator's AllowPrefixes let through.
func (t Target) Literal() bool {
	_, ok := t.literal()
	return ok
}

// AllowedBy reports whether t's host name and port are on an agent's
// egress allow rules, as the egress proxy matches them.
func (t Target) AllowedBy(rules []core.EgressRule) bool {
	return !t.Literal() && egress.Allows(rules, t.host)
}

// ShownURL is u as it may be shown: without user information, query and
// fragment, which may hold tokens. A URL that does not parse shows as "".
func ShownURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	return p.String()
}

// For returns the targets of a run of an agent with config cfg: the
// config's webhook, if it names one, then requested, if not nil. Each is
// bound to the agent's egress rules and says whether the body may carry
// the output (cfg.KeepsPayloads). A config webhook that does not parse
// (the config is checked at deploy) is left out.
func For(cfg *core.AgentConfig, requested *Target) []Target {
	var out []Target
	if cfg.Webhook != nil && cfg.Webhook.URL != "" {
		if t, err := ParseURL(cfg.Webhook.URL); err == nil {
			t.Source = core.WebhookFromConfig
			out = append(out, t)
		}
	}
	if requested != nil {
		t := *requested
		if t.Source == "" {
			t.Source = core.WebhookFromRequest
		}
		out = append(out, t)
	}
	for i := range out {
		out[i].Allow = cfg.Network.Allow
		out[i].WithOutput = cfg.KeepsPayloads()
	}
	return out
}

// StripSecret returns secrets without the webhook signing secret: what an
// agent's run may see. It copies only when there is something to remove.
func StripSecret(secrets map[string]string) map[string]string {
	if _, ok := secrets[SecretName]; !ok {
		return secrets
	}
	out := make(map[string]string, len(secrets)-1)
	for k, v := range secrets {
		if k != SecretName {
			out[k] = v
		}
	}
	return out
}

// minSecretLen is the shortest signing secret, as for the alerts.
const minSecretLen = 16

// RequireSecret checks that an agent's secrets hold a signing secret fit
// to sign its webhooks; its error says which command sets one. It never
// reveals the value.
func RequireSecret(agentID string, secrets map[string]string) error {
	v, ok := secrets[SecretName]
	switch {
	case !ok:
		return &core.Error{Code: core.CodeValidation, Field: "webhook", Message: fmt.Sprintf(
			"agent %s has no webhook signing secret: an admin sets one with `openssl rand -hex 32 | runagent secrets set --agent %s %s` (at least %d bytes)",
			agentID, agentID, SecretName, minSecretLen)}
	case len(v) < minSecretLen:
		return &core.Error{Code: core.CodeValidation, Field: "webhook", Message: fmt.Sprintf(
			"agent %s's webhook signing secret is shorter than %d bytes: set a longer one with `openssl rand -hex 32 | runagent secrets set --agent %s %s`",
			agentID, minSecretLen, agentID, SecretName)}
	}
	return nil
}

// errRefused marks a target or an address the policy refuses: such a
// delivery is not retried.
var errRefused = errors.New("refused")
