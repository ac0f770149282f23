package server

import (
	"context"
	"fmt"
)

// Redeployed says what a [Server.Redeploy] did.
type Redeployed struct {
	AgentID string
	Name    string
	Version string
	// Created is false when the tree packaged to a version deployed
	// before (a change that left the package as it was).
	Created bool
}

// Redeploy deploys the agent project in dir again, as serve did at
// start, and makes it the agent's current version; on failure the
// version served before stays current. It is what serve --reload calls
// when dir's files change.
func (s *Server) Redeploy(ctx context.Context, dir string) (*Redeployed, error) {
	res, err := s.reg.DeployDir(ctx, dir, "")
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", dir, err)
	}
	for _, w := range res.Warnings {
		s.log.Warn("agent config", "dir", dir, "warning", w)
	}
	d := res.Deployment
	if err := s.importDotEnv(ctx, dir, d.AgentID); err != nil {
		return nil, err
	}
	s.log.Info("agent redeployed", "dir", dir, "agent_id", d.AgentID, "version", d.Hash, "new", res.Created)
	return &Redeployed{AgentID: d.AgentID, Name: d.Config.AgentName, Version: d.Hash, Created: res.Created}, nil
}
