package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Reloader; see the options of the same names.
const (
	DefaultCheckInterval = time.Second
	DefaultExpiryWarning = 30 * 24 * time.Hour
)

// Reloader serves the certificate and key pair of two PEM files and picks up
// new files without a restart. Its GetCertificate method is meant for
// tls.Config.GetCertificate; ServerConfig wires it.
//
// On a full handshake, at most once per check interval, it compares the
// files' identity (inode), size and modification time with those of the
// files it last loaded, and for two seconds after a load also their
// contents (a rewrite within one tick of the file system's clock leaves
// the rest alike). When they differ it loads the new pair; if that
// fails (a half-written file, a key not yet replaced, an expired
// certificate) it keeps serving the old pair, reports the error once per
// state of the files and tries again at the next check. A handshake never
// fails because of a reload.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	onError           func(error)
	now               func() time.Time
	interval          time.Duration
	warnWithin        time.Duration

	cur       atomic.Pointer[tls.Certificate]
	start     time.Time    // the clock at construction; with time.Now it carries a monotonic reading
	lastCheck atomic.Int64 // time of the last check since start, in nanoseconds

	mu       sync.Mutex // held while checking or loading; guards the fields below
	loaded   stamp      // the files as they were just before the served pair was read
	sum      [sha256.Size]byte
	racy     bool   // loaded was taken so soon after a write that another write could leave it unchanged
	reported string // the last reported failure, so a broken state is reported once
}

// racyWindow is how long after a file's modification time another write
// may leave that time unchanged: file systems keep it in ticks of a few
// milliseconds (ext4, tmpfs) up to two seconds (FAT). Within it a check
// compares contents, as Git does for "racily clean" index entries.
const racyWindow = 2 * time.Second

// An Option configures a Reloader.
type Option func(*Reloader)

// WithLogger sets where reloads and reload failures are logged (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(r *Reloader) {
		if l != nil {
			r.log = l
		}
	}
}

// WithErrorHandler sets a function called, in addition to logging, with
// each reload failure. It is called once per failure and state of the
// files, on the handshake goroutine that noticed it, and must not block.
func WithErrorHandler(fn func(error)) Option {
	return func(r *Reloader) { r.onError = fn }
}

// WithCheckInterval sets how often handshakes look at the files (default
// DefaultCheckInterval). Zero checks on every full handshake.
func WithCheckInterval(d time.Duration) Option {
	return func(r *Reloader) { r.interval = max(d, 0) }
}

// WithExpiryWarning sets how long before its expiry a certificate draws a
// warning (default DefaultExpiryWarning). Zero turns warnings off.
func WithExpiryWarning(d time.Duration) Option {
	return func(r *Reloader) { r.warnWithin = max(d, 0) }
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(r *Reloader) {
		if now != nil {
			r.now = now
		}
	}
}

// NewReloader loads and validates the pair in certFile and keyFile. The
// error names the file and what is wrong with it: missing, not PEM, a key
// that does not belong to the certificate, a certificate that has expired
// or is not valid yet. A certificate that expires soon is not an error; see
// Warning.
func NewReloader(certFile, keyFile string, opts ...Option) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls needs both a certificate file and a key file")
	}
	r := &Reloader{
		certFile:   certFile,
		keyFile:    keyFile,
		log:        slog.Default(),
		now:        time.Now,
		interval:   DefaultCheckInterval,
		warnWithin: DefaultExpiryWarning,
	}
	for _, o := range opts {
		o(r)
	}
	now := r.now()
	r.start = now
	st, err := statPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.loadLocked(st, now); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate returns the pair to present, after looking for new files
// if the check interval has passed. It never returns an error.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.maybeReload()
	return r.cur.Load(), nil
}

// Reload loads the files now, whether or not they changed (for example on
// SIGHUP). On failure the served pair stays as it was and the error is
// returned rather than reported.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.lastCheck.Store(int64(now.Sub(r.start)))
	st, err := statPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	leaf, err := r.loadLocked(st, now)
	if err != nil {
		return err
	}
	r.logLoaded(leaf, now)
	return nil
}

// Leaf returns the certificate being served.
func (r *Reloader) Leaf() *x509.Certificate {
	return r.cur.Load().Leaf
}

// Warning returns a sentence for the operator when the served certificate
// expires within the warning period (see WithExpiryWarning), or "".
func (r *Reloader) Warning() string {
	return expiryWarning(r.certFile, r.Leaf(), r.now(), r.warnWithin)
}

