// Package openssh is the transport that reaches agents by running the system ssh binary, for
// set-ups the in-process client cannot do: ProxyCommand, GSSAPI, ControlMaster. It replicates the
// agent as package ssh does (transport.Replicate), one ssh process per connection (a first
// contact installs in the bootstrap's own session), in BatchMode so it never prompts.
package openssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// Options configures a Transport.
type Options struct {
	// SSH is the ssh program; empty means "ssh" from PATH.
	SSH string
	// ConfigFile is passed with -F when not empty.
	ConfigFile string
	// Args are extra ssh options placed before the host (e.g. "-o", "ControlMaster=auto").
	Args []string
	// Source finds agent binaries to install; nil means the running executable only.
	Source *install.Source
	// Stderr returns where the agent's stderr (and ssh's) for host goes; nil discards it.
	Stderr func(host string) io.Writer
	// CloseWait bounds how long Close waits for ssh to exit before killing it; 0 means 2s.
	CloseWait time.Duration
}

// Transport connects to hosts with the system ssh binary.
type Transport struct {
	o Options
}

// New returns a Transport.
func New(o Options) *Transport {
	if o.SSH == "" {
		o.SSH = "ssh"
	}
	if o.Source == nil {
		o.Source = &install.Source{}
	}
	if o.CloseWait == 0 {
		o.CloseWait = 2 * time.Second
	}
	return &Transport{o: o}
}

// args returns the ssh command line for t running remote.
func (tr *Transport) args(t transport.Target, remote string) []string {
	a := []string{"-T", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
	if tr.o.ConfigFile != "" {
		a = append(a, "-F", tr.o.ConfigFile)
	}
	if t.Address != "" {
		a = append(a, "-o", "HostName="+t.Address)
	}
	if t.Port != 0 {
		a = append(a, "-p", strconv.Itoa(t.Port))
	}
	if t.User != "" {
		a = append(a, "-l", t.User)
	}
	a = append(a, tr.o.Args...)
	return append(a, "--", t.Name, remote)
}

// proc is one running ssh process.
type proc struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	errBuf *capBuffer // ssh's stderr until the marker, to classify failures
	done   chan struct{}
	err    error // cmd.Wait's result, set before done closes
}

func (tr *Transport) run(t transport.Target, remote string) (*proc, error) {
	cmd := exec.Command(tr.o.SSH, tr.args(t, remote)...)
	p := &proc{cmd: cmd, errBuf: &capBuffer{max: 8 << 10}, done: make(chan struct{})}
	// Our own pipes, not StdinPipe/StdoutPipe: Wait must not close the read end while the
	// marker or the agent's last frames are still being read.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	p.stdin, p.stdout = inW, outR
	var sink io.Writer = io.Discard
	if tr.o.Stderr != nil {
		sink = tr.o.Stderr(t.Name)
	}
	p.errBuf.next = sink
	cmd.Stderr = p.errBuf
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("running %s: %w", tr.o.SSH, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// release closes this side's pipe ends once the process is gone.
func (p *proc) release() {
	p.stdin.Close()
	p.stdout.Close()
}

// end closes ssh's stdin, waits for it to exit and returns cause with what ssh said on its
// stderr: an *transport.Error with the reason that names, when it names one (ssh could not reach
// or log in to the host).
func (p *proc) end(host string, cause error) error {
	p.stdin.Close()
	<-p.done
	p.release()
	msg := strings.TrimSpace(p.errBuf.String())
	if msg == "" {
		return cause
	}
	err := fmt.Errorf("%w: ssh says: %s", cause, msg)
	if k, ok := classify(msg); ok {
		return &transport.Error{Reason: k, Host: host, Err: err}
	}
	return err
}

// classify maps ssh's error messages to reasons; ok is false for a message it does not
// know.
func classify(msg string) (k proto.Reason, ok bool) {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "remote host identification has changed"),
		strings.Contains(m, "host key for") && strings.Contains(m, "has changed"):
		return proto.ReasonHostKeyChanged, true
	case strings.Contains(m, "host key verification failed"),
		strings.Contains(m, "no ") && strings.Contains(m, "host key is known"):
		return proto.ReasonHostKeyUnknown, true
	case strings.Contains(m, "permission denied"), strings.Contains(m, "too many authentication failures"):
		return proto.ReasonAuthFailed, true
	case strings.Contains(m, "connection refused"):
		return proto.ReasonConnRefused, true
	case strings.Contains(m, "timed out"):
		return proto.ReasonConnectTimeout, true
	case strings.Contains(m, "could not resolve"), strings.Contains(m, "no route to host"),
		strings.Contains(m, "network is unreachable"), strings.Contains(m, "name or service not known"):
		return proto.ReasonUnreachable, true
	}
	return proto.ReasonConnectFailed, false
}

