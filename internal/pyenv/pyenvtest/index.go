package pyenvtest

import (
	"crypto/subtle"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Index is a PEP 503 simple package index served over HTTP on 127.0.0.1:
//
//	/simple/               every project, by normalized name
//	/simple/<project>/     its files, each link with #sha256=<hex> and,
//	                       when the metadata has Requires-Python,
//	                       data-requires-python
//	/files/<filename>      the files themselves
//
// A request for a project under another spelling (/simple/Attrs_X/) is
// redirected to the normalized one, as PEP 503 allows.
type Index struct {
	srv *httptest.Server

	mu       sync.Mutex
	projects map[string][]indexFile // by normalized name
	files    map[string]indexFile   // by base name
	requests []string
	refused  []string
	user     string
	pass     string
}

type indexFile struct {
	name, path, sha256, requiresPython string
}

// NewIndex serves files (wheels and sdists, by path) as a simple index
// until tb's test ends. The files are read when requested, not copied.
func NewIndex(tb testing.TB, files ...string) *Index {
	tb.Helper()
	ix := &Index{projects: map[string][]indexFile{}, files: map[string]indexFile{}}
	ix.Add(tb, files...)
	ix.srv = httptest.NewServer(http.HandlerFunc(ix.serve))
	tb.Cleanup(ix.srv.Close)
	return ix
}

// WithAuth makes the index demand HTTP basic authentication with user and
// pass on every request, answering 401 without them, and returns ix.
func (ix *Index) WithAuth(user, pass string) *Index {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.user, ix.pass = user, pass
	return ix
}

// Add publishes more files, as an upload to a live index would.
func (ix *Index) Add(tb testing.TB, files ...string) {
	tb.Helper()
	for _, p := range files {
		m, err := readMetadata(p)
		if err != nil {
			tb.Fatalf("pyenvtest: %v", err)
		}
		f := indexFile{name: filepath.Base(p), path: p, sha256: SHA256(p), requiresPython: m.RequiresPython}
		ix.mu.Lock()
		_, dup := ix.files[f.name]
		if !dup {
			ix.files[f.name] = f
			n := Normalize(m.Name)
			ix.projects[n] = append(ix.projects[n], f)
		}
		ix.mu.Unlock()
		if dup {
			tb.Fatalf("pyenvtest: the index already has a file named %s", f.name)
		}
	}
}

// URL returns the simple index's URL, "http://127.0.0.1:PORT/simple/",
// for pip's --index-url. It carries no credentials.
func (ix *Index) URL() string { return ix.srv.URL + "/simple/" }

// AuthURL returns URL with the WithAuth credentials in it
// ("http://user:pass@127.0.0.1:PORT/simple/"), the form pip accepts.
func (ix *Index) AuthURL() string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	u, _ := url.Parse(ix.URL())
	u.User = url.UserPassword(ix.user, ix.pass)
	return u.String()
}

// Host returns "127.0.0.1:PORT", the host part of URL (for a .netrc
// machine line, say).
func (ix *Index) Host() string { return strings.TrimPrefix(ix.srv.URL, "http://") }

// Requests returns the paths requested so far, in order, whether they were
// answered or refused.
func (ix *Index) Requests() []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return slices.Clone(ix.requests)
}

// Refused returns the paths answered 401 so far (no or wrong credentials
// under WithAuth), in order. pip itself says no more than "from versions:
// none" for them unless run with -vv.
func (ix *Index) Refused() []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return slices.Clone(ix.refused)
}

func (ix *Index) serve(w http.ResponseWriter, r *http.Request) {
	ix.mu.Lock()
	ix.requests = append(ix.requests, r.URL.Path)
	user, pass := ix.user, ix.pass
	ix.mu.Unlock()

	if user != "" || pass != "" {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user))&subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			ix.mu.Lock()
			ix.refused = append(ix.refused, r.URL.Path)
			ix.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="pyenvtest"`)
			http.Error(w, "401 unauthorized", http.StatusUnauthorized)
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/simple":
		http.Redirect(w, r, "/simple/", http.StatusMovedPermanently)
	case p == "/simple/":
		ix.serveRoot(w)
	case strings.HasPrefix(p, "/simple/"):
		name := strings.TrimSuffix(strings.TrimPrefix(p, "/simple/"), "/")
		if strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		if n := Normalize(name); n != name || !strings.HasSuffix(p, "/") {
			http.Redirect(w, r, "/simple/"+n+"/", http.StatusMovedPermanently)
			return
		}
		ix.serveProject(w, r, name)
	case strings.HasPrefix(p, "/files/"):
		ix.serveFile(w, r, strings.TrimPrefix(p, "/files/"))
	default:
		http.NotFound(w, r)
	}
}

const pageHead = `<!DOCTYPE html>
<html>
<head><meta name="pypi:repository-version" content="1.0"><title>%s</title></head>
<body>
`

func (ix *Index) serveRoot(w http.ResponseWriter) {
	ix.mu.Lock()
	names := make([]string, 0, len(ix.projects))
	for n := range ix.projects {
		names = append(names, n)
	}
	ix.mu.Unlock()
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, pageHead, "Simple index")
	for _, n := range names {
		fmt.Fprintf(&b, "<a href=\"/simple/%s/\">%s</a>\n", html.EscapeString(n), html.EscapeString(n))
	}
	b.WriteString("</body>\n</html>\n")
	writeHTML(w, b.String())
}

func (ix *Index) serveProject(w http.ResponseWriter, r *http.Request, name string) {
	ix.mu.Lock()
	files := slices.Clone(ix.projects[name])
	ix.mu.Unlock()
	if len(files) == 0 {
		http.NotFound(w, r)
		return
	}
	slices.SortFunc(files, func(a, b indexFile) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	fmt.Fprintf(&b, pageHead, "Links for "+html.EscapeString(name))
	for _, f := range files {
		attr := ""
		if f.requiresPython != "" {
			attr = fmt.Sprintf(` data-requires-python="%s"`, html.EscapeString(f.requiresPython))
		}
		fmt.Fprintf(&b, "<a href=\"/files/%s#sha256=%s\"%s>%s</a>\n",
			html.EscapeString(url.PathEscape(f.name)), f.sha256, attr, html.EscapeString(f.name))
	}
	b.WriteString("</body>\n</html>\n")
	writeHTML(w, b.String())
}

func writeHTML(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, s)
}

func (ix *Index) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	ix.mu.Lock()
	f, ok := ix.files[name]
	ix.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	fh, err := os.Open(f.path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, st.ModTime(), fh)
}
