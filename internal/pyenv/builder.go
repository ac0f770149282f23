package pyenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox"
)

// Default limits of a build sandbox.
var DefaultBuildLimits = sandbox.Limits{
	CPU:         2,
	MemoryBytes: 2 << 30,
	Processes:   512,
	OpenFiles:   4096,
	FileSize:    2 << 30,
	DiskBytes:   4 << 30,
}

// DefaultBuildTimeout bounds one build.
const DefaultBuildTimeout = 10 * time.Minute

// Config configures a Builder.
type Config struct {
	// Dir is where environments are kept (the data directory's envs/).
	Dir string
	// Backend starts build sandboxes.
	Backend sandbox.Backend
	// Script is the host path of the builder script (python.WriteBuild).
	Script string
	// Indexes are PEP 503 simple indexes, the first primary; they may
	// carry credentials (user:password@), which reach only pip.
	Indexes []string
	// FindLinks are server folders of wheels (--find-links).
	FindLinks []string
	// Limits of a build sandbox (zero fields: DefaultBuildLimits) and its
	// wall-clock Timeout (DefaultBuildTimeout).
	Limits  sandbox.Limits
	Timeout time.Duration
	// LogLimit caps a build's kept log (1 MiB).
	LogLimit int
	// Scratch, when set, makes the directory a build installs into: a
	// file system of the build's disk limit, so that what a build writes
	// is capped like its scratch disk (the linux backend's /tmp) and never
	// fills the host's disk. Without it (the process backend) the build
	// writes into the environments directory.
	Scratch Scratch
	Log     *slog.Logger
}

// Scratch makes size-capped directories; scratch.Manager is one.
type Scratch interface {
	Prepare(id string, size int64, uid, gid int) (dir string, release func() error, err error)
}

// Builder builds environments in build sandboxes and keeps them, one per
// Key, read-only, shared by every agent version with the same set.
type Builder struct {
	cfg    Config
	flight singleflight.Group
	sem    chan struct{} // builds at once
}

// NewBuilder returns a Builder. Indexes must be http(s) URLs.
func NewBuilder(cfg Config) (*Builder, error) {
	if cfg.Dir == "" || cfg.Backend == nil || cfg.Script == "" {
		return nil, errors.New("pyenv: a builder needs a directory, a sandbox backend and the builder script")
	}
	for _, ix := range cfg.Indexes {
		u, err := url.Parse(ix)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("package index %s is not an http(s) URL", Redact(ix))
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultBuildTimeout
	}
	if cfg.LogLimit <= 0 {
		cfg.LogLimit = 1 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.Or(DefaultBuildLimits)
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the environments directory: %w", err)
	}
	// Builds a crashed predecessor left half done.
	if stale, err := filepath.Glob(filepath.Join(cfg.Dir, ".staging-*")); err == nil {
		for _, p := range stale {
			os.RemoveAll(p)
		}
	}
	return &Builder{cfg: cfg, sem: make(chan struct{}, 1)}, nil
}

// Env is a built environment.
type Env struct {
	Key string
	// Dir holds site-packages/ (and bin/); empty for an empty set.
	Dir string
	// Cached: it was built before; nothing was installed now.
	Cached bool
	// Log is the build's log (pip's output), credentials removed.
	Log      string
	Duration time.Duration
}

// Event is a step of Ensure, for progress reports.
type Event struct {
	Step    string // "cached", "building", "built", "failed"
	Message string
	Elapsed time.Duration
}

// BuildError is a build that failed: pip's exit status and log.
type BuildError struct {
	Msg string
	Log string
}

func (e *BuildError) Error() string { return e.Msg }

// meta is what a built environment records about itself (env.json).
type meta struct {
	Key          string    `json:"key"`
	Python       string    `json:"python"`
	Platform     string    `json:"platform"`
	Requirements []string  `json:"requirements"`
	BuiltAt      time.Time `json:"built_at"`
	Seconds      float64   `json:"build_seconds"`
}

const (
	metaFile = "env.json"
	logFile  = "build.log"
)

// Path returns the directory of the environment key, and whether it is
// built.
func (b *Builder) Path(key string) (string, bool) {
	dir := filepath.Join(b.cfg.Dir, key)
	_, err := os.Stat(filepath.Join(dir, metaFile))
	return dir, err == nil
}

