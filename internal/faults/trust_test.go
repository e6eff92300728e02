package faults_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

// runHelper is the test binary run as another user (SHOAL_FAULTS_HELPER=MODE:SOCKET):
// "listen" is a stranger's fake daemon, which prints how many bytes a client sent it;
// "hello" dials a daemon and prints its answer to a client hello.
func runHelper(v string) int {
	mode, sock, _ := strings.Cut(v, ":")
	switch mode {
	case "listen":
		os.MkdirAll(filepath.Dir(sock), 0o777)
		os.Chmod(filepath.Dir(sock), 0o777)
		ln, err := net.Listen("unix", sock)
		if err != nil {
			fmt.Println("listen:", err)
			return 1
		}
		os.Chmod(sock, 0o777)
		fmt.Println("ready")
		ln.(*net.UnixListener).SetDeadline(time.Now().Add(60 * time.Second))
		total := 0
		for {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			// The forged daemon would answer here; a client that trusts it has sent its
			// hello already.
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			total += int(n)
			fmt.Printf("got %d bytes\n", total)
		}
		return 0
	case "hello":
		c, err := net.DialTimeout("unix", sock, 10*time.Second)
		if err != nil {
			fmt.Println("dial:", err)
			return 1
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		pc := proto.NewConn(c, c, proto.ConnOptions{MaxFrame: 1 << 20})
		// A daemon that refuses this uid says so and closes at once, maybe before the hello is
		// written: the write then fails with EPIPE, but the refusal is still there to read.
		serr := pc.Send(0, proto.TypeClientHello, &proto.ClientHello{Protocol: proto.Version, Client: proto.ClientVersion,
			Program: "dev", PID: os.Getpid()})
		env, err := pc.Recv()
		if err != nil {
			fmt.Println("recv:", errors.Join(serr, err))
			return 1
		}
		var h proto.DaemonHello
		env.Decode(&h)
		fmt.Printf("daemon-hello pid %d err %q\n", h.PID, h.Err)
		return 0
	}
	return 2
}

// helperAs starts the test binary as uid:gid in helper mode, from a copy the user may run.
func helperAs(t *testing.T, dir string, uid, gid int, mode, sock string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	bin := filepath.Join(dir, "faults-helper")
	if _, err := os.Stat(bin); err != nil {
		b, err := os.ReadFile(os.Args[0])
		if err != nil || os.WriteFile(bin, b, 0o755) != nil {
			t.Fatalf("copying the test binary: %v", err)
		}
	}
	var cmd *exec.Cmd
	var out io.ReadCloser
	for try := 0; ; try++ { // ETXTBSY while a parallel test's fork holds the copy (see asOther)
		cmd = exec.Command(bin)
		cmd.Env = []string{"SHOAL_FAULTS_HELPER=" + mode + ":" + sock, "PATH=" + os.Getenv("PATH")}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, _ = cmd.StdoutPipe()
		err := cmd.Start()
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ETXTBSY) || try == 50 {
			t.Fatalf("starting the helper as uid %d: %v", uid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewReader(out)
}

// TestClientTrustsOnlyItsOwnDaemon gives root's client a runtime directory another user can
// write, where that user's fake daemon listens. The client must refuse before it sends a
// byte, naming the path and its owner, whether the stranger owns the socket directory, the
// socket is in a directory group or others may write, or the socket is ours by name but
// another user's process listens on it (SO_PEERCRED).
func TestClientTrustsOnlyItsOwnDaemon(t *testing.T) {
	t.Parallel()
	uid, gid := otherUser(t)
	h := newHome(t, localConfig(1, ""))
	os.Chmod(h.root, 0o755)
	run := filepath.Join(h.root, "run")
	os.Chmod(run, 0o1777) // a shared runtime directory, like /tmp
	dir := filepath.Dir(h.socket)

	fake := func() *bufio.Reader {
		t.Helper()
		_, out := helperAs(t, h.root, uid, gid, "listen", h.socket)
		if line, _ := out.ReadString('\n'); line != "ready\n" {
			t.Fatalf("fake daemon: %q", line)
		}
		return out
	}
	sent := func(out *bufio.Reader) string {
		// The fake daemon reports each connection when it ends (at most 5 s after the
		// client's connect); a client that never connected leaves nothing to read.
		done := make(chan string, 1)
		go func() { l, _ := out.ReadString('\n'); done <- strings.TrimSpace(l) }()
		select {
		case l := <-done:
			return l
		case <-time.After(8 * time.Second):
			return "no connection"
		}
	}
	check := func(name string, out *bufio.Reader, want ...string) {
		t.Helper()
		nBadInputs.Add(1)
		r := h.shoalIn(time.Minute, []byte("secret stdin\n"), "run", "lab1", "--", "echo", "forged")
		got := sent(out)
		t.Logf("%s: exit %d: %s; the fake daemon: %s", name, r.code, strings.TrimSpace(r.stderr), got)
		if r.code == 0 || strings.Contains(r.stdout, "ok") {
			t.Errorf("%s: root's client ran through a stranger's daemon: exit %d\n%s", name, r.code, r.stdout)
		}
		if got != "no connection" && got != "got 0 bytes" {
			t.Errorf("%s: the stranger's daemon received data: %s", name, got)
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: the refusal does not say %q:\n%s", name, w, r.stderr)
			}
		}
	}

	// 1. The stranger made the socket directory.
	out := fake()
	check("socket directory of uid "+strconv.Itoa(uid), out, dir, "belongs to uid "+strconv.Itoa(uid))
	os.RemoveAll(dir)

	// 2. Our directory, opened to everyone; the stranger's socket in it.
	os.Mkdir(dir, 0o700)
	os.Chmod(dir, 0o777)
	out = fake()
	check("world-writable socket directory", out, dir, "lets group or others write")
	os.RemoveAll(dir)

	// 3. Our private directory and a socket of ours by name, but the stranger's process
	// listens on it: the stranger's socket was moved in and chowned to root.
	os.Mkdir(dir, 0o700)
	elsewhere := filepath.Join(h.root, "other-run", "s.sock")
	os.MkdirAll(filepath.Dir(elsewhere), 0o777)
	os.Chmod(filepath.Dir(elsewhere), 0o777)
	_, out = helperAs(t, h.root, uid, gid, "listen", elsewhere)
	if line, _ := out.ReadString('\n'); line != "ready\n" {
		t.Fatalf("fake daemon: %q", line)
	}
	if err := os.Rename(elsewhere, h.socket); err != nil {
		t.Fatal(err)
	}
	os.Chown(h.socket, 0, 0)
	os.Chmod(h.socket, 0o600)
	check("socket of ours, listener of uid "+strconv.Itoa(uid), out, h.socket, "runs as uid "+strconv.Itoa(uid))

	// 4. The start lock in our directory belongs to the stranger.
	os.Remove(h.socket)
	lock := filepath.Join(dir, "start.lock")
	os.WriteFile(lock, nil, 0o600)
	os.Chown(lock, uid, gid)
	nBadInputs.Add(1)
	r := h.shoal(time.Minute, "run", "lab1", "--", "echo", "x")
	t.Logf("start lock of uid %d: exit %d: %s", uid, r.code, strings.TrimSpace(r.stderr))
	if r.code == 0 || !strings.Contains(r.stderr, lock) || !strings.Contains(r.stderr, "belongs to uid "+strconv.Itoa(uid)) {
		t.Errorf("a stranger's start lock was not refused: exit %d\n%s", r.code, r.stderr)
	}
	os.Remove(lock)

	// 5. The state file belongs to the stranger: the daemon refuses to start on it.
	os.MkdirAll(h.state, 0o700)
	sf := filepath.Join(h.state, "state.json")
	os.WriteFile(sf, []byte(`{"version":1,"hosts":{}}`), 0o600)
	os.Chown(sf, uid, gid)
	nBadInputs.Add(1)
	r = h.shoal(time.Minute, "run", "lab1", "--", "echo", "x")
	log, _ := os.ReadFile(filepath.Join(h.state, "daemon.log"))
	t.Logf("state file of uid %d: exit %d: %s; the daemon's log: %s", uid, r.code, strings.TrimSpace(r.stderr), strings.TrimSpace(string(log)))
	if r.code == 0 || !strings.Contains(r.stderr+string(log), "belongs to uid "+strconv.Itoa(uid)) {
		t.Errorf("a stranger's state file was not refused: exit %d\n%s", r.code, r.stderr)
	}
}
