package audit

// QueueLen returns how many Appends wait for l's writer, for tests that
// need a batch of a known size.
func QueueLen(l *Log) int { return len(l.reqs) }
