package hostsess

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
	"go.uber.org/goleak"
)

// leakCheck fails the test when goroutines started during it outlive its cleanups.
// Call it first, so its cleanup runs last.
func leakCheck(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// stateLog records state changes and lets a test wait for one.
type stateLog struct {
	mu     sync.Mutex
	states []State
	ch     chan State
}

func newStateLog() *stateLog { return &stateLog{ch: make(chan State, 1000)} }

func (l *stateLog) on(_ string, st State) {
	l.mu.Lock()
	l.states = append(l.states, st)
	l.mu.Unlock()
	l.ch <- st
}

// wait waits until the session reaches st, for at most d.
func (l *stateLog) wait(t *testing.T, st State, d time.Duration) {
	t.Helper()
	tm := time.NewTimer(d)
	defer tm.Stop()
	for {
		select {
		case got := <-l.ch:
			if got == st {
				return
			}
		case <-tm.C:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("state %s not reached within %v; states: %v", st, d, l.states)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newFakeSession(t *testing.T, ft *fakeTransport, mod func(*Options)) (*Session, *stateLog) {
	t.Helper()
	sl := newStateLog()
	o := Options{
		Target:      transport.Target{Name: "h1"},
		Transport:   ft,
		Heartbeat:   time.Hour,
		Missed:      2,
		Backoff:     time.Millisecond,
		KillWait:    200 * time.Millisecond,
		SideTimeout: 5 * time.Second,
		Logger:      testLogger(t),
		OnState:     sl.on,
	}
	if mod != nil {
		mod(&o)
	}
	s := New(o)
	ft.mu.Lock()
	first := !ft.cleanup
	ft.cleanup = true
	ft.mu.Unlock()
	if first {
		// Registered before any session's Close, so it runs after all of them.
		t.Cleanup(ft.wg.Wait)
	}
	t.Cleanup(func() { s.Close() })
	return s, sl
}

func TestExecRoundTrip(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{}
	s, _ := newFakeSession(t, ft, nil)
	var events []string
	res, err := s.Exec(context.Background(), ExecRequest{Command: "hello"}, func(ev Event) {
		switch ev.Kind {
		case proto.EventState:
			events = append(events, "state:"+string(ev.State))
		case proto.EventStart:
			events = append(events, "started")
		default:
			events = append(events, ev.Kind.String()+":"+string(ev.Data))
		}
	})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if got, want := string(res.Stdout), "hello\n"; got != want {
		t.Errorf("stdout = %q; want %q", got, want)
	}
	if got, want := string(res.Stderr), "err\n"; got != want {
		t.Errorf("stderr = %q; want %q", got, want)
	}
	if res.PID != 4242 || res.ExitCode != 0 || res.RequestID == 0 {
		t.Errorf("result = %+v", res)
	}
	want := []string{"state:connecting", "state:ready", "started", "stdout:hello\n", "stderr:err\n"}
	if strings.Join(events, "|") != strings.Join(want, "|") {
		t.Errorf("events = %q; want %q", events, want)
	}
	waitFor(t, func() bool { return len(ft.agentN(0).acked()) == 1 })
	if got := ft.agentN(0).acked()[0]; got != res.RequestID {
		t.Errorf("acked %d; want %d", got, res.RequestID)
	}
	st := s.Status()
	if st.State != StateReady || st.AgentPID != 1000 || st.AgentVersion != "fake" || st.Running != 0 {
		t.Errorf("status = %+v", st)
	}
	// A second exec reuses the connection.
	if _, err := s.Exec(context.Background(), ExecRequest{Command: "again"}, nil); err != nil {
		t.Fatalf("second Exec: %v", err)
	}
	if ft.n != 1 {
		t.Errorf("%d connects; want 1", ft.n)
	}
	if _, err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	info, _, err := s.Info(context.Background())
	if err != nil || info.Hostname != "fakehost" {
		t.Errorf("Info = %+v, %v", info, err)
	}
	if err := s.KillAll(context.Background()); err != nil {
		t.Errorf("KillAll: %v", err)
	}
}

// waitFor polls cond for up to 10 s; for conditions with no event to wait on.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestOutOfOrder(t *testing.T) {
	leakCheck(t)
	const n = 5
	ft := &fakeTransport{agent: func(int) fakeHandler {
		var held []uint64
		var cmds []string
		return func(a *fakeAgent, env *proto.Envelope, body any) {
			ex, ok := body.(*proto.Exec)
			if !ok {
				defaultHandler(a, env, body)
				return
			}
			held = append(held, env.ID)
			cmds = append(cmds, ex.Cmd)
			a.send(env.ID, proto.TypeStarted, &proto.Started{PID: 10 + len(held)})
			if len(held) < n {
				return
			}
			// Interleave: output for everyone, then exits newest first.
			for i, id := range held {
				a.send(id, proto.TypeOutput, &proto.Output{Stream: proto.Stdout, Data: []byte(cmds[i])})
			}
			for i := len(held) - 1; i >= 0; i-- {
				a.send(held[i], proto.TypeExit, &proto.Exit{Code: i})
			}
		}
	}}
	s, _ := newFakeSession(t, ft, nil)
	var wg sync.WaitGroup
	errs := make([]error, n)
	results := make([]Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Exec(context.Background(), ExecRequest{Command: "cmd" + string(rune('a'+i))}, nil)
		}()
	}
	wg.Wait()
	codes := map[int]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Exec %d: %v", i, errs[i])
		}
		if got, want := string(results[i].Stdout), "cmd"+string(rune('a'+i)); got != want {
			t.Errorf("exec %d stdout = %q; want %q", i, got, want)
		}
		codes[results[i].ExitCode] = true
	}
	if len(codes) != n {
		t.Errorf("exit codes %v; want %d distinct", codes, n)
	}
}

