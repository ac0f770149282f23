// Package oidc verifies OAuth 2.0 / OpenID Connect JWT access tokens from
// one or more configured issuers and maps them to an Identity: issuer,
// subject, project, role, expiry and token ID.
//
// # Libraries
//
// Signatures are verified by github.com/golang-jwt/jwt/v5; keys come from
// github.com/MicahParks/keyfunc/v3 over github.com/MicahParks/jwkset, which
// fetch the issuer's JWKS over HTTP, cache it, refetch it in the background
// every Config.RefreshInterval, and refetch it when a token names a key ID
// that is not cached, at most once per Config.UnknownKeyRefreshInterval.
// That limit is enforced here with a limiter that refuses at once: the
// library's own would hold the request until its next token. This is how
// key rotation works: a token signed with a newly published key triggers
// one refetch; a key the issuer stops publishing is forgotten at the next
// refetch. No JWS code is written here.
//
// # Order of checks
//
// Verify bounds the token's length, checks its shape, and decodes its
// header and payload without trusting them. The unverified iss claim only
// selects which configured issuer's key set to use, and alg must be one
// the issuer allows, before any key is looked up. Then the library verifies
// the signature with a key of that issuer's JWKS (selected by kid; the jku,
// x5u, jwk and x5c headers are never used), and only then checks iss, aud
// (one of the issuer's audiences), exp (required), nbf and iat, with the
// issuer's leeway. The project and role claims are read last.
//
// # Decisions
//
//   - Only asymmetric algorithms (RS*, PS*, ES*, EdDSA) can be allowed. A
//     config listing "none" or HS256/384/512 is rejected, so the classic
//     confusion attack (an HS256 token "signed" with the issuer's public
//     key) fails at the algorithm check; the key lookup also refuses any key
//     that is not an RSA, ECDSA or Ed25519 public key, and keys marked
//     "use":"enc".
//   - A token with a "crit" header is rejected: no JWS extension is
//     understood.
//   - An issuer must name at least one audience, or any token it minted
//     for any client would be accepted.
//   - Discovery reads <issuer>/.well-known/openid-configuration, whose
//     issuer must equal the configured one byte for byte; a configured
//     JWKS URL skips discovery. Issuer and JWKS URLs must be https (plain
//     http only on a loopback host).
//   - Fetching is lazy-tolerant: New starts the fetches and waits for them
//     only as long as its context allows, and never fails because an issuer
//     is down. An issuer whose fetch failed is retried by the first token
//     that names it after Config.RetryInterval; tokens in between fail at
//     once with ReasonIssuerUnavailable rather than queueing on a dead
//     issuer. Once fetched, keys stay cached: a failing refresh keeps the
//     old set.
//   - Everything is bounded: token length (16 KiB), HTTP time per request
//     (10 s), response bodies (1 MiB), redirects (3, never from https to
//     http), and refetches for unknown key IDs (one per minute per issuer;
//     more are refused without waiting).
//   - A static IssuerConfig.Project or Role pins every token of that
//     issuer to it, ignoring the token's claim, so an issuer dedicated to
//     one project cannot reach another. A role must be one of Config.Roles
//     (default DefaultRoles).
//   - Every rejection is an *Error with a Reason for the security log.
//     Callers answer every one with the same 401. The error text is built
//     from the Reason, the configured issuer and safe detail only: it never
//     contains the token.
//
// # Console sign-in
//
// SignIn lets people sign in to the web console through the issuers that
// have a ConsoleClient: the authorization code flow with PKCE (S256) and
// a nonce, with golang.org/x/oauth2 for the URL and the code exchange.
// The state, nonce and code verifier travel in the browser's state
// cookie, sealed with AES-GCM under a key the caller derives from the
// shared keyring, so the callback may reach any node. The authorization
// and token endpoints come from the discovery document, fetched with the
// Verifier's bounded client. The access token is checked by Verify, so a
// console session has exactly the authority of an API call with that
// token; an ID token, if returned, is checked with the issuer's cached key
// set (no second fetcher) for iss, aud = the client, the nonce and the
// same subject. No refresh token is kept: a session ends with its access
// token. Package oidctest is a strict test issuer for this flow.
package oidc
