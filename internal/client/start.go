package client

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-sh/shoal/internal/fsutil"
)

// startWait bounds how long a client waits for a daemon it started to answer.
const startWait = 20 * time.Second

// startLockName is the lock file, beside the socket, that serialises starters.
const startLockName = "start.lock"

// StartOptions say how to start a daemon when none answers.
type StartOptions struct {
	// Binary is the shoal executable; "" means this program (os.Executable).
	Binary string
	// Args follow "daemon" (or "daemon start") on the command line, e.g. --config FILE.
	Args []string
	// LogFile receives the daemon's stdout and stderr (mode 0600); "" discards them.
	LogFile string
	// Env is the daemon's environment; nil inherits this process's.
	Env []string
}

func (o *StartOptions) binary() (string, error) {
	if o.Binary != "" {
		return o.Binary, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the shoal executable: %w", err)
	}
	return exe, nil
}

// autoStart runs `shoal daemon start` and waits for it: that process starts the
// daemon under the lock and exits once it answers, so the daemon is nobody's child.
func autoStart(ctx context.Context, o StartOptions) error {
	bin, err := o.binary()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startWait+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"daemon", "start"}, o.Args...)...)
	cmd.Env = o.Env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg != "" {
			return fmt.Errorf("starting the shoal daemon: %w: %s", err, msg)
		}
		return fmt.Errorf("starting the shoal daemon: %w", err)
	}
	return nil
}

// Start makes sure a daemon answers on socket. Under an exclusive file lock it dials
// the socket; when nothing answers it starts `shoal daemon` detached (its own session,
// output to LogFile) and waits, with backoff and a bound, until it answers. Callers
// racing each other start exactly one daemon. It returns the daemon's pid when it
// started one, 0 when one was already running.
func Start(ctx context.Context, socket string, o StartOptions) (int, error) {
	dir := filepath.Dir(socket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("creating socket directory: %w", err)
	}
	lockPath := filepath.Join(dir, startLockName)
	lctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	if err := fsutil.CheckPrivate(dir, "the shoal daemon's socket directory"); err != nil {
		return 0, err
	}
	lk, err := fsutil.WaitLock(lctx, lockPath)
	if err != nil {
		return 0, fmt.Errorf("taking the daemon start lock: %w", err)
	}
	defer lk.Unlock()
	if err := lk.CheckPrivate(lockPath); err != nil {
		return 0, err
	}

	if answers(ctx, socket) {
		return 0, nil
	}
	bin, err := o.binary()
	if err != nil {
		return 0, err
	}
	logf, err := openLog(o.LogFile)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, append([]string{"daemon"}, o.Args...)...)
	cmd.Env = o.Env
	cmd.Dir = "/" // do not keep the starter's working directory busy
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the shoal daemon: %w", err)
	}
	pid := cmd.Process.Pid
	delay := 5 * time.Millisecond
	deadline := time.Now().Add(startWait)
	for {
		if answers(ctx, socket) {
			return pid, nil
		}
		var ws syscall.WaitStatus
		if wpid, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); wpid == pid {
			return 0, fmt.Errorf("the shoal daemon exited at once (%s); its log is %s", exitText(ws), logName(o.LogFile))
		}
		if time.Now().After(deadline) {
			return pid, fmt.Errorf("the shoal daemon (pid %d) did not answer on %s within %v; its log is %s", pid, socket, startWait, logName(o.LogFile))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return pid, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

func exitText(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

func logName(p string) string {
	if p == "" {
		return "discarded"
	}
	return p
}

func openLog(p string) (*os.File, error) {
	if p == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("creating daemon log directory: %w", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening daemon log: %w", err)
	}
	return f, nil
}

// answers reports whether something accepts connections on socket.
func answers(ctx context.Context, socket string) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
