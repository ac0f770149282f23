package webhook

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/core"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, want string // want: the target's URL, or the error's text
		ok       bool
	}{
		{"https://hooks.example.com/runagent?token=x#frag", "https://hooks.example.com/runagent?token=x", true},
		{"https://HOOKS.example.com:8443/", "https://HOOKS.example.com:8443/", true},
		{"http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/hook", true},
		{"http://localhost:9000/hook", "http://localhost:9000/hook", true},
		{"http://[::1]:9000/hook", "http://[::1]:9000/hook", true},
		{"https://[2001:db8::1]/", "https://[2001:db8::1]/", true},
		{"http://hooks.example.com/", "must be https", false},
		{"http://10.0.0.1/", "must be https", false},
		{"ftp://hooks.example.com/", "absolute https:// URL", false},
		{"hooks.example.com/x", "absolute https:// URL", false},
		{"https:opaque", "no host", false},
		{"https:///path", "no host", false},
		{"https://user:pass@hooks.example.com/", "user name or password", false},
		{"https://hooks.example.com/a b", "spaces", false},
		{"https://hooks.example.com/\x00", "control characters", false},
		{"https://127.1/", "URL host", false},
		{"https://0x7f000001/", "URL host", false},
		{"https://hooks.example.com:0/", "URL host", false},
		{"https://hooks.example.com:99999/", "URL host", false},
		{"https://[fe80::1%25eth0]/", "URL host", false},
		{"https://" + strings.Repeat("a", MaxURLLen) + ".com/", "at most 2048", false},
		{"", "empty", false},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 40)], func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if tt.ok {
				if err != nil || got.URL != tt.want {
					t.Errorf("ParseURL = %q, %v; want %q", got.URL, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseURL = %q, %v; want an error saying %q", got.URL, err, tt.want)
			}
			if core.ErrorCode(err) != core.CodeValidation {
				t.Errorf("code %s, want %s", core.ErrorCode(err), core.CodeValidation)
			}
		})
	}
}

