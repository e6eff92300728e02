package shoaltest

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// AgentPipe is an agent served in-process over pipes. It is a transport.Conn: Read gives the
// agent's output frames, Write feeds its input, Close ends its input.
type AgentPipe struct {
	StateDir string

	inR, inW   *os.File // the agent's input: kernel pipes, buffered like a real agent's stdin
	outR, outW *os.File

	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

var _ transport.Conn = (*AgentPipe)(nil)

// StartAgent runs agent.Serve over pipes. A zero opts.StateDir becomes t.TempDir(). The agent is
// stopped at the end of the test: commands killed, output drained, Serve waited for.
func StartAgent(t testing.TB, opts agent.Options) *AgentPipe {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.BinarySHA256 == "" {
		opts.BinarySHA256 = "test"
	}
	p := &AgentPipe{StateDir: opts.StateDir, done: make(chan struct{})}
	var err error
	if p.inR, p.inW, err = os.Pipe(); err != nil {
		t.Fatalf("creating pipe: %v", err)
	}
	if p.outR, p.outW, err = os.Pipe(); err != nil {
		t.Fatalf("creating pipe: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		p.err = agent.Serve(ctx, p.inR, p.outW, opts)
		p.inR.Close()
		p.outW.Close()
		close(p.done)
	}()
	t.Cleanup(p.Stop)
	return p
}

// Read reads the agent's output.
func (p *AgentPipe) Read(b []byte) (int, error) { return p.outR.Read(b) }

// Write writes to the agent's input.
func (p *AgentPipe) Write(b []byte) (int, error) { return p.inW.Write(b) }

// Close ends the agent's input; running commands go on into their result directories.
func (p *AgentPipe) Close() error { return p.inW.Close() }

// Info describes the pipe.
func (p *AgentPipe) Info() transport.ConnInfo { return transport.ConnInfo{AgentPath: "in-process"} }

// Side runs cmd with bash -c on this machine.
func (p *AgentPipe) Side(ctx context.Context, cmd string) ([]byte, error) {
	return exec.CommandContext(ctx, "bash", "-c", cmd).CombinedOutput()
}

// Done is closed when Serve has returned.
func (p *AgentPipe) Done() <-chan struct{} { return p.done }

// Wait waits for Serve to return and returns its error. The agent's output must be read (or
// Discard called) meanwhile, or Serve may block writing it.
func (p *AgentPipe) Wait() error {
	<-p.done
	return p.err
}

// Discard reads and drops the agent's remaining output in the background until Serve ends.
func (p *AgentPipe) Discard() {
	go io.Copy(io.Discard, p.outR)
}

// Stop kills the agent's commands, ends its input, drains its output and waits for Serve.
func (p *AgentPipe) Stop() {
	p.cancel()
	p.inW.Close()
	go io.Copy(io.Discard, p.outR)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		panic("shoaltest: agent did not stop within 30s")
	}
	p.outR.Close()
}

// Handshake sends the daemon's hello on c and returns the agent's hello, which must come first.
func Handshake(t testing.TB, c *proto.Conn) *proto.Hello {
	t.Helper()
	if err := c.Send(0, proto.TypeHello, &proto.Hello{Protocol: proto.Version, Role: "daemon", Program: "test"}); err != nil {
		t.Fatalf("sending hello: %v", err)
	}
	env, err := c.Recv()
	if err != nil {
		t.Fatalf("reading the agent's hello: %v", err)
	}
	if env.Type != proto.TypeHello {
		t.Fatalf("first message from the agent is %v; want hello", env.Type)
	}
	var h proto.Hello
	if err := env.Decode(&h); err != nil {
		t.Fatalf("decoding hello: %v", err)
	}
	return &h
}

// PipeTransport is a transport.Transport whose every Connect starts an in-process agent over
// pipes, with a state directory per target name under BaseDir (so a reconnect sees the results
// the previous agent left). Agents are stopped at the end of the test.
type PipeTransport struct {
	T       testing.TB
	Options agent.Options // StateDir is ignored
	BaseDir string        // empty means a T.TempDir() made at the first Connect

	mu sync.Mutex
}

var _ transport.Transport = (*PipeTransport)(nil)

// Connect starts an agent for t.
func (pt *PipeTransport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, &transport.Error{Reason: proto.ReasonConnectTimeout, Host: t.Name, Err: err}
	}
	pt.mu.Lock()
	if pt.BaseDir == "" {
		pt.BaseDir = pt.T.TempDir()
	}
	base := pt.BaseDir
	pt.mu.Unlock()
	opts := pt.Options
	opts.StateDir = filepath.Join(base, strings.ReplaceAll(t.Name, "/", "_"))
	return StartAgent(pt.T, opts), nil
}
