package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/proto"
)

// AskpassSocketEnv names, in sudo's environment only, the socket where the agent's askpass
// helper fetches the password. sudo's env_reset keeps it from the command.
const AskpassSocketEnv = "SHOAL_ASKPASS_SOCKET"

// sudoCheckTimeout bounds sudo's own checks before a command (a wrong password costs PAM's
// delay, a few seconds).
const sudoCheckTimeout = 60 * time.Second

// maxPassword bounds what the askpass helper passes on.
const maxPassword = 4096

// AskpassMain is the askpass helper: when sudo runs the agent's executable as SUDO_ASKPASS
// (with the prompt as its one argument) and AskpassSocketEnv is set, it writes the password
// the agent serves on that socket to stdout and returns true with the exit status.
// Otherwise it returns false and does nothing.
func AskpassMain(stdout io.Writer) (int, bool) {
	sock := os.Getenv(AskpassSocketEnv)
	if sock == "" || len(os.Args) > 2 {
		return 0, false
	}
	c, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		return 1, true
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	pw, err := io.ReadAll(io.LimitReader(c, maxPassword))
	if err != nil || len(pw) == 0 {
		return 1, true
	}
	if _, err := stdout.Write(append(pw, '\n')); err != nil {
		return 1, true
	}
	return 0, true
}

// askpass serves a password to the agent's askpass helper over a Unix socket in a private
// directory: at most limit times, then over is called for each further request (which
// gets nothing).
type askpass struct {
	dir  string
	ln   net.Listener
	pw   []byte
	uid  int
	over func()

	limit int32
	calls atomic.Int32
	wg    sync.WaitGroup
}

func startAskpass(pw []byte, limit int32, over func()) (*askpass, error) {
	dir, err := os.MkdirTemp("", "shoal-askpass-")
	if err != nil {
		return nil, fmt.Errorf("creating the askpass directory: %w", err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("listening for the askpass helper: %w", err)
	}
	a := &askpass{dir: dir, ln: ln, pw: pw, uid: os.Getuid(), over: over, limit: limit}
	a.wg.Add(1)
	go a.serve()
	return a, nil
}

func (a *askpass) socket() string { return filepath.Join(a.dir, "s") }

func (a *askpass) serve() {
	defer a.wg.Done()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.answer(c)
	}
}

func (a *askpass) answer(c net.Conn) {
	defer c.Close()
	if uc, ok := c.(*net.UnixConn); ok {
		raw, err := uc.SyscallConn()
		uid := -1
		if err == nil {
			raw.Control(func(fd uintptr) { uid, _, _ = fsutil.SocketPeer(int(fd)) })
		}
		if uid != a.uid {
			return // the directory is private; anyone else is no helper of ours
		}
	}
	if a.calls.Add(1) > a.limit {
		if a.over != nil {
			a.over()
		}
		return
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.Write(a.pw)
}

// close stops serving and removes the socket.
func (a *askpass) close() {
	a.ln.Close()
	a.wg.Wait()
	os.RemoveAll(a.dir)
}

// sudoRun is how one command goes through sudo.
type sudoRun struct {
	path   string   // sudo's path
	flags  []string // -n, or -A with the askpass helper
	user   string
	ask    *askpass // nil with -n
	helper string
	// tty gives sudo a controlling terminal (its sudoers say requiretty), while stdin,
	// stdout and stderr stay as they are; the terminal's master is drained and closed.
	tty bool
}

// withTTY gives c a controlling terminal of its own, in a new session, as fd 3 (sudo closes
// it before running the command, which keeps c's stdin, stdout and stderr). It returns
// what to call once c has started (closing the child's end) and once it has ended.
func withTTY(c *exec.Cmd) (started, done func(), err error) {
	master, slave, err := openPTY(&proto.PTY{})
	if err != nil {
		return nil, nil, err
	}
	c.ExtraFiles = append(c.ExtraFiles, slave)
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 2 + len(c.ExtraFiles)}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, master) // ends with EIO once the session is gone
	}()
	return func() { slave.Close() }, func() {
		master.SetReadDeadline(time.Now().Add(2 * time.Second))
		<-drained
		master.Close()
	}, nil
}

