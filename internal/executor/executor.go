package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// Interpreter is a Python the executor runs agents with.
type Interpreter struct {
	// Name is what an agent chooses it by (core.AgentConfig.Runtime,
	// e.g. "3.12").
	Name     string
	Python   string // host path of the interpreter
	ShimPath string // host path of the shim, compiled for this interpreter
}

// Config configures an Executor.
type Config struct {
	Backend sandbox.Backend
	// Interpreters are the Pythons agents run with, the first the
	// default: an agent whose config names no runtime gets it.
	Interpreters []Interpreter
	// DefaultTimeout applies when neither the agent nor the caller set one.
	DefaultTimeout time.Duration
	// MaxTimeout caps every deadline.
	MaxTimeout time.Duration
	// StartTimeout bounds sandbox start plus import of the agent.
	StartTimeout time.Duration
	// MaxConcurrent caps runs in progress; more wait in a fair queue
	// (queue.go). Default 16 per CPU.
	MaxConcurrent int
	// QueueWait bounds how long a run waits for a slot before it is
	// refused with UNAVAILABLE (never past its deadline or its context).
	// Default DefaultQueueWait; negative: no queue, a run that finds
	// every slot taken is refused at once.
	QueueWait time.Duration
	// QueueMax bounds the runs waiting; more are refused at once.
	// Default DefaultQueuePerSlot per MaxConcurrent.
	QueueMax int
	LogLimit int // bytes of stdout+stderr kept per run
	// DefaultLimits apply to what an agent's resources leave out, and
	// MaxLimits bound what it may ask for (zero fields: the sandbox
	// package's defaults).
	DefaultLimits, MaxLimits sandbox.Limits
	MaxFrame                 int   // bytes per guest frame
	MaxOutput                int64 // bytes of all chunks and the result of one run

	// PoolSize is the least number of started, initialised sandboxes
	// kept ready per agent version that has served a request recently
	// (see pool.go); above it the pool follows the arrival rate, up to
	// PoolMax. 0 disables the warm pool: every run cold starts, exactly
	// as without a pool. DefaultPoolSize is the recommended value.
	PoolSize int
	// PoolMax bounds the pooled sandboxes (ready or starting) of one
	// version, however high the arrival rate; it is at most MaxConcurrent
	// but never below PoolSize (PoolMax <= PoolSize: a fixed pool).
	// Default DefaultPoolMax.
	PoolMax int
	// PoolHeadroom multiplies the sandboxes a version needs to cover the
	// runs that arrive while one starts (arrival rate × start time).
	// Default DefaultPoolHeadroom.
	PoolHeadroom float64
	// PoolMemory is the memory budget of all pooled sandboxes together
	// (ready or starting), in bytes: refills stop where one more would
	// exceed it. Each costs what the sandbox reports it uses, if it can
	// (memoryReporter), else SandboxMemory. Default DefaultPoolMemory.
	PoolMemory int64
	// SandboxMemory is the estimated memory of one ready sandbox, for
	// backends that cannot measure it. Default DefaultSandboxMemory.
	SandboxMemory int64
	// rateWindow is the time constant of the arrival rate's moving
	// average, scaleEvery how often a pool above PoolSize is resized
	// while demand falls (tests shorten them).
	rateWindow, scaleEvery time.Duration
	// PoolIdle is how long a version's pool lives without requests before
	// its sandboxes are stopped. Default 5 minutes.
	PoolIdle time.Duration
	// PoolMaxVersions bounds the agent versions that have a pool; a new
	// one evicts the least recently used. Default 8. With MaxConcurrent it
	// bounds all sandboxes: at most MaxConcurrent running plus
	// PoolSize*PoolMaxVersions pooled (ready or starting).
	PoolMaxVersions int
	// PoolRefills bounds pool refills in progress across all versions, so
	// that refilling does not starve running invocations of CPU. Default
	// max(1, NumCPU/2).
	PoolRefills int

	// ReuseMax bounds the sandboxes kept for the next invocation of the
	// same user_id, for agents that opt in with resources.reuse_per_user
	// (see reuse.go); beyond it the least recently used is destroyed.
	// Default 32; negative disables reuse.
	ReuseMax int
	// ReuseIdle is how long a kept sandbox waits for its user's next
	// invocation before it is destroyed. Default 2 minutes.
	ReuseIdle time.Duration
	// ReuseRuns caps the invocations one kept sandbox serves. Default 100.
	ReuseRuns int

	// Fork makes each pooled version's sandboxes forks of a template that
	// imported the agent once, where the backend can (fork.go).
	Fork bool
	// Logger receives what the executor decides on its own (a version
	// not forked, a template replaced); nil discards it.
	Logger *slog.Logger
}

