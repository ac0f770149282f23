package guest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
	}{
		{"empty", []byte{}},
		{"object", []byte(`{"type":"hello"}`)},
		{"utf8", []byte(`{"v":"héllo ✓"}`)},
		{"1MiB", bytes.Repeat([]byte("x"), 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteFrame(&buf, tt.payload); err != nil {
				t.Fatalf("WriteFrame: %v", err)
			}
			if got, want := buf.Len(), 4+len(tt.payload); got != want {
				t.Fatalf("frame is %d bytes, want %d", got, want)
			}
			got, err := ReadFrame(&buf, 2<<20)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if !bytes.Equal(got, tt.payload) {
				t.Errorf("ReadFrame = %.40q, want %.40q", got, tt.payload)
			}
			if _, err := ReadFrame(&buf, 0); err != io.EOF {
				t.Errorf("ReadFrame after the last frame: got %v, want io.EOF", err)
			}
		})
	}
}

func header(n uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, n)
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   []byte
		max     int
		want    error
		wantLen int // bytes of input ReadFrame may consume
	}{
		{"empty input", nil, 16, io.EOF, 0},
		{"partial header", []byte{0, 0}, 16, io.ErrUnexpectedEOF, 2},
		{"short payload", append(header(10), "abc"...), 16, io.ErrUnexpectedEOF, 7},
		{"header only", header(3), 16, io.ErrUnexpectedEOF, 4},
		{"over cap", append(header(17), strings.Repeat("x", 17)...), 16, ErrFrameTooLarge, 4},
		{"max uint32", header(0xffffffff), 0, ErrFrameTooLarge, 4},
		{"default cap", header(DefaultMaxFrame + 1), 0, ErrFrameTooLarge, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.input)
			got, err := ReadFrame(r, tt.max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadFrame(%x) = %q, %v; want error %v", tt.input, got, err, tt.want)
			}
			if errors.Is(tt.want, ErrFrameTooLarge) {
				if _, ok := errors.AsType[*ProtocolError](err); !ok {
					t.Errorf("error %v (%T) is not a *ProtocolError", err, err)
				}
			}
			if consumed := len(tt.input) - r.Len(); consumed > tt.wantLen {
				t.Errorf("consumed %d bytes, want at most %d", consumed, tt.wantLen)
			}
		})
	}
}

func TestReadFrameExactCap(t *testing.T) {
	input := append(header(16), strings.Repeat("y", 16)...)
	got, err := ReadFrame(bytes.NewReader(input), 16)
	if err != nil || len(got) != 16 {
		t.Fatalf("ReadFrame of a frame at the cap = %q, %v; want 16 bytes", got, err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriteFrameError(t *testing.T) {
	err := WriteFrame(failingWriter{}, []byte("{}"))
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("WriteFrame to a failing writer: got %v, want io.ErrClosedPipe", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(append(header(2), "{}"...))
	f.Add(append(append(header(1), 'x'), header(3)...))
	f.Add(header(0xffffffff))
	f.Add([]byte{0, 0, 0})
	const max = 64
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var out bytes.Buffer
		for {
			p, err := ReadFrame(r, max)
			if err != nil {
				var pe *ProtocolError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &pe) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(p) > max {
				t.Fatalf("frame of %d bytes passed a %d-byte cap", len(p), max)
			}
			if err := WriteFrame(&out, p); err != nil {
				t.Fatal(err)
			}
		}
		// What was read re-encodes to a prefix of the input.
		if !bytes.HasPrefix(data, out.Bytes()) {
			t.Fatalf("re-encoded frames %x are not a prefix of %x", out.Bytes(), data)
		}
	})
}
