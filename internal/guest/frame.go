package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultMaxFrame is the frame size cap used when none is given.
const DefaultMaxFrame = 8 << 20

// frameHeader is the size of a frame's big-endian length prefix.
const frameHeader = 4

// ErrFrameTooLarge is wrapped by the *ProtocolError ReadFrame returns for a
// frame whose length exceeds the cap.
var ErrFrameTooLarge = errors.New("frame exceeds the size limit")

// WriteFrame writes payload as one frame: a 4-byte big-endian length and
// the payload, in a single Write.
func WriteFrame(w io.Writer, payload []byte) error {
	if uint64(len(payload)) > math.MaxUint32 {
		return fmt.Errorf("frame of %d bytes is too large to encode", len(payload))
	}
	buf := make([]byte, frameHeader+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[frameHeader:], payload)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame from r and returns its payload. max caps the
// payload length (max <= 0 means DefaultMaxFrame); a longer frame is a
// *ProtocolError wrapping ErrFrameTooLarge, detected from the header alone
// so nothing of it is buffered. ReadFrame returns io.EOF when r ends
// cleanly before a frame and io.ErrUnexpectedEOF when it ends inside one.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	var head [frameHeader]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if uint64(n) > uint64(max) {
		return nil, &ProtocolError{
			Msg: fmt.Sprintf("frame of %d bytes exceeds the %d-byte limit", n, max),
			Err: ErrFrameTooLarge,
		}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return payload, nil
}