// sudoPrepare finds out whether sudo on this host runs a command as j's SudoUser: without a
// password (NOPASSWD, or credentials cached), or with the one given (checked first with
// `sudo -k true`, so a wrong one is one clear error and sudo's retries and prompts never
// reach the command's output). It returns how to run the command, or the exit that says
// why sudo will not.
func (s *server) sudoPrepare(ctx context.Context, j *job) (*sudoRun, *proto.Exit) {
	start := s.now()
	fail := func(reason, msg string) *proto.Exit {
		now := s.now().UnixNano()
		return &proto.Exit{Code: -1, Start: start.UnixNano(), End: now, Err: msg, Sudo: reason}
	}
	path, err := exec.LookPath("sudo")
	if err != nil {
		return nil, fail(proto.SudoMissing, "sudo: not installed on this host")
	}
	sr := &sudoRun{path: path, user: j.req.SudoUser, helper: s.opts.AskpassHelper}
	ctx, cancel := context.WithTimeout(ctx, sudoCheckTimeout)
	defer cancel()
	// sudo -n never asks: it runs, or says why not.
	code, msg := s.sudoTry(ctx, sr, []string{"-n"}, nil)
	if code != 0 && sudoReason(msg) == proto.SudoNoTTY {
		// requiretty: sudo gets a terminal of its own from now on.
		sr.tty = true
		code, msg = s.sudoTry(ctx, sr, []string{"-n"}, nil)
	}
	if code == 0 {
		sr.flags = []string{"-n"}
		if j.req.SudoCheck {
			return nil, &proto.Exit{Code: 0, Start: start.UnixNano(), End: s.now().UnixNano()}
		}
		return sr, nil
	}
	reason := sudoReason(msg)
	if reason != proto.SudoPasswordRequired || len(j.req.SudoPassword) == 0 {
		return nil, fail(reason, "sudo: "+msg)
	}
	// A password is needed and we have one: check it alone, with the helper answering
	// once. A second question means sudo refused it: stop sudo there.
	var wrong atomic.Bool
	var auth *exec.Cmd
	var authMu sync.Mutex
	ask, err := startAskpass(j.req.SudoPassword, 1, func() {
		wrong.Store(true)
		authMu.Lock()
		defer authMu.Unlock()
		if auth != nil && auth.Process != nil {
			syscall.Kill(-auth.Process.Pid, syscall.SIGKILL)
		}
	})
	if err != nil {
		return nil, fail(proto.SudoRefused, err.Error())
	}
	code, msg = s.sudoTry(ctx, sr, []string{"-A", "-k"}, func(c *exec.Cmd) {
		c.Env = append(c.Env, "SUDO_ASKPASS="+sr.helper, AskpassSocketEnv+"="+ask.socket())
		authMu.Lock()
		auth = c
		authMu.Unlock()
	})
	ask.close()
	switch {
	case wrong.Load():
		return nil, fail(proto.SudoPasswordIncorrect, "sudo: the password was refused for "+j.req.SudoUser+" (as "+currentUser()+")")
	case code != 0:
		return nil, fail(sudoReason(msg), "sudo: "+msg)
	case j.req.SudoCheck:
		return nil, &proto.Exit{Code: 0, Start: start.UnixNano(), End: s.now().UnixNano()}
	}
	// The command's own sudo may ask again (no cached credentials): the password is right,
	// so the helper answers a few times.
	ask, err = startAskpass(j.req.SudoPassword, 3, nil)
	if err != nil {
		return nil, fail(proto.SudoRefused, err.Error())
	}
	sr.ask = ask
	sr.flags = []string{"-A"}
	return sr, nil
}

// sudoTry runs `sudo FLAGS -u USER -- true` in its own process group with the C locale and
// returns its exit code and the first line of what it said.
func (s *server) sudoTry(ctx context.Context, sr *sudoRun, flags []string, edit func(*exec.Cmd)) (int, string) {
	args := append(append([]string{}, flags...), "-u", sr.user, "--", "true")
	c := exec.Command(sr.path, args...)
	c.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	var stderr bytes.Buffer
	c.Stdout, c.Stderr = io.Discard, &stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if edit != nil {
		edit(c)
	}
	started, ended := func() {}, func() {}
	if sr.tty {
		var err error
		if started, ended, err = withTTY(c); err != nil {
			return -1, err.Error()
		}
	}
	if err := c.Start(); err != nil {
		started()
		ended()
		return -1, err.Error()
	}
	started()
	defer ended()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		case <-done:
		}
	}()
	err := c.Wait()
	close(done)
	msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
	msg = strings.TrimPrefix(msg, "sudo: ")
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, ""
	case ctx.Err() != nil:
		return -1, "no answer within " + sudoCheckTimeout.String()
	case errors.As(err, &ee):
		if msg == "" {
			msg = err.Error()
		}
		return ee.ExitCode(), msg
	}
	return -1, err.Error()
}

// sudoReason classifies what `LC_ALL=C sudo` said when it would not run a command.
func sudoReason(msg string) string {
	switch {
	case strings.Contains(msg, "password is required"):
		return proto.SudoPasswordRequired
	case strings.Contains(msg, "must have a tty"), strings.Contains(msg, "terminal is required"):
		return proto.SudoNoTTY
	}
	return proto.SudoRefused
}

// wrap turns cmd (SHELL -c CMD with extra variables) into the same through sudo: sudo
// resets the environment, so the variables go on env's command line after sudo's.
func (sr *sudoRun) wrap(cmd *exec.Cmd, extra []string) {
	args := append([]string{sr.path}, sr.flags...)
	args = append(args, "-u", sr.user, "--", "env")
	args = append(args, extra...)
	args = append(args, cmd.Args...)
	cmd.Path, cmd.Args = sr.path, args
	cmd.Env = os.Environ()
	if sr.ask != nil {
		cmd.Env = append(cmd.Env, "SUDO_ASKPASS="+sr.helper, AskpassSocketEnv+"="+sr.ask.socket())
	}
}

func (sr *sudoRun) close() {
	if sr != nil && sr.ask != nil {
		sr.ask.close()
	}
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprint("uid ", os.Getuid())
}
