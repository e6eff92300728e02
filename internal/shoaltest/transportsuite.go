package shoaltest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
	"golang.org/x/crypto/ssh/knownhosts"
)

// FakeAgent writes a stand-in for `shoal agent` to dir and returns its path: a shell script that
// prints "HELLO <sha256 of itself> <its arguments>" and then echoes stdin to stdout. Transport
// tests use it to check installation without depending on the real agent. version changes the
// content, and so the hash.
func FakeAgent(t testing.TB, dir, version string) string {
	t.Helper()
	p := filepath.Join(dir, "fake-agent-"+version)
	script := "#!/bin/sh\n# shoal fake agent " + version + "\n" +
		"h=$(sha256sum \"$0\" | cut -c1-64)\necho \"HELLO $h $*\"\nexec cat\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// FakeHello reads the first line of a fake agent and returns the hash and arguments it reported.
func FakeHello(r *bufio.Reader) (hash string, args []string, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", nil, fmt.Errorf("reading fake agent hello: %w (got %q)", err, line)
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "HELLO" {
		return "", nil, fmt.Errorf("bad fake agent hello %q", line)
	}
	return f[1], f[2:], nil
}

// SuiteEnv is what a transport under test is built from.
type SuiteEnv struct {
	Fleet *Fleet
	// SSHConfig is the ssh_config file the transport must use (the fleet's or a test's variant).
	SSHConfig string
	Source    *install.Source
}

// TransportSuite runs the conformance tests every SSH transport passes against a real fleet.
// mk builds the transport for one environment.
func TransportSuite(t *testing.T, mk func(t *testing.T, e SuiteEnv) transport.Transport) {
	f := StartFleet(t, FleetOptions{N: 3})
	bindir := t.TempDir()
	v1 := &install.Source{Self: FakeAgent(t, bindir, "v1")}
	env := SuiteEnv{Fleet: f, SSHConfig: f.SSHConfig, Source: v1}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	connect := func(t *testing.T, tr transport.Transport, tg transport.Target) (transport.Conn, *bufio.Reader, string) {
		t.Helper()
		c, err := tr.Connect(ctx, tg)
		if err != nil {
			t.Fatalf("connecting to %s: %v", tg.Name, err)
		}
		t.Cleanup(func() { c.Close() })
		br := bufio.NewReader(c)
		hash, args, err := FakeHello(br)
		if err != nil {
			t.Fatal(err)
		}
		wantArgs := append([]string{"agent", "--state-dir"}, "X")
		if len(args) < 3 || args[0] != wantArgs[0] || args[1] != wantArgs[1] {
			t.Errorf("agent args: got %q; want agent --state-dir DIR ...", args)
		}
		return c, br, hash
	}
	echo := func(t *testing.T, c transport.Conn, br *bufio.Reader) {
		t.Helper()
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			t.Fatalf("writing to agent: %v", err)
		}
		line, err := br.ReadString('\n')
		if err != nil || line != "ping\n" {
			t.Fatalf("echo through agent: got %q, %v; want ping", line, err)
		}
	}
	h1 := f.Hosts[0]
	installed := filepath.Join(h1.Home, ".cache", "shoal", "agent-")

	t.Run("FirstContactInstalls", func(t *testing.T) {
		tr := mk(t, env)
		c, br, hash := connect(t, tr, transport.Target{Name: h1.Name, AgentArgs: []string{"--x", "a b"}})
		info := c.Info()
		b, _ := v1.For(info.RemoteOS, info.RemoteArch)
		if !info.Installed || info.AgentHash != b.Hash || hash != b.Hash {
			t.Errorf("info %+v, agent hash %s; want installed with hash %s", info, hash, b.Hash)
		}
		if info.AgentPath != installed+b.Hash[:16] {
			t.Errorf("agent path %q; want %q", info.AgentPath, installed+b.Hash[:16])
		}
		if info.RemoteOS == "" || info.RemoteArch == "" {
			t.Errorf("remote platform unknown: %+v", info)
		}
		echo(t, c, br)
		out, err := c.Side(ctx, "echo side; id -un")
		if err != nil || string(out) != "side\n"+h1.User+"\n" {
			t.Errorf("Side: got %q, %v", out, err)
		}
		st, err := os.Stat(filepath.Dir(info.AgentPath))
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("install dir mode: %v %v; want 0700", st.Mode(), err)
		}
	})

	t.Run("SecondConnectReuses", func(t *testing.T) {
		tr := mk(t, env)
		b, _ := v1.For(hostPlatform())
		before, err := os.Stat(installed + b.Hash[:16])
		if err != nil {
			t.Fatalf("agent not installed by the previous test: %v", err)
		}
		c, br, _ := connect(t, tr, transport.Target{Name: h1.Name})
		if c.Info().Installed {
			t.Errorf("second connect uploaded the agent again")
		}
		after, _ := os.Stat(installed + b.Hash[:16])
		if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
			t.Errorf("agent file replaced on second connect")
		}
		echo(t, c, br)
	})

	t.Run("ChangedBinaryReinstalls", func(t *testing.T) {
		e := env
		e.Source = &install.Source{Self: FakeAgent(t, bindir, "v2")}
		tr := mk(t, e)
		c, _, hash := connect(t, tr, transport.Target{Name: h1.Name})
		b, _ := e.Source.For(hostPlatform())
		if !c.Info().Installed || hash != b.Hash {
			t.Errorf("new binary: installed=%v hash %s; want installed %s", c.Info().Installed, hash, b.Hash)
		}
	})

	t.Run("TamperedAgentReplaced", func(t *testing.T) {
		tr := mk(t, env)
		b, _ := v1.For(hostPlatform())
		path := installed + b.Hash[:16]
		evil := "#!/bin/sh\necho \"HELLO 0000000000000000000000000000000000000000000000000000000000000000 $*\"\nexec cat\n"
		if err := os.WriteFile(path, []byte(evil), 0o700); err != nil {
			t.Fatal(err)
		}
		c, _, hash := connect(t, tr, transport.Target{Name: h1.Name})
		err := c.Info().CheckHash(hash)
		if !errors.Is(err, transport.ErrHashMismatch) {
			t.Fatalf("CheckHash of tampered agent: got %v; want ErrHashMismatch", err)
		}
		c.Close()
		c, _, hash = connect(t, tr, transport.Target{Name: h1.Name, Reinstall: true})
		if err := c.Info().CheckHash(hash); err != nil || !c.Info().Installed {
			t.Errorf("after reinstall: %v, installed=%v", err, c.Info().Installed)
		}
	})

	t.Run("NoBinaryForPlatform", func(t *testing.T) {
		e := env
		e.Source = &install.Source{Self: filepath.Join(bindir, "missing"), PlatformDir: t.TempDir()}
		tr := mk(t, e)
		_, err := tr.Connect(ctx, transport.Target{Name: f.Hosts[1].Name, Reinstall: true})
		if k := transport.ReasonOf(err); k != proto.ReasonNoAgentBinary {
			t.Fatalf("got %v (%v); want no agent binary", k, err)
		}
		goos, goarch := hostPlatform()
		if !strings.Contains(err.Error(), goos+"/"+goarch) || !strings.Contains(err.Error(), e.Source.PlatformDir) {
			t.Errorf("error %q does not name the platform and the directory", err)
		}
	})

	t.Run("HostKeyChangedRefused", func(t *testing.T) {
		e := env
		e.SSHConfig = f.variant(t, "kh-changed", func(kh []string) []string {
			// Give h002 the host key of h003.
			h := f.Hosts[1]
			addr := knownhosts.Normalize(net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)))
			kh[1] = knownhosts.Line([]string{addr}, f.Hosts[2].HostKey)
			return kh
		}, "")
		tr := mk(t, e)
		_, err := tr.Connect(ctx, transport.Target{Name: f.Hosts[1].Name})
		if k := transport.ReasonOf(err); k != proto.ReasonHostKeyChanged {
			t.Fatalf("got %v (%v); want host key changed", k, err)
		}
		if !strings.Contains(err.Error(), "known_hosts") {
			t.Errorf("error does not name the known_hosts file: %v", err)
		}
	})

	t.Run("UnknownHostStrict", func(t *testing.T) {
		e := env
		e.SSHConfig = f.variant(t, "kh-empty", func([]string) []string { return nil }, "")
		tr := mk(t, e)
		_, err := tr.Connect(ctx, transport.Target{Name: f.Hosts[1].Name})
		if k := transport.ReasonOf(err); k != proto.ReasonHostKeyUnknown {
			t.Fatalf("got %v (%v); want host key unknown", k, err)
		}
	})

	t.Run("UnknownHostAcceptNew", func(t *testing.T) {
		e := env
		e.SSHConfig = f.variant(t, "kh-accept", func([]string) []string { return nil }, "StrictHostKeyChecking accept-new")
		tr := mk(t, e)
		c, err := tr.Connect(ctx, transport.Target{Name: f.Hosts[1].Name})
		if err != nil {
			t.Fatalf("accept-new: %v", err)
		}
		c.Close()
		kh, _ := os.ReadFile(filepath.Join(filepath.Dir(e.SSHConfig), "known_hosts"))
		if !strings.Contains(string(kh), f.Hosts[1].Addr) {
			t.Errorf("accept-new did not record the key: %q", kh)
		}
	})

	t.Run("AuthFailed", func(t *testing.T) {
		e := env
		other := FakeAgent(t, t.TempDir(), "unused") // any file that is not a key
		e.SSHConfig = f.variant(t, "auth", nil, "IdentityFile "+other)
		// The variant's Host * IdentityFile comes after ours; IdentitiesOnly keeps the agent out.
		e.SSHConfig = f.variantNoKey(t, e.SSHConfig)
		tr := mk(t, e)
		_, err := tr.Connect(ctx, transport.Target{Name: f.Hosts[1].Name})
		if k := transport.ReasonOf(err); k != proto.ReasonAuthFailed {
			t.Fatalf("got %v (%v); want auth failed", k, err)
		}
	})

	t.Run("StoppedHostRefused", func(t *testing.T) {
		h := f.Hosts[2]
		h.Stop()
		defer func() {
			if err := h.Start(); err != nil {
				t.Errorf("restarting %s: %v", h.Name, err)
			}
		}()
		tr := mk(t, env)
		start := time.Now()
		_, err := tr.Connect(ctx, transport.Target{Name: h.Name})
		if k := transport.ReasonOf(err); k != proto.ReasonConnRefused {
			t.Fatalf("got %v (%v); want refused", k, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("refusal took %v, more than the 5s connect timeout", d)
		}
	})

	t.Run("TargetOverrides", func(t *testing.T) {
		// A name ssh_config does not know, reached through the target's address, port and user.
		h := f.Hosts[1]
		tr := mk(t, env)
		c, _, _ := connect(t, tr, transport.Target{Name: h.Addr, Port: h.Port, User: h.User})
		out, err := c.Side(ctx, "id -un")
		if err != nil || strings.TrimSpace(string(out)) != h.User {
			t.Errorf("Side as %s: got %q, %v", h.User, out, err)
		}
	})

	t.Run("FrozenHostTimesOut", func(t *testing.T) {
		h := f.Hosts[2]
		h.Freeze()
		defer h.Thaw()
		tr := mk(t, env)
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		defer ccancel()
		start := time.Now()
		_, err := tr.Connect(cctx, transport.Target{Name: h.Name})
		if k := transport.ReasonOf(err); k != proto.ReasonConnectTimeout {
			t.Fatalf("got %v (%v); want timeout", k, err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("timeout after %v; want about 1s", d)
		}
	})

	t.Run("ProxyJump", func(t *testing.T) {
		e := env
		h2 := f.Hosts[1]
		e.SSHConfig = f.variant(t, "jump", nil, "")
		appendFile(t, e.SSHConfig, fmt.Sprintf("Host jumped\n  HostName %s\n  Port %d\n  User %s\n  ProxyJump %s\n",
			h2.Addr, h2.Port, h2.User, f.Hosts[0].Name), true)
		tr := mk(t, e)
		c, _, _ := connect(t, tr, transport.Target{Name: "jumped"})
		out, err := c.Side(ctx, "echo $HOME")
		if err != nil || strings.TrimSpace(string(out)) != h2.Home {
			t.Errorf("through the jump host: got %q, %v; want %s", out, err, h2.Home)
		}
	})

	t.Run("ConcurrentConnects", func(t *testing.T) {
		tr := mk(t, env)
		var wg sync.WaitGroup
		errs := make([]error, len(f.Hosts)*2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := tr.Connect(ctx, transport.Target{Name: f.Hosts[i%len(f.Hosts)].Name})
				if err == nil {
					_, _, err = FakeHello(bufio.NewReader(c))
					c.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	})
}

// hostPlatform returns this machine's platform, which the fleet's hosts share.
func hostPlatform() (string, string) {
	goos, goarch, _ := install.Platform(unameSM())
	return goos, goarch
}

func appendFile(t testing.TB, path, text string, prepend bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if prepend {
		b = append([]byte(text), b...)
	} else {
		b = append(b, text...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// variant writes a copy of the fleet's client set-up under name: known_hosts lines passed through
// edit (nil keeps them), and extra lines put in a leading "Host *" block so they take precedence.
// It returns the new ssh_config's path.
func (f *Fleet) variant(t testing.TB, name string, edit func([]string) []string, extra string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	kh, err := os.ReadFile(f.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(kh)), "\n")
	if edit != nil {
		lines = edit(lines)
	}
	khPath := filepath.Join(dir, "known_hosts")
	text := strings.Join(lines, "\n")
	if text != "" {
		text += "\n"
	}
	if err := os.WriteFile(khPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(f.SSHConfig)
	if err != nil {
		t.Fatal(err)
	}
	head := "Host *\n  UserKnownHostsFile " + khPath + "\n"
	if extra != "" {
		head += "  " + extra + "\n"
	}
	p := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(p, append([]byte(head), cfg...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// variantNoKey drops the fleet's IdentityFile line from the config at path.
func (f *Fleet) variantNoKey(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "  IdentityFile "+f.ClientKey+"\n", "", 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