// Ensure returns the environment of deps for in, building it if it is not
// kept yet; project is the project's directory (its wheels/ are a package
// source) and agentID names the build in logs. Concurrent calls for one
// key build once. progress, if set, hears each step.
func (b *Builder) Ensure(ctx context.Context, agentID, project string, deps Deps, in Interpreter, progress func(Event)) (Env, error) {
	if progress == nil {
		progress = func(Event) {}
	}
	if deps.Empty() {
		return Env{}, nil
	}
	key := Key(deps, in)
	if dir, ok := b.Path(key); ok {
		progress(Event{Step: "cached", Message: "environment " + key[:12] + " is built already"})
		return Env{Key: key, Dir: dir, Cached: true, Log: b.readLog(dir)}, nil
	}
	v, err, _ := b.flight.Do(key, func() (any, error) {
		if dir, ok := b.Path(key); ok { // built while we waited
			return Env{Key: key, Dir: dir, Cached: true, Log: b.readLog(dir)}, nil
		}
		select {
		case b.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-b.sem }()
		return b.build(ctx, agentID, project, key, deps, in, progress)
	})
	if err != nil {
		return Env{}, err
	}
	return v.(Env), nil
}

func (b *Builder) readLog(dir string) string {
	l, _ := os.ReadFile(filepath.Join(dir, logFile))
	return string(l)
}

// build builds key in a build sandbox: into a staging directory, moved
// into place only when pip succeeded.
func (b *Builder) build(ctx context.Context, agentID, project, key string, deps Deps, in Interpreter, progress func(Event)) (Env, error) {
	start := time.Now()
	n := len(deps.Lines) + len(deps.Wheels)
	progress(Event{Step: "building", Message: fmt.Sprintf("building environment %s: %d requirement(s) for Python %s", key[:12], n, in.Name)})
	staging, err := os.MkdirTemp(b.cfg.Dir, ".staging-")
	if err != nil {
		return Env{}, fmt.Errorf("create a staging directory: %w", err)
	}
	defer os.RemoveAll(staging)
	id := "build-" + randomHex(6)
	out := filepath.Join(staging, "env")
	if b.cfg.Scratch != nil {
		dir, release, err := b.cfg.Scratch.Prepare(id, b.cfg.Limits.DiskBytes, 0, 0)
		if err != nil {
			return Env{}, fmt.Errorf("make the build's output disk: %w", err)
		}
		defer release()
		out = dir
	} else if err := os.Mkdir(out, 0o755); err != nil {
		return Env{}, fmt.Errorf("create a staging directory: %w", err)
	}

	links, err := serveLinks(deps.Wheels, b.cfg.FindLinks)
	if err != nil {
		return Env{}, err
	}
	defer links.Close()

	job := struct {
		Requirements  []string `json:"requirements"`
		Constraints   []string `json:"constraints,omitempty"`
		RequireHashes bool     `json:"require_hashes"`
		Indexes       []string `json:"indexes,omitempty"`
		FindLinks     []string `json:"find_links,omitempty"`
	}{Requirements: installLines(deps), Constraints: deps.Constraints, RequireHashes: deps.Hashed}
	netrc := b.netrc()
	for _, ix := range b.cfg.Indexes {
		job.Indexes = append(job.Indexes, withoutCredentials(ix))
	}
	if links.URL != "" {
		job.FindLinks = []string{links.URL}
	}
	jobJSON, _ := json.Marshal(job)
	env := []string{"RUNAGENT_BUILD=" + string(jobJSON), "HOME=/tmp", "LANG=C.UTF-8"}
	if netrc != "" {
		env = append(env, "RUNAGENT_NETRC="+netrc)
	}
	network, err := b.network(links.Addr)
	if err != nil {
		return Env{}, err
	}
	spec := sandbox.Spec{
		ID: id, AgentID: agentID, AgentDir: project, ShimPath: b.cfg.Script, Python: in.Path,
		Env: env, LogLimit: b.cfg.LogLimit, Limits: b.cfg.Limits, Network: network, OutDir: out,
	}
	bctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	sb, err := b.cfg.Backend.Start(bctx, spec)
	if err != nil {
		return Env{}, fmt.Errorf("start a build sandbox: %w", err)
	}
	stop := context.AfterFunc(bctx, func() { sb.Kill() })
	exit := sb.Wait()
	stop()
	logs := b.Redact(exit.Logs)
	elapsed := time.Since(start)
	fail := func(msg string) (Env, error) {
		progress(Event{Step: "failed", Message: msg, Elapsed: elapsed})
		b.cfg.Log.Warn("environment build failed", "agent_id", agentID, "key", key, "reason", msg, "elapsed", elapsed)
		return Env{}, &BuildError{Msg: msg, Log: logs}
	}
	switch {
	case bctx.Err() == context.DeadlineExceeded:
		return fail(fmt.Sprintf("the build took longer than %s and was stopped", b.cfg.Timeout))
	case ctx.Err() != nil:
		return Env{}, ctx.Err()
	case len(exit.Violations) > 0:
		return fail("the build hit a sandbox limit: " + strings.Join(exit.Violations, ", "))
	case exit.Code != 0:
		return fail(fmt.Sprintf("pip failed (exit status %d); the build log says why", exit.Code))
	}
	// The build's output is untrusted: only its site-packages is kept,
	// moved into a directory of ours, so that nothing the build left
	// (a symbolic link named like our files, say) is written through.
	final := filepath.Join(staging, "final")
	if err := os.Mkdir(final, 0o755); err != nil {
		return Env{}, fmt.Errorf("create a staging directory: %w", err)
	}
	if err := keepSitePackages(out, final); err != nil {
		return fail(err.Error())
	}
	if err := seal(final); err != nil {
		return fail(err.Error())
	}
	m := meta{Key: key, Python: in.Version, Platform: in.Platform, Requirements: deps.Lines, BuiltAt: time.Now().UTC(), Seconds: elapsed.Seconds()}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := writeReadOnly(filepath.Join(final, logFile), []byte(logs)); err != nil {
		return Env{}, err
	}
	// The meta file marks the environment complete: written last.
	if err := writeReadOnly(filepath.Join(final, metaFile), mb); err != nil {
		return Env{}, err
	}
	dir := filepath.Join(b.cfg.Dir, key)
	if err := os.Rename(final, dir); err != nil {
		if _, ok := b.Path(key); ok { // another process built it meanwhile
			return Env{Key: key, Dir: dir, Cached: true, Log: b.readLog(dir)}, nil
		}
		return Env{}, fmt.Errorf("keep the built environment: %w", err)
	}
	progress(Event{Step: "built", Message: fmt.Sprintf("environment %s built", key[:12]), Elapsed: elapsed})
	b.cfg.Log.Info("environment built", "agent_id", agentID, "key", key, "requirements", n, "elapsed", elapsed)
	return Env{Key: key, Dir: dir, Log: logs, Duration: elapsed}, nil
}

