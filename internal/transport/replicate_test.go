package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/proto"
)

// localShell runs commands under /bin/sh on this machine with HOME=home, as sshd would.
type localShell struct {
	t       *testing.T
	home    string
	command string // run instead of the bootstrap, when not empty
	startErr,
	endErr error // returned by Start and End, when not nil

	mu      sync.Mutex // protects cmd: Abort comes from another goroutine
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     io.Reader
	aborted chan struct{}
	ended   error // End's argument
}

func newShell(t *testing.T, home string) *localShell {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("POSIX shell needed")
	}
	return &localShell{t: t, home: home, aborted: make(chan struct{})}
}

func (s *localShell) Start(cmd string) (io.ReadWriter, error) {
	if s.startErr != nil {
		return nil, s.startErr
	}
	if s.command != "" {
		cmd = s.command
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd = exec.Command("/bin/sh", "-c", cmd)
	s.cmd.Env = []string{"HOME=" + s.home, "PATH=" + os.Getenv("PATH")}
	var err error
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if s.out, err = s.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.t.Cleanup(func() {
		s.in.Close()
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	return struct {
		io.Reader
		io.Writer
	}{s.out, s.in}, nil
}

func (s *localShell) Abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Kill()
	}
	close(s.aborted)
}

func (s *localShell) End(err error) error {
	s.ended = err
	s.in.Close()
	if s.endErr != nil {
		return s.endErr
	}
	return err
}

// fakeAgent writes a stand-in for shoal that prints its arguments and echoes stdin.
func fakeAgent(t *testing.T) *install.Source {
	p := filepath.Join(t.TempDir(), "shoal")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho \"ARGS $*\"\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &install.Source{Self: p, HashCacheDir: t.TempDir()}
}

// TestReplicate installs the agent on a first contact, starts the installed one on the next,
// and checks that the agent then speaks on the shell's stdio.
func TestReplicate(t *testing.T) {
	home := t.TempDir()
	src := fakeAgent(t)
	bin, err := src.For(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(home, ".cache", "shoal", bin.Name())
	for i, installed := range []bool{true, false} {
		sh := newShell(t, home)
		info, err := Replicate(context.Background(), sh, src, Target{Name: "h", AgentArgs: []string{"x"}})
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		if info.Installed != installed || info.AgentPath != want || info.AgentHash != bin.Hash ||
			info.RemoteOS != runtime.GOOS || info.RemoteArch != runtime.GOARCH {
			t.Errorf("connect %d: %+v; want installed=%v at %s, hash %s, this platform", i, info, installed, want, bin.Hash)
		}
		if err := info.CheckHash(bin.Hash); err != nil {
			t.Errorf("connect %d: %v", i, err)
		}
		br := bufio.NewReader(sh.out)
		if line, _ := br.ReadString('\n'); line != "ARGS agent --state-dir "+filepath.Dir(want)+" x\n" {
			t.Errorf("connect %d: agent printed %q", i, line)
		}
		io.WriteString(sh.in, "ping\n")
		if line, _ := br.ReadString('\n'); line != "ping\n" {
			t.Errorf("connect %d: agent echoed %q; want ping", i, line)
		}
	}
}

// TestReplicateFailures checks the reason of each failure, and that the shell's command is ended.
func TestReplicateFailures(t *testing.T) {
	plain := errors.New("no session")
	mine := &Error{Reason: proto.ReasonConnRefused, Host: "h", Err: errors.New("ssh says no")}
	for _, tc := range []struct {
		name string
		src  *install.Source
		sh   func(*localShell)
		want proto.Reason
		ends bool // End is called
		is   error
	}{
		{name: "start fails", sh: func(s *localShell) { s.startErr = plain }, want: proto.ReasonInstallFailed, is: plain},
		{name: "the transport's start failure", sh: func(s *localShell) { s.startErr = mine }, want: proto.ReasonConnRefused, is: mine},
		{name: "no marker", sh: func(s *localShell) { s.command = "echo motd" }, want: proto.ReasonInstallFailed, ends: true, is: install.ErrNoMarker},
		{name: "the transport knows why", sh: func(s *localShell) { s.command = "exit 255"; s.endErr = mine }, want: proto.ReasonConnRefused, ends: true, is: mine},
		{name: "unknown platform", sh: func(s *localShell) { s.command = "echo 'SHOAL-MISSING Plan9 mips'; cat" }, want: proto.ReasonNoAgentBinary, ends: true},
		{name: "no binary", src: &install.Source{Self: filepath.Join(t.TempDir(), "gone"), PlatformDir: t.TempDir()},
			want: proto.ReasonNoAgentBinary, ends: true},
		{name: "host fails the upload", sh: func(s *localShell) { s.command = "echo SHOAL-MISSING $(uname -sm); read l; echo SHOAL-FAIL disk full" },
			want: proto.ReasonInstallFailed, ends: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := newShell(t, t.TempDir())
			if tc.sh != nil {
				tc.sh(sh)
			}
			src := tc.src
			if src == nil {
				src = fakeAgent(t)
			}
			_, err := Replicate(context.Background(), sh, src, Target{Name: "h", Reinstall: true})
			var te *Error
			if !errors.As(err, &te) || te.Reason != tc.want || te.Host != "h" {
				t.Fatalf("got %v (%v); want an *Error with reason %v for h", ReasonOf(err), err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v does not wrap %v", err, tc.is)
			}
			if ended := sh.ended != nil; ended != tc.ends {
				t.Errorf("End called: %v; want %v", ended, tc.ends)
			}
		})
	}
}

// TestReplicateTimeout checks that a host that never answers is aborted when the context ends,
// and that the failure is a timeout.
func TestReplicateTimeout(t *testing.T) {
	sh := newShell(t, t.TempDir())
	sh.command = "exec sleep 600"
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Replicate(ctx, sh, fakeAgent(t), Target{Name: "h"})
	if ReasonOf(err) != proto.ReasonConnectTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v (%v); want a timeout", ReasonOf(err), err)
	}
	select {
	case <-sh.aborted:
	default:
		t.Error("the shell was not aborted")
	}
	if sh.ended == nil {
		t.Error("the shell's command was not ended")
	}
}

func TestCheckHash(t *testing.T) {
	info := ConnInfo{AgentHash: "abcd", AgentPath: "/x"}
	if err := info.CheckHash("ABCD"); err != nil {
		t.Errorf("same hash: %v", err)
	}
	if err := info.CheckHash("ef"); !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), "/x") {
		t.Errorf("other hash: %v; want ErrHashMismatch naming /x", err)
	}
	if err := (ConnInfo{}).CheckHash("ef"); err != nil {
		t.Errorf("unknown hash: %v; want no check", err)
	}
}
