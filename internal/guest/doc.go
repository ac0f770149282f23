// Package guest is the host side of the guest protocol
// (docs/guest-protocol.md): length-prefixed JSON frames on the control
// channel between runagent and the language shim that runs an agent's code.
//
// The frame codec (ReadFrame, WriteFrame) is separate from the message
// layer (Conn), which sends init and invoke and turns the guest's frames
// into a hello, a sequence of chunk events, and one result or *Failure.
// Values from the guest are kept as the exact JSON bytes it sent, so a
// Python float 1.0 stays "1.0".
//
// Conn enforces the limits that keep a misbehaving guest from exhausting
// the host: a cap on one frame and a cap on the total bytes of chunk and
// result values. Breaking a limit, or any other malformed frame, is a
// *ProtocolError; the caller then kills the guest.
package guest