func TestBusyIsRefused(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{agent: func(int) fakeHandler {
		return func(a *fakeAgent, env *proto.Envelope, body any) {
			if _, ok := body.(*proto.Exec); ok {
				a.send(env.ID, proto.TypeBusy, &proto.Busy{Running: 2, Queued: 4})
				return
			}
			defaultHandler(a, env, body)
		}
	}}
	s, _ := newFakeSession(t, ft, nil)
	_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if ReasonOf(err) != proto.ReasonBusy {
		t.Fatalf("Exec error = %v (reason %v); want reason busy", err, ReasonOf(err))
	}
	if !strings.Contains(err.Error(), "busy") || !strings.Contains(err.Error(), "h1") {
		t.Errorf("error %q should name the host and say busy", err)
	}
}

func TestHashMismatchReinstallsOnce(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{hash: func(reinstall bool) string {
		if reinstall {
			return "abcd"
		}
		return "0000"
	}}
	s, _ := newFakeSession(t, ft, func(o *Options) { o.ExpectHash = "ABCD" })
	if _, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if ft.n != 2 || ft.reinstalls != 1 {
		t.Errorf("connects %d, reinstalls %d; want 2, 1", ft.n, ft.reinstalls)
	}
}

func TestHashMismatchAfterReinstallIsAnError(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{hash: func(bool) string { return "0000" }}
	s, _ := newFakeSession(t, ft, func(o *Options) { o.ExpectHash = "abcd" })
	_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if ReasonOf(err) != proto.ReasonProtocol || !strings.Contains(err.Error(), "hash") {
		t.Fatalf("Exec error = %v; want a protocol error about the hash", err)
	}
	if ft.n != 2 || ft.reinstalls != 1 {
		t.Errorf("connects %d, reinstalls %d; want 2, 1", ft.n, ft.reinstalls)
	}
	// The next request tries again (no reconnect loop for a session never connected).
	_, err = s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if ReasonOf(err) != proto.ReasonProtocol {
		t.Fatalf("second Exec error = %v; want protocol", err)
	}
}

