// Package console is the web console: plain HTML, CSS and JavaScript
// modules embedded in the binary (no CDN, no build step) and served under
// /console with a content security policy of their own, as strict as the
// API's allows: scripts, styles and images from the console's origin
// only, no inline script or style, no framing.
//
// The console holds no data and no logic of its own on the server: it
// signs in with an API key for a session (POST /api/v1/session, package
// session) and then calls the ordinary /api/v1 routes with the session
// cookie, under the same authorization, rate limits and audit as any
// client. What the API returns is put in the page as text, never as
// HTML.
package console
