package hostsess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"golang.org/x/sys/unix"
)

// writeChunk is the size of the chunks WriteFile sends. Larger chunks mean fewer frames for the
// agent to read and decode: 50 MB to 50 hosts took 10.5-11.0 s with 256 KiB against 11.2-12.7 s
// with 64 KiB (pdcp: 9.3-9.6 s). A write holds one chunk per host, and the fan-out bounds hosts.
const writeChunk = 256 << 10

// request sends one message on a new call of kind k and passes each response to
// fn until fn reports done. The call is forgotten when request returns.
func (s *Session) request(ctx context.Context, k callKind, t proto.Type, body any, fn func(it item) (bool, error)) error {
	cl := s.newCall(k, false)
	c, err := s.ready(ctx, cl)
	if err != nil {
		return err
	}
	defer s.dropCall(cl)
	if err := c.send(cl.id, t, body); err != nil {
		return s.errorf(proto.ReasonLost, k.String(), err)
	}
	return s.waitCall(ctx, cl, fn)
}

// waitCall passes cl's messages to fn until it reports done, the connection is
// lost or ctx ends.
func (s *Session) waitCall(ctx context.Context, cl *call, fn func(it item) (bool, error)) error {
	for {
		select {
		case <-cl.wake:
			for _, it := range cl.take() {
				if it.lost {
					return s.lostErr(cl.kind.String(), it.err)
				}
				if it.t == 0 {
					continue
				}
				if pe, ok := it.body.(*proto.Error); ok {
					return s.errorf(proto.ReasonRemote, cl.kind.String(), pe)
				}
				if done, err := fn(it); done || err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// Ping sends a ping to the agent and returns the round trip.
func (s *Session) Ping(ctx context.Context) (time.Duration, error) {
	var rtt time.Duration
	t0 := s.opts.Now()
	err := s.request(ctx, kindPing, proto.TypePing, nil, func(it item) (bool, error) {
		if it.t != proto.TypePong {
			return false, nil
		}
		rtt = s.opts.Now().Sub(t0)
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.lastRTT = rtt
	s.mu.Unlock()
	return rtt, nil
}

// Info asks the agent to describe its host and returns the answer and the round trip.
func (s *Session) Info(ctx context.Context) (proto.Info, time.Duration, error) {
	var info proto.Info
	t0 := s.opts.Now()
	var rtt time.Duration
	err := s.request(ctx, kindInfo, proto.TypeInfo, &proto.InfoRequest{}, func(it item) (bool, error) {
		in, ok := it.body.(*proto.Info)
		if !ok {
			return false, nil
		}
		rtt = s.opts.Now().Sub(t0)
		info = *in
		return true, nil
	})
	return info, rtt, err
}

// ReadFile copies src on the host to w and returns its size and mode.
func (s *Session) ReadFile(ctx context.Context, src string, w io.Writer) (int64, fs.FileMode, error) {
	return s.read(ctx, &proto.Read{Path: src}, w)
}

// ReadTree writes the directory tree src on the host to w as a tar archive (fsutil.Pack) and
// returns the archive's size and the directory's mode.
func (s *Session) ReadTree(ctx context.Context, src string, w io.Writer) (int64, fs.FileMode, error) {
	return s.read(ctx, &proto.Read{Path: src, Tree: true}, w)
}

func (s *Session) read(ctx context.Context, req *proto.Read, w io.Writer) (int64, fs.FileMode, error) {
	src := req.Path
	var n int64
	var mode fs.FileMode
	err := s.request(ctx, kindRead, proto.TypeRead, req, func(it item) (bool, error) {
		ch, ok := it.body.(*proto.ReadChunk)
		if !ok {
			return false, nil
		}
		mode = fs.FileMode(ch.Mode) & fs.ModePerm
		if len(ch.Data) > 0 {
			m, err := w.Write(ch.Data)
			n += int64(m)
			if err != nil {
				return true, fmt.Errorf("reading %s from %s: %w", src, s.host, err)
			}
		}
		return ch.EOF, nil
	})
	return n, mode, err
}

// WriteFile writes size bytes from r to dest on the host, atomically, with mode
// (size < 0: until r ends).
func (s *Session) WriteFile(ctx context.Context, dest string, mode fs.FileMode, r io.Reader, size int64) error {
	cl := s.newCall(kindWrite, false)
	c, err := s.ready(ctx, cl)
	if err != nil {
		return err
	}
	defer s.dropCall(cl)
	if size < 0 {
		size = -1
	}
	if err := c.send(cl.id, proto.TypeWrite, &proto.Write{Path: dest, Mode: uint32(mode.Perm()), Size: size, Tree: mode.IsDir()}); err != nil {
		return s.errorf(proto.ReasonLost, "write", err)
	}
	abort := func(err error) error {
		c.send(s.ids.Add(1), proto.TypeKill, &proto.Kill{Target: cl.id})
		return err
	}
	buf := make([]byte, writeChunk)
	for {
		if err := ctx.Err(); err != nil {
			return abort(context.Cause(ctx))
		}
		// An early error (no space, permission) ends the write.
		for _, it := range cl.take() {
			if it.lost {
				return s.lostErr("write", it.err)
			}
			if pe, ok := it.body.(*proto.Error); ok {
				return s.errorf(proto.ReasonRemote, "write", pe)
			}
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := c.send(cl.id, proto.TypeWriteChunk, &proto.WriteChunk{Data: buf[:n]}); err != nil {
				return s.errorf(proto.ReasonLost, "write", err)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return abort(fmt.Errorf("writing %s to %s: reading the source: %w", dest, s.host, rerr))
		}
	}
	if err := c.send(cl.id, proto.TypeWriteDone, &proto.WriteDone{}); err != nil {
		return s.errorf(proto.ReasonLost, "write", err)
	}
	select {
	case cl.wake <- struct{}{}: // re-check items taken by nobody yet
	default:
	}
	err = s.waitCall(ctx, cl, func(it item) (bool, error) {
		wr, ok := it.body.(*proto.Written)
		if !ok {
			return false, nil
		}
		if size >= 0 && wr.Size != size {
			return true, s.errorf(proto.ReasonRemote, "write", fmt.Errorf("%s: wrote %d bytes, want %d", dest, wr.Size, size))
		}
		return true, nil
	})
	if ctx.Err() != nil {
		return abort(err)
	}
	return err
}

// KillAll kills every command the agent runs (SIGKILL to each process group).
func (s *Session) KillAll(ctx context.Context) error {
	return s.request(ctx, kindKill, proto.TypeKill, &proto.Kill{All: true, Signal: int(unix.SIGKILL)}, func(it item) (bool, error) {
		_, ok := it.body.(*proto.Killed)
		return ok, nil
	})
}