func TestProtocolVersionMismatch(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{hello: func(n int, h *proto.Hello) {
		if n == 0 {
			h.Protocol = proto.Version + 1
		}
	}}
	s, _ := newFakeSession(t, ft, nil)
	if _, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if ft.reinstalls != 1 {
		t.Errorf("reinstalls %d; want 1", ft.reinstalls)
	}
}

func TestConnectFailureIsUnreachable(t *testing.T) {
	leakCheck(t)
	s := New(Options{Target: transport.Target{Name: "down"}, Transport: failTransport{}})
	defer s.Close()
	_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if ReasonOf(err).Status() != proto.StatusUnreachable || transport.ReasonOf(err) != proto.ReasonConnRefused {
		t.Fatalf("Exec error = %v; want unreachable wrapping a refused transport error", err)
	}
}

type failTransport struct{}

func (failTransport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	return nil, &transport.Error{Reason: proto.ReasonConnRefused, Host: t.Name, Err: errors.New("connection refused")}
}

func TestHandshakesBounded(t *testing.T) {
	leakCheck(t)
	gate := make(chan struct{})
	ft := &fakeTransport{gate: gate}
	sem := make(chan struct{}, 2)
	const n = 6
	var sessions []*Session
	for i := range n {
		s, _ := newFakeSession(t, ft, func(o *Options) {
			o.Handshakes = sem
			o.Target.Name = "h" + string(rune('0'+i))
		})
		sessions = append(sessions, s)
	}
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Ping(context.Background()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		}()
	}
	waitFor(t, func() bool { ft.mu.Lock(); defer ft.mu.Unlock(); return ft.active == 2 })
	close(gate)
	wg.Wait()
	if ft.maxActive != 2 {
		t.Errorf("max concurrent connects %d; want 2", ft.maxActive)
	}
}

func TestLostMidCommandThenReconnect(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{agent: func(n int) fakeHandler {
		if n > 0 {
			return nil
		}
		return func(a *fakeAgent, env *proto.Envelope, body any) {
			if _, ok := body.(*proto.Exec); ok {
				a.send(env.ID, proto.TypeStarted, &proto.Started{PID: 77})
				a.stop() // the agent dies mid-command
				return
			}
			defaultHandler(a, env, body)
		}
	}, hello: func(n int, h *proto.Hello) {
		if n == 0 {
			h.Capabilities = []string{"exec"} // keeps no results: a loss is final
		}
	}}
	s, sl := newFakeSession(t, ft, nil)
	_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if ReasonOf(err) != proto.ReasonLost || !strings.Contains(err.Error(), "h1") {
		t.Fatalf("Exec error = %v; want lost naming the host", err)
	}
	sl.wait(t, StateReady, 10*time.Second) // reconnected in the background
	res, err := s.Exec(context.Background(), ExecRequest{Command: "y"}, nil)
	if err != nil || string(res.Stdout) != "y\n" {
		t.Fatalf("Exec after reconnect = %q, %v", res.Stdout, err)
	}
}

