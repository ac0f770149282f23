package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// The journal is the file a Log makes its records durable in before
// Append returns (see "The journal" in the package doc). Its layout:
//
//	header:  "RAJRNL01" uint64le(epoch) uint32le(crc32c of the 16 bytes before) 4 zero bytes
//	frames:  uint32le(len(payload)) uint32le(crc) payload, one after the other
//	payload: PrevHash Hash canonical(record)   (see Record.ComputeHash)
//
// where crc = crc32c(uint64le(epoch) || uint32le(len(payload)) || payload).
// The frames end at the first frame header of zeros, or at the first
// frame that is torn (its length runs past the end of the file, or its
// CRC does not match): a frame is only ever appended, after the last
// one, and a batch is acknowledged only once its frames are synced, so
// whatever follows a bad frame was never acknowledged. A reset starts a
// new epoch: the frames of older epochs, still in the file, fail the CRC.
// The file is filled with zeros ahead (journalSize), so that appending a
// frame changes no file metadata and its fdatasync writes only data.
const (
	journalMagic      = "RAJRNL01"
	journalHeaderSize = 24
	frameHeaderSize   = 8
	// maxFrame bounds a frame's payload: a record holds at most 9 fields
	// of MaxFieldBytes and MaxDetails of MaxNameBytes + MaxValueBytes.
	maxFrame = 1 << 20
)

// journalSize is the size a journal is filled to with zeros when it is
// created. Once the next batch would not fit, the owner makes the store
// hold every record durably and starts the journal over (reset): about
// once per 20,000 records.
var journalSize int64 = 8 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errJournalCorrupt is wrapped by the error for a frame whose CRC matches
// but whose record does not decode or hash: not a torn write.
var errJournalCorrupt = errors.New("audit journal is corrupt")

// journal is an open journal file. Its methods are not safe for concurrent
// use; across processes, lock serializes appends.
type journal struct {
	path  string
	f     *os.File
	owner *os.File // the lock file, held while this process owns the journal; nil for a guest

	epoch uint64 // of the frames known
	valid bool   // the header is valid (else no frame is)
	off   int64  // end of the last frame known
	last  Record // the last record known, Seq 0 if none since the reset
	junk  bool   // at off lies a torn frame (an appender died writing it)
	buf   []byte
}

// openJournal opens the journal at path, creating it (and filling it with
// zeros) if need be, and takes its ownership if no other process holds it.
func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit journal: %w", err)
	}
	j := &journal{path: path, f: f}
	if err := j.prepare(); err != nil {
		f.Close()
		return nil, err
	}
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit journal: %w", err)
	}
	ok, err := tryLock(lf)
	if err != nil {
		f.Close()
		lf.Close()
		return nil, fmt.Errorf("open audit journal: %w", err)
	}
	if ok {
		j.owner = lf
	} else {
		lf.Close()
	}
	return j, nil
}

// prepare fills a journal shorter than journalSize with zeros, under the
// append lock, and syncs it and its directory.
func (j *journal) prepare() error {
	if err := j.lock(); err != nil {
		return err
	}
	defer j.unlock()
	st, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("audit journal: %w", err)
	}
	if st.Size() >= journalSize {
		return nil
	}
	zeros := make([]byte, 1<<20)
	for off := st.Size(); off < journalSize; {
		n := min(int64(len(zeros)), journalSize-off)
		if _, err := j.f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("audit journal: fill: %w", err)
		}
		off += n
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("audit journal: sync: %w", err)
	}
	return syncDir(filepath.Dir(j.path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit journal: sync directory: %w", err)
	}
	return nil
}

// isOwner reports whether this process owns the journal: it indexes the
// journal's records into the store and resets it.
func (j *journal) isOwner() bool { return j.owner != nil }

func (j *journal) lock() error {
	if err := lockFile(j.f); err != nil {
		return fmt.Errorf("audit journal: lock: %w", err)
	}
	return nil
}

func (j *journal) unlock() { unlockFile(j.f) }

// Close closes the files, giving up ownership.
func (j *journal) Close() error {
	err := j.f.Close()
	if j.owner != nil {
		j.owner.Close()
	}
	return err
}

