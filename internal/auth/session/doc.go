// Package session is the web console's sign-in: an API key exchanged for
// a short session that a browser holds as an HttpOnly cookie.
//
// A session token is 256 random bits, sent only in the cookie (Secure
// under TLS, SameSite=Strict, Path=/). The store keeps the SHA-256 of it,
// never the token (core.SessionStore), so sessions work across nodes and
// a copy of the store opens none of them. A session ends after Idle
// without use, after Absolute however used, when its credential ends
// (the gateway checks the key on every request), and on sign-out.
//
// Every change made with the cookie carries a CSRF token in the
// X-CSRF-Token header: an HMAC of the session token, bound to it and
// needing no storage. A page of another site can make the browser send
// the cookie (SameSite=Strict already stops that in current browsers) but
// cannot read or compute the token, so its request is refused.
//
// Sessions signed in some other way (OIDC with PKCE, later) are the same
// records with another Method: Manager.Create takes the method, and the
// gateway decides how a method's session becomes an identity.
package session