// maybeReload is the check done on handshakes. A handshake that finds
// another one checking does not wait for it.
func (r *Reloader) maybeReload() {
	due := func(now time.Time) bool {
		d := time.Duration(int64(now.Sub(r.start)) - r.lastCheck.Load())
		return d >= r.interval || d < 0
	}
	if !due(r.now()) || !r.mu.TryLock() {
		return
	}
	defer r.mu.Unlock()
	now := r.now()
	if !due(now) {
		return
	}
	r.lastCheck.Store(int64(now.Sub(r.start)))
	st, err := statPair(r.certFile, r.keyFile)
	if err == nil && st.same(r.loaded) && !r.racyChangeLocked(st) {
		r.reported = ""
		return
	}
	var leaf *x509.Certificate
	if err == nil {
		leaf, err = r.loadLocked(st, now)
	}
	if err != nil {
		r.reportLocked(err, st)
		return
	}
	r.logLoaded(leaf, now)
}

// loadLocked reads the pair and serves it if it is valid. st is how the
// files looked before they were read: a write that lands after the stat
// changes the stamp again, so the next check reads the files once more.
//
// Preconditions: r.mu is held.
func (r *Reloader) loadLocked(st stamp, now time.Time) (*x509.Certificate, error) {
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, err := parsePair(certPEM, keyPEM, r.certFile, r.keyFile, now)
	if err != nil {
		return nil, err
	}
	r.cur.Store(cert)
	r.lastCheck.Store(int64(now.Sub(r.start)))
	r.loaded = st
	r.sum = pairSum(certPEM, keyPEM)
	// File times are wall-clock times, whatever clock the Reloader was given.
	r.racy = time.Since(st.newest()) < racyWindow
	r.reported = ""
	return cert.Leaf, nil
}

// logLoaded logs a pair loaded after the start, and the warning if it
// expires soon. (At the start the caller logs what it wants, Warning
// included.)
func (r *Reloader) logLoaded(leaf *x509.Certificate, now time.Time) {
	r.log.Info("tls certificate loaded", "cert_file", r.certFile, "subject", leaf.Subject.String(),
		"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC())
	if w := expiryWarning(r.certFile, leaf, now, r.warnWithin); w != "" {
		r.log.Warn(w, "cert_file", r.certFile)
	}
}

// reportLocked logs and hands on a reload failure, unless the same failure
// of the same files was already reported.
//
// Preconditions: r.mu is held.
func (r *Reloader) reportLocked(err error, st stamp) {
	key := err.Error() + "\x00" + st.String()
	if key == r.reported {
		return
	}
	r.reported = key
	r.log.Error("tls certificate reload failed; still serving the previous certificate",
		"cert_file", r.certFile, "key_file", r.keyFile, "err", err)
	if r.onError != nil {
		r.onError(err)
	}
}

// racyChangeLocked tells whether files whose stamp did not change were
// written all the same, within the modification time's tick of the load.
// Once the files are older than racyWindow a write must change the stamp,
// and the contents are no longer read.
//
// Preconditions: r.mu is held.
func (r *Reloader) racyChangeLocked(st stamp) bool {
	if !r.racy {
		return false
	}
	certPEM, keyPEM, err := r.read()
	if err != nil || pairSum(certPEM, keyPEM) != r.sum {
		return true
	}
	r.racy = time.Since(st.newest()) < racyWindow
	return false
}

func (r *Reloader) read() (certPEM, keyPEM []byte, err error) {
	certPEM, err = readFile("certificate file", r.certFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = readFile("key file", r.keyFile)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func pairSum(certPEM, keyPEM []byte) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", len(certPEM))
	h.Write(certPEM)
	h.Write(keyPEM)
	return [sha256.Size]byte(h.Sum(nil))
}

// stamp is what a check compares: which file (inode), its size and its
// modification time, for both files.
type stamp struct{ cert, key fs.FileInfo }

func statPair(certFile, keyFile string) (stamp, error) {
	c, err := statFile("certificate file", certFile)
	if err != nil {
		return stamp{}, err
	}
	k, err := statFile("key file", keyFile)
	if err != nil {
		return stamp{}, err
	}
	return stamp{c, k}, nil
}

// newest is the later modification time of the two files.
func (s stamp) newest() time.Time {
	if s.cert.ModTime().After(s.key.ModTime()) {
		return s.cert.ModTime()
	}
	return s.key.ModTime()
}

func (s stamp) same(o stamp) bool {
	return sameFile(s.cert, o.cert) && sameFile(s.key, o.key)
}

func (s stamp) String() string {
	f := func(fi fs.FileInfo) string {
		if fi == nil {
			return "-"
		}
		return fmt.Sprintf("%d@%d", fi.Size(), fi.ModTime().UnixNano())
	}
	return f(s.cert) + " " + f(s.key)
}

func sameFile(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// statFile follows symbolic links, so a directory of links swapped
// atomically (as Kubernetes does for mounted secrets) counts as a change.
func statFile(what, name string) (fs.FileInfo, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fileError(what, name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %q is not a regular file", what, name)
	}
	return fi, nil
}

func readFile(what, name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fileError(what, name, err)
	}
	return b, nil
}

// fileError words err without repeating the file name that *fs.PathError
// carries; errors.Is(err, fs.ErrNotExist) still holds.
func fileError(what, name string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	}
	return fmt.Errorf("%s %q: %w", what, name, err)
}
