package sshx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// proxyConn is a ProxyCommand's stdin and stdout as a net.Conn. Close kills the command (its
// whole process group) and waits for it.
type proxyConn struct {
	cmd    *exec.Cmd
	r      *os.File // the command's stdout
	w      *os.File // the command's stdin
	stderr *tailBuffer
	done   chan struct{} // closed when the command has been waited for
	err    error         // the command's exit, set before done closes

	closeOnce sync.Once
}

// startProxy runs ssh's expansion of command for h, as ssh does: "exec COMMAND" with $SHELL -c
// (or /bin/sh), in a process group of its own.
func startProxy(h *HostConfig) (*proxyConn, error) {
	keyAlias := h.Alias
	if h.HostKeyAlias != "" {
		keyAlias = h.HostKeyAlias
	}
	cmd, err := percentExpand("exec "+h.ProxyCommand, map[byte]string{
		'h': h.HostName, 'k': keyAlias, 'n': h.Alias, 'p': strconv.Itoa(h.Port), 'r': h.User,
	})
	if err != nil {
		return nil, fmt.Errorf("expanding ProxyCommand %q: %w", h.ProxyCommand, err)
	}
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
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
	p := &proxyConn{r: outR, w: inW, stderr: &tailBuffer{max: 2048}, done: make(chan struct{})}
	p.cmd = exec.Command(shell, "-c", cmd)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = inR, outW, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = p.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		outR.Close()
		inW.Close()
		return nil, fmt.Errorf("starting ProxyCommand %q: %w", h.ProxyCommand, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proxyConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *proxyConn) Write(b []byte) (int, error) { return p.w.Write(b) }

// Close kills the command's process group and waits for the command.
func (p *proxyConn) Close() error {
	p.closeOnce.Do(func() {
		p.w.Close()
		select {
		case <-p.done:
		default:
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
		<-p.done
		p.r.Close()
	})
	return nil
}

// exited returns how the command ended, with the end of its stderr, once it has; nil while it
// runs.
func (p *proxyConn) exited() error {
	select {
	case <-p.done:
	case <-time.After(100 * time.Millisecond):
		return nil
	}
	msg := "exited"
	if p.err != nil {
		msg = p.err.Error()
	}
	if s := p.stderr.String(); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

func (p *proxyConn) LocalAddr() net.Addr  { return pipeAddr("proxycommand") }
func (p *proxyConn) RemoteAddr() net.Addr { return pipeAddr("proxycommand") }

func (p *proxyConn) SetDeadline(t time.Time) error {
	p.r.SetReadDeadline(t)
	return p.w.SetWriteDeadline(t)
}
func (p *proxyConn) SetReadDeadline(t time.Time) error  { return p.r.SetReadDeadline(t) }
func (p *proxyConn) SetWriteDeadline(t time.Time) error { return p.w.SetWriteDeadline(t) }

// pipeAddr is the address of a connection that is a command's stdio.
type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	// mu protects b.
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytesTrimSpace(t.b))
}

func bytesTrimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
