package hostsess

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// execLog counts the exec requests each fake agent received.
type execLog struct {
	mu  sync.Mutex
	ids map[int][]uint64 // agent number → exec request ids
}

func (l *execLog) add(n int, id uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ids == nil {
		l.ids = make(map[int][]uint64)
	}
	l.ids[n] = append(l.ids[n], id)
}

func (l *execLog) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.ids {
		n += len(v)
	}
	return n
}

func (l *execLog) of(n int) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint64(nil), l.ids[n]...)
}

// TestUnstartedExecResentAfterAgentDied: an idle agent dies just as a command is
// written to it (it reads the request but never starts it). The old agent is seen
// dead, a fresh agent started after that offers nothing for the request, so the
// command is sent once more and succeeds.
func TestUnstartedExecResentAfterAgentDied(t *testing.T) {
	leakCheck(t)
	var log execLog
	ft := &fakeTransport{
		agent: func(n int) fakeHandler {
			return func(a *fakeAgent, env *proto.Envelope, body any) {
				if _, ok := body.(*proto.Exec); ok {
					log.add(a.n, env.ID)
					if a.n == 0 {
						a.stop() // SIGKILLed: the request is never answered
						return
					}
				}
				defaultHandler(a, env, body)
			}
		},
		side: func(cmd string) ([]byte, error) { return nil, nil }, // nothing alive
	}
	s, _ := newFakeSession(t, ft, nil)
	if _, err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	res, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if err != nil || string(res.Stdout) != "x\n" {
		t.Fatalf("Exec = %q, %v; want the command run on a new agent", res.Stdout, err)
	}
	if n := log.total(); n != 2 {
		t.Errorf("exec requests received %d (%v); want 2 (the lost one and one resend)", n, log.ids)
	}
	if len(log.of(0)) != 1 {
		t.Errorf("agent 0 got %v; want the first request", log.of(0))
	}
	if got := ft.sideCmds(); len(got) < 2 {
		t.Errorf("side checks %d; want the old agent checked before and after a fresh agent started", len(got))
	}
	if res.RequestID == log.of(0)[0] {
		t.Errorf("the resend reused request id %d; want a new one", res.RequestID)
	}
}

// TestUnstartedExecNotResentWhileAgentLives: the connection is cut before any
// reply while the agent lives on and runs the command; the session waits and the
// result comes back re-delivered under the original id: the command runs once.
func TestUnstartedExecNotResentWhileAgentLives(t *testing.T) {
	leakCheck(t)
	var log execLog
	var mu sync.Mutex
	alive := 2 // side checks that find the old agent still alive
	ft := &fakeTransport{
		agent: func(n int) fakeHandler {
			return func(a *fakeAgent, env *proto.Envelope, body any) {
				if _, ok := body.(*proto.Exec); ok {
					log.add(a.n, env.ID)
					if a.n == 0 {
						a.stop() // the sshd child is killed; the agent runs the command
						return
					}
				}
				defaultHandler(a, env, body)
			}
		},
		side: func(cmd string) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			if alive > 0 {
				alive--
				return []byte("agent\n"), nil
			}
			return nil, nil
		},
	}
	// A fresh agent started after the old one ended offers its kept result.
	ft.afterHello = func(a *fakeAgent) {
		mu.Lock()
		done := alive == 0
		mu.Unlock()
		ids := log.of(0)
		if !done || a.n == 0 || len(ids) == 0 {
			return
		}
		id := ids[0]
		a.send(id, proto.TypeStarted, &proto.Started{PID: 55, Redelivered: true})
		a.send(id, proto.TypeOutput, &proto.Output{Stream: proto.Stdout, Data: []byte("kept")})
		a.send(id, proto.TypeExit, &proto.Exit{Code: 0, Redelivered: true})
	}
	s, _ := newFakeSession(t, ft, func(o *Options) { o.Heartbeat = 20 * time.Millisecond; o.Missed = 1000 })
	if _, err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	res, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if err != nil || string(res.Stdout) != "kept" {
		t.Fatalf("Exec = %q, %v; want the kept result", res.Stdout, err)
	}
	if n := log.total(); n != 1 {
		t.Errorf("exec requests received %d (%v); want 1: no resend while the agent may run it", n, log.ids)
	}
}

