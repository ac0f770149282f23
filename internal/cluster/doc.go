// Package cluster is a small message bus between the nodes that share one
// store, over Redis pub/sub. It lets any node act on a run another node
// holds: cancel it, rejoin its stream (the holder relays the events), and
// learn promptly that it has ended.
//
// # Trust
//
// Every message is signed with an HMAC-SHA256 under a key all nodes of
// the store derive from its MAC root (keyring.MACKey("cluster bus")), over
// the channel it is published on and its body. A message carries its
// sender, a per-sender counter and a timestamp: one older (or further in
// the future) than MaxAge, or whose counter was seen before, is a replay.
// Forged, replayed and malformed messages are dropped, counted (Stats)
// and logged, and never acted on. A request is authorized on the node
// that received it; the node holding the run trusts only signed messages.
// The channels' names are derived from the key too, so stores sharing one
// Redis do not hear each other.
//
// # Asking
//
// A node asks all nodes at once (one channel); PUBLISH reports how many
// heard it, each answers the asker's own channel (held, gone or none), so
// "nobody holds it" is known as soon as all have answered, not after a
// timeout. (A Redis client subscribed to the bus's channels by pattern,
// MONITOR-style, counts as a listener that never answers: asks it hears
// wait for AskTimeout.)
//
// # Relays
//
// A stream is relayed by the node keeping it to the asker's channel as
// numbered messages. Pub/sub keeps nothing for a slow or absent reader, so
// the relay is flow-controlled: at most Window messages (WindowBytes
// bytes) are unacknowledged at once, and a requester that stops
// acknowledging for AckTimeout ends the relay with an error. A gap in the
// numbers (messages lost while a connection was re-established) ends it
// with an error too: events are never lost or repeated silently.
//
// Messages are signed, not encrypted: a stream's events cross Redis as
// the client would read them. Use rediss:// where the network to Redis
// is not trusted.
package cluster
