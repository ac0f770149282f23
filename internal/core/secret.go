package core

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// Secret is an agent secret's metadata. Its value is never part of it:
// values are written once, stored sealed, and only read to start an
// invocation.
type Secret struct {
	AgentID   string    `json:"agent_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// UpdatedBy names who set the value last (a caller, as in
	// invocation records).
	UpdatedBy string `json:"updated_by"`
}

// MaxSecretValue is the largest secret value, in bytes.
const MaxSecretValue = 64 << 10

// MaxSecretsPerAgent bounds how many secrets one agent may have.
const MaxSecretsPerAgent = 100

var secretNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// CheckSecretName returns a CodeValidation error unless name can be an
// environment variable the sandbox does not set itself.
func CheckSecretName(name string) error {
	if !secretNameRE.MatchString(name) {
		return &Error{Code: CodeValidation, Field: "name", Message: "a secret name is an environment variable name: 1 to 128 letters, digits and '_', not starting with a digit"}
	}
	if name == WebhookSecretName {
		return nil // signs completion webhooks; never reaches the sandbox
	}
	up := strings.ToUpper(name)
	for _, p := range []string{"RUNAGENT_", "PYTHON", "LD_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"} {
		if strings.HasPrefix(up, p) {
			return &Error{Code: CodeValidation, Field: "name", Message: "secret names starting with " + p + " are reserved for the sandbox"}
		}
	}
	switch up {
	case "PATH", "HOME", "TMPDIR", "USER", "LANG", "TZ", "SSL_CERT_FILE":
		return &Error{Code: CodeValidation, Field: "name", Message: name + " is set by the sandbox and cannot be a secret"}
	}
	return nil
}

// SecretStore keeps agent secrets, sealed.
type SecretStore interface {
	// PutSecret creates or replaces a secret's value; s.AgentID, s.Name
	// and s.UpdatedBy must be set; the store fills in the times. Without
	// a Sealer it refuses: a secret is never stored in the clear.
	PutSecret(ctx context.Context, s *Secret, value string) error
	// Secrets lists an agent's secrets by name, without values.
	Secrets(ctx context.Context, agentID string) ([]*Secret, error)
	// SecretValues returns an agent's secrets' values by name, for an
	// invocation's environment.
	SecretValues(ctx context.Context, agentID string) (map[string]string, error)
	// DeleteSecret removes a secret; an unknown one wraps ErrNotFound.
	DeleteSecret(ctx context.Context, agentID, name string) error
}

// Sealer encrypts values at rest (the keyring). AAD binds a value to
// where it is stored (table, column, row): a sealed value moved elsewhere
// does not open.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}
