package tlsconf

import "net/http"

// HeaderOptions are the choices of SecurityHeaders.
type HeaderOptions struct {
	// DisableHSTS leaves out Strict-Transport-Security. By default it is
	// sent on every response to a request that arrived over TLS.
	DisableHSTS bool
}

// The headers SecurityHeaders sets. The API serves no HTML, so the content
// security policy allows nothing at all.
const (
	hstsValue = "max-age=63072000; includeSubDomains"
	cspValue  = "default-src 'none'; frame-ancestors 'none'"
)

// SecurityHeaders sets, on every response of next, headers that keep
// browsers from sniffing, framing, embedding across origins or leaking the
// URL in Referer:
//
//	X-Content-Type-Options: nosniff
//	X-Frame-Options: DENY
//	Content-Security-Policy: default-src 'none'; frame-ancestors 'none'
//	Referrer-Policy: no-referrer
//	Cross-Origin-Resource-Policy: same-origin
//
// and Strict-Transport-Security: max-age=63072000; includeSubDomains when
// the request arrived over TLS (r.TLS != nil) unless opts.DisableHSTS. A
// TLS-terminating proxy in front of a plain-HTTP server should send HSTS
// itself.
//
// The headers are set before next runs, so they are on error, streamed and
// upgraded (hijacked) responses too; a handler may still replace one of
// them for its own response.
func SecurityHeaders(next http.Handler, opts HeaderOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Keys are in canonical form, so plain map stores are Set.
		h["X-Content-Type-Options"] = []string{"nosniff"}
		h["X-Frame-Options"] = []string{"DENY"}
		h["Content-Security-Policy"] = []string{cspValue}
		h["Referrer-Policy"] = []string{"no-referrer"}
		h["Cross-Origin-Resource-Policy"] = []string{"same-origin"}
		if r.TLS != nil && !opts.DisableHSTS {
			h["Strict-Transport-Security"] = []string{hstsValue}
		}
		next.ServeHTTP(w, r)
	})
}

// NoStore marks a response as one no cache may keep, for responses that
// carry secrets (new API keys, tokens). Call it before writing the body.
func NoStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}