// installLines are the lines pip installs: the requirements, and each
// vendored wheel by its distribution name unless a requirement names it.
func installLines(d Deps) []string {
	lines := slices.Clone(d.Lines)
	named := map[string]bool{}
	for _, l := range d.Lines {
		named[normalize(requirementName(l))] = true
	}
	for _, w := range d.Wheels {
		name, _, _ := strings.Cut(w.Name, "-")
		if n := normalize(name); !named[n] {
			named[n] = true
			lines = append(lines, name)
		}
	}
	return lines
}

// requirementName is the project name a requirement line starts with.
func requirementName(line string) string {
	end := strings.IndexFunc(line, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	})
	if end < 0 {
		return line
	}
	return line[:end]
}

// normalize is PEP 503's normalized project name.
func normalize(name string) string {
	name = strings.ToLower(name)
	return strings.Join(strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' || r == '.' }), "-")
}

// network is a build sandbox's egress: the package indexes and the links
// server, and nothing else; the operator's indexes are trusted even on
// private addresses.
func (b *Builder) network(linksAddr string) (sandbox.Network, error) {
	n := sandbox.Network{Mode: core.NetworkEgress, BandwidthBytes: 50 << 20, MaxConns: 16}
	add := func(hostport string) error {
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return err
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return err
		}
		n.Allow = append(n.Allow, core.EgressRule{Host: strings.ToLower(host), Ports: []int{p}})
		n.Trusted = append(n.Trusted, net.JoinHostPort(strings.ToLower(host), port))
		return nil
	}
	for _, ix := range b.cfg.Indexes {
		u, _ := url.Parse(ix)
		hp := u.Host
		if u.Port() == "" {
			hp = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
		}
		if err := add(hp); err != nil {
			return n, fmt.Errorf("package index %s: %w", Redact(ix), err)
		}
	}
	if linksAddr != "" {
		if err := add(linksAddr); err != nil {
			return n, err
		}
	}
	return n, nil
}

// netrc is the indexes' credentials in netrc form ("" for none), for
// pip inside the build sandbox: no URL it is given holds them.
func (b *Builder) netrc() string {
	var sb strings.Builder
	for _, ix := range b.cfg.Indexes {
		u, err := url.Parse(ix)
		if err != nil || u.User == nil {
			continue
		}
		pass, _ := u.User.Password()
		fmt.Fprintf(&sb, "machine %s login %s password %s\n", u.Hostname(), netrcToken(u.User.Username()), netrcToken(pass))
	}
	return sb.String()
}

// netrcToken quotes a netrc token; Python's netrc module reads a quoted
// token with backslash escapes.
func netrcToken(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"\\#") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func withoutCredentials(index string) string {
	u, err := url.Parse(index)
	if err != nil {
		return index
	}
	u.User = nil
	return u.String()
}