// Defaults of what Config leaves zero (and PoolSize's recommended value).
const (
	DefaultRunTimeout = 120 * time.Second // Config.DefaultTimeout
	DefaultMaxTimeout = 15 * time.Minute
	// DefaultConcurrentPerCPU times the CPUs is the default MaxConcurrent.
	DefaultConcurrentPerCPU = 16
	// DefaultPoolSize is the recommended PoolSize: one sandbox to serve
	// the next request and one to cover a second that arrives while the
	// first refill is still starting; each idle Python guest costs its
	// interpreter's memory (10-20 MB for a trivial agent, more with heavy
	// imports).
	DefaultPoolSize = 2
	// DefaultPoolMax is the default PoolMax.
	DefaultPoolMax = 32
	// DefaultPoolHeadroom is the default PoolHeadroom: twice what the
	// measured rate needs, so a burst that doubles it is still warm.
	DefaultPoolHeadroom = 2.0
	// DefaultPoolMemory is the default PoolMemory, 1 GiB.
	DefaultPoolMemory int64 = 1 << 30
	// DefaultSandboxMemory is the default SandboxMemory: a Python guest
	// that imported a modest agent, plus the sandbox's own overhead.
	DefaultSandboxMemory int64 = 32 << 20
	DefaultPoolIdle            = 5 * time.Minute
	DefaultReuseMax            = 32
	DefaultReuseIdle           = 2 * time.Minute
	// DefaultQueueWait is the default QueueWait: long enough to ride out
	// a burst, short enough that a client's retry is not much later.
	DefaultQueueWait = 10 * time.Second
	// DefaultQueuePerSlot times MaxConcurrent is the default QueueMax.
	DefaultQueuePerSlot = 4
)

// DefaultMaxConcurrent is the default MaxConcurrent on this machine.
func DefaultMaxConcurrent() int { return DefaultConcurrentPerCPU * runtime.NumCPU() }

