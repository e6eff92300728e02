package hostsess

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/local"
)

func TestMain(m *testing.M) { shoaltest.Main(m) }

// localTransport runs the real `shoal agent` as a subprocess and remembers each
// connection, so tests can signal the agent and wait for it to exit.
type localTransport struct {
	lt    *local.Transport
	mu    sync.Mutex
	conns []*local.Conn
}

func (r *localTransport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	c, err := r.lt.Connect(ctx, t)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.conns = append(r.conns, c.(*local.Conn))
	r.mu.Unlock()
	return c, nil
}

func (r *localTransport) conn(n int) *local.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < len(r.conns) {
		return r.conns[n]
	}
	return nil
}

// newLocalSession returns a session on a real agent subprocess. At the end of the
// test it closes the session and waits for every agent process to exit.
func newLocalSession(t *testing.T, mod func(*Options)) (*Session, *localTransport, *stateLog) {
	t.Helper()
	// A -race agent sleeps a second at exit by default; the tests wait for exits.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	rt := &localTransport{lt: &local.Transport{Binary: shoaltest.Binary(t), BaseDir: shoaltest.AgentDir(t), Stderr: tWriter{t}}}
	t.Cleanup(func() {
		rt.mu.Lock()
		conns := rt.conns
		rt.mu.Unlock()
		for _, c := range conns {
			select {
			case <-c.Done():
			case <-time.After(20 * time.Second):
				t.Errorf("agent pid %d did not exit; killing it", c.PID())
				c.Kill()
				<-c.Done()
			}
		}
	})
	sl := newStateLog()
	o := Options{
		Target:    transport.Target{Name: "local"},
		Transport: rt,
		Heartbeat: time.Hour,
		Missed:    3,
		Backoff:   10 * time.Millisecond,
		KillWait:  2 * time.Second,
		Logger:    testLogger(t),
		OnState:   sl.on,
	}
	if mod != nil {
		mod(&o)
	}
	s := New(o)
	t.Cleanup(func() { s.Close() })
	return s, rt, sl
}

// processGone reports whether pid no longer exists (or is a zombie).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z'
	}
	return false
}

func TestAgentExecAndFiles(t *testing.T) {
	leakCheck(t)
	s, _, _ := newLocalSession(t, nil)
	ctx := context.Background()
	res, err := s.Exec(ctx, ExecRequest{Command: `echo "out $FOO"; echo err >&2; cat; exit 3`, Env: map[string]string{"FOO": "bar"}, Stdin: []byte("in\n")}, nil)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if string(res.Stdout) != "out bar\nin\n" || string(res.Stderr) != "err\n" || res.ExitCode != 3 {
		t.Errorf("result stdout %q stderr %q code %d", res.Stdout, res.Stderr, res.ExitCode)
	}
	if res.PID == 0 || res.Started.IsZero() || res.Ended.Before(res.Started) {
		t.Errorf("result %+v lacks pid or times", res)
	}
	res, err = s.Exec(ctx, ExecRequest{Command: "head -c 100000 /dev/zero", OutputCap: 1000}, nil)
	if err != nil || len(res.Stdout) != 1000 || !res.Truncated {
		t.Errorf("capped Exec = %d bytes, truncated %v, %v; want 1000, truncated", len(res.Stdout), res.Truncated, err)
	}
	// KeepCap bounds what the result holds; all of it still streams.
	var streamed int
	res, err = s.Exec(ctx, ExecRequest{Command: "head -c 100000 /dev/zero; head -c 500 /dev/zero >&2", KeepCap: 3000}, func(ev Event) {
		streamed += len(ev.Data)
	})
	if err != nil || len(res.Stdout)+len(res.Stderr) != 3000 || res.Dropped != 97500 || streamed != 100500 || res.Truncated {
		t.Errorf("KeepCap Exec kept %d+%d bytes, dropped %d, streamed %d, truncated %v, %v; want 3000 kept, 97500 dropped, 100500 streamed",
			len(res.Stdout), len(res.Stderr), res.Dropped, streamed, res.Truncated, err)
	}
	if _, err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	info, _, err := s.Info(ctx)
	if err != nil || info.Hostname == "" || info.PID != s.Status().AgentPID {
		t.Errorf("Info = %+v, %v", info, err)
	}
	if ci := s.ConnInfo(); ci.AgentHash == "" || ci.AgentHash != info.BinarySHA256 {
		t.Errorf("ConnInfo().AgentHash = %q; want the agent's %q", ci.AgentHash, info.BinarySHA256)
	}
	dest := t.TempDir() + "/f"
	data := bytes.Repeat([]byte("0123456789"), 20000)
	if err := s.WriteFile(ctx, dest, 0o640, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	var got bytes.Buffer
	n, mode, err := s.ReadFile(ctx, dest, &got)
	if err != nil || n != int64(len(data)) || mode != 0o640 || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("ReadFile = %d, %v, %v (equal %v)", n, mode, err, bytes.Equal(got.Bytes(), data))
	}
	if _, _, err := s.ReadFile(ctx, dest+".missing", &got); ReasonOf(err) != proto.ReasonRemote {
		t.Errorf("ReadFile of a missing file: %v; want a remote error", err)
	}

	// KillAll stops every running command.
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		_, err := s.Exec(ctx, ExecRequest{Command: "sleep 1000"}, func(ev Event) {
			if ev.Kind == proto.EventStart {
				close(started)
			}
		})
		errc <- err
	}()
	<-started
	if err := s.KillAll(ctx); err != nil {
		t.Fatalf("KillAll: %v", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Exec killed by KillAll: %v; want its result (killed by a signal)", err)
	}
}