// Redact removes the indexes' credentials from s.
func (b *Builder) Redact(s string) string {
	for _, ix := range b.cfg.Indexes {
		u, err := url.Parse(ix)
		if err != nil || u.User == nil {
			continue
		}
		if p, ok := u.User.Password(); ok && p != "" {
			s = strings.ReplaceAll(s, p, "****")
			s = strings.ReplaceAll(s, url.QueryEscape(p), "****")
		}
		if name := u.User.Username(); name != "" && len(name) >= 4 {
			s = strings.ReplaceAll(s, name+":", "****:")
		}
	}
	return s
}

// Redact returns an index URL without its credentials, for messages.
func Redact(index string) string {
	u, err := url.Parse(index)
	if err != nil {
		return "(an unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("****")
	}
	return u.String()
}

// seal makes a built environment the host's and read-only: the files
// the build sandbox wrote belong to its unprivileged uid. Directories
// become 0755, files 0444 (0555 if executable); set-id bits go; anything
// but files, directories and symbolic links is refused.
func seal(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, 0, 0); err != nil {
				return fmt.Errorf("seal the environment: %w", err)
			}
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			return os.Chmod(p, 0o755)
		case !d.Type().IsRegular():
			return fmt.Errorf("the build left %s, which is not a file, directory or link", filepath.Base(p))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o444)
		if info.Mode().Perm()&0o100 != 0 {
			mode = 0o555
		}
		return os.Chmod(p, mode)
	})
}

// keepSitePackages moves out/site-packages, which must be a directory
// (not a link), into final.
func keepSitePackages(out, final string) error {
	sp := filepath.Join(out, "site-packages")
	fi, err := os.Lstat(sp)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.Mkdir(filepath.Join(final, "site-packages"), 0o755) // pip installed nothing
	case err != nil:
		return fmt.Errorf("the build's output cannot be read: %w", err)
	case !fi.IsDir():
		return errors.New("the build left site-packages as something other than a directory")
	}
	dst := filepath.Join(final, "site-packages")
	if err := os.Rename(sp, dst); !errors.Is(err, syscall.EXDEV) {
		return err
	}
	return copyTree(sp, dst) // from the build's own disk
}

// copyTree copies the directories, regular files and symbolic links (as
// links, never followed) of src to dst, which must not exist.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case !d.Type().IsRegular():
			return fmt.Errorf("the build left %s, which is not a file, directory or link", rel)
		}
		in, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer in.Close()
		fi, err := in.Stat()
		if err != nil {
			return err
		}
		o, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, fi.Mode().Perm()&0o755|0o400)
		if err != nil {
			return err
		}
		if _, err := io.Copy(o, in); err != nil {
			o.Close()
			return err
		}
		return o.Close()
	})
}

// writeReadOnly creates path, which must not exist, read-only.
func writeReadOnly(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o444)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// links serves the wheels of a build (the project's and the server's
// --find-links folders) as one page of links on loopback, so that the
// build sandbox reaches them through its egress proxy like an index.
type links struct {
	URL, Addr string
	srv       *http.Server
	wg        sync.WaitGroup
}

func serveLinks(vendored []Wheel, dirs []string) (*links, error) {
	files := map[string]string{} // name → host path; the project's first
	var names []string
	for _, w := range vendored {
		if _, dup := files[w.Name]; !dup {
			files[w.Name] = w.Path
			names = append(names, w.Name)
		}
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read --find-links folder %s: %w", dir, err)
		}
		for _, e := range entries {
			name := e.Name()
			if !e.Type().IsRegular() || !(strings.HasSuffix(name, ".whl") || strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".zip")) {
				continue
			}
			if _, dup := files[name]; !dup {
				files[name] = filepath.Join(dir, name)
				names = append(names, name)
			}
		}
	}
	l := &links{}
	if len(names) == 0 {
		return l, nil
	}
	slices.Sort(names)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("serve the build's wheels: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /links/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html><html><body>\n")
		for _, n := range names {
			fmt.Fprintf(w, "<a href=\"/files/%s\">%s</a><br>\n", url.PathEscape(n), html.EscapeString(n))
		}
		fmt.Fprint(w, "</body></html>\n")
	})
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := files[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, p)
	})
	l.Addr = ln.Addr().String()
	l.URL = "http://" + l.Addr + "/links/"
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.srv.Serve(ln) }()
	return l, nil
}

// Close stops the server.
func (l *links) Close() {
	if l.srv != nil {
		l.srv.Close()
		l.wg.Wait()
	}
}
