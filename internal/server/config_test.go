package server

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:hunter2@127.0.0.1:6379/0":     "redis://:[redacted]@127.0.0.1:6379/0",
		"rediss://user:hunter2@cache:6380/1":    "rediss://user:[redacted]@cache:6380/1",
		"redis://127.0.0.1:6379/0":              "redis://127.0.0.1:6379/0",
		"https://hooks.example/x?token=hunter2": "https://hooks.example/x?redacted",
		"":                                      "",
		"redis://:hunter2@[::1:6379/0":          "[unparsable URL redacted]",
	} {
		if got := RedactURL(in); got != want || (in != "" && strings.Contains(got, "hunter2")) {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEffectiveConfigRedacts: the printed configuration names where
// secrets come from, never the secrets.
func TestEffectiveConfigRedacts(t *testing.T) {
	t.Setenv(MasterPassphraseEnv, "correct horse battery staple")
	cfg := Config{Addr: "127.0.0.1:1", DataDir: "/d", RedisURL: "redis://:hunter2@127.0.0.1:6379/0",
		AlertWebhookURL: "https://hooks.example/x?sig=hunter3", AlertWebhookSecretFile: "/run/secrets/webhook"}
	b, err := json.Marshal(cfg.Effective())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "hunter3", "correct horse"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("effective config shows %q: %s", secret, b)
		}
	}
	for _, want := range []string{`"alert_webhook_secret_file":"/run/secrets/webhook"`, `passphrase from $RUNAGENT_MASTER_PASSPHRASE`, `"redis_url":"redis://:[redacted]@127.0.0.1:6379/0"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("effective config lacks %s: %s", want, b)
		}
	}
}
