package executor

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// Sandbox reuse per user_id.
//
// An agent that sets resources.reuse_per_user keeps the sandbox of an
// invocation that carries a user_id after the invocation answers, for the
// next invocation of the same agent version (same pool key) and the same
// user_id: its interpreter, imported modules, globals, /tmp and what it
// wrote beside its code (the agent directory's writable layer) carry over,
// so a conversational agent can keep per-user state without a store. Such
// a sandbox is "kept". It is never handed to another user_id, to another
// caller (principal) naming the same user_id, to an invocation without a
// user_id, or to another version of the agent.
//
// Only a run that ended cleanly is kept: the guest answered with a result
// or with an error of the agent's own (not a protocol or sandbox error),
// nothing stopped it (deadline, caller gone, shutdown), and its logs could
// be cut at the mark the guest writes after each call. Anything else
// destroys the sandbox as usual, so a run that hit a limit or broke the
// protocol never serves again. The deadline, output caps and per-call
// environment are per invocation; cgroup limits apply to the sandbox's
// whole life.
//
// Bounds. A user_id has at most one kept sandbox per version (a second,
// concurrent run of the same user gets a fresh sandbox, destroyed after
// it). At most ReuseMax sandboxes are kept (parking one more destroys the
// least recently used); one unused for ReuseIdle is destroyed; one that
// served ReuseRuns invocations is destroyed after the last. Kept sandboxes
// are not runs and do not count against MaxConcurrent. While kept, a
// watcher reads the control channel as for pooled sandboxes, so a guest
// that dies or writes out of turn is destroyed at once.

// reuseKey returns the key under which req's sandbox may be kept, or ""
// if it may not.
func (e *Executor) reuseKey(req Request) string {
	if req.UserID == "" || req.Config == nil || !req.Config.Resources.ReusePerUser || e.cfg.ReuseMax <= 0 || len(req.Mounts) > 0 {
		return ""
	}
	key, _, ok := poolInit(req)
	if !ok {
		return ""
	}
	return key + "\x00" + req.Caller + "\x00" + req.UserID
}

// unkeep takes the kept sandbox of key, if there is one and its guest is
// still there.
func (e *Executor) unkeep(key string) *warm {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.kept[key]
	if w == nil || e.closed {
		return nil
	}
	delete(e.kept, key)
	w.idle.Stop()
	if !w.claim() {
		e.stats.dead++
		e.destroyLocked(w)
		return nil
	}
	e.stats.reused++
	return w
}

// keep parks w under its key; it reports false (and the caller destroys
// w) when the executor is closing or the user already has a kept sandbox.
func (e *Executor) keep(w *warm) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.kept[w.reuseKey] != nil {
		return false
	}
	if len(e.kept) >= e.cfg.ReuseMax {
		var lru *warm
		for _, k := range e.kept {
			if lru == nil || k.keptAt.Before(lru.keptAt) {
				lru = k
			}
		}
		e.unkeepLocked(lru)
	}
	w.keptAt = time.Now()
	e.kept[w.reuseKey] = w
	w.idle = time.AfterFunc(e.cfg.ReuseIdle, func() { e.keptGone(w, false) })
	w.watch(func(w *warm) { e.keptGone(w, true) })
	return true
}

// keptGone destroys w if it is still kept: its idle time ran out, or its
// guest went away.
func (e *Executor) keptGone(w *warm, dead bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.kept[w.reuseKey] != w {
		return // taken, or destroyed by whoever removed it
	}
	if dead {
		e.stats.dead++
	}
	e.unkeepLocked(w)
}

// unkeepLocked removes w from the kept sandboxes and destroys it.
func (e *Executor) unkeepLocked(w *warm) {
	delete(e.kept, w.reuseKey)
	w.idle.Stop()
	e.destroyLocked(w)
}

// logMark returns a fresh mark for the guest to write after a kept call:
// unguessable, so an agent's own output cannot end another call's logs
// early by accident.
func logMark() string {
	var b [16]byte
	rand.Read(b[:])
	return "--runagent-call-end-" + hex.EncodeToString(b[:]) + "--"
}

// tryKeep keeps the run's sandbox for the next invocation of the same
// user, if the run allows it (see above), and records the run's exit with
// this call's logs. Preconditions: the run is closing, and its deadline
// timer and cancellation watch are stopped (kill ignores them once the run
// finished, so they cannot act on a kept sandbox).
func (r *Run) tryKeep() bool {
	e := r.e
	r.mu.Lock()
	ok := r.reuseKey != "" && r.reason == stopNone && r.finished && !r.noReuse
	r.mu.Unlock()
	if !ok || r.keptRuns+1 >= e.cfg.ReuseRuns {
		return false
	}
	cut, isCutter := r.sb.(sandbox.LogCutter)
	if !isCutter || r.conn.Again() != nil {
		return false
	}
	logs, truncated, ok := cut.CutLogs(r.mark, markWait)
	if !ok {
		return false
	}
	r.exit = sandbox.Exit{Logs: logs, Truncated: truncated, Duration: time.Since(r.started)}
	w := &warm{sb: r.sb, conn: r.conn, hello: r.hello, reuseKey: r.reuseKey, agentDir: r.agentDir, runs: r.keptRuns + 1}
	// If it is not kept after all, Close reports these logs before what
	// the sandbox writes until it ends.
	return e.keep(w)
}

// keepNow keeps a reusable run's sandbox as soon as the guest has
// answered, before the caller sees the answer: a user's next call, sent
// the moment this one's answer arrives, must find the sandbox kept, not
// still being closed. Close then only reports the exit.
func (r *Run) keepNow() {
	if r.reuseKey == "" || r.keepTried {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.stopCtx != nil {
		r.stopCtx()
	}
	r.keepTried, r.keptNow = true, r.tryKeep()
}

// markWait bounds the wait for a kept call's log mark, which the guest
// writes right after its answer.
const markWait = time.Second

// guestRefusedCall reports whether a failure means the guest must not be
// invoked again (it rejected the host's frame or could not isolate).
func guestRefusedCall(f *guest.Failure) bool {
	return f.Code == guest.CodeProtocolError || f.Code == guest.CodeSandboxError
}
