package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrame is the default maximum payload size of a frame: 16 MiB.
const DefaultMaxFrame = 16 << 20

// HeaderSize is the size of a frame's length prefix.
const HeaderSize = 4

// ReadFrame reads one frame from r and returns its payload. It checks the length against max
// (DefaultMaxFrame when max <= 0) before allocating. At a clean end between frames it returns
// io.EOF; inside a frame, io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("reading frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max) {
		return nil, &FrameSizeError{Size: uint64(n), Max: uint64(max)}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading frame of %d bytes: %w", n, err)
	}
	return buf, nil
}

// AppendFrame appends payload to dst as one frame. It fails with ErrFrameTooLarge when payload
// exceeds max (DefaultMaxFrame when max <= 0).
func AppendFrame(dst, payload []byte, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if len(payload) > max {
		return dst, &FrameSizeError{Size: uint64(len(payload)), Max: uint64(max)}
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...), nil
}

// WriteFrame writes payload to w as one frame, in a single Write call.
func WriteFrame(w io.Writer, payload []byte, max int) error {
	buf, err := AppendFrame(make([]byte, 0, HeaderSize+len(payload)), payload, max)
	if err != nil {
		return err
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	return nil
}
