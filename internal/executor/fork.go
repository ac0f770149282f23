package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// Fork servers (Config.Fork).
//
// With a backend that can start fork servers (sandbox.TemplateStarter:
// the linux backend), each agent version's pool also holds a template: a
// guest that imported all of the version's entrypoints once. Its pooled
// sandboxes, and the cold starts of a version whose pool is empty, are
// forked from it instead of started: a run costs a fork and its
// namespaces instead of a new Python and supervisor. The template is
// started when the version first needs a sandbox (its first request
// waits for it, about as long as a cold start) and holds no secrets: they
// come in each run's invoke.
//
// A version whose template refuses forks (its import left threads or
// processes running, or a file open for writing: hello says why) or that
// the backend says can never have one (sandbox.NotForkableError:
// no-process-creation, an output directory, egress without a proxy that
// serves a run's listener, no root) is never forked: its sandboxes start
// as without Fork. One whose template failed to start (crashed, timed
// out) starts its sandboxes so for templateRetry, then tries a template
// again. A template whose fork fails
// (it crashed, say) is killed and replaced at the next need; the sandbox
// that needed it is started instead. A new version has a new pool, so a
// new template; dropping a pool (idle, evicted, Shutdown) kills its
// template, and the runs forked from it end with it.

// forkState is a pool's template, guarded by its own mutex (starting a
// template takes as long as a cold start; the executor's lock is not
// held).
type forkState struct {
	mu       sync.Mutex
	tmpl     sandbox.Template
	unusable string    // why this version is never forked, once known
	retryAt  time.Time // after a template failed to start, when to try again
	dropped  bool
	// live says, without the mutex (held through a template's start),
	// whether tmpl is set: the pool's runs are forked, so they take
	// late mounts (sandbox.Mounter).
	live atomic.Bool
}

// templateRetry is how long a version whose template failed to start (a
// crash or a timeout of its import, a host without what it needs) starts
// a sandbox per run before it tries a template again.
const templateRetry = 30 * time.Second

// template returns p's template, starting it if p has none; nil when p's
// sandboxes are not forked.
func (e *Executor) template(p *pool, spec sandbox.Spec) sandbox.Template {
	ts, ok := e.cfg.Backend.(sandbox.TemplateStarter)
	if !e.cfg.Fork || !ok {
		return nil
	}
	f := &p.fork
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tmpl != nil || f.unusable != "" || f.dropped || time.Now().Before(f.retryAt) {
		return f.tmpl
	}
	ctx, cancel := context.WithTimeout(e.bg, e.cfg.StartTimeout)
	defer cancel()
	spec.ID = "tmpl-" + spec.ID
	t, err := ts.StartTemplate(ctx, spec)
	if nf, ok := errors.AsType[*sandbox.NotForkableError](err); ok {
		f.unusable = nf.Reason
		return nil
	}
	if err != nil {
		e.logf("agent %s: no fork server (its runs start a sandbox each; trying again in %v): %v", spec.AgentID, templateRetry, err)
		f.retryAt = time.Now().Add(templateRetry)
		return nil
	}
	init := p.init
	dirs := t.GuestDirs()
	init.AgentDir, init.EnvDir = dirs.Agent, dirs.Env
	hello, err := guest.NewConn(t.Conn(), e.cfg.MaxFrame).Init(ctx, init)
	if err == nil && hello.ForkRefused != "" {
		e.logf("agent %s: not forked, its runs start a sandbox each: %s", spec.AgentID, hello.ForkRefused)
		f.unusable = hello.ForkRefused
	}
	if err != nil || f.unusable != "" {
		t.Kill()
		e.reap(t)
		if err != nil {
			// An import that fails is in the hello; this is a template
			// that crashed or did not answer.
			e.logf("agent %s: its fork server did not start (its runs start a sandbox each; trying again in %v): %v", spec.AgentID, templateRetry, err)
			f.retryAt = time.Now().Add(templateRetry)
		}
		return nil
	}
	f.tmpl = t
	f.live.Store(true)
	e.templates.Add(1)
	return t
}

// forkFailed drops p's template t after a failed fork; the next need
// starts a new one.
func (e *Executor) forkFailed(p *pool, t sandbox.Template, err error) {
	f := &p.fork
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tmpl == t {
		f.tmpl = nil
		f.live.Store(false)
		e.templates.Add(-1)
		e.logf("a fork server of %s failed (%v); replacing it", p.req.AgentDir, err)
		t.Kill()
		e.reap(t)
	}
}

// dropFork kills p's template, if it has one; no other is started.
func (e *Executor) dropFork(p *pool) {
	f := &p.fork
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped = true
	if f.tmpl != nil {
		f.tmpl.Kill()
		e.reap(f.tmpl)
		f.tmpl = nil
		f.live.Store(false)
		e.templates.Add(-1)
	}
}

func (e *Executor) logf(format string, args ...any) {
	e.cfg.Logger.Warn(fmt.Sprintf(format, args...))
}

// reap waits for an ended template in the background.
func (e *Executor) reap(t sandbox.Template) {
	e.bgWork.Add(1)
	go func() {
		defer e.bgWork.Done()
		t.Wait()
	}()
}

// newSandbox starts a sandbox for spec: forked from p's template when
// there is one, else from the backend. The template is of spec without
// its mounts, which the fork gives the run alone.
func (e *Executor) newSandbox(ctx context.Context, p *pool, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if p != nil {
		tspec := spec
		tspec.Mounts = nil
		if t := e.template(p, tspec); t != nil {
			sb, err := t.Fork(ctx, spec.ID, spec.Mounts...)
			if err == nil {
				e.forked.Add(1)
				return sb, nil
			}
			if ctx.Err() != nil {
				return nil, err
			}
			e.forkFailed(p, t, err)
		}
	}
	return e.cfg.Backend.Start(ctx, spec)
}