// TestUnstartedExecLostWithoutRedeliver: an agent that keeps no results cannot
// tell whether it ran the command, so the loss is reported, not resent.
func TestUnstartedExecLostWithoutRedeliver(t *testing.T) {
	leakCheck(t)
	var log execLog
	ft := &fakeTransport{
		agent: func(n int) fakeHandler {
			return func(a *fakeAgent, env *proto.Envelope, body any) {
				if _, ok := body.(*proto.Exec); ok {
					log.add(a.n, env.ID)
					if a.n == 0 {
						a.stop()
						return
					}
				}
				defaultHandler(a, env, body)
			}
		},
		hello: func(n int, h *proto.Hello) { h.Capabilities = []string{"exec"} },
		side:  func(cmd string) ([]byte, error) { return nil, nil },
	}
	s, _ := newFakeSession(t, ft, nil)
	if _, err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if ReasonOf(err) != proto.ReasonLost {
		t.Fatalf("Exec error = %v; want lost", err)
	}
	if n := log.total(); n != 1 {
		t.Errorf("exec requests received %d; want 1", n)
	}
}

// frameOf returns one encoded frame from an agent.
func frameOf(t *testing.T, id uint64, typ proto.Type, body any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := proto.NewConn(strings.NewReader(""), &b, proto.ConnOptions{}).Send(id, typ, body); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestAgentDownBeforeHelloReinstalls: an installed agent that exits before hello
// (tampered, truncated, prints garbage) is replaced once, as for a wrong hash.
func TestAgentDownBeforeHelloReinstalls(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  []byte
		want string
	}{
		{"silent-exit", []byte{}, "agent exited before hello"},
		{"banner", []byte("Welcome to host! Last login: yesterday\n"), "Welcome to host"},
		{"wrong-first-frame", nil, "want hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			out := tc.out
			if out == nil {
				out = frameOf(t, 1, proto.TypeExit, &proto.Exit{Code: 0})
			}
			ft := &fakeTransport{instead: func(n int, reinstall bool) []byte {
				if reinstall {
					return nil
				}
				return out
			}}
			s, _ := newFakeSession(t, ft, nil)
			res, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
			if err != nil || string(res.Stdout) != "x\n" {
				t.Fatalf("Exec = %q, %v; want it run by the reinstalled agent", res.Stdout, err)
			}
			if ft.n != 2 || ft.reinstalls != 1 {
				t.Errorf("connects %d, reinstalls %d; want 2, 1", ft.n, ft.reinstalls)
			}
		})
		t.Run(tc.name+"-always", func(t *testing.T) {
			leakCheck(t)
			out := tc.out
			if out == nil {
				out = frameOf(t, 1, proto.TypeExit, &proto.Exit{Code: 0})
			}
			ft := &fakeTransport{instead: func(int, bool) []byte { return out }}
			s, _ := newFakeSession(t, ft, nil)
			_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
			if ReasonOf(err) != proto.ReasonProtocol || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), "after reinstalling") {
				t.Fatalf("Exec error = %v (kind %v); want a protocol error containing %q and saying it was reinstalled",
					err, ReasonOf(err), tc.want)
			}
			if ft.n != 2 || ft.reinstalls != 1 {
				t.Errorf("connects %d, reinstalls %d; want 2, 1", ft.n, ft.reinstalls)
			}
		})
	}
}

// TestNetworkFailureDoesNotReinstall: a connect that fails in the transport
// (unreachable, auth, host key) never leads to a reinstall.
func TestNetworkFailureDoesNotReinstall(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{fail: func(int) error {
		return &transport.Error{Reason: proto.ReasonAuthFailed, Host: "h1", Err: errors.New("denied")}
	}}
	s, _ := newFakeSession(t, ft, nil)
	_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if ReasonOf(err).Status() != proto.StatusUnreachable {
		t.Fatalf("Exec error = %v; want unreachable", err)
	}
	if ft.reinstalls != 0 || ft.n != 1 {
		t.Errorf("connects %d, reinstalls %d; want 1, 0", ft.n, ft.reinstalls)
	}
}
