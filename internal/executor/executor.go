package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// Config configures an Executor.
type Config struct {
	Backend  sandbox.Backend
	Python   string // interpreter for the shim
	ShimPath string // host path of the Python shim
	// DefaultTimeout applies when neither the agent nor the caller set one.
	DefaultTimeout time.Duration
	// MaxTimeout caps every deadline.
	MaxTimeout time.Duration
	// StartTimeout bounds sandbox start plus import of the agent.
	StartTimeout time.Duration
	// MaxConcurrent caps runs in progress; Start refuses more with
	// UNAVAILABLE. Default 16 per CPU.
	MaxConcurrent int
	LogLimit      int   // bytes of stdout+stderr kept per run
	MaxFrame      int   // bytes per guest frame
	MaxOutput     int64 // bytes of all chunks and the result of one run
}

func (c *Config) setDefaults() {
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = 120 * time.Second
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = 15 * time.Minute
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 16 * runtime.NumCPU()
	}
	if c.LogLimit <= 0 {
		c.LogLimit = 64 << 10
	}
}

// Executor starts runs. It is safe for concurrent use.
type Executor struct {
	cfg Config

	mu       sync.Mutex
	closed   bool
	starting int // runs admitted, including those not yet in active
	running  sync.WaitGroup
	active   map[*Run]struct{}
}

// New returns an Executor.
func New(cfg Config) (*Executor, error) {
	if cfg.Backend == nil {
		return nil, errors.New("executor: no sandbox backend")
	}
	if cfg.ShimPath == "" || cfg.Python == "" {
		return nil, errors.New("executor: shim path and python interpreter are required")
	}
	cfg.setDefaults()
	return &Executor{cfg: cfg, active: make(map[*Run]struct{})}, nil
}

// Request is one invocation to run.
type Request struct {
	InvocationID string
	AgentDir     string // unpacked, read-only agent code
	Config       *core.AgentConfig
	Entrypoint   core.Entrypoint
	Args         json.RawMessage // JSON array
	Kwargs       json.RawMessage // JSON object
	// Timeout requested by the caller; 0 means the agent's or the default.
	Timeout time.Duration
	// Env is per-invocation environment (agent env_vars, later secrets).
	Env map[string]string
}

// Deadline returns the wall-clock budget of r under cfg.
func (e *Executor) Deadline(r Request) time.Duration {
	d := e.cfg.DefaultTimeout
	if r.Config != nil && r.Config.Resources.TimeoutSeconds > 0 {
		d = time.Duration(r.Config.Resources.TimeoutSeconds * float64(time.Second))
	}
	if r.Entrypoint.TimeoutSeconds > 0 {
		d = time.Duration(r.Entrypoint.TimeoutSeconds * float64(time.Second))
	}
	if r.Timeout > 0 && r.Timeout < d {
		d = r.Timeout
	}
	return min(d, e.cfg.MaxTimeout)
}

// ErrClosed is returned by Start after Shutdown began.
var ErrClosed = &core.Error{Code: core.CodeUnavailable, Message: "the server is shutting down; retry on another node or later"}

// Start starts a run. The run stops when ctx is cancelled (the caller went
// away), when its deadline passes, or when the guest finishes. The caller
// must call Run.Close.
func (e *Executor) Start(ctx context.Context, r Request) (*Run, error) {
	if r.Entrypoint.Kind == core.KindWebhook {
		return nil, core.Errorf(core.CodeValidation, "entrypoint %q is a webhook entrypoint; webhook entrypoints are not supported by this server yet", r.Entrypoint.Tag)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if e.starting >= e.cfg.MaxConcurrent {
		e.mu.Unlock()
		return nil, core.Errorf(core.CodeUnavailable, "the server is running its maximum of %d invocations; retry shortly", e.cfg.MaxConcurrent)
	}
	e.starting++
	e.running.Add(1)
	e.mu.Unlock()

	run := &Run{
		e:        e,
		started:  time.Now(),
		deadline: e.Deadline(r),
		stream:   r.Entrypoint.Streaming(),
		done:     make(chan struct{}),
	}
	if err := run.start(ctx, r); err != nil {
		run.Close()
		return nil, err
	}
	return run, nil
}

// Shutdown stops new runs and waits for running ones to finish until ctx
// ends; then it kills what is left and waits for it to be reaped.
func (e *Executor) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	waited := make(chan struct{})
	go func() { e.running.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
	}
	e.mu.Lock()
	for r := range e.active {
		r.kill(stopShutdown)
	}
	e.mu.Unlock()
	<-waited
	return ctx.Err()
}

