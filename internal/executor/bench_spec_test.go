package executor

import (
	"testing"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// BenchmarkSpec is the sandbox spec built for every invocation (limits,
// egress policy, environment).
func BenchmarkSpec(b *testing.B) {
	e, err := New(Config{Backend: sandboxtest.EchoBackend{}, Interpreters: []Interpreter{{Python: "python3", ShimPath: "/unused"}}, PoolSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(b.Context())
	req := Request{AgentDir: "/agents/a", Entrypoint: core.Entrypoint{Tag: "chat", File: "main.py", Module: "chat"},
		Config: &core.AgentConfig{AgentID: "a", EnvVars: map[string]string{"MODEL": "m"},
			Resources: core.Resources{MemoryMB: 256, TimeoutSeconds: 30},
			Network:   core.NetworkPolicy{Mode: core.NetworkEgress, Allow: []core.EgressRule{{Host: "api.example.com", Ports: []int{443}}}}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.spec(req); err != nil {
			b.Fatal(err)
		}
	}
}
