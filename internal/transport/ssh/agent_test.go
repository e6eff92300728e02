package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/ssh"
	"go.uber.org/goleak"
)

// hello exchanges hellos with the agent on c and returns the agent's.
func hello(t testing.TB, pc *proto.Conn) *proto.Hello {
	t.Helper()
	if err := pc.Send(0, proto.TypeHello, &proto.Hello{Protocol: proto.Version, Role: "daemon"}); err != nil {
		t.Fatalf("sending hello: %v", err)
	}
	env, err := pc.Recv()
	if err != nil {
		t.Fatalf("reading agent hello: %v", err)
	}
	var h proto.Hello
	if env.Type != proto.TypeHello {
		t.Fatalf("first agent message is %v; want hello", env.Type)
	}
	if err := proto.Unmarshal(env.Body, &h); err != nil {
		t.Fatalf("decoding agent hello: %v", err)
	}
	return &h
}

// run executes cmd through the agent and returns its stdout and exit code.
func run(t testing.TB, pc *proto.Conn, id uint64, cmd string) (string, int) {
	t.Helper()
	if err := pc.Send(id, proto.TypeExec, &proto.Exec{Cmd: cmd}); err != nil {
		t.Fatalf("sending exec: %v", err)
	}
	var out bytes.Buffer
	for range 1000 {
		env, err := pc.Recv()
		if err != nil {
			t.Fatalf("reading agent reply: %v", err)
		}
		if env.ID != id {
			continue
		}
		switch env.Type {
		case proto.TypeOutput:
			var o proto.Output
			if err := proto.Unmarshal(env.Body, &o); err != nil {
				t.Fatal(err)
			}
			if o.Stream == proto.Stdout {
				out.Write(o.Data)
			}
		case proto.TypeExit:
			var x proto.Exit
			if err := proto.Unmarshal(env.Body, &x); err != nil {
				t.Fatal(err)
			}
			pc.Send(id, proto.TypeAck, nil)
			return out.String(), x.Code
		}
	}
	t.Fatalf("no exit for %q", cmd)
	return "", 0
}

func newTransport(f *shoaltest.Fleet, bin string) *ssh.Transport {
	return ssh.New(ssh.Options{
		Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"},
		Source: &install.Source{Self: bin},
	})
}

// TestRealAgent installs the real shoal binary, runs a command through it, then tampers with
// the installed binary and checks that the hello hash catches it and a reinstall repairs it.
func TestRealAgent(t *testing.T) {
	bin := shoaltest.Binary(t)
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	tr := newTransport(f, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tg := transport.Target{Name: f.Hosts[0].Name}

	c, err := tr.Connect(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	pc := proto.NewConn(c, c, proto.ConnOptions{ReadBufferSize: 4096})
	if err := c.Info().CheckHash(hello(t, pc).BinarySHA256); err != nil {
		t.Fatalf("fresh install: %v", err)
	}
	if out, code := run(t, pc, 1, "echo hi; exit 3"); out != "hi\n" || code != 3 {
		t.Errorf("exec: got %q, exit %d; want hi, exit 3", out, code)
	}
	path := c.Info().AgentPath
	c.Close()

	// Tamper: a different binary (the real one plus a byte) at the installed path.
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	// The old agent may still be finishing, so replace the file rather than write into it.
	if err := os.WriteFile(path+".tmp", append(b, 0), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		os.Chown(path+".tmp", int(sys.Uid), int(sys.Gid))
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	c, err = tr.Connect(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	pc = proto.NewConn(c, c, proto.ConnOptions{ReadBufferSize: 4096})
	err = c.Info().CheckHash(hello(t, pc).BinarySHA256)
	c.Close()
	if !errors.Is(err, transport.ErrHashMismatch) {
		t.Fatalf("tampered agent: got %v; want ErrHashMismatch", err)
	}
	tg.Reinstall = true
	c, err = tr.Connect(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc = proto.NewConn(c, c, proto.ConnOptions{ReadBufferSize: 4096})
	if err := c.Info().CheckHash(hello(t, pc).BinarySHA256); err != nil || !c.Info().Installed {
		t.Fatalf("after reinstall: %v (installed=%v)", err, c.Info().Installed)
	}
}

// TestSharedHomeConcurrentInstall has 20 hosts sharing one home install the agent at once: every
// agent must start and report the right hash, and no temp file may be left.
func TestSharedHomeConcurrentInstall(t *testing.T) {
	bin := shoaltest.Binary(t)
	const n = 20
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: n, SharedHome: true})
	tr := newTransport(f, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	installed := make([]bool, n)
	for i, h := range f.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tr.Connect(ctx, transport.Target{Name: h.Name})
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			installed[i] = c.Info().Installed
			pc := proto.NewConn(c, c, proto.ConnOptions{ReadBufferSize: 4096})
			if err := pc.Send(0, proto.TypeHello, &proto.Hello{Protocol: proto.Version}); err != nil {
				errs[i] = err
				return
			}
			env, err := pc.Recv()
			if err != nil {
				errs[i] = fmt.Errorf("%s: reading hello: %w", h.Name, err)
				return
			}
			var hl proto.Hello
			if err := proto.Unmarshal(env.Body, &hl); err != nil {
				errs[i] = err
				return
			}
			if err := c.Info().CheckHash(hl.BinarySHA256); err != nil {
				errs[i] = fmt.Errorf("%s: %w", h.Name, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	dir := f.Hosts[0].Home + "/.cache/shoal"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		// .hash-agent-*: the agents' record of their binary's hash (agent.InstalledHash).
		if e.Name()[0] == '.' && !strings.HasPrefix(e.Name(), ".hash-") {
			names = append(names, e.Name())
		}
	}
	if len(names) > 0 {
		t.Errorf("temp files left in the shared install dir: %v", names)
	}
	// shoaltest.Binary is built like a release: it carries the agent-only build, and that,
	// not all of shoal, is what the hosts get.
	emb, ok, err := install.ReadEmbedded(bin)
	if err != nil || !ok {
		t.Fatalf("the test binary carries no agent-only build: %v", err)
	}
	want := emb.Hash
	hash, size, err := install.HashFile(dir + "/agent-" + want[:16])
	if err != nil || hash != want || size != emb.Size {
		t.Errorf("installed agent hash %s (%d bytes), %v; want the agent-only build, %s (%d bytes)", hash, size, err, want, emb.Size)
	}
	n1 := 0
	for _, ok := range installed {
		if ok {
			n1++
		}
	}
	t.Logf("%d of %d connections uploaded the agent", n1, n)
}