// catchUp reads the frames appended since j.off (by another process),
// from the start if the journal was reset meanwhile, and returns their
// records. Call it with the lock held.
func (j *journal) catchUp() ([]Record, error) {
	var hdr [journalHeaderSize]byte
	if _, err := j.f.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("audit journal: read header: %w", err)
	}
	epoch, ok := parseJournalHeader(hdr[:])
	j.valid = ok
	if !ok {
		j.epoch, j.off, j.last = 0, journalHeaderSize, Record{}
		return nil, nil
	}
	if epoch != j.epoch || j.off < journalHeaderSize {
		// New to this process, or reset by its owner.
		j.epoch, j.off, j.last = epoch, journalHeaderSize, Record{}
	}
	var fh [frameHeaderSize]byte
	if _, err := j.f.ReadAt(fh[:], j.off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("audit journal: %w", err)
	}
	if binary.LittleEndian.Uint32(fh[:4]) == 0 {
		return nil, nil // the usual case: nothing new
	}
	st, err := j.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit journal: %w", err)
	}
	b := make([]byte, st.Size()-j.off)
	if _, err := j.f.ReadAt(b, j.off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("audit journal: %w", err)
	}
	recs, n, err := parseFrames(b, j.epoch)
	if err != nil {
		return nil, fmt.Errorf("%w at offset %d", err, j.off+int64(n))
	}
	// A frame that does not continue the chain is left from before: the
	// journal ends there.
	prev := j.last
	for i, r := range recs {
		if prev.Seq > 0 && (r.Seq != prev.Seq+1 || !bytes.Equal(r.PrevHash, prev.Hash)) {
			recs = recs[:i]
			break
		}
		prev = r
	}
	n = 0
	for i := range recs {
		n += frameHeaderSize + payloadSize(&recs[i])
	}
	j.off += int64(n)
	j.junk = len(recs) == 0
	if len(recs) > 0 {
		j.last = recs[len(recs)-1]
	}
	return recs, nil
}

// changed reports, without the lock, whether frames may have been appended
// since j.off: a cheap test before catchUp.
func (j *journal) changed() bool {
	if j.junk {
		return false
	}
	var fh [4]byte
	if _, err := j.f.ReadAt(fh[:], j.off); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(fh[:]) != 0
}

// full reports whether recs would not fit in the part of the journal
// filled ahead.
func (j *journal) full(size int) bool {
	return j.off > journalHeaderSize && j.off+int64(size) > journalSize
}

// encode returns the frames of recs in j's epoch, and a zero frame
// header after them: whatever lies beyond (a torn frame) is never read.
// The result is valid until the next encode.
func (j *journal) encode(recs []Record) []byte {
	b := j.buf[:0]
	for i := range recs {
		start := len(b)
		b = append(b, make([]byte, frameHeaderSize)...)
		b = appendPayload(b, &recs[i])
		payload := b[start+frameHeaderSize:]
		binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(b[start+4:], frameCRC(j.epoch, payload))
	}
	b = append(b, make([]byte, frameHeaderSize)...)
	j.buf = b
	return b
}

// payloadSize is the size of r's frame payload.
func payloadSize(r *Record) int {
	n := 2*HashSize + 8 + len(recordDomain) + 8 + 8 + 8 + 9*8 +
		len(r.PrincipalID) + len(r.KeyID) + len(r.Subject) + len(r.Action) + len(r.Resource) +
		len(r.Outcome) + len(r.IP) + len(r.UserAgent) + len(r.RequestID)
	for k, v := range r.Details {
		n += 16 + len(k) + len(v)
	}
	return n
}

// append writes frames (from encode, for recs) after the last frame and
// syncs them. Call it with the lock held, after catchUp.
func (j *journal) append(frames []byte, recs []Record) error {
	if _, err := j.f.WriteAt(frames, j.off); err != nil {
		return fmt.Errorf("audit journal: write: %w", err)
	}
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("audit journal: sync: %w", err)
	}
	j.off += int64(len(frames) - frameHeaderSize)
	j.last = recs[len(recs)-1]
	j.junk = false
	return nil
}

// reset starts a new epoch: every frame in the file becomes stale. Call
// it with the lock held, once the store holds every record durably.
func (j *journal) reset() error {
	// A random epoch, never the one before: a reset torn by a crash leaves
	// no valid header, and the next must not revive the frames in the file.
	epoch := rand.Uint64()
	for epoch == j.epoch {
		epoch = rand.Uint64()
	}
	if _, err := j.f.WriteAt(journalHeader(epoch), 0); err != nil {
		return fmt.Errorf("audit journal: reset: %w", err)
	}
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("audit journal: reset: sync: %w", err)
	}
	j.epoch, j.off, j.last, j.valid = epoch, journalHeaderSize, Record{}, true
	return nil
}