func TestAgentCancelKillsProcessGroup(t *testing.T) {
	leakCheck(t)
	s, _, _ := newLocalSession(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var pids []int
	res, err := s.Exec(ctx, ExecRequest{Command: `sleep 1000 & echo $!; sleep 1000 & echo $!; wait`}, func(ev Event) {
		if ev.Kind != proto.EventStdout {
			return
		}
		for _, f := range strings.Fields(string(ev.Data)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
		if len(pids) == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec error = %v; want context.Canceled", err)
	}
	pids = append(pids, res.PID)
	for _, p := range pids {
		// A killed process dies asynchronously; a stray one would live on.
		waitFor(t, func() bool { return processGone(p) })
	}
	if res.Signal != "SIGKILL" {
		t.Errorf("signal %q; want SIGKILL", res.Signal)
	}
}

func TestAgentTimeout(t *testing.T) {
	leakCheck(t)
	s, _, _ := newLocalSession(t, nil)
	res, err := s.Exec(context.Background(), ExecRequest{Command: "sleep 1000", Timeout: 100 * time.Millisecond}, nil)
	if ReasonOf(err) != proto.ReasonCommandTimeout || res.PID == 0 {
		t.Fatalf("Exec = pid %d, error %v; want a timeout after the start", res.PID, err)
	}
	waitFor(t, func() bool { return processGone(res.PID) })
}

func TestAgentStoppedIsUnresponsiveAndReplaced(t *testing.T) {
	leakCheck(t)
	s, rt, sl := newLocalSession(t, func(o *Options) {
		o.Heartbeat = 100 * time.Millisecond
		o.Missed = 3
	})
	if _, err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	old := rt.conn(0)
	pid := s.Status().AgentPID
	if pid != old.PID() {
		t.Fatalf("hello pid %d; transport pid %d", pid, old.PID())
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	sl.wait(t, StateUnresponsive, 20*time.Second)
	sl.wait(t, StateReady, 20*time.Second)
	select {
	case <-old.Done():
	case <-time.After(20 * time.Second):
		syscall.Kill(pid, syscall.SIGCONT)
		t.Fatal("the stopped agent was not killed")
	}
	if _, err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
	if got := s.Status().AgentPID; got == pid || got == 0 {
		t.Errorf("agent pid after recovery %d; want a new one (old %d)", got, pid)
	}
}

func TestAgentKilledMidCommand(t *testing.T) {
	leakCheck(t)
	s, rt, _ := newLocalSession(t, func(o *Options) {
		o.Heartbeat = 200 * time.Millisecond
		o.Missed = 50 // only the loss matters here
	})
	var cmdPID int
	_, err := s.Exec(context.Background(), ExecRequest{Command: "sleep 1000"}, func(ev Event) {
		if ev.Kind == proto.EventStart {
			cmdPID = ev.PID
			rt.conn(0).Kill()
		}
	})
	if ReasonOf(err) != proto.ReasonLost || !strings.Contains(err.Error(), "died") {
		t.Fatalf("Exec error = %v; want lost saying the agent died", err)
	}
	waitFor(t, func() bool { return processGone(cmdPID) })
	res, err := s.Exec(context.Background(), ExecRequest{Command: "echo again"}, nil)
	if err != nil || string(res.Stdout) != "again\n" {
		t.Fatalf("next Exec = %q, %v", res.Stdout, err)
	}
}

func TestAgentResultAfterCut(t *testing.T) {
	leakCheck(t)
	s, rt, _ := newLocalSession(t, func(o *Options) {
		o.Heartbeat = 100 * time.Millisecond
		o.Missed = 50
	})
	cut := false
	res, err := s.Exec(context.Background(), ExecRequest{Command: "echo before; sleep 0.5; echo after"}, func(ev Event) {
		if ev.Kind == proto.EventStdout && !cut {
			cut = true
			rt.conn(0).Close() // the connection is cut; the agent finishes the command
		}
	})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if string(res.Stdout) != "before\nafter\n" || res.ExitCode != 0 {
		t.Errorf("result stdout %q code %d; want both lines, code 0", res.Stdout, res.ExitCode)
	}
}

func TestAgentOrphanAfterDaemonRestart(t *testing.T) {
	leakCheck(t)
	// The first "daemon" starts a command and goes away while it runs.
	s1, rt, _ := newLocalSession(t, nil)
	started := make(chan struct{})
	go func() {
		s1.Exec(context.Background(), ExecRequest{Command: "sleep 0.2; echo kept"}, func(ev Event) {
			if ev.Kind == proto.EventStart {
				close(started)
			}
		})
	}()
	<-started
	s1.Close()
	<-rt.conn(0).Done() // the agent finished the command into its result directory

	// The next one, on the same host, gets the result through Orphan and acknowledges it.
	orphans := make(chan Result, 1)
	s2 := New(Options{Target: transport.Target{Name: "local"}, Transport: rt, Logger: testLogger(t),
		Orphan: func(host string, r Result) bool { orphans <- r; return true }})
	t.Cleanup(func() { s2.Close() })
	if _, err := s2.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	select {
	case r := <-orphans:
		if string(r.Stdout) != "kept\n" || r.ExitCode != 0 || r.RequestID == 0 {
			t.Errorf("orphan = %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no orphaned result")
	}
	// Acknowledged: a third connection is offered nothing.
	s2.Close()
	s3 := New(Options{Target: transport.Target{Name: "local"}, Transport: rt, Logger: testLogger(t),
		Orphan: func(host string, r Result) bool { t.Errorf("result %d offered again", r.RequestID); return true }})
	t.Cleanup(func() { s3.Close() })
	<-rt.conn(1).Done()
	if _, err := s3.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
