// Package dirlock gives one process at a time a data directory: an
// exclusive flock on <dir>/serve.lock held for the holder's life, and
// beside it serve.json naming the holder (pid, address) for the message
// another process that wants the directory shows.
//
// The kernel releases a flock when its holder exits, however it exits, so
// a crashed server never blocks the next one; serve.json may then be
// stale, and is believed only while the lock is held and its pid lives.
package dirlock
