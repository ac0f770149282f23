// Package tlsconf is how runagent serves HTTPS: the certificate, the TLS
// configuration, the security headers of every response and the check of
// the listen address.
//
// Certificate (Reloader). The pair named by --tls-cert and --tls-key is
// read and validated at start; a missing file, a file that is not PEM,
// swapped files, an encrypted key, a key of another certificate, a chain
// in the wrong order or a certificate outside its validity period stops
// the start with an error naming the file. A certificate close to expiry only draws a warning
// (Reloader.Warning). Renewed files are picked up without a restart: full
// handshakes look at both files' inode, size and modification time at most
// once per second (no goroutine, nothing to close) and load the pair when
// they changed; for two seconds after a load they compare contents too,
// because a rewrite within one tick of the file system's clock changes
// none of the three. A deploy writes two files one after the other, and not
// atomically, so a pair that does not load is not served: the previous one
// stays, the failure is logged once (and passed to an optional handler),
// and the next check tries again, by which time the key has usually
// followed the certificate. A handshake never fails because of a reload.
// Resumed sessions do not present a certificate and do not check.
//
// Configuration (ServerConfig). TLS 1.2 is the minimum; for TLS 1.2 only
// ECDHE key exchange with AEAD ciphers (forward secrecy, no CBC); for TLS
// 1.3 and key exchange groups Go's defaults, which track current practice
// better than a list written down here. ALPN offers h2 and http/1.1. With a
// client CA file, client certificates are verified when given (the control
// API can then insist on one per request with VerifiedClient) or required
// of every client. ServerConfig returns an error, not only a config: a
// client CA file that cannot be used must stop the start, never quietly
// turn mTLS off.
//
// Headers (SecurityHeaders, NoStore). The API serves no HTML, so every
// response forbids sniffing, framing, cross-origin embedding, referrers and
// any active content; HSTS goes out on responses to TLS requests. Headers
// are set before the handler runs so that streamed and upgraded responses
// carry them too.
//
// Listen address (CheckBind). Loopback is safe. Anywhere else, no
// authentication is an error and no TLS a warning, because there are
// legitimate set-ups (a TLS-terminating proxy on another host) that the
// server cannot see.
package tlsconf
