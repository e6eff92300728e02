package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoal-sh/shoal/internal/proto"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
)

func startPipeRaw(t *testing.T) *shoaltest.AgentPipe {
	return shoaltest.StartAgent(t, agent.Options{})
}

// TestNoLeak checks that an agent whose input ends leaves no goroutine behind.
func TestNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a := shoaltest.StartAgent(t, agent.Options{})
	c := proto.NewConn(a, a, proto.ConnOptions{})
	shoaltest.Handshake(t, c)
	c.Send(1, proto.TypeExec, &proto.Exec{Cmd: "echo hi; echo there >&2"})
	c.Send(2, proto.TypeRead, &proto.Read{Path: "/etc/hostname"})
	c.Send(3, proto.TypeWrite, &proto.Write{Path: filepath.Join(t.TempDir(), "f")})
	c.Send(3, proto.TypeWriteChunk, &proto.WriteChunk{Data: []byte("x")})
	c.Send(4, proto.TypeExec, &proto.Exec{Cmd: "sleep 1000"})
	for {
		env, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if env.ID == 4 && env.Type == proto.TypeStarted {
			break
		}
	}
	c.Send(5, proto.TypeKill, &proto.Kill{Target: 4, Signal: 9})
	a.Close()
	for {
		if _, err := c.Recv(); err != nil {
			break
		}
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestCancel checks that canceling Serve's context kills running commands.
func TestCancel(t *testing.T) {
	a := shoaltest.StartAgent(t, agent.Options{})
	c := proto.NewConn(a, a, proto.ConnOptions{})
	shoaltest.Handshake(t, c)
	c.Send(1, proto.TypeExec, &proto.Exec{Cmd: "sleep 1000"})
	var pid int
	for pid == 0 {
		env, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if env.Type == proto.TypeStarted {
			var st proto.Started
			env.Decode(&st)
			pid = st.PID
		}
	}
	a.Discard()
	a.Stop()
	if err := a.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after cancel: %v; want context.Canceled", err)
	}
	waitGroupGone(t, pid)
}

// TestBackgroundChildHoldsOutput checks that a command whose background child keeps its output
// open still ends, once the output has been silent for the drain grace period.
func TestBackgroundChildHoldsOutput(t *testing.T) {
	a := shoaltest.StartAgent(t, agent.Options{DrainGrace: 50 * time.Millisecond})
	c := proto.NewConn(a, a, proto.ConnOptions{})
	shoaltest.Handshake(t, c)
	c.Send(1, proto.TypeExec, &proto.Exec{Cmd: "sleep 1000 & echo hi"})
	var out string
	for {
		env, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		switch env.Type {
		case proto.TypeStarted:
			var st proto.Started
			env.Decode(&st)
			t.Cleanup(func() { syscall.Kill(-st.PID, syscall.SIGKILL) })
		case proto.TypeOutput:
			var o proto.Output
			env.Decode(&o)
			out += string(o.Data)
		case proto.TypeExit:
			var ex proto.Exit
			env.Decode(&ex)
			if ex.Code != 0 || out != "hi\n" {
				t.Fatalf("got exit %+v output %q", ex, out)
			}
			return
		}
	}
}

// TestAbandonedRunDir checks that a run directory left half-made by a crashed agent of this
// host, or by any agent long ago, is removed, and that one of a dead agent of another host and
// one another host's agent may still be making are left alone.
func TestAbandonedRunDir(t *testing.T) {
	state := t.TempDir()
	half := filepath.Join(state, "run", "."+agentIDWithPID(zombie(t))+".new")
	old := filepath.Join(state, "run", ".h-1-00000000.new")
	fresh := filepath.Join(state, "run", ".h-2-00000000.new")
	other := filepath.Join(state, "run", "some-other-host-1-00000000", "5")
	for _, d := range []string{half, old, fresh, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	a := shoaltest.StartAgent(t, agent.Options{StateDir: state})
	c := proto.NewConn(a, a, proto.ConnOptions{})
	shoaltest.Handshake(t, c)
	c.Send(1, proto.TypePing, nil)
	if env, err := c.Recv(); err != nil || env.Type != proto.TypePong {
		t.Fatalf("first message after hello: %v %v; want pong", env, err)
	}
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("half-made run directory: %v; want it removed", err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old half-made run directory: %v; want it removed", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another host's result: %v; want it left alone", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("another host's half-made run directory: %v; want it left alone", err)
	}
}

// TestPipeTransport checks the harness's in-process transport: a reconnect to the same name
// gets the results its previous agent left.
func TestPipeTransport(t *testing.T) {
	pt := &shoaltest.PipeTransport{T: t}
	ctx := context.Background()
	c1, err := pt.Connect(ctx, transport.Target{Name: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	p1 := proto.NewConn(c1, c1, proto.ConnOptions{})
	shoaltest.Handshake(t, p1)
	p1.Send(9, proto.TypeExec, &proto.Exec{Cmd: "echo kept"})
	c1.Close()
	for {
		if _, err := p1.Recv(); err != nil {
			break
		}
	}
	c2, _ := pt.Connect(ctx, transport.Target{Name: "h1"})
	p2 := proto.NewConn(c2, c2, proto.ConnOptions{})
	shoaltest.Handshake(t, p2)
	env, err := p2.Recv()
	if err != nil || env.ID != 9 || env.Type != proto.TypeStarted {
		t.Fatalf("after reconnect: %v %v; want the re-delivered result 9", env, err)
	}
}

// TestTooManyWrites checks that open writes are bounded, and that a refused one touches nothing.
func TestTooManyWrites(t *testing.T) {
	a := shoaltest.StartAgent(t, agent.Options{})
	c := proto.NewConn(a, a, proto.ConnOptions{})
	shoaltest.Handshake(t, c)
	dir := t.TempDir()
	for i := range 65 {
		c.Send(uint64(i+1), proto.TypeWrite, &proto.Write{Path: filepath.Join(dir, strconv.Itoa(i))})
	}
	env, err := c.Recv()
	if err != nil || env.ID != 65 || env.Type != proto.TypeError {
		t.Fatalf("got %v %v; want an error for write 65", env, err)
	}
	var e proto.Error
	env.Decode(&e)
	if e.Code != proto.CodeBusy {
		t.Fatalf("got %v; want busy", &e)
	}
}
