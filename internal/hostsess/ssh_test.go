package hostsess

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/ssh"
	"golang.org/x/sys/unix"
)

// newSSHSession returns a session to host i of a real sshd fleet, over the
// in-process SSH transport tr, with the real agent installed on it.
func newSSHSession(t *testing.T, f *shoaltest.Fleet, tr transport.Transport, i int, mod func(*Options)) (*Session, *stateLog) {
	t.Helper()
	sl := newStateLog()
	o := Options{
		Target:    transport.Target{Name: f.Hosts[i].Name},
		Transport: tr,
		Heartbeat: time.Hour,
		Missed:    3,
		Backoff:   10 * time.Millisecond,
		Logger:    testLogger(t),
		OnState:   sl.on,
	}
	if mod != nil {
		mod(&o)
	}
	s := New(o)
	t.Cleanup(func() { s.Close() })
	return s, sl
}

// TestSSH runs sessions over real SSH, one fleet host per subtest.
func TestSSH(t *testing.T) {
	leakCheck(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	tr := ssh.New(ssh.Options{
		Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"},
		Source: f.AgentSource(t),
		Stderr: func(string) io.Writer { return tWriter{t} },
	})
	t.Run("ExecCancelAndCut", func(t *testing.T) { testSSHExecCancelAndCut(t, f, tr) })
	t.Run("StoppedAgentIsReplaced", func(t *testing.T) { testSSHStoppedAgentIsReplaced(t, f, tr) })
}

// parentPID returns the parent of pid, from /proc.
func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// cutSSH kills the sshd processes that serve the agent's connection (those
// above it, not the listener), as a network cut would.
func cutSSH(t *testing.T, agentPID int) {
	t.Helper()
	var victims []int
	for p := parentPID(agentPID); p > 1; p = parentPID(p) {
		c := cmdline(p)
		if !strings.Contains(c, "sshd") {
			continue
		}
		if strings.Contains(c, " -f ") || strings.Contains(c, "[listener]") {
			break
		}
		victims = append(victims, p)
	}
	if len(victims) == 0 {
		t.Fatalf("no sshd above agent %d", agentPID)
	}
	for _, p := range victims {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("killing sshd %d: %v", p, err)
		}
	}
}

func testSSHExecCancelAndCut(t *testing.T, f *shoaltest.Fleet, tr transport.Transport) {
	s, _ := newSSHSession(t, f, tr, 0, func(o *Options) {
		o.Heartbeat = 200 * time.Millisecond
		o.Missed = 50
	})
	ctx := context.Background()
	res, err := s.Exec(ctx, ExecRequest{Command: "echo hi; exit 3"}, nil)
	if err != nil || string(res.Stdout) != "hi\n" || res.ExitCode != 3 {
		t.Fatalf("Exec = %q, %d, %v", res.Stdout, res.ExitCode, err)
	}

	// Cancel leaves no process behind.
	cctx, cancel := context.WithCancel(ctx)
	var pids []int
	res, err = s.Exec(cctx, ExecRequest{Command: `sleep 1000 & echo $!; wait`}, func(ev Event) {
		if ev.Kind == proto.EventStdout {
			if p, err := strconv.Atoi(strings.TrimSpace(string(ev.Data))); err == nil {
				pids = append(pids, p)
				cancel()
			}
		}
	})
	if !errors.Is(err, context.Canceled) || len(pids) != 1 {
		t.Fatalf("cancelled Exec = %v (pids %v); want context.Canceled", err, pids)
	}
	for _, p := range append(pids, res.PID) {
		waitFor(t, func() bool { return processGone(p) })
	}

	// The SSH connection cut mid-command: the full output arrives after the reconnect.
	agent := s.Status().AgentPID
	reapOrphan(t, agent)
	cut := false
	res, err = s.Exec(ctx, ExecRequest{Command: "echo before; sleep 1; echo after"}, func(ev Event) {
		if ev.Kind == proto.EventStdout && !cut {
			cut = true
			cutSSH(t, agent)
		}
	})
	if err != nil || string(res.Stdout) != "before\nafter\n" {
		t.Fatalf("Exec across a cut = %q, %v; want both lines", res.Stdout, err)
	}
	if got := s.Status().AgentPID; got == agent {
		t.Errorf("agent pid %d unchanged after the cut", got)
	}
}

func testSSHStoppedAgentIsReplaced(t *testing.T, f *shoaltest.Fleet, tr transport.Transport) {
	s, sl := newSSHSession(t, f, tr, 1, func(o *Options) {
		o.Heartbeat = 100 * time.Millisecond
		o.Missed = 3
	})
	if _, err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	pid := s.Status().AgentPID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	sl.wait(t, StateUnresponsive, 20*time.Second)
	sl.wait(t, StateReady, 20*time.Second)
	waitFor(t, func() bool { return processGone(pid) })
	if _, err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
}

// reapOrphan makes this process reap pid once it is orphaned and exits. The
// agent refuses to take over the results of an agent whose pid still exists,
// and in a sandbox whose init does not reap, a dead agent stays a zombie; on a
// real host init reaps it. So the test process becomes the subreaper of its
// descendants and waits for that one pid (only), until the test ends.
func reapOrphan(t *testing.T, pid int) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Logf("cannot become a subreaper: %v", err)
		return
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var ws unix.WaitStatus
			if p, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); p == pid || (err != nil && !errors.Is(err, unix.ECHILD)) {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}