// TestErrorsHideTheURL: no error quotes the URL, which may hold a token.
func TestErrorsHideTheURL(t *testing.T) {
	for _, in := range []string{
		"http://hooks.example.com/?token=SECRET-TOKEN-1",
		"https://user:SECRET-TOKEN-1@hooks.example.com/",
		"https://hooks.example.com/%zz?token=SECRET-TOKEN-1",
		"https://bad_host!/?token=SECRET-TOKEN-1",
	} {
		_, err := ParseURL(in)
		if err == nil {
			t.Fatalf("ParseURL(%q) accepted", in)
		}
		if strings.Contains(err.Error(), "SECRET-TOKEN-1") {
			t.Errorf("ParseURL(%q) error shows the token: %v", in, err)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`"https://hooks.example.com/x"`, "https://hooks.example.com/x", true},
		{` {"url": "https://hooks.example.com/x"} `, "https://hooks.example.com/x", true},
		{`{"url": "https://hooks.example.com/x", "secret": "s"}`, `unknown field "secret"`, false},
		{`{}`, "needs a url", false},
		{`{"url": 5}`, "url must be a string", false},
		{`{"url": "https://a.example.com/"} {}`, "not a valid JSON object", false},
		{`5`, "URL string or an object", false},
		{`null`, "URL string or an object", false},
		{``, "is empty", false},
		{`"http://hooks.example.com/"`, "must be https", false},
	}
	for _, tt := range tests {
		got, err := ParseTarget(json.RawMessage(tt.in))
		if tt.ok {
			if err != nil || got.URL != tt.want || got.Source != core.WebhookFromRequest {
				t.Errorf("ParseTarget(%s) = %+v, %v; want %q from the request", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTarget(%s) = %+v, %v; want an error saying %q", tt.in, got, err, tt.want)
		}
	}
}

func TestShownURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.com/x?token=abc#f": "https://hooks.example.com/x",
		"https://u:p@hooks.example.com/x?":        "https://hooks.example.com/x",
		"http://127.0.0.1:9000/":                  "http://127.0.0.1:9000/",
		"%zz":                                     "",
	} {
		if got := ShownURL(in); got != want {
			t.Errorf("ShownURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStripSecret(t *testing.T) {
	in := map[string]string{"API_KEY": "k", SecretName: testSecret}
	got := StripSecret(in)
	if diff := cmp.Diff(got, map[string]string{"API_KEY": "k"}); diff != "" {
		t.Errorf("StripSecret (-got +want):\n%s", diff)
	}
	if _, ok := in[SecretName]; !ok {
		t.Error("StripSecret changed its argument")
	}
	if got := StripSecret(nil); got != nil {
		t.Errorf("StripSecret(nil) = %v", got)
	}
}

func TestRequireSecret(t *testing.T) {
	if err := RequireSecret("a1", map[string]string{SecretName: testSecret}); err != nil {
		t.Errorf("RequireSecret(set) = %v", err)
	}
	for name, secrets := range map[string]map[string]string{
		"none":      nil,
		"too short": {SecretName: "short"},
	} {
		err := RequireSecret("a1", secrets)
		if err == nil || core.ErrorCode(err) != core.CodeValidation || !strings.Contains(err.Error(), "runagent secrets set --agent a1 "+SecretName) {
			t.Errorf("RequireSecret(%s) = %v; want a validation error naming the command", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "short\"") {
			t.Errorf("RequireSecret(%s) shows the value: %v", name, err)
		}
	}
}

func TestFor(t *testing.T) {
	allow := []core.EgressRule{{Host: "hooks.example.com"}}
	cfg := &core.AgentConfig{
		Network: core.NetworkPolicy{Mode: core.NetworkEgress, Allow: allow},
		Webhook: &core.WebhookConfig{URL: "https://hooks.example.com/config"},
	}
	req, err := ParseTarget(json.RawMessage(`"https://hooks.example.com/request"`))
	if err != nil {
		t.Fatal(err)
	}
	got := For(cfg, &req)
	if len(got) != 2 || got[0].Source != core.WebhookFromConfig || got[0].URL != "https://hooks.example.com/config" ||
		got[1].Source != core.WebhookFromRequest || got[1].URL != "https://hooks.example.com/request" {
		t.Fatalf("For = %+v; want the config's target, then the request's", got)
	}
	for _, tg := range got {
		if !tg.WithOutput || len(tg.Allow) != 1 {
			t.Errorf("%s target: output %v, allow %v; want output and the agent's rules", tg.Source, tg.WithOutput, tg.Allow)
		}
	}
	if got := For(&core.AgentConfig{}, nil); len(got) != 0 {
		t.Errorf("For(no webhook) = %+v", got)
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		`"https://hooks.example.com/x?token=1#f"`, `{"url":"http://127.0.0.1:8080/"}`, `{"url":"http://[::1]/","x":1}`,
		`"https://user@h.example.com/"`, `"http://localhost./"`, `"https://[::ffff:127.0.0.1]/"`, `"https://h.example.com:65535/%41"`,
		`"https://xn--bcher-kva.example/"`, `"https://127.0.0.1.nip.io/"`, `{"url":"https://a.b/"}{`, `"\u0000"`, `[]`, `"https://h.example.com\\@evil.com/"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tg, err := ParseTarget(raw)
		var s string
		_ = json.Unmarshal(raw, &s)
		if err != nil {
			if core.ErrorCode(err) != core.CodeValidation {
				t.Fatalf("error code %s: %v", core.ErrorCode(err), err)
			}
			if len(s) >= 24 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the URL: %v", err)
			}
			return
		}
		u, perr := url.Parse(tg.URL)
		switch {
		case perr != nil:
			t.Fatalf("accepted %q, which does not parse: %v", tg.URL, perr)
		case u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(tg.host)):
			t.Fatalf("accepted %q: scheme %q to host %q", tg.URL, u.Scheme, tg.host.Host)
		case u.User != nil || u.Fragment != "" || u.Host == "":
			t.Fatalf("accepted %q with user information, a fragment or no host", tg.URL)
		case len(tg.URL) > MaxURLLen:
			t.Fatalf("accepted %d bytes", len(tg.URL))
		}
		again, err := ParseURL(tg.URL)
		if err != nil || again.URL != tg.URL || again.host != tg.host {
			t.Fatalf("ParseURL(%q) = %+v, %v; not the same target", tg.URL, again, err)
		}
	})
}