func TestResultRedeliveredAfterCut(t *testing.T) {
	leakCheck(t)
	var cutID uint64
	var mu sync.Mutex
	ft := &fakeTransport{}
	ft.agent = func(n int) fakeHandler {
		if n == 0 {
			return func(a *fakeAgent, env *proto.Envelope, body any) {
				if _, ok := body.(*proto.Exec); ok {
					mu.Lock()
					cutID = env.ID
					mu.Unlock()
					a.send(env.ID, proto.TypeStarted, &proto.Started{PID: 55})
					a.send(env.ID, proto.TypeOutput, &proto.Output{Stream: proto.Stdout, Data: []byte("one ")})
					a.stop() // the SSH connection is cut; the command goes on
					return
				}
				defaultHandler(a, env, body)
			}
		}
		return nil
	}
	// The second agent re-offers the whole result first, and one nobody waits for.
	ft.afterHello = func(a *fakeAgent) {
		if a.n != 1 {
			return
		}
		{
			mu.Lock()
			id := cutID
			mu.Unlock()
			a.send(id, proto.TypeStarted, &proto.Started{PID: 55, Redelivered: true})
			a.send(id, proto.TypeOutput, &proto.Output{Stream: proto.Stdout, Data: []byte("on")})
			a.send(id, proto.TypeOutput, &proto.Output{Stream: proto.Stdout, Data: []byte("e two")})
			a.send(id, proto.TypeExit, &proto.Exit{Code: 3, Redelivered: true})
			a.send(99, proto.TypeStarted, &proto.Started{PID: 56, Redelivered: true, Cmd: "old"})
			a.send(99, proto.TypeOutput, &proto.Output{Stream: proto.Stdout, Data: []byte("orphan")})
			a.send(99, proto.TypeExit, &proto.Exit{Code: 0, Redelivered: true})
		}
	}
	orphans := make(chan Result, 1)
	s, _ := newFakeSession(t, ft, func(o *Options) {
		o.Orphan = func(host string, r Result) bool { orphans <- r; return true }
	})
	var out bytes.Buffer
	res, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, func(ev Event) {
		if ev.Kind == proto.EventStdout {
			out.Write(ev.Data)
		}
	})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if got, want := string(res.Stdout), "one two"; got != want {
		t.Errorf("stdout = %q; want %q", got, want)
	}
	if got, want := out.String(), "one two"; got != want {
		t.Errorf("streamed stdout = %q; want %q (no duplicates)", got, want)
	}
	if res.ExitCode != 3 {
		t.Errorf("exit code %d; want 3", res.ExitCode)
	}
	o := <-orphans
	if o.RequestID != 99 || string(o.Stdout) != "orphan" {
		t.Errorf("orphan = %+v", o)
	}
	waitFor(t, func() bool { return len(ft.agentN(1).acked()) == 2 })
}

