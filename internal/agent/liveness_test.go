package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/proto"
)

// zombie starts a child in its own process group that exits at once, waits until it has exited
// without reaping it, and returns its pid. It is reaped at cleanup.
func zombie(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { cmd.Wait() })
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatalf("waiting for the child without reaping it: %v", err)
	}
	return pid
}

// agentIDWithPID is a fresh agent id of this host with pid in place of this process's.
func agentIDWithPID(pid int) string {
	id := agent.NewAgentID()
	rnd := id[strings.LastIndexByte(id, '-'):]
	host := id[:strings.LastIndexByte(id[:len(id)-len(rnd)], '-')]
	return host + "-" + strconv.Itoa(pid) + rnd
}

// TestRedeliverZombieAgent checks that the results of an agent that is now a zombie (its parent
// never reaped it, as on hosts whose init does not) are taken over.
func TestRedeliverZombieAgent(t *testing.T) {
	state := t.TempDir()
	dead := filepath.Join(state, "run", agentIDWithPID(zombie(t)))
	rdir := filepath.Join(dead, "41")
	if err := os.MkdirAll(rdir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(&proto.Exit{Code: 3})
	if err := os.WriteFile(filepath.Join(rdir, "status"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A command whose process group holds only a zombie has ended too.
	gone := filepath.Join(dead, "42")
	if err := os.MkdirAll(gone, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ = proto.Marshal(struct {
		Cmd string `cbor:"1,keyasint"`
		PID int    `cbor:"2,keyasint"`
	}{"sleep 1", zombie(t)})
	if err := os.WriteFile(filepath.Join(gone, "request"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	p := startPipe(t, agent.Options{StateDir: state})
	expect[proto.Started](p, 41, proto.TypeStarted)
	if ex := p.collect(41, &result{}).exit; ex.Code != 3 || !ex.Redelivered {
		t.Errorf("zombie agent's result: got %+v; want code 3, re-delivered", ex)
	}
	expect[proto.Started](p, 42, proto.TypeStarted)
	if ex := p.collect(42, &result{}).exit; ex.Code != -1 || !strings.Contains(ex.Err, "while the command ran") {
		t.Errorf("command of a zombie group: got %+v; want an unknown status", ex)
	}
}