func (c *Config) setDefaults() {
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = DefaultRunTimeout
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent()
	}
	if c.QueueWait == 0 {
		c.QueueWait = DefaultQueueWait
	}
	if c.QueueMax <= 0 {
		c.QueueMax = DefaultQueuePerSlot * c.MaxConcurrent
	}
	if c.LogLimit <= 0 {
		c.LogLimit = 64 << 10
	}
	if c.PoolSize < 0 {
		c.PoolSize = 0
	}
	if c.PoolMax <= 0 {
		c.PoolMax = DefaultPoolMax
	}
	c.PoolMax = max(min(c.PoolMax, c.MaxConcurrent), c.PoolSize)
	if c.PoolHeadroom <= 0 {
		c.PoolHeadroom = DefaultPoolHeadroom
	}
	if c.PoolMemory <= 0 {
		c.PoolMemory = DefaultPoolMemory
	}
	if c.SandboxMemory <= 0 {
		c.SandboxMemory = DefaultSandboxMemory
	}
	if c.rateWindow <= 0 {
		c.rateWindow = 2 * time.Second
	}
	if c.scaleEvery <= 0 {
		c.scaleEvery = time.Second
	}
	if c.PoolIdle <= 0 {
		c.PoolIdle = DefaultPoolIdle
	}
	if c.PoolMaxVersions <= 0 {
		c.PoolMaxVersions = 8
	}
	if c.PoolRefills <= 0 {
		c.PoolRefills = max(1, runtime.NumCPU()/2)
	}
	if c.ReuseMax == 0 {
		c.ReuseMax = DefaultReuseMax
	}
	if c.ReuseIdle <= 0 {
		c.ReuseIdle = DefaultReuseIdle
	}
	if c.ReuseRuns <= 0 {
		c.ReuseRuns = 100
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Executor starts runs. It is safe for concurrent use.
type Executor struct {
	cfg Config

	mu       sync.Mutex
	closed   bool
	starting int // runs admitted (holding a slot), including those not yet in active
	running  sync.WaitGroup
	active   map[*Run]struct{}
	queue    fairQueue // runs waiting for a slot

	pools  map[string]*pool // by poolKey; guarded by mu
	kept   map[string]*warm // by reuseKey; guarded by mu
	refill chan struct{}    // semaphore of refills in progress
	bg     context.Context  // ends at Shutdown: stops refills
	stopBg context.CancelFunc
	bgWork sync.WaitGroup // refills and reaps of pooled sandboxes
	stats  counters
	// Estimates for pool sizing: the time a pooled sandbox takes to
	// start and say hello, and the memory one uses when the backend
	// reports it (0: SandboxMemory). Guarded by mu.
	startEst time.Duration
	memEst   int64
	sbSeq    atomic.Uint64
	sbEpoch  string

	forked    atomic.Uint64 // sandboxes forked from templates
	templates atomic.Int64  // templates running
}

// New returns an Executor.
func New(cfg Config) (*Executor, error) {
	if cfg.Backend == nil {
		return nil, errors.New("executor: no sandbox backend")
	}
	if len(cfg.Interpreters) == 0 {
		return nil, errors.New("executor: no Python interpreter")
	}
	for _, in := range cfg.Interpreters {
		if in.ShimPath == "" || in.Python == "" {
			return nil, fmt.Errorf("executor: interpreter %q needs a path and a shim", in.Name)
		}
	}
	cfg.setDefaults()
	e := &Executor{
		cfg:     cfg,
		active:  make(map[*Run]struct{}),
		pools:   make(map[string]*pool),
		kept:    make(map[string]*warm),
		refill:  make(chan struct{}, cfg.PoolRefills),
		sbEpoch: strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	e.bg, e.stopBg = context.WithCancel(context.Background())
	return e, nil
}

// Request is one invocation to run.
type Request struct {
	InvocationID string
	AgentDir     string // unpacked, read-only agent code
	// EnvDir is the agent version's built Python environment (a
	// directory holding site-packages/), or "" for none: the sandbox
	// shows it to the guest (sandbox.Spec.EnvDir), and the init frame
	// names it. Versions with different environments never share a
	// pooled or kept sandbox.
	EnvDir     string
	Config     *core.AgentConfig
	Entrypoint core.Entrypoint
	Args       json.RawMessage // JSON array
	Kwargs     json.RawMessage // JSON object
	// Timeout requested by the caller; 0 means the agent's or the default.
	Timeout time.Duration
	// Env is per-invocation environment, over the agent's env_vars.
	Env map[string]string
	// Secrets are the agent's secrets: set in the invocation's
	// environment over Env, and redacted from its logs and error details.
	Secrets map[string]string
	// UserID is the caller's user_id, and Caller the principal making
	// the call: agents with reuse_per_user keep a sandbox per caller and
	// user_id (reuse.go), so one principal cannot name another's user_id
	// to reach that user's sandbox.
	UserID, Caller string
	// Mounts are host directories shown read-write to this run's
	// sandbox only (sandbox.Mount: persistent memory). A run with mounts
	// takes a pooled sandbox only if it can be given them before its
	// invoke (sandbox.Mounter: a run forked from the version's template,
	// whose waiter attaches them), never a kept one, and its sandbox is
	// never kept for the next run: without such a pooled sandbox it is
	// forked on demand from the version's template when it has one, else
	// started, and destroyed after the run.
	Mounts []sandbox.Mount
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

// Start starts a run, first waiting for a slot if MaxConcurrent runs are
// in progress (queue.go). The run stops when ctx is cancelled (the caller
// went away), when its deadline passes (counted from the call to Start,
// the wait included), or when the guest finishes. The caller must call
// Run.Close.
func (e *Executor) Start(ctx context.Context, r Request) (*Run, error) {
	if r.Entrypoint.Kind == core.KindWebhook {
		return nil, core.Errorf(core.CodeValidation, "entrypoint %q is a webhook entrypoint; webhook entrypoints are not supported by this server yet", r.Entrypoint.Tag)
	}
	started := time.Now()
	deadline := e.Deadline(r)
	if err := e.admit(ctx, r, deadline); err != nil {
		return nil, err
	}

	run := &Run{
		e:        e,
		started:  started,
		deadline: deadline,
		stream:   r.Entrypoint.Streaming(),
		done:     make(chan struct{}),
		redact:   newRedactor(r.Secrets),
	}
	run.reuseKey = e.reuseKey(r)
	run.agentDir = r.AgentDir
	if r.Config != nil {
		run.agentID = r.Config.AgentID
	}
	var p *pool
	var w *warm
	switch {
	case len(r.Mounts) > 0:
		p, w = e.take(r) // a pooled run that takes late mounts, or its template
	default:
		if w = e.unkeep(run.reuseKey); w != nil {
			run.kept, run.keptRuns = true, w.runs
		} else {
			p, w = e.take(r)
		}
	}
	var err error
	if w != nil {
		err = run.startWarm(ctx, r, w)
	} else {
		err = run.start(ctx, r, p)
	}
	if p != nil && (len(r.Mounts) == 0 || run.warm) {
		// Refill after the cold start (not alongside it, competing for
		// CPU) or once the warm run has its invoke. (A run with mounts
		// forked on demand used only the pool's template: it asks no
		// refill.)
		e.mu.Lock()
		if run.coldStart > 0 {
			e.observeStartLocked(p, run.coldStart)
		}
		e.refillLocked(p)
		e.mu.Unlock()
	}
	if err != nil {
		run.Close()
		return nil, err
	}
	return run, nil
}

// Shutdown stops new runs and waits for running ones to finish until ctx
// ends; then it kills what is left and waits for it to be reaped. Before
// that it stops pool refills and kills and reaps every pooled sandbox.
func (e *Executor) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.refuseQueuedLocked(ErrClosed)
	pools := e.pools
	e.pools = make(map[string]*pool)
	for _, p := range pools {
		e.dropLocked(p)
	}
	for _, w := range e.kept {
		e.unkeepLocked(w)
	}
	e.mu.Unlock()
	e.stopBg()
	e.bgWork.Wait()
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
	warm     bool // served from the pool or a kept sandbox
	// coldStart is how long the cold start took, start to hello (0 if
	// warm or failed).
	coldStart time.Duration
	kept      bool // served from a sandbox kept for its user_id
	timer     *time.Timer

	// Reuse per user_id (reuse.go): the key the sandbox may be kept
	// under ("" = destroy it after the run), the mark its guest writes
	// after the call, the guest's hello, and the runs it served before.
	reuseKey string
	agentDir string
	agentID  string
	mark     string
	hello    guest.Hello
	keptRuns int
	noReuse  bool // the guest refused the call: never invoke it again
	// keepNow (or Close) tried to keep the sandbox, and whether it did:
	// then Close has nothing to end.
	keepTried, keptNow bool
	stopCtx            func() bool

	waitOnce sync.Once

	mu       sync.Mutex
	reason   stopReason
	finished bool // result or error received
	closed   bool
	exit     sandbox.Exit
	done     chan struct{}
	chunks   int
	redact   *redactor
}

// spec is the sandbox spec of req's agent version. Everything in it must
// come from what the pool key covers (poolInit): pooled sandboxes are
// started from it before the request that uses them exists. It fails if
// the agent's resources exceed the administrator's maxima.
func (e *Executor) spec(req Request) (sandbox.Spec, error) {
	in, err := e.interpreter(req.Config)
	if err != nil {
		return sandbox.Spec{}, err
	}
	sp := sandbox.Spec{
		ID:       "sb-" + e.sbEpoch + "-" + strconv.FormatUint(e.sbSeq.Add(1), 10),
		AgentDir: req.AgentDir,
		EnvDir:   req.EnvDir,
		ShimPath: in.ShimPath,
		Python:   in.Python,
		LogLimit: e.cfg.LogLimit,
	}
	var res core.Resources
	var net core.NetworkPolicy
	if req.Config != nil {
		sp.AgentID = req.Config.AgentID
		res, net = req.Config.Resources, req.Config.Network
	}
	limits, err := sandbox.LimitsFor(res, e.cfg.DefaultLimits, e.cfg.MaxLimits)
	if err != nil {
		return sandbox.Spec{}, &core.Error{Code: core.CodeValidation, Message: err.Error(), Err: err}
	}
	sp.Limits = limits
	sp.Network = sandbox.NetworkFor(net, res)
	return sp, nil
}

// interpreter returns the interpreter cfg's agent runs with: the one its
// Runtime names, or the default. A version deployed on a server that had
// the interpreter it names may be loaded by one that lacks it: that is
// the operator's to fix, so UNAVAILABLE.
func (e *Executor) interpreter(cfg *core.AgentConfig) (Interpreter, error) {
	if cfg == nil || cfg.Runtime == "" {
		return e.cfg.Interpreters[0], nil
	}
	names := make([]string, len(e.cfg.Interpreters))
	for i, in := range e.cfg.Interpreters {
		if in.Name == cfg.Runtime {
			return in, nil
		}
		names[i] = in.Name
	}
	return Interpreter{}, core.Errorf(core.CodeUnavailable, "the agent asks for Python %s, which this server does not have (it has %s)", cfg.Runtime, strings.Join(names, ", "))
}

// guestInit returns init with the directories of spec where sb shows
// them to its guest (/agent and /env in the linux backend).
func guestInit(init guest.Init, sb sandbox.Sandbox, spec sandbox.Spec) guest.Init {
	dirs := sandbox.DirsOf(sb, spec)
	init.AgentDir, init.EnvDir = dirs.Agent, dirs.Env
	return init
}

// attach makes sb the run's sandbox and starts the deadline timer and the
// cancellation watch: from here on the run counts as active.
func (r *Run) attach(ctx context.Context, sb sandbox.Sandbox) {
	e := r.e
	r.mu.Lock()
	r.sb = sb
	r.mu.Unlock()
	e.mu.Lock()
	e.active[r] = struct{}{}
	e.mu.Unlock()
	r.timer = time.AfterFunc(r.deadline-time.Since(r.started), func() { r.kill(stopTimeout) })
	r.stopCtx = context.AfterFunc(ctx, func() { r.kill(stopCancelled) })
}

// start cold starts a sandbox for req (forked from p's template when it
// has one), initialised with req's entrypoint only, and sends the invoke.
func (r *Run) start(ctx context.Context, req Request, p *pool) error {
	e := r.e
	spec, err := e.spec(req)
	if err != nil {
		return err
	}
	spec.Mounts = req.Mounts
	began := time.Now()
	sb, err := e.newSandbox(ctx, p, spec)
	if err != nil {
		return &core.Error{Code: core.CodeInternal, Message: "could not start the agent sandbox", Err: err}
	}
	r.attach(ctx, sb)

	r.conn = guest.NewConn(sb.Conn(), e.cfg.MaxFrame)
	if e.cfg.MaxOutput > 0 {
		r.conn.SetMaxOutput(e.cfg.MaxOutput)
	}
	initCtx, cancel := context.WithTimeout(ctx, min(e.cfg.StartTimeout, r.deadline))
	defer cancel()
	init := guest.Init{
		Entrypoints: []guest.EntrypointRef{{Tag: req.Entrypoint.Tag, File: req.Entrypoint.File, Module: req.Entrypoint.Module}},
	}
	if r.reuseKey != "" {
		// A kept sandbox may serve the user's calls to any entrypoint.
		_, init, _ = poolInit(req)
	}
	hello, err := r.conn.Init(initCtx, guestInit(init, sb, spec))
	if err != nil {
		return r.failure(err)
	}
	r.coldStart = time.Since(began)
	return r.invoke(req, hello)
}

// startWarm serves req from a pooled sandbox that has already said hello.
// The deadline counts from Start (a queue wait included), not from when
// the sandbox started; the cancellation watch starts now.
func (r *Run) startWarm(ctx context.Context, req Request, w *warm) error {
	r.warm = true
	r.attach(ctx, w.sb)
	r.conn = w.conn
	if r.e.cfg.MaxOutput > 0 {
		r.conn.SetMaxOutput(r.e.cfg.MaxOutput)
	}
	if err := ctx.Err(); err != nil {
		r.kill(stopCancelled)
		return r.failure(err)
	}
	if len(req.Mounts) > 0 {
		// take gave a sandbox.Mounter. One whose mounts failed is dead
		// (the backend kills it) and goes with the run, never back to
		// the pool.
		mctx, cancel := context.WithTimeout(ctx, min(r.e.cfg.StartTimeout, r.deadline))
		err := w.sb.(sandbox.Mounter).AttachMounts(mctx, req.Mounts)
		cancel()
		if err != nil {
			return &core.Error{Code: core.CodeInternal, Message: "could not give the agent sandbox its persistent memory", Err: err}
		}
	}
	return r.invoke(req, w.hello)
}

// invoke checks that req's entrypoint loaded and sends the invoke.
func (r *Run) invoke(req Request, hello guest.Hello) error {
	r.hello = hello
	for _, st := range hello.Entrypoints {
		if st.Tag == req.Entrypoint.Tag && !st.OK {
			r.finished = true
			return r.failure(st.Error)
		}
	}
	env := make(map[string]string, len(req.Env))
	if req.Config != nil {
		for k, v := range req.Config.EnvVars {
			env[k] = v
		}
	}
	for k, v := range req.Env {
		env[k] = v
	}
	for k, v := range req.Secrets {
		env[k] = v
	}
	args, kwargs := req.Args, req.Kwargs
	if len(args) == 0 {
		args = json.RawMessage("[]")
	}
	if len(kwargs) == 0 {
		kwargs = json.RawMessage("{}")
	}
	in := guest.Invoke{
		ID: req.InvocationID, Tag: req.Entrypoint.Tag, Args: args, Kwargs: kwargs,
		Stream: r.stream, Env: env,
	}
	if r.reuseKey != "" {
		r.mark = logMark()
		in.Keep, in.LogMark = true, r.mark
	}
	if err := r.conn.Invoke(in); err != nil {
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
		f, isFailure := errors.AsType[*guest.Failure](err)
		r.mu.Lock()
		r.finished = true
		r.noReuse = !isFailure || guestRefusedCall(f)
		r.mu.Unlock()
		err = r.failure(err)
		r.keepNow()
		return guest.Event{}, err
	}
	if ev.Kind == guest.Result {
		r.mu.Lock()
		r.finished = true
		r.mu.Unlock()
		r.keepNow()
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

// AgentID is the id of the agent the run belongs to.
func (r *Run) AgentID() string { return r.agentID }

// Warm reports whether the run was served by a pooled sandbox.
func (r *Run) Warm() bool { return r.warm }

// Elapsed is the time since the run started.
func (r *Run) Elapsed() time.Duration { return time.Since(r.started) }

// Close ends the run (killing the sandbox if it is still going), waits for
// it to be reaped and returns how it ended. Safe to call more than once.
func (r *Run) Close() sandbox.Exit {
	x := r.close()
	x.Logs = r.redact.apply(x.Logs)
	return x
}

func (r *Run) close() sandbox.Exit {
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
		r.e.releaseLocked()
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
	if r.reuseKey != "" && !r.keepTried {
		r.keepTried, r.keptNow = true, r.tryKeep()
	}
	if r.keptNow {
		r.e.mu.Lock()
		delete(r.e.active, r)
		r.e.mu.Unlock()
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
	r.waitOnce.Do(func() {
		cut := r.exit // logs cut by a tryKeep that did not keep
		r.exit = r.sb.Wait()
		r.exit.Logs = cut.Logs + r.exit.Logs
		r.exit.Truncated = r.exit.Truncated || cut.Truncated
	})
}

// exitGrace is how long a guest that closed its channel without an answer
// gets to exit on its own (so its real status is reported) before it is
// killed.
const exitGrace = 2 * time.Second

// kill stops the sandbox, remembering the first reason. Once the guest
// has answered, the deadline and the caller going away no longer matter:
// Close tears down (or keeps) the sandbox.
func (r *Run) kill(why stopReason) {
	r.mu.Lock()
	if r.finished && (why == stopClosed || why == stopTimeout || why == stopCancelled) {
		if why != stopClosed {
			r.mu.Unlock()
			return
		}
	} else if r.reason == stopNone {
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
		g := *f
		g.Message, g.Traceback = r.redact.apply(f.Message), r.redact.apply(f.Traceback)
		return agentFailure(&g)
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
			Details: AgentErrorDetails{Type: "ProcessExit", ExitCode: &exit.Code, Traceback: tail(exit.Logs, 2048), Violations: exit.Violations},
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
	// Violations are the sandbox limits the run hit ("memory limit (OOM
	// kill)", "process limit"), when the backend can tell.
	Violations []string `json:"limits_hit,omitempty"`
}

func agentFailure(f *guest.Failure) *core.Error {
	if f.Code == "SANDBOX_ERROR" {
		// The guest could not apply an isolation step it was given: the
		// run was refused (fail closed). That is the server's problem, not
		// the agent's; the detail goes to the log only.
		return &core.Error{Code: core.CodeInternal, Message: "the sandbox could not be set up; the agent was not run", Err: f}
	}
	msg := f.Message
	switch f.Code {
	case "SERIALIZATION_ERROR":
		if f.Type != "UnicodeEncodeError" { // a lone surrogate: the shim's message says it all
			msg = "the agent's output is not JSON: " + f.Message
		}
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
	var msg string
	sig := x.Signal
	if sig == "" && x.Code > 128 && x.Code < 128+65 {
		// The supervisor reports its child's death by signal N as 128+N.
		n := x.Code - 128
		sig = fmt.Sprintf("signal %d (%s)", n, syscall.Signal(n))
	}
	if sig != "" {
		msg = fmt.Sprintf("the agent process was killed by %s before returning a result", sig)
	} else {
		msg = fmt.Sprintf("the agent process exited with status %d before returning a result", x.Code)
	}
	if len(x.Violations) > 0 {
		msg += "; it hit the sandbox's " + strings.Join(x.Violations, ", ")
	}
	return msg
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
