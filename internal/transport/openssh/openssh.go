// Package openssh is the transport that reaches agents by running the system ssh binary, for
// set-ups the in-process client cannot do: ProxyCommand, GSSAPI, ControlMaster. It runs the same
// bootstrap and upload script as package ssh (from package install), one ssh process per
// connection (a first contact installs in the bootstrap's own session), in BatchMode so it never
// prompts.
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

// kill stops the ssh process and waits for it.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.release()
}

// release closes this side's pipe ends once the process is gone.
func (p *proc) release() {
	p.stdin.Close()
	p.stdout.Close()
}

// fail classifies why ssh could not start the remote command, from its stderr.
func (p *proc) fail(host string, cause error) error {
	p.stdin.Close()
	<-p.done
	p.release()
	msg := strings.TrimSpace(p.errBuf.String())
	err := cause
	if msg != "" {
		err = fmt.Errorf("%w: ssh says: %s", cause, msg)
	}
	return &transport.Error{Kind: classify(msg), Host: host, Err: err}
}

// classify maps ssh's error messages to failure kinds.
func classify(msg string) transport.Kind {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "remote host identification has changed"),
		strings.Contains(m, "host key for") && strings.Contains(m, "has changed"):
		return transport.HostKeyChanged
	case strings.Contains(m, "host key verification failed"),
		strings.Contains(m, "no ") && strings.Contains(m, "host key is known"):
		return transport.HostKeyUnknown
	case strings.Contains(m, "permission denied"), strings.Contains(m, "too many authentication failures"):
		return transport.AuthFailed
	case strings.Contains(m, "connection refused"):
		return transport.Refused
	case strings.Contains(m, "timed out"):
		return transport.Timeout
	case strings.Contains(m, "could not resolve"), strings.Contains(m, "no route to host"),
		strings.Contains(m, "network is unreachable"), strings.Contains(m, "name or service not known"):
		return transport.Unreachable
	}
	return transport.InstallFailed
}

// Connect runs the bootstrap with ssh and installs the agent when it is missing.
func (tr *Transport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	bins := tr.o.Source.Available()
	offer := bins
	if t.Reinstall {
		offer = nil
	}
	p, err := tr.run(t, install.Bootstrap(t.InstallDir, offer, t.AgentArgs))
	if err != nil {
		return nil, &transport.Error{Kind: transport.Other, Host: t.Name, Err: err}
	}
	stop := context.AfterFunc(ctx, func() { p.cmd.Process.Kill() })
	m, err := install.ReadMarker(p.stdout)
	if !stop() {
		p.kill()
		return nil, &transport.Error{Kind: transport.Timeout, Host: t.Name, Err: fmt.Errorf("connecting: %w", context.Cause(ctx))}
	}
	if err != nil {
		p.stdin.Close()
		return nil, p.fail(t.Name, err)
	}
	goos, goarch, _ := install.Platform(m.Uname)
	info := transport.ConnInfo{RemoteOS: goos, RemoteArch: goarch}
	if m.Exec {
		p.errBuf.stopCapture()
		b, _ := install.Match(bins, m.Uname)
		info.AgentPath, info.AgentHash = m.AgentPath, b.Hash
		return &conn{tr: tr, t: t, p: p, info: info}, nil
	}
	fail := func(k transport.Kind, err error) error {
		p.stdin.Close()
		<-p.done
		p.release()
		return &transport.Error{Kind: k, Host: t.Name, Err: err}
	}
	if goos == "" {
		return nil, fail(transport.NoAgentBinary, &install.NoBinaryError{Uname: m.Uname})
	}
	bin, err := tr.o.Source.For(goos, goarch)
	if err != nil {
		var nb *install.NoBinaryError
		if errors.As(err, &nb) {
			return nil, fail(transport.NoAgentBinary, err)
		}
		return nil, fail(transport.Other, err)
	}
	// The bootstrap waits for the upload script on its stdin: one ssh, not two. The address is
	// ssh's business here: compression follows the mode and the host's tools.
	script, body := tr.o.Source.UploadFor(t.InstallDir, bin, m, t.AgentArgs)
	stop = context.AfterFunc(ctx, func() { p.cmd.Process.Kill() })
	m, err = install.Install(struct {
		io.Reader
		io.Writer
	}{p.stdout, p.stdin}, script, bin, body)
	if !stop() {
		p.kill()
		return nil, &transport.Error{Kind: transport.Timeout, Host: t.Name, Err: fmt.Errorf("installing agent: %w", context.Cause(ctx))}
	}
	if err != nil {
		e := p.fail(t.Name, fmt.Errorf("installing agent %s: %w", bin.Name(), err))
		if te := (*transport.Error)(nil); errors.As(e, &te) && te.Kind == transport.Other {
			te.Kind = transport.InstallFailed
		}
		return nil, e
	}
	p.errBuf.stopCapture()
	info.Installed, info.AgentPath, info.AgentHash = true, m.AgentPath, bin.Hash
	return &conn{tr: tr, t: t, p: p, info: info}, nil
}

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
