package proto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// ConnOptions configures a Conn. The zero value is ready to use.
type ConnOptions struct {
	// MaxFrame is the largest payload accepted or sent; 0 means DefaultMaxFrame.
	MaxFrame int
	// ReadBufferSize is the size of the buffer on the reader; 0 means 64 KiB.
	ReadBufferSize int
}

// Conn sends and receives envelopes over a reader and a writer. Send is safe for concurrent use;
// Recv must be called from one goroutine at a time. Conn does not close r or w.
type Conn struct {
	r   *bufio.Reader
	max int

	// wmu serialises writes and protects the following.
	wmu  sync.Mutex
	w    io.Writer
	werr error
}

// NewConn returns a Conn reading frames from r and writing frames to w.
func NewConn(r io.Reader, w io.Writer, opts ConnOptions) *Conn {
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = DefaultMaxFrame
	}
	if opts.ReadBufferSize <= 0 {
		opts.ReadBufferSize = 64 << 10
	}
	c := &Conn{max: opts.MaxFrame, w: w}
	if r != nil {
		c.r = bufio.NewReaderSize(r, opts.ReadBufferSize)
	}
	return c
}

// MaxFrame returns the largest payload the Conn accepts or sends.
func (c *Conn) MaxFrame() int { return c.max }

var framePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Send writes one message of type t with id and body as a single frame. The message is encoded
// outside the write lock, so senders only wait for each other's writes. After a write error every
// later Send fails with that first error, which matches ErrClosed; an encoding error or an
// oversized message fails only this call.
func (c *Conn) Send(id uint64, t Type, body any) error {
	buf := framePool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 { // do not keep large buffers alive
			buf.Reset()
			framePool.Put(buf)
		}
	}()
	buf.Reset()
	buf.Write([]byte{0, 0, 0, 0}) // the length, filled in below
	if err := encodeTo(buf, t, id, body); err != nil {
		return err
	}
	frame := buf.Bytes()
	n := len(frame) - HeaderSize
	if n > c.max {
		return &FrameSizeError{Size: uint64(n), Max: uint64(c.max)}
	}
	binary.BigEndian.PutUint32(frame, uint32(n))
	return c.writeFrame(frame)
}

// SendPayload writes an already encoded envelope payload as one frame.
func (c *Conn) SendPayload(p []byte) error {
	frame, err := AppendFrame(make([]byte, 0, HeaderSize+len(p)), p, c.max)
	if err != nil {
		return err
	}
	return c.writeFrame(frame)
}

func (c *Conn) writeFrame(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if _, err := c.w.Write(frame); err != nil {
		c.werr = fmt.Errorf("%w: writing frame: %w", ErrClosed, err)
		return c.werr
	}
	return nil
}

// Recv reads the next envelope. It returns io.EOF at a clean end of the stream. On a version or
// type mismatch it returns the envelope and the error together (see DecodeEnvelope). After a
// *DecodeError the bad frame has been consumed and the stream is still usable; after any other
// error (a frame error such as ErrFrameTooLarge or io.ErrUnexpectedEOF) it must be abandoned.
func (c *Conn) Recv() (*Envelope, error) {
	p, err := ReadFrame(c.r, c.max)
	if err != nil {
		return nil, err
	}
	return DecodeEnvelope(p)
}
