// Package webhook delivers completion webhooks: when an invocation ends,
// a signed POST to the target its agent's runagent.config.json names
// ("webhook": {"url": …}) and to the one its run request names.
//
// A target is https, or http to a loopback address; it holds no user
// name or password. The agent's egress rules apply to it as to the
// agent's own connections: a host name must be on the agent's
// network.allow list, an IP address is refused unless the operator
// allowed its range (Config.AllowPrefixes, off by default), and at
// connect time every address the name resolves to is checked, the one
// dialled included, so that DNS rebinding cannot reach a private,
// loopback, link-local or metadata address.
//
// Deliveries are signed as the security alerts are (events.Sign, the
// X-Runagent-Signature, -Timestamp and -Delivery headers) with the
// agent's secret RUNAGENT_WEBHOOK_SECRET, which is never handed to the
// agent's runs (StripSecret). A Dispatcher records each delivery before
// it returns, POSTs it from its own workers (never blocking the run's
// answer), retries network errors, 408, 429 and 5xx with exponential
// backoff and jitter, follows no redirect, and records every attempt.
// Pending deliveries survive a restart: a new Dispatcher resumes them.
package webhook