func journalHeader(epoch uint64) []byte {
	b := make([]byte, journalHeaderSize)
	copy(b, journalMagic)
	binary.LittleEndian.PutUint64(b[8:], epoch)
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	return b
}

// parseJournalHeader returns the epoch of a journal header, or false if b
// is not one (a journal never reset, or a reset torn by a crash: either
// way no frame in it is due).
func parseJournalHeader(b []byte) (uint64, bool) {
	if len(b) < journalHeaderSize || string(b[:8]) != journalMagic ||
		binary.LittleEndian.Uint32(b[16:]) != crc32.Checksum(b[:16], castagnoli) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[8:]), true
}

func frameCRC(epoch uint64, payload []byte) uint32 {
	var h [12]byte
	binary.LittleEndian.PutUint64(h[:], epoch)
	binary.LittleEndian.PutUint32(h[8:], uint32(len(payload)))
	return crc32.Update(crc32.Checksum(h[:], castagnoli), castagnoli, payload)
}

// parseFrames decodes the frames at the start of b, in epoch, up to the
// first zero, torn or stale frame, and returns their records and how many
// bytes they took. A frame whose CRC matches but whose payload is not a
// record with a correct Hash is an error wrapping errJournalCorrupt (n is
// then its offset). It does not check that the records chain.
func parseFrames(b []byte, epoch uint64) (recs []Record, n int, err error) {
	for len(b)-n >= frameHeaderSize {
		size := binary.LittleEndian.Uint32(b[n:])
		if size == 0 || size > maxFrame || int64(size) > int64(len(b)-n-frameHeaderSize) {
			break
		}
		payload := b[n+frameHeaderSize : n+frameHeaderSize+int(size)]
		if binary.LittleEndian.Uint32(b[n+4:]) != frameCRC(epoch, payload) {
			break
		}
		r, err := decodePayload(payload)
		if err != nil {
			return recs, n, err
		}
		recs = append(recs, r)
		n += frameHeaderSize + int(size)
	}
	return recs, n, nil
}

// appendPayload appends a frame's payload for r to b.
func appendPayload(b []byte, r *Record) []byte {
	b = append(b, r.PrevHash...)
	b = append(b, r.Hash...)
	return r.canonical(b)
}

// decodePayload decodes a frame's payload: the record it holds, with
// its Hash checked.
func decodePayload(p []byte) (Record, error) {
	bad := func(what string) (Record, error) {
		return Record{}, fmt.Errorf("%w: %s", errJournalCorrupt, what)
	}
	if len(p) < 2*HashSize {
		return bad("short record")
	}
	r := Record{PrevHash: bytes.Clone(p[:HashSize]), Hash: bytes.Clone(p[HashSize : 2*HashSize])}
	d := decoder{b: p[2*HashSize:]}
	if d.str() != recordDomain {
		return bad("not a record")
	}
	r.Seq = int64(d.u64())
	r.Time = time.Unix(0, int64(d.u64())).UTC()
	for _, s := range [...]*string{&r.PrincipalID, &r.KeyID, &r.Subject, &r.Action, &r.Resource, &r.Outcome, &r.IP, &r.UserAgent, &r.RequestID} {
		*s = d.str()
	}
	n := d.u64()
	if n > MaxDetails {
		return bad("too many details")
	}
	if n > 0 {
		r.Details = make(map[string]string, n)
	}
	prev := ""
	for i := uint64(0); i < n && !d.failed; i++ {
		k, v := d.str(), d.str()
		if i > 0 && k <= prev {
			return bad("details out of order")
		}
		prev = k
		r.Details[k] = v
	}
	if d.failed || len(d.b) != 0 {
		return bad("bad length")
	}
	if r.Seq <= 0 {
		return bad("seq not positive")
	}
	if !bytes.Equal(r.ComputeHash(), r.Hash) {
		return bad(fmt.Sprintf("record %d does not match its hash", r.Seq))
	}
	return r, nil
}

// decoder reads the canonical encoding; after a short read failed is set
// and every read returns zero.
type decoder struct {
	b      []byte
	failed bool
}

func (d *decoder) u64() uint64 {
	if d.failed || len(d.b) < 8 {
		d.failed = true
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) str() string {
	n := d.u64()
	if d.failed || n > uint64(len(d.b)) {
		d.failed = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