func TestCancelKillsThroughAgent(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{agent: func(int) fakeHandler {
		return func(a *fakeAgent, env *proto.Envelope, body any) {
			switch b := body.(type) {
			case *proto.Exec:
				a.send(env.ID, proto.TypeStarted, &proto.Started{PID: 88})
			case *proto.Kill:
				a.send(env.ID, proto.TypeKilled, &proto.Killed{Count: 1})
				a.send(b.Target, proto.TypeExit, &proto.Exit{Code: -1, Signal: 9})
			default:
				defaultHandler(a, env, body)
			}
		}
	}}
	s, _ := newFakeSession(t, ft, nil)
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("user pressed ctrl-c")
	res, err := s.Exec(ctx, ExecRequest{Command: "sleep 1000"}, func(ev Event) {
		if ev.Kind == proto.EventStart {
			cancel(stop)
		}
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Exec error = %v; want the cancel cause", err)
	}
	if res.Signal != "SIGKILL" {
		t.Errorf("signal %q; want SIGKILL", res.Signal)
	}
	a := ft.agentN(0)
	a.mu.Lock()
	kills := a.kills
	a.mu.Unlock()
	if len(kills) != 1 || kills[0].Target != res.RequestID || kills[0].Signal != 9 {
		t.Errorf("kills = %+v; want one SIGKILL for %d", kills, res.RequestID)
	}
	if len(ft.sideCmds()) != 0 {
		t.Errorf("side commands %q; want none", ft.sideCmds())
	}
	waitFor(t, func() bool { return len(a.acked()) == 1 })
}

func TestCancelKillsThroughSideWhenAgentIsMute(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{agent: func(int) fakeHandler {
		return func(a *fakeAgent, env *proto.Envelope, body any) {
			switch body.(type) {
			case *proto.Exec:
				a.send(env.ID, proto.TypeStarted, &proto.Started{PID: 88})
			case *proto.Kill: // ignored
			default:
				defaultHandler(a, env, body)
			}
		}
	}, side: func(string) ([]byte, error) { return nil, nil }}
	s, _ := newFakeSession(t, ft, func(o *Options) { o.KillWait = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	_, err := s.Exec(ctx, ExecRequest{Command: "sleep 1000"}, func(ev Event) {
		if ev.Kind == proto.EventStart {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec error = %v; want context.Canceled", err)
	}
	if got := ft.sideCmds(); len(got) != 1 || !strings.HasPrefix(got[0], "kill -KILL -88 ") {
		t.Errorf("side commands %q; want kill of group 88", got)
	}
	if st := s.Status(); st.Running != 0 {
		t.Errorf("running %d after cancel; want 0", st.Running)
	}
}

func TestHeartbeatUnresponsiveRecovers(t *testing.T) {
	leakCheck(t)
	var mu sync.Mutex
	frozen := true
	ft := &fakeTransport{agent: func(n int) fakeHandler {
		if n > 0 {
			return nil
		}
		return func(a *fakeAgent, env *proto.Envelope, body any) {
			switch body.(type) {
			case *proto.Ping:
				mu.Lock()
				f := frozen
				mu.Unlock()
				if f {
					return // a stopped agent answers nothing
				}
			case *proto.Exec:
				a.send(env.ID, proto.TypeStarted, &proto.Started{PID: 321})
				mu.Lock()
				frozen = true
				mu.Unlock()
				return
			}
			defaultHandler(a, env, body)
		}
	}}
	var killedBy []string
	ft.side = func(cmd string) ([]byte, error) {
		killedBy = append(killedBy, cmd)
		ft.agentN(0).stop()
		return []byte("killed the agent"), nil
	}
	s, sl := newFakeSession(t, ft, func(o *Options) {
		o.Heartbeat = 5 * time.Millisecond
		o.Missed = 2
	})
	mu.Lock()
	frozen = false
	mu.Unlock()
	_, err := s.Exec(context.Background(), ExecRequest{Command: "stuck"}, nil)
	if ReasonOf(err) != proto.ReasonLost || !strings.Contains(err.Error(), "heartbeat") {
		t.Fatalf("Exec error = %v; want lost after missed heartbeats", err)
	}
	sl.wait(t, StateUnresponsive, 10*time.Second)
	sl.wait(t, StateReady, 10*time.Second)
	sl.mu.Lock()
	states := strings.Join(func() []string {
		var out []string
		for _, s := range sl.states {
			out = append(out, string(s))
		}
		return out
	}(), ",")
	sl.mu.Unlock()
	if !strings.Contains(states, "ready,unresponsive,lost,connecting,ready") {
		t.Errorf("states %s; want ready,unresponsive,lost,connecting,ready", states)
	}
	if len(killedBy) != 1 || !strings.Contains(killedBy[0], "kill -KILL -321") || !strings.Contains(killedBy[0], "1000") {
		t.Errorf("side commands %q; want kills of group 321 and agent 1000", killedBy)
	}
	res, err := s.Exec(context.Background(), ExecRequest{Command: "ok"}, nil)
	if err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("Exec after recovery = %q, %v", res.Stdout, err)
	}
	if st := s.Status(); st.LastRTT <= 0 && st.State != StateReady {
		t.Errorf("status after recovery = %+v", st)
	}
}

func TestCloseFailsCallsAndLeaksNothing(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{agent: func(int) fakeHandler {
		return func(a *fakeAgent, env *proto.Envelope, body any) {
			if _, ok := body.(*proto.Exec); ok {
				a.send(env.ID, proto.TypeStarted, &proto.Started{PID: 1})
				return
			}
			defaultHandler(a, env, body)
		}
	}}
	s, _ := newFakeSession(t, ft, func(o *Options) { o.Heartbeat = time.Millisecond })
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, func(ev Event) {
			if ev.Kind == proto.EventStart {
				close(started)
			}
		})
		errc <- err
	}()
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; ReasonOf(err) != proto.ReasonClosed {
		t.Fatalf("Exec error after Close = %v; want closed", err)
	}
	if _, err := s.Ping(context.Background()); ReasonOf(err) != proto.ReasonClosed {
		t.Fatalf("Ping after Close = %v; want closed", err)
	}
	if st := s.Status(); st.State != StateClosed {
		t.Errorf("state %s; want closed", st.State)
	}
}

func TestKeptResultLostWhenReconnectFails(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{
		agent: func(n int) fakeHandler {
			return func(a *fakeAgent, env *proto.Envelope, body any) {
				if _, ok := body.(*proto.Exec); ok {
					a.send(env.ID, proto.TypeStarted, &proto.Started{PID: 5})
					a.stop() // cut; the agent would keep the result
					return
				}
				defaultHandler(a, env, body)
			}
		},
		fail: func(n int) error {
			if n == 0 {
				return nil
			}
			return &transport.Error{Reason: proto.ReasonUnreachable, Host: "h1", Err: errors.New("no route to host")}
		},
	}
	s, sl := newFakeSession(t, ft, nil)
	_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if ReasonOf(err) != proto.ReasonLost || !strings.Contains(err.Error(), "no route") {
		t.Fatalf("Exec error = %v; want lost, saying why reconnecting failed", err)
	}
	if ft.n != maxReconnects+1 {
		t.Errorf("%d connects; want %d", ft.n, maxReconnects+1)
	}
	sl.wait(t, StateLost, 10*time.Second) // the first, after the cut
	sl.wait(t, StateLost, 10*time.Second) // giving up
	sl.mu.Lock()
	states := fmt.Sprint(sl.states)
	sl.mu.Unlock()
	if !strings.Contains(states, "backoff connecting") || !strings.HasSuffix(states, "lost]") {
		t.Errorf("states %s; want backoff and reconnects, ending lost", states)
	}
	// The next request tries again at once, and says why it cannot connect.
	if _, err := s.Ping(context.Background()); ReasonOf(err).Status() != proto.StatusUnreachable || transport.ReasonOf(err) != proto.ReasonUnreachable {
		t.Errorf("Ping = %v; want unreachable", err)
	}
}

func TestRequestsWaitOutARecovery(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{agent: func(n int) fakeHandler {
		if n > 0 {
			return nil
		}
		return func(a *fakeAgent, env *proto.Envelope, body any) {} // frozen from the start
	}}
	release := make(chan struct{})
	ft.side = func(cmd string) ([]byte, error) {
		<-release
		ft.agentN(0).stop()
		return nil, nil
	}
	s, sl := newFakeSession(t, ft, func(o *Options) {
		o.Heartbeat = 5 * time.Millisecond
		o.Missed = 2
	})
	errc := make(chan error, 1)
	go func() {
		_, _, err := s.Info(context.Background()) // sent to the frozen agent: lost
		errc <- err
	}()
	sl.wait(t, StateUnresponsive, 10*time.Second)
	pinged := make(chan error, 1)
	go func() {
		_, err := s.Ping(context.Background()) // waits for the replacement
		pinged <- err
	}()
	close(release)
	if err := <-errc; ReasonOf(err) != proto.ReasonLost {
		t.Errorf("Info to the frozen agent = %v; want lost", err)
	}
	if err := <-pinged; err != nil {
		t.Errorf("Ping during the recovery = %v; want it answered by the new agent", err)
	}
	if ft.n != 2 {
		t.Errorf("%d connects; want 2", ft.n)
	}
}

// TestTransportHashChecked checks the agent's hash against the one the transport meant to start
// (ConnInfo.AgentHash) with no ExpectHash set: a mismatch reinstalls once, then is an error.
func TestTransportHashChecked(t *testing.T) {
	leakCheck(t)
	ft := &fakeTransport{infoHash: "abcd", hash: func(reinstall bool) string {
		if reinstall {
			return "ABCD"
		}
		return "0000"
	}}
	s, _ := newFakeSession(t, ft, nil)
	if _, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if ft.n != 2 || ft.reinstalls != 1 {
		t.Errorf("connects %d, reinstalls %d; want 2, 1", ft.n, ft.reinstalls)
	}

	ft = &fakeTransport{infoHash: "abcd", hash: func(bool) string { return "0000" }}
	s, _ = newFakeSession(t, ft, func(o *Options) { o.ExpectHash = "0000" })
	_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
	if ReasonOf(err) != proto.ReasonProtocol || !errors.Is(err, transport.ErrHashMismatch) {
		t.Fatalf("Exec error = %v; want a protocol error wrapping transport.ErrHashMismatch", err)
	}
	if ft.n != 2 || ft.reinstalls != 1 {
		t.Errorf("connects %d, reinstalls %d; want 2, 1", ft.n, ft.reinstalls)
	}
}

// TestConnectFailureKinds checks that a transport's reason for a failed connect reaches the
// caller: in the message, through ReasonOf and transport.ReasonOf, and as status error for install problems.
func TestConnectFailureKinds(t *testing.T) {
	for _, tc := range []struct {
		kind proto.Reason
		want proto.Status
		msg  string
	}{
		{proto.ReasonHostKeyChanged, proto.StatusUnreachable, "h003: host key changed: boom"},
		{proto.ReasonHostKeyUnknown, proto.StatusUnreachable, "h003: host key unknown: boom"},
		{proto.ReasonAuthFailed, proto.StatusUnreachable, "h003: auth failed: boom"},
		{proto.ReasonConnRefused, proto.StatusUnreachable, "h003: refused: boom"},
		{proto.ReasonNoAgentBinary, proto.StatusError, "h003: no agent binary: boom"},
		{proto.ReasonInstallFailed, proto.StatusError, "h003: install failed: boom"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			leakCheck(t)
			ft := &fakeTransport{fail: func(int) error {
				return &transport.Error{Reason: tc.kind, Host: "h003", Err: errors.New("boom")}
			}}
			s, _ := newFakeSession(t, ft, func(o *Options) { o.Target.Name = "h003" })
			_, err := s.Exec(context.Background(), ExecRequest{Command: "x"}, nil)
			if ReasonOf(err).Status() != tc.want || ReasonOf(err) != tc.kind || transport.ReasonOf(err) != tc.kind || err.Error() != tc.msg {
				t.Errorf("got %q (reason %v, transport reason %v); want %q (status %v, reason %v)",
					err, ReasonOf(err), transport.ReasonOf(err), tc.msg, tc.want, tc.kind)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	top := func(n time.Duration) time.Duration { return n - 1 }
	bottom := func(time.Duration) time.Duration { return 0 }
	for _, tc := range []struct {
		failures int
		want     time.Duration // the ceiling
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {7, 64 * time.Second}, {8, 64 * time.Second}, {100, 64 * time.Second}} {
		if got := backoffDelay(time.Second, tc.failures, top); got != tc.want {
			t.Errorf("failure %d: longest delay %v; want %v", tc.failures, got, tc.want)
		}
		if got := backoffDelay(time.Second, tc.failures, bottom); got <= 0 {
			t.Errorf("failure %d: shortest delay %v; want above 0", tc.failures, got)
		}
	}
	// With the real random source the delays of one failure count spread over the range.
	seen := map[bool]bool{}
	for range 200 {
		d := backoffDelay(time.Second, 3, rand.N[time.Duration])
		if d <= 0 || d > 4*time.Second {
			t.Fatalf("delay %v outside (0, 4s]", d)
		}
		seen[d < 2*time.Second] = true
	}
	if len(seen) != 2 {
		t.Errorf("200 delays all fell in one half of (0, 4s]: no jitter")
	}
}
