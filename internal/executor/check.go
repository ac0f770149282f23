package executor

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
)

// CheckLoad starts a sandbox for an agent version — its code, its
// environment, its config's limits and network — has the guest import
// every entrypoint, and returns the guest's hello: which loaded, with the
// failure of each that did not. The sandbox serves nothing and is
// destroyed. A deploy calls it before the version becomes current.
func (e *Executor) CheckLoad(ctx context.Context, agentDir, envDir string, cfg *core.AgentConfig) (guest.Hello, error) {
	req := Request{InvocationID: "load-" + uuid.NewString(), AgentDir: agentDir, EnvDir: envDir, Config: cfg}
	for _, ep := range cfg.Entrypoints {
		if ep.Kind != core.KindWebhook {
			req.Entrypoint = ep
			break
		}
	}
	_, init, ok := poolInit(req)
	if !ok || len(init.Entrypoints) == 0 {
		return guest.Hello{}, &core.Error{Code: core.CodeValidation, Message: "the agent has no Python entrypoint to load"}
	}
	spec, err := e.spec(req)
	if err != nil {
		return guest.Hello{}, err
	}
	sb, err := e.cfg.Backend.Start(ctx, spec)
	if err != nil {
		return guest.Hello{}, &core.Error{Code: core.CodeInternal, Message: "could not start a sandbox for the load check", Err: err}
	}
	conn := guest.NewConn(sb.Conn(), e.cfg.MaxFrame)
	ictx, cancel := context.WithTimeout(ctx, e.cfg.StartTimeout)
	defer cancel()
	hello, err := conn.Init(ictx, guestInit(init, sb, spec))
	sb.Kill()
	exit := sb.Wait()
	if err != nil {
		return guest.Hello{}, &core.Error{Code: core.CodeValidation,
			Message: fmt.Sprintf("the agent's Python did not start (within %s): %v; its output: %s", e.cfg.StartTimeout.Round(time.Second), err, tail(exit.Logs, 2000)), Err: err}
	}
	return hello, nil
}
