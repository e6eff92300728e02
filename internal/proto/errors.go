package proto

import (
	"errors"
	"fmt"
)

// ErrFrameTooLarge is returned when a frame's length exceeds the maximum, before anything is allocated.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrClosed matches the error of every Send after a write to the Conn's writer failed.
var ErrClosed = errors.New("connection closed")

// FrameSizeError says how large a refused frame was; it matches ErrFrameTooLarge with errors.Is.
type FrameSizeError struct {
	Size, Max uint64
}

func (e *FrameSizeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the maximum of %d", e.Size, e.Max)
}

// Is reports whether target is ErrFrameTooLarge.
func (e *FrameSizeError) Is(target error) bool { return target == ErrFrameTooLarge }

// UnknownTypeError is a message type this side does not know.
type UnknownTypeError struct {
	Type Type
}

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("unknown message type %d", uint16(e.Type))
}

// VersionError is an envelope or hello from a peer speaking another protocol version.
type VersionError struct {
	Got, Want uint16
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("protocol version %d, want %d (the agent must be reinstalled)", e.Got, e.Want)
}

// DecodeError is a payload that is not a valid envelope or body.
type DecodeError struct {
	What string // "envelope" or a type name
	Err  error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("decoding %s: %v", e.What, e.Err) }

func (e *DecodeError) Unwrap() error { return e.Err }
