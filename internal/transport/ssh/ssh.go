// Package ssh is the transport that reaches agents with shoal's in-process SSH client (package
// sshx): one TCP connection per host, the agent on one session's stdin and stdout, installed on
// first contact in that session by transport.Replicate.
package ssh

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
)

// Options configures a Transport.
type Options struct {
	// Dialer makes the SSH connections; nil means a zero sshx.Dialer (~/.ssh/config, agent, ...).
	Dialer *sshx.Dialer
	// Source finds agent binaries to install; nil means the running executable only.
	Source *install.Source
	// Stderr returns where the agent's stderr for host goes; nil discards it.
	Stderr func(host string) io.Writer
}

// Transport connects to hosts over in-process SSH.
type Transport struct {
	o Options
}

// New returns a Transport.
func New(o Options) *Transport {
	if o.Dialer == nil {
		o.Dialer = &sshx.Dialer{}
	}
	if o.Source == nil {
		o.Source = &install.Source{}
	}
	return &Transport{o: o}
}

// Reason maps an sshx error to the reason of a failed connect.
func Reason(err error) proto.Reason {
	switch {
	case errors.Is(err, sshx.ErrHostKeyChanged):
		return proto.ReasonHostKeyChanged
	case errors.Is(err, sshx.ErrHostKeyUnknown):
		return proto.ReasonHostKeyUnknown
	case errors.Is(err, sshx.ErrAuth):
		return proto.ReasonAuthFailed
	case errors.Is(err, sshx.ErrRefused):
		return proto.ReasonConnRefused
	case errors.Is(err, sshx.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return proto.ReasonConnectTimeout
	case errors.Is(err, sshx.ErrUnreachable):
		return proto.ReasonUnreachable
	}
	return proto.ReasonConnectFailed
}

// Connect dials t, starts the installed agent or installs it (transport.Replicate), and returns
// the agent's stdio.
func (tr *Transport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	cl, err := tr.o.Dialer.Dial(ctx, t.Name, sshx.Override{HostName: t.Address, Port: t.Port, User: t.User})
	if err != nil {
		return nil, &transport.Error{Reason: Reason(err), Host: t.Name, Err: err}
	}
	sh := &shell{cl: cl, stderr: tr.stderr(t.Name)}
	info, err := transport.Replicate(ctx, sh, tr.o.Source, t)
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &conn{cl: cl, st: sh.st, info: info}, nil
}

func (tr *Transport) stderr(host string) io.Writer {
	if tr.o.Stderr == nil {
		return nil
	}
	return tr.o.Stderr(host)
}

// shell runs the bootstrap in a session of an SSH connection, for transport.Replicate.
type shell struct {
	cl     *sshx.Client
	stderr io.Writer
	st     *sshx.Stream // the bootstrap's session, once started
}

func (s *shell) Start(cmd string) (io.ReadWriter, error) {
	st, err := s.cl.Exec(cmd, s.stderr)
	if err != nil {
		return nil, err
	}
	s.st = st
	return st, nil
}

// Abort closes the connection, which unblocks every read and write of its sessions.
func (s *shell) Abort() { s.cl.Close() }

// End closes the session; the connection is up, so there is nothing to add to err.
func (s *shell) End(err error) error {
	s.st.Close()
	return err
}

// conn is a running agent on an SSH session.
type conn struct {
	cl   *sshx.Client
	st   *sshx.Stream
	info transport.ConnInfo

	closeOnce sync.Once
	closeErr  error
}

func (c *conn) Read(p []byte) (int, error)  { return c.st.Read(p) }
func (c *conn) Write(p []byte) (int, error) { return c.st.Write(p) }
func (c *conn) Info() transport.ConnInfo    { return c.info }

// Close closes the agent's stdin and the SSH connection.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.st.CloseWrite()
		c.closeErr = c.cl.Close()
		c.st.Close()
	})
	return c.closeErr
}

// Side runs cmd in a second session on the same connection.
func (c *conn) Side(ctx context.Context, cmd string) ([]byte, error) {
	return c.cl.Run(ctx, cmd, nil)
}
