package client_test

import (
	"context"
	"net"
	"testing"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
)

// fakeDaemon greets a client over a pipe and hands each request to handle.
func fakeDaemon(t *testing.T, handle func(pc *proto.Conn, env *proto.Envelope) bool) *client.Client {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer b.Close()
		pc := proto.NewConn(b, b, proto.ConnOptions{})
		go pc.Send(0, proto.TypeDaemonHello, &proto.DaemonHello{Protocol: proto.Version, Client: proto.ClientVersion, PID: 42})
		if _, err := pc.Recv(); err != nil {
			return
		}
		for {
			env, err := pc.Recv()
			if err != nil || !handle(pc, env) {
				return
			}
		}
	}()
	c, err := client.New(context.Background(), a, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

// TestConnectionLostMidRun: every host still running gets a done event with an
// error, then the channel closes; later calls fail at once.
func TestConnectionLostMidRun(t *testing.T) {
	c := fakeDaemon(t, func(pc *proto.Conn, env *proto.Envelope) bool {
		pc.Send(env.ID, proto.TypeRunAccepted, &proto.RunAccepted{RunID: 7})
		pc.Send(env.ID, proto.TypeRunEvent, &proto.RunEvent{Host: "a", Kind: proto.EventStdout, Data: []byte("part")})
		pc.Send(env.ID, proto.TypeRunEvent, &proto.RunEvent{Host: "b", Kind: proto.EventDone, Result: &proto.HostResult{Host: "b", Status: "ok"}})
		return false // hang up
	})
	if c.DaemonPID() != 42 {
		t.Errorf("DaemonPID = %d; want 42", c.DaemonPID())
	}
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"a", "b", "c"}, Command: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != 7 {
		t.Errorf("run id %d; want 7", r.ID)
	}
	done := map[string]*proto.HostResult{}
	for ev := range r.Events {
		if ev.Kind == proto.EventDone {
			done[ev.Host] = ev.Result
		}
	}
	if len(done) != 3 {
		t.Fatalf("done events for %d hosts; want 3", len(done))
	}
	if done["b"].Status != proto.StatusOK {
		t.Errorf("b: %+v; want ok", done["b"])
	}
	for _, h := range []string{"a", "c"} {
		if done[h].Status != proto.StatusError || done[h].Err == "" {
			t.Errorf("%s: %+v; want an error", h, done[h])
		}
	}
	if string(done["a"].Stdout) != "part" {
		t.Errorf("a kept stdout %q; want the part that arrived", done["a"].Stdout)
	}
	if _, err := c.Status(context.Background()); err == nil {
		t.Error("Status on a closed connection succeeded")
	}
}

// TestRunRefused: a run the daemon fails is an error from Run, with no channel.
func TestRunRefused(t *testing.T) {
	c := fakeDaemon(t, func(pc *proto.Conn, env *proto.Envelope) bool {
		pc.Send(env.ID, proto.TypeFailed, &proto.Failed{Code: proto.CodeBadRequest, Message: "run: no hosts"})
		return true
	})
	_, err := c.Run(context.Background(), client.RunRequest{Command: "x"})
	if err == nil || err.Error() != "run: no hosts" {
		t.Errorf("Run: %v; want the daemon's message", err)
	}
	// The connection is still usable.
	_, err = c.Last(context.Background(), 1)
	if err == nil || err.Error() != "run: no hosts" {
		t.Errorf("Last: %v", err)
	}
}

// TestOutputReplacedOnRedelivery: a done result carrying the whole output replaces
// what the stdout events carried.
func TestOutputReplacedOnRedelivery(t *testing.T) {
	c := fakeDaemon(t, func(pc *proto.Conn, env *proto.Envelope) bool {
		pc.Send(env.ID, proto.TypeRunAccepted, &proto.RunAccepted{RunID: 1})
		pc.Send(env.ID, proto.TypeRunEvent, &proto.RunEvent{Host: "a", Kind: proto.EventStdout, Data: []byte("hal")})
		pc.Send(env.ID, proto.TypeRunEvent, &proto.RunEvent{Host: "a", Kind: proto.EventDone,
			Result: &proto.HostResult{Host: "a", Status: "ok", Stdout: []byte("whole"), Output: true}})
		pc.Send(env.ID, proto.TypeRunEnd, &proto.RunEnd{})
		return true
	})
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"a"}, Command: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var res *proto.HostResult
	for ev := range r.Events {
		if ev.Kind == proto.EventDone {
			res = ev.Result
		}
	}
	if res == nil || string(res.Stdout) != "whole" {
		t.Errorf("result %+v; want stdout %q", res, "whole")
	}
}
