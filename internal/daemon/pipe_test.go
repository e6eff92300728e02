package daemon_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/transport"
)

// pipeTransport runs an in-process agent per connect, over pipes, each host with its
// own state directory. Close on the Conn ends the agent's input, as SSH would.
type pipeTransport struct {
	dir string
	wg  sync.WaitGroup
	ctx context.Context
	t   testing.TB
}

func newPipeTransport(t testing.TB) *pipeTransport {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeTransport{dir: t.TempDir(), ctx: ctx, t: t}
	t.Cleanup(func() {
		cancel()
		p.wg.Wait()
	})
	return p
}

type pipeConn struct {
	io.Reader
	w    *os.File
	r    *os.File
	stop context.CancelFunc
}

func (c *pipeConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *pipeConn) Close() error {
	c.w.Close()
	c.r.Close()
	return nil
}
func (c *pipeConn) Info() transport.ConnInfo { return transport.ConnInfo{AgentPath: "in-process"} }
func (c *pipeConn) Side(ctx context.Context, cmd string) ([]byte, error) {
	return exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
}

func (p *pipeTransport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	// Kernel pipes, buffered like an SSH channel: both sides send hello before reading.
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
	actx, stop := context.WithCancel(p.ctx)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer stop()
		err := agent.Serve(actx, inR, outW, agent.Options{StateDir: filepath.Join(p.dir, t.Name), Version: "test"})
		if err != nil && p.ctx.Err() == nil {
			p.t.Logf("agent for %s: %v", t.Name, err)
		}
		outW.Close()
		inR.Close()
	}()
	return &pipeConn{Reader: outR, w: inW, r: outR, stop: stop}, nil
}
