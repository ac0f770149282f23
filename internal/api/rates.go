package api

import (
	"context"
	"errors"
	"time"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
)

// Rate limits of credentials: a key's own, its project's, the server's,
// resolved by the rateBook.

// principalLimit is id's rate limit (see effectiveRate); anonymous
// requests get the server's.
func (rb *rateBook) principalLimit(ctx context.Context, id auth.Identity) (ratelimit.Limit, error) {
	if id.Method == auth.MethodAnonymous {
		return rb.rateLimit, nil
	}
	rl, err := rb.effectiveRate(ctx, id.ProjectID, id.RateLimit, id.RateLimitByOwner)
	if err != nil || rl == nil {
		return rb.rateLimit, err
	}
	return toLimit(*rl), nil
}

// projectRate is a project's own rate limit (nil: none), through
// a.projectRates.
func (rb *rateBook) projectRate(ctx context.Context, project string) (*core.RateLimit, error) {
	now := rb.now()
	if rl, ok := rb.projectRates.get(project, now); ok {
		return rl, nil
	}
	p, err := rb.store.Project(ctx, project)
	if errors.Is(err, core.ErrNotFound) {
		// An OIDC token may name a project that does not exist: the
		// server's default applies.
		p, err = &core.Project{}, nil
	}
	if err != nil {
		return nil, err
	}
	rb.projectRates.put(project, p.RateLimit, now)
	return p.RateLimit, nil
}

func toLimit(r core.RateLimit) ratelimit.Limit {
	return ratelimit.Limit{Rate: r.Requests, Period: time.Duration(r.PeriodSeconds) * time.Second, Burst: r.Requests}
}

// grantRate is the rate limit a credential's grant holds (see
// effectiveRate), the server's default spelled out; nil when the server
// limits no rates.
func (rb *rateBook) grantRate(ctx context.Context, project string, own *core.RateLimit, byOwner bool) (*core.RateLimit, error) {
	if rb.limiter == nil {
		return nil, nil
	}
	rl, err := rb.effectiveRate(ctx, project, own, byOwner)
	if err != nil || rl != nil {
		return rl, err
	}
	d := fromLimit(rb.rateLimit)
	return &d, nil
}

// effectiveRate is the rate limit that applies to a credential of project
// with its own limit own (nil: none): own if an owner set it; else the
// project's limit is a ceiling, so own counts only while it lies within
// it; else the project's. Nil means the server's default.
func (rb *rateBook) effectiveRate(ctx context.Context, project string, own *core.RateLimit, byOwner bool) (*core.RateLimit, error) {
	if own != nil && (byOwner || project == "") {
		return own, nil
	}
	var proj *core.RateLimit
	if project != "" {
		var err error
		if proj, err = rb.projectRate(ctx, project); err != nil {
			return nil, err
		}
	}
	if own != nil && (proj == nil || own.Within(*proj)) {
		return own, nil
	}
	return proj, nil
}

// fromLimit expresses a limiter's limit as a stored rate limit: its burst
// per the time the sustained rate takes to refill it (whole seconds, at
// least one), so both compare as they are.
func fromLimit(l ratelimit.Limit) core.RateLimit {
	n := l.Burst
	if n == 0 {
		n = l.Rate
	}
	secs := max(int((l.Period*time.Duration(n)/time.Duration(l.Rate)+time.Second-1)/time.Second), 1)
	return core.RateLimit{Requests: n, PeriodSeconds: secs}
}