// Connect runs ssh with the bootstrap, which starts the installed agent or installs it
// (transport.Replicate), and returns the agent's stdio.
func (tr *Transport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	sh := &shell{tr: tr, t: t}
	info, err := transport.Replicate(ctx, sh, tr.o.Source, t)
	if err != nil {
		return nil, err
	}
	sh.p.errBuf.stopCapture()
	return &conn{tr: tr, t: t, p: sh.p, info: info}, nil
}

// shell runs the bootstrap as the remote command of an ssh process, for transport.Replicate.
type shell struct {
	tr *Transport
	t  transport.Target

	// mu protects the following: Abort comes from another goroutine.
	mu      sync.Mutex
	p       *proc // the ssh process, once started
	aborted bool
}

// errAborted is Start's error after Abort.
var errAborted = errors.New("connect abandoned")

func (s *shell) Start(cmd string) (io.ReadWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		return nil, errAborted
	}
	p, err := s.tr.run(s.t, cmd)
	if err != nil {
		// Not the host's doing: this machine could not run ssh.
		return nil, &transport.Error{Reason: proto.ReasonConnectFailed, Host: s.t.Name, Err: err}
	}
	s.p = p
	return struct {
		io.Reader
		io.Writer
	}{p.stdout, p.stdin}, nil
}

// Abort kills ssh, which closes its end of the pipes.
func (s *shell) Abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aborted = true
	if s.p != nil {
		s.p.cmd.Process.Kill()
	}
}

func (s *shell) End(err error) error { return s.p.end(s.t.Name, err) }

// conn is an agent on the stdio of an ssh process.
type conn struct {
	tr   *Transport
	t    transport.Target
	p    *proc
	info transport.ConnInfo

	closeOnce sync.Once
}

func (c *conn) Read(b []byte) (int, error)  { return c.p.stdout.Read(b) }
func (c *conn) Write(b []byte) (int, error) { return c.p.stdin.Write(b) }
func (c *conn) Info() transport.ConnInfo    { return c.info }

// Close closes the agent's stdin and waits (at most CloseWait) for ssh to exit, then kills it.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.p.stdin.Close()
		select {
		case <-c.p.done:
		case <-time.After(c.tr.o.CloseWait):
			c.p.cmd.Process.Kill()
			<-c.p.done
		}
		c.p.release()
	})
	return nil
}

// Side runs cmd with a separate ssh process and returns its combined output.
func (c *conn) Side(ctx context.Context, cmd string) ([]byte, error) {
	x := exec.CommandContext(ctx, c.tr.o.SSH, c.tr.args(c.t, cmd)...)
	var out capBuffer
	out.max = 1 << 20
	x.Stdout, x.Stderr = &out, &out
	err := x.Run()
	return out.Bytes(), err
}

// capBuffer keeps the first max bytes written, and passes everything on to next.
type capBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	stopped bool
	next    io.Writer
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.stopped && b.buf.Len() < b.max {
		b.buf.Write(p[:min(len(p), b.max-b.buf.Len())])
	}
	if b.next != nil {
		b.next.Write(p)
	}
	return len(p), nil
}

func (b *capBuffer) stopCapture() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	b.buf = bytes.Buffer{}
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *capBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}
