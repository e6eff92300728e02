// Package ssh is the transport that reaches agents with shoal's in-process SSH client (package
// sshx): one TCP connection per host, the agent on one session's stdin and stdout, installed on
// first contact by the commands of package install.
package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/shoal-sh/shoal/internal/install"
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

// Kind maps an sshx error to the transport's failure kinds.
func Kind(err error) transport.Kind {
	switch {
	case errors.Is(err, sshx.ErrHostKeyChanged):
		return transport.HostKeyChanged
	case errors.Is(err, sshx.ErrHostKeyUnknown):
		return transport.HostKeyUnknown
	case errors.Is(err, sshx.ErrAuth):
		return transport.AuthFailed
	case errors.Is(err, sshx.ErrRefused):
		return transport.Refused
	case errors.Is(err, sshx.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return transport.Timeout
	case errors.Is(err, sshx.ErrUnreachable):
		return transport.Unreachable
	}
	var nb *install.NoBinaryError
	if errors.As(err, &nb) {
		return transport.NoAgentBinary
	}
	return transport.Other
}

// Connect dials t, starts the installed agent or installs it, and returns the agent's stdio.
func (tr *Transport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	fail := func(k transport.Kind, err error) error {
		return &transport.Error{Kind: k, Host: t.Name, Err: err}
	}
	cl, err := tr.o.Dialer.Dial(ctx, t.Name, sshx.Override{HostName: t.Address, Port: t.Port, User: t.User})
	if err != nil {
		return nil, fail(Kind(err), err)
	}
	// Cancelling ctx during the install closes the connection, which unblocks every read.
	stop := context.AfterFunc(ctx, func() { cl.Close() })
	c, err := tr.start(ctx, cl, t)
	if !stop() || err != nil {
		cl.Close()
		if err == nil {
			err = ctx.Err()
		}
		if ctx.Err() != nil {
			return nil, fail(transport.Timeout, fmt.Errorf("starting agent: %w", context.Cause(ctx)))
		}
		return nil, err
	}
	return c, nil
}

func (tr *Transport) stderr(host string) io.Writer {
	if tr.o.Stderr == nil {
		return nil
	}
	return tr.o.Stderr(host)
}

// start runs the bootstrap on cl and installs the agent when it is missing.
func (tr *Transport) start(ctx context.Context, cl *sshx.Client, t transport.Target) (*conn, error) {
	fail := func(k transport.Kind, err error) error {
		return &transport.Error{Kind: k, Host: t.Name, Err: err}
	}
	bins := tr.o.Source.Available()
	offer := bins
	if t.Reinstall {
		offer = nil
	}
	st, err := cl.Exec(install.Bootstrap(t.InstallDir, offer, t.AgentArgs), tr.stderr(t.Name))
	if err != nil {
		return nil, fail(transport.InstallFailed, fmt.Errorf("running bootstrap: %w", err))
	}
	m, err := install.ReadMarker(st)
	if err != nil {
		st.Close()
		return nil, fail(transport.InstallFailed, fmt.Errorf("running bootstrap: %w", err))
	}
	goos, goarch, _ := install.Platform(m.Uname)
	info := transport.ConnInfo{RemoteOS: goos, RemoteArch: goarch}
	if m.Exec {
		b, _ := install.Match(bins, m.Uname)
		info.AgentPath, info.AgentHash = m.AgentPath, b.Hash
		return &conn{cl: cl, st: st, info: info}, nil
	}
	if goos == "" {
		st.Close()
		return nil, fail(transport.NoAgentBinary, &install.NoBinaryError{Uname: m.Uname})
	}
	bin, err := tr.o.Source.For(goos, goarch)
	if err != nil {
		st.Close()
		return nil, fail(Kind(err), err)
	}
	// The bootstrap waits for the upload script on its stdin: one session, not two.
	script, body := tr.o.Source.UploadFor(t.InstallDir, bin, m, t.AgentArgs)
	if m, err = install.Install(st, script, bin, body); err != nil {
		st.Close()
		return nil, fail(transport.InstallFailed, fmt.Errorf("installing agent %s: %w", bin.Name(), err))
	}
	info.Installed, info.AgentPath, info.AgentHash = true, m.AgentPath, bin.Hash
	return &conn{cl: cl, st: st, info: info}, nil
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
