package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/core"
)

// secretTests are run by Run on a store opened with a Sealer.
//
// Beyond the documentation of core.SecretStore, they pin down:
//
//   - Secrets lists names and metadata ordered by name; values come only
//     from SecretValues, byte for byte as put.
//   - PutSecret of an existing name replaces the value and UpdatedAt,
//     keeping CreatedAt. A bad name, a value over core.MaxSecretValue or
//     an agent's secret past core.MaxSecretsPerAgent is a CodeValidation
//     error that stores nothing.
//   - Secrets of one agent are invisible to another.
var secretTests = []struct {
	name string
	fn   func(t *testing.T, s core.SecretStore)
}{
	{"SecretRoundTrip", testSecretRoundTrip},
	{"SecretErrors", testSecretErrors},
	{"SecretLimit", testSecretLimit},
}

func runSecretTests(t *testing.T, open func(t *testing.T) core.Store) {
	for _, tt := range secretTests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

func mustPutSecret(t *testing.T, s core.SecretStore, agent, name, value string) *core.Secret {
	t.Helper()
	sec := &core.Secret{AgentID: agent, Name: name, UpdatedBy: "key:test"}
	if err := s.PutSecret(t.Context(), sec, value); err != nil {
		t.Fatalf("PutSecret(%s, %s) = %v", agent, name, err)
	}
	return sec
}

func mustSecretValues(t *testing.T, s core.SecretStore, agent string) map[string]string {
	t.Helper()
	v, err := s.SecretValues(t.Context(), agent)
	if err != nil {
		t.Fatalf("SecretValues(%s) = %v", agent, err)
	}
	return v
}

func testSecretRoundTrip(t *testing.T, s core.SecretStore) {
	ctx := t.Context()
	if got := mustSecretValues(t, s, "a1"); len(got) != 0 {
		t.Errorf("SecretValues of an agent without secrets = %v", got)
	}
	hostile := "line1\nline2 \x00 ünïcødé \"quoted\" '; DROP TABLE secrets; --"
	first := mustPutSecret(t, s, "a1", "OPENAI_API_KEY", "sk-first")
	mustPutSecret(t, s, "a1", "DB_PASSWORD", hostile)
	mustPutSecret(t, s, "a2", "OPENAI_API_KEY", "sk-other-agent")
	mustPutSecret(t, s, "a1", "EMPTY", "")
	if first.CreatedAt.IsZero() || !first.CreatedAt.Equal(first.UpdatedAt) || first.UpdatedBy != "key:test" {
		t.Errorf("PutSecret filled in %+v", first)
	}
	again := mustPutSecret(t, s, "a1", "OPENAI_API_KEY", "sk-second")
	if !again.CreatedAt.Equal(first.CreatedAt) || again.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("replacing a secret: created %v updated %v, first created %v", again.CreatedAt, again.UpdatedAt, first.CreatedAt)
	}
	want := map[string]string{"OPENAI_API_KEY": "sk-second", "DB_PASSWORD": hostile, "EMPTY": ""}
	check(t, "SecretValues(a1)", mustSecretValues(t, s, "a1"), want)
	check(t, "SecretValues(a2)", mustSecretValues(t, s, "a2"), map[string]string{"OPENAI_API_KEY": "sk-other-agent"})
	list, err := s.Secrets(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sec := range list {
		names = append(names, sec.Name)
		if sec.AgentID != "a1" {
			t.Errorf("Secrets(a1) lists %+v", sec)
		}
	}
	check(t, "Secrets(a1) names", names, []string{"DB_PASSWORD", "EMPTY", "OPENAI_API_KEY"})
	if err := s.DeleteSecret(ctx, "a1", "EMPTY"); err != nil {
		t.Fatalf("DeleteSecret = %v", err)
	}
	if err := s.DeleteSecret(ctx, "a1", "EMPTY"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("DeleteSecret twice = %v, want ErrNotFound", err)
	}
	if err := s.DeleteSecret(ctx, "a2", "DB_PASSWORD"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("DeleteSecret of another agent's name = %v, want ErrNotFound", err)
	}
	delete(want, "EMPTY")
	check(t, "SecretValues(a1) after delete", mustSecretValues(t, s, "a1"), want)
}

func testSecretErrors(t *testing.T, s core.SecretStore) {
	ctx := t.Context()
	for _, name := range []string{"", "1ABC", "A-B", "A B", "PATH", "HOME", "RUNAGENT_X", "PYTHONPATH", "LD_PRELOAD", "HTTPS_PROXY", strings.Repeat("A", 129), "ÄB"} {
		checkCode(t, fmt.Sprintf("PutSecret(%q)", name), s.PutSecret(ctx, &core.Secret{AgentID: "a1", Name: name, UpdatedBy: "x"}, "v"), core.CodeValidation)
	}
	checkCode(t, "PutSecret(too big)", s.PutSecret(ctx, &core.Secret{AgentID: "a1", Name: "BIG", UpdatedBy: "x"}, strings.Repeat("x", core.MaxSecretValue+1)), core.CodeValidation)
	mustPutSecret(t, s, "a1", "MAX", strings.Repeat("x", core.MaxSecretValue))
	if got := mustSecretValues(t, s, "a1"); len(got) != 1 || len(got["MAX"]) != core.MaxSecretValue {
		t.Errorf("after refused puts the agent has %d secrets", len(got))
	}
}

func testSecretLimit(t *testing.T, s core.SecretStore) {
	for i := range core.MaxSecretsPerAgent {
		mustPutSecret(t, s, "a1", fmt.Sprintf("S%03d", i), "v")
	}
	checkCode(t, "PutSecret past the limit", s.PutSecret(t.Context(), &core.Secret{AgentID: "a1", Name: "ONE_MORE", UpdatedBy: "x"}, "v"), core.CodeValidation)
	// Replacing one at the limit is fine.
	mustPutSecret(t, s, "a1", "S000", "w")
	if got := mustSecretValues(t, s, "a1"); len(got) != core.MaxSecretsPerAgent || got["S000"] != "w" {
		t.Errorf("at the limit: %d secrets, S000 = %q", len(got), got["S000"])
	}
}
