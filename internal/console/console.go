package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the console is served under.
const Prefix = "/console"

// CSP is the console's content security policy: everything from its own
// origin, nothing inline, no framing, forms posting only to it.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

//go:embed assets
var embedded embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string // strong, from a hash of the content
}

// Handler serves the console's assets.
type Handler struct {
	assets map[string]asset // by path below Prefix, "/" for the page
	// modTime is zero: ETags, not dates, decide freshness.
	modTime time.Time
}

// New returns the console's handler, with every asset read and hashed
// once.
func New() *Handler {
	h := &Handler{assets: map[string]asset{}}
	err := fs.WalkDir(embedded, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if strings.HasSuffix(p, ".js") {
			ct = "text/javascript; charset=utf-8" // the same on every system
		}
		h.assets[strings.TrimPrefix(p, "assets")] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic("console: reading the embedded assets: " + err.Error()) // the binary is broken
	}
	h.assets["/"] = h.assets["/index.html"]
	delete(h.assets, "/index.html")
	return h
}

// ServeHTTP serves the page at /console and /console/, and the assets
// below it. Responses carry the console's CSP and refuse framing; every
// one is revalidated by its ETag (Cache-Control: no-cache), so a new
// binary's assets are seen at once and an unchanged one costs a 304.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "the console's pages are read with GET", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, Prefix)
	if p == "" {
		p = "/"
	}
	a, ok := h.assets[p]
	if !ok {
		http.Error(w, "no such page in the console", http.StatusNotFound)
		return
	}
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", a.etag)
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", h.modTime, bytes.NewReader(a.body))
}

// Mount serves the console under Prefix and every other path with api,
// untouched.
func Mount(api http.Handler) http.Handler {
	c := New()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == Prefix || strings.HasPrefix(p, Prefix+"/") {
			c.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
