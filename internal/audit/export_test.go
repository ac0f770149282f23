package audit

import (
	"encoding/binary"
	"os"
	"testing"
)

// QueueLen returns how many Appends wait for l's writer, for tests that
// need a batch of a known size.
func QueueLen(l *Log) int { return len(l.reqs) }

// SetJournalSize makes the journals created until the test ends this
// size, so that tests can make them fill up.
func SetJournalSize(tb interface{ Cleanup(func()) }, n int64) {
	old := journalSize
	journalSize = n
	tb.Cleanup(func() { journalSize = old })
}

// Abandon stops l's writer and closes its journal without letting the
// indexer finish, as a crash would: its locks go, and nothing more
// reaches the journal.
func Abandon(l *Log) {
	l.mu.Lock()
	l.closed = true
	close(l.reqs)
	l.mu.Unlock()
	<-l.done
	l.journal.Close()
}

// JournalEnd returns the offset where the frames of the journal b end.
func JournalEnd(tb testing.TB, b []byte) int {
	tb.Helper()
	epoch, ok := parseJournalHeader(b)
	if !ok {
		tb.Fatal("journal has no valid header")
	}
	_, n, err := parseFrames(b[journalHeaderSize:], epoch)
	if err != nil {
		tb.Fatal(err)
	}
	return journalHeaderSize + n
}

// TamperJournal changes the first record in the journal at path and
// writes its frame's CRC again: the frame reads whole, the record's hash
// does not match.
func TamperJournal(tb testing.TB, path string) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	epoch, ok := parseJournalHeader(b)
	if !ok {
		tb.Fatal("journal has no valid header")
	}
	f := b[journalHeaderSize:]
	size := binary.LittleEndian.Uint32(f)
	payload := f[frameHeaderSize : frameHeaderSize+size]
	payload[len(payload)-1] ^= 1 // the last byte of the last detail's value
	binary.LittleEndian.PutUint32(f[4:], frameCRC(epoch, payload))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
