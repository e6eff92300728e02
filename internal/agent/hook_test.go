package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/proto"
)

// hookExec is a tiny command table for TestExecHook.
func hookExec(ctx context.Context, req *proto.Exec, stdout, stderr io.Writer) (int, error) {
	switch f := strings.Fields(req.Cmd); f[0] {
	case "say":
		fmt.Fprintln(stdout, strings.Join(f[1:], " "))
		fmt.Fprintln(stderr, "said")
		return 3, nil
	case "big":
		stdout.Write(make([]byte, 100<<10)) // more than a chunk, more than the cap below
		return 0, nil
	case "hang":
		<-ctx.Done()
		return 0, context.Cause(ctx)
	}
	return 0, errors.New("no such command")
}

// TestExecHook runs commands through Options.Exec: output, exit code, files, the output cap,
// kill and timeout, all without a process.
func TestExecHook(t *testing.T) {
	p := startPipe(t, agent.Options{Exec: hookExec, ChunkSize: 4096})
	// Not p.run: its ack lets the agent remove the result directory while we read it.
	sid := p.id()
	p.send(sid, proto.TypeExec, &proto.Exec{Cmd: "say hello world"})
	r := &result{started: expect[proto.Started](p, sid, proto.TypeStarted)}
	p.collect(sid, r)
	if r.started.PID != 0 || string(r.stdout) != "hello world\n" || string(r.stderr) != "said\n" || r.exit.Code != 3 {
		t.Fatalf("got pid %d, %q, %q, %+v; want pid 0, the words, said, code 3", r.started.PID, r.stdout, r.stderr, r.exit)
	}
	if b, err := os.ReadFile(filepath.Join(r.started.Dir, "out")); err != nil || len(b) == 0 || string(b[1:]) != "hello world\n" {
		t.Errorf("out file: %q, %v; want the header byte and the words", b, err)
	}
	p.send(sid, proto.TypeAck, nil)
	r = p.run(&proto.Exec{Cmd: "big", OutputCap: 50000})
	if len(r.stdout) != 50000 || !r.exit.Truncated || r.exit.StdoutBytes != 100<<10 || len(r.seqs) < 2 {
		t.Errorf("got %d bytes in %d chunks, %+v; want 50000 kept of %d, truncated", len(r.stdout), len(r.seqs), r.exit, 100<<10)
	}
	r = p.run(&proto.Exec{Cmd: "nope"})
	if r.exit.Code != -1 || r.exit.Err != "no such command" {
		t.Errorf("got %+v; want code -1 and the hook's error", r.exit)
	}
	r = p.run(&proto.Exec{Cmd: "hang", Timeout: int64(50 * time.Millisecond)})
	if !r.exit.TimedOut || r.exit.Signal != int(syscall.SIGKILL) || r.exit.Code != -1 {
		t.Errorf("got %+v; want timed out by SIGKILL", r.exit)
	}

	id := p.id()
	p.send(id, proto.TypeExec, &proto.Exec{Cmd: "hang"})
	res := &result{started: expect[proto.Started](p, id, proto.TypeStarted)}
	kid := p.id()
	p.send(kid, proto.TypeKill, &proto.Kill{Target: id, Signal: int(syscall.SIGTERM)})
	if k := expect[proto.Killed](p, kid, proto.TypeKilled); k.Count != 1 {
		t.Errorf("kill affected %d; want 1", k.Count)
	}
	p.collect(id, res)
	if res.exit.Signal != int(syscall.SIGTERM) || res.exit.TimedOut {
		t.Errorf("got %+v; want killed by SIGTERM", res.exit)
	}
	p.send(id, proto.TypeAck, nil)
	p.ping()
}