// Active returns the number of runs in progress.
func (e *Executor) Active() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.active)
}

type stopReason int

const (
	stopNone stopReason = iota
	stopTimeout
	stopCancelled
	stopShutdown
	stopClosed
)

// Run is one invocation in progress.
type Run struct {
	e        *Executor
	sb       sandbox.Sandbox
	conn     *guest.Conn
	started  time.Time
	deadline time.Duration
	stream   bool
	timer    *time.Timer
	stopCtx  func() bool

	waitOnce sync.Once

	mu       sync.Mutex
	reason   stopReason
	finished bool // result or error received
	closed   bool
	exit     sandbox.Exit
	done     chan struct{}
	chunks   int
}

func (r *Run) start(ctx context.Context, req Request) error {
	e := r.e
	sb, err := e.cfg.Backend.Start(ctx, sandbox.Spec{
		AgentDir: req.AgentDir,
		ShimPath: e.cfg.ShimPath,
		Python:   e.cfg.Python,
		LogLimit: e.cfg.LogLimit,
	})
	if err != nil {
		return &core.Error{Code: core.CodeInternal, Message: "could not start the agent sandbox", Err: err}
	}
	r.sb = sb
	e.mu.Lock()
	e.active[r] = struct{}{}
	e.mu.Unlock()

	r.timer = time.AfterFunc(r.deadline, func() { r.kill(stopTimeout) })
	r.stopCtx = context.AfterFunc(ctx, func() { r.kill(stopCancelled) })

	r.conn = guest.NewConn(sb.Conn(), e.cfg.MaxFrame)
	if e.cfg.MaxOutput > 0 {
		r.conn.SetMaxOutput(e.cfg.MaxOutput)
	}
	initCtx, cancel := context.WithTimeout(ctx, min(e.cfg.StartTimeout, r.deadline))
	defer cancel()
	hello, err := r.conn.Init(initCtx, guest.Init{
		AgentDir:    req.AgentDir,
		Entrypoints: []guest.EntrypointRef{{Tag: req.Entrypoint.Tag, File: req.Entrypoint.File, Module: req.Entrypoint.Module}},
	})
	if err != nil {
		return r.failure(err)
	}
	for _, st := range hello.Entrypoints {
		if st.Tag == req.Entrypoint.Tag && !st.OK {
			r.finished = true
			return r.failure(st.Error)
		}
	}
	env := make(map[string]string, len(req.Env)+len(req.Config.EnvVars))
	for k, v := range req.Config.EnvVars {
		env[k] = v
	}
	for k, v := range req.Env {
		env[k] = v
	}
	args, kwargs := req.Args, req.Kwargs
	if len(args) == 0 {
		args = json.RawMessage("[]")
	}
	if len(kwargs) == 0 {
		kwargs = json.RawMessage("{}")
	}
	if err := r.conn.Invoke(guest.Invoke{
		ID: req.InvocationID, Tag: req.Entrypoint.Tag, Args: args, Kwargs: kwargs,
		Stream: r.stream, Env: env,
	}); err != nil {
		return r.failure(err)
	}
	return nil
}

// Next returns the next event: chunks of a stream as the agent yields
// them, then one Result event (whose Value is null for streams). After the
// result, or on error, the run is over; errors are *core.Error.
func (r *Run) Next() (guest.Event, error) {
	if r.isFinished() {
		return guest.Event{}, io.EOF
	}
	ev, err := r.conn.Next()
	if err != nil {
		r.mu.Lock()
		r.finished = true
		r.mu.Unlock()
		return guest.Event{}, r.failure(err)
	}
	if ev.Kind == guest.Result {
		r.mu.Lock()
		r.finished = true
		r.mu.Unlock()
	} else {
		r.chunks++
	}
	return ev, nil
}

func (r *Run) isFinished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished
}

// Elapsed is the time since the run started.
func (r *Run) Elapsed() time.Duration { return time.Since(r.started) }

