package core

import "testing"

func TestCheckSecretName(t *testing.T) {
	for name, ok := range map[string]bool{
		"API_KEY": true, "_x": true, WebhookSecretName: true,
		"runagent_webhook_secret": false, "RUNAGENT_TOKEN": false, "RUNAGENT_WEBHOOK_SECRET_2": false,
		"PYTHONPATH": false, "LD_PRELOAD": false, "HTTPS_PROXY": false, "PATH": false, "1A": false, "": false, "A-B": false,
	} {
		err := CheckSecretName(name)
		if (err == nil) != ok {
			t.Errorf("CheckSecretName(%q) = %v, want ok %v", name, err, ok)
		}
		if err != nil && ErrorCode(err) != CodeValidation {
			t.Errorf("CheckSecretName(%q) code %s", name, ErrorCode(err))
		}
	}
}
