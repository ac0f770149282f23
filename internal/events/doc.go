// Package events records security events and raises alerts on them.
//
// The server reports what an operator may need to see — failed
// authentication, rate limiting, blocked clients, rejected input, sandbox
// and egress violations, key and configuration changes — as
// core.SecurityEvent values through one small interface,
// core.EventEmitter, whose only method is Emit. Emitter implements it:
//
//   - Emit never blocks and never fails. It puts the event on a bounded
//     queue and returns; when the queue is full the event is dropped and
//     counted (Stats.Dropped), and the drops are logged, at most every ten
//     seconds. A request must not wait for the security log, and a flood
//     of events (which is what an attack looks like) must not turn into a
//     flood of goroutines or memory.
//   - One writer goroutine takes what is queued, up to a batch, and
//     records it: each event as one JSON line through log/slog (stamped
//     with the event's time) to a configured writer, then the batch to a
//     core.EventStore in one transaction. Batches form on their own under
//     load, while a lone event is written at once. If the store refuses a
//     batch because of one event, the others are stored one by one.
//   - Before anything is written, the event is made safe: bytes that are
//     not UTF-8 and NULs are removed, every string goes through Redact,
//     which replaces what looks like a credential (runagent API keys,
//     Bearer and Basic credentials, JWTs, PEM private keys, URL passwords,
//     and any value of a Details key such as "password" or "token") with
//     [REDACTED], and sizes are capped. Redaction errs towards removing:
//     the log is kept for months and shipped elsewhere, and a credential
//     in it is a leak.
//   - Close stops accepting events, writes the queued ones, and waits for
//     pending alert deliveries, for a bounded time in all; then it aborts
//     them.
//
// Alerting (alert.go) counts events per Rule and source, the source being
// the event's principal or, if it has none, its IP address; for an
// authentication failure, whose principal is only what the credential
// claimed (an attacker can name a new key id every time), the IP address
// comes first. A Rule fires
// when Threshold events of its types arrive from one source within its
// Window: by default 10 auth_failure, 5 rate_limit_exceeded, or 3
// "suspicious" events (sandbox_violation, egress_denied, input_rejected and
// user_denied together) per minute. An alert is not sent again for the same rule and
// source within a cooldown (10 minutes), so a continuing attack alerts
// once per cooldown rather than once per event. Windows keep only the
// times of the latest Threshold events, and a source idle for longer than
// the longest window and the cooldown is forgotten; past MaxSources the
// least recently seen source is, so memory stays bounded whatever the
// number of attacking addresses. Windows follow the events' times, which
// come from an injectable clock, so tests need not sleep.
//
// An alert is recorded as an alert_fired event and handed to each Sink, one
// file per sink: LogSink writes it to the server's log; Webhook POSTs it as
// JSON signed with HMAC-SHA256 over the timestamp and the body (so that a
// receiver can refuse forgeries and replays; see VerifySignature), retries
// with bounded exponential backoff, times out every attempt, follows no
// redirects and never names its URL in errors, since the URL may hold a
// token. Every sink has its own goroutine and bounded queue: a slow or
// failing webhook delays only its own deliveries, never Emit, the writer or
// another sink.
//
// Package eventstest holds a recording core.EventEmitter for other
// packages' tests.
package events
