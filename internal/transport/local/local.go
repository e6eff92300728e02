// Package local is the transport to this machine: `shoal agent` as a subprocess, no SSH.
package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// Transport starts `<Binary> agent --state-dir <BaseDir>/<host> <AgentArgs...>` for each Connect.
// The zero value uses the running executable and a directory in the user's cache.
type Transport struct {
	// Binary is the shoal executable to run; empty means os.Executable().
	Binary string
	// BaseDir holds one state directory per target name; empty means <user cache dir>/shoal/local.
	BaseDir string
	// Stderr receives the agent's diagnostics; nil discards them.
	Stderr io.Writer
	// Homes, when set, gives each target its own home directory, Homes/<name> (made when
	// missing), as if each were a machine of its own: the demo's fleet. Empty keeps $HOME.
	Homes string

	hashOnce sync.Once
	hash     string
}

var _ transport.Transport = (*Transport)(nil)

// Connect starts an agent for t. The process outlives ctx; Close ends it.
func (tr *Transport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	fail := func(reason proto.Reason, err error) error {
		return &transport.Error{Reason: reason, Host: t.Name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(proto.ReasonConnectTimeout, err)
	}
	bin := tr.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fail(proto.ReasonNoAgentBinary, fmt.Errorf("finding own executable: %w", err))
		}
		bin = exe
	}
	stateDir, err := tr.stateDir(t)
	if err != nil {
		return nil, fail(proto.ReasonInstallFailed, err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fail(proto.ReasonInstallFailed, fmt.Errorf("creating state directory: %w", err))
	}
	args := append([]string{"agent", "--state-dir", stateDir}, t.AgentArgs...)
	cmd := exec.Command(bin, args...)
	// A session of its own, as sshd gives a remote agent: no controlling terminal (a command's
	// `echo x > /dev/tty` fails instead of painting over the console), and a terminal's Ctrl-C
	// is not for the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if tr.Homes != "" {
		home := filepath.Join(tr.Homes, dirName(t.Name))
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, fail(proto.ReasonInstallFailed, fmt.Errorf("creating home directory: %w", err))
		}
		cmd.Env = append(os.Environ(), "HOME="+home)
	}
	cmd.Stderr = tr.Stderr
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fail(proto.ReasonConnectFailed, fmt.Errorf("creating pipe: %w", err))
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fail(proto.ReasonConnectFailed, fmt.Errorf("creating pipe: %w", err))
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		reason := proto.ReasonInstallFailed
		if errors.Is(err, os.ErrNotExist) {
			reason = proto.ReasonNoAgentBinary
		}
		return nil, fail(reason, fmt.Errorf("starting agent: %w", err))
	}
	c := &Conn{cmd: cmd, in: inW, out: outR, done: make(chan struct{}), info: transport.ConnInfo{
		AgentPath: bin, AgentHash: tr.binaryHash(bin), RemoteOS: runtime.GOOS, RemoteArch: runtime.GOARCH,
	}}
	go c.reap()
	return c, nil
}

// stateDir returns the agent state directory for t: its InstallDir, or BaseDir/<name>.
func (tr *Transport) stateDir(t transport.Target) (string, error) {
	if t.InstallDir != "" {
		return t.InstallDir, nil
	}
	base := tr.BaseDir
	if base == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("finding the cache directory: %w", err)
		}
		base = filepath.Join(cache, "shoal", "local")
	}
	return filepath.Join(base, dirName(t.Name)), nil
}

// dirName returns the name of a target's directory under a base directory.
func dirName(name string) string {
	if name == "" {
		name = "localhost"
	}
	name = strings.NewReplacer("/", "_", "\x00", "_").Replace(name)
	if name == "." || name == ".." {
		name = "_" + name
	}
	return name
}

func (tr *Transport) binaryHash(bin string) string {
	if tr.Binary != "" && bin != tr.Binary {
		return hashFile(bin)
	}
	tr.hashOnce.Do(func() { tr.hash = hashFile(bin) })
	return tr.hash
}

func hashFile(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Conn is a running local agent.
type Conn struct {
	cmd  *exec.Cmd
	in   *os.File // the agent's stdin
	out  *os.File // the agent's stdout
	info transport.ConnInfo

	closeOnce sync.Once
	done      chan struct{} // closed when the process has been reaped
	waitErr   error         // set before done is closed
}

// reap waits for the agent process; it is the one goroutine a Conn owns and ends with the process.
func (c *Conn) reap() {
	c.waitErr = c.cmd.Wait()
	close(c.done)
}

// Read reads the agent's stdout.
func (c *Conn) Read(b []byte) (int, error) { return c.out.Read(b) }

// Write writes to the agent's stdin.
func (c *Conn) Write(b []byte) (int, error) { return c.in.Write(b) }

// CloseWrite closes the agent's stdin only: it takes no new work, finishes what runs, and exits,
// and its remaining output can still be read to the end.
func (c *Conn) CloseWrite() error { return c.in.Close() }

// Close closes the agent's stdin and stdout. The agent finishes its running commands into their
// result directories and exits on its own; the process is reaped in the background.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.in.Close()
		err = c.out.Close()
	})
	return err
}

// Info describes the connection.
func (c *Conn) Info() transport.ConnInfo { return c.info }

// PID returns the agent's process id.
func (c *Conn) PID() int { return c.cmd.Process.Pid }

// Done is closed when the agent process has exited and been reaped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Wait waits for the agent process to exit and returns its exit error.
func (c *Conn) Wait() error {
	<-c.done
	return c.waitErr
}

// Kill sends SIGKILL to the agent process (not its commands, which have their own process groups).
func (c *Conn) Kill() error { return c.cmd.Process.Kill() }

// Side runs cmd with bash -c on this machine and returns its combined output.
func (c *Conn) Side(ctx context.Context, cmd string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "bash", "-c", cmd).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("running side command: %w", err)
	}
	return out, nil
}
