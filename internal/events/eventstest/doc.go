// Package eventstest provides test doubles for security events: a
// core.EventEmitter that records what it is given, so that a package's
// tests can check which events it emits without an events.Emitter, a
// store or a log.
package eventstest