// Close ends the run (killing the sandbox if it is still going), waits for
// it to be reaped and returns how it ended. Safe to call more than once.
func (r *Run) Close() sandbox.Exit {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return r.exit
	}
	r.closed = true
	r.mu.Unlock()
	defer close(r.done)
	defer r.e.running.Done()
	defer func() {
		r.e.mu.Lock()
		r.e.starting--
		r.e.mu.Unlock()
	}()
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.stopCtx != nil {
		r.stopCtx()
	}
	if r.sb == nil {
		return r.exit
	}
	r.kill(stopClosed)
	if r.conn != nil {
		r.conn.Close()
	}
	r.wait()
	r.e.mu.Lock()
	delete(r.e.active, r)
	r.e.mu.Unlock()
	return r.exit
}

// wait waits for the sandbox to end, once.
func (r *Run) wait() {
	r.waitOnce.Do(func() { r.exit = r.sb.Wait() })
}

// exitGrace is how long a guest that closed its channel without an answer
// gets to exit on its own (so its real status is reported) before it is
// killed.
const exitGrace = 2 * time.Second

// kill stops the sandbox, remembering the first reason.
func (r *Run) kill(why stopReason) {
	r.mu.Lock()
	if r.reason == stopNone && !(why == stopClosed && r.finished) {
		r.reason = why
	}
	sb := r.sb
	r.mu.Unlock()
	if sb != nil {
		sb.Kill()
	}
}

func (r *Run) stopReason() stopReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// failure turns an error from the guest connection into a *core.Error,
// taking into account why the sandbox was stopped.
func (r *Run) failure(err error) error {
	switch r.stopReason() {
	case stopTimeout:
		return &core.Error{Code: core.CodeAgentTimeout, Err: err,
			Message: fmt.Sprintf("the agent did not finish within %s and was stopped", r.deadline)}
	case stopCancelled:
		return &core.Error{Code: core.CodeCancelled, Message: "the caller went away; the run was stopped", Err: err}
	case stopShutdown:
		return &core.Error{Code: core.CodeUnavailable, Message: "the server shut down before the agent finished", Err: err}
	}
	if f, ok := errors.AsType[*guest.Failure](err); ok {
		return agentFailure(f)
	}
	if errors.Is(err, guest.ErrClosed) || errors.Is(err, io.EOF) {
		// The guest went away without an answer: report how it ended.
		t := time.AfterFunc(exitGrace, func() { r.sb.Kill() })
		r.wait()
		t.Stop()
		exit := r.Close()
		return &core.Error{
			Code:    core.CodeAgentError,
			Message: exitMessage(exit),
			Details: AgentErrorDetails{Type: "ProcessExit", ExitCode: &exit.Code, Traceback: tail(exit.Logs, 2048)},
			Err:     err,
		}
	}
	if _, ok := errors.AsType[*guest.ProtocolError](err); ok {
		return &core.Error{Code: core.CodeAgentError, Message: "the agent broke the guest protocol: " + err.Error(), Err: err}
	}
	return &core.Error{Code: core.CodeInternal, Message: "the agent sandbox failed", Err: err}
}

// AgentErrorDetails is the client-visible detail of an AGENT_ERROR.
type AgentErrorDetails struct {
	Type      string `json:"type"`
	Traceback string `json:"traceback,omitempty"`
	ExitCode  *int   `json:"exit_code"`
	GuestCode string `json:"guest_code,omitempty"`
}

func agentFailure(f *guest.Failure) *core.Error {
	msg := f.Message
	switch f.Code {
	case "SERIALIZATION_ERROR":
		msg = "the agent's output is not JSON: " + f.Message
	case "ENTRYPOINT_ERROR":
		msg = "the entrypoint could not be loaded: " + f.Message
	}
	if msg == "" {
		msg = f.Type
	}
	return &core.Error{
		Code:    core.CodeAgentError,
		Message: msg,
		Details: AgentErrorDetails{Type: f.Type, Traceback: f.Traceback, GuestCode: f.Code},
		Err:     f,
	}
}

func exitMessage(x sandbox.Exit) string {
	if x.Signal != "" {
		return fmt.Sprintf("the agent process was killed by %s before returning a result", x.Signal)
	}
	return fmt.Sprintf("the agent process exited with status %d before returning a result", x.Code)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return s
}
