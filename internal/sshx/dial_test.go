package sshx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// hostConfig writes an ssh_config for the fleet's first host with extra lines and no identity.
func hostConfig(t *testing.T, f *shoaltest.Fleet, extra string) string {
	t.Helper()
	h := f.Hosts[0]
	p := filepath.Join(t.TempDir(), "config")
	cfg := fmt.Sprintf("Host %s\n  HostName %s\n  Port %d\n  User %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n%s",
		h.Name, h.Addr, h.Port, h.User, f.KnownHosts, extra)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runTrue(t *testing.T, d *Dialer, alias string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, alias, Override{})
	if err != nil {
		return err
	}
	defer c.Close()
	out, err := c.Run(ctx, "echo ok", nil)
	if err != nil || string(out) != "ok\n" {
		return fmt.Errorf("running echo: %q, %v", out, err)
	}
	return nil
}

func TestAgentAuth(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	raw, err := os.ReadFile(f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			agent.ServeAgent(kr, c)
			c.Close()
		}
	}()
	d := &Dialer{ConfigFile: hostConfig(t, f, "  IdentityFile /nonexistent\n"), AgentSocket: sock}
	if err := runTrue(t, d, "h001"); err != nil {
		t.Fatalf("with the key in ssh-agent: %v", err)
	}
	// IdentitiesOnly with no matching identity file keeps the agent's key out.
	d = &Dialer{ConfigFile: hostConfig(t, f, "  IdentityFile /nonexistent\n  IdentitiesOnly yes\n"), AgentSocket: sock}
	if err := runTrue(t, d, "h001"); !errors.Is(err, ErrAuth) {
		t.Fatalf("IdentitiesOnly: got %v; want ErrAuth", err)
	}
}

func TestPassphraseAskedOnce(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	// ssh-keygen with one KDF round: the default 16 bcrypt rounds cost seconds under -race.
	enc := filepath.Join(t.TempDir(), "id_enc")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-a", "1", "-N", "sesame", "-f", enc).CombinedOutput(); err != nil {
		t.Skipf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(enc + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(enc + ".pub") // the public key must come from the encrypted file itself
	ak, err := os.OpenFile(filepath.Join(f.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ak.Write(pub)
	ak.Close()
	var mu sync.Mutex
	asked := 0
	d := &Dialer{
		ConfigFile:  hostConfig(t, f, "  IdentityFile "+enc+"\n"),
		AgentSocket: "none",
		Prompt: func(p string) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			asked++
			if !strings.Contains(p, enc) {
				t.Errorf("prompt %q does not name the key", p)
			}
			return []byte("sesame"), nil
		},
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = runTrue(t, d, "h001") }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if asked != 1 {
		t.Errorf("passphrase asked %d times; want once", asked)
	}
	// A wrong passphrase is an authentication failure, asked once too.
	asked = 0
	d = &Dialer{ConfigFile: d.ConfigFile, AgentSocket: "none",
		Prompt: func(string) ([]byte, error) { asked++; return []byte("wrong"), nil }}
	if err := runTrue(t, d, "h001"); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong passphrase: got %v; want ErrAuth", err)
	}
	if err := runTrue(t, d, "h001"); !errors.Is(err, ErrAuth) || asked != 1 {
		t.Errorf("wrong passphrase again: got %v, asked %d times; want ErrAuth, once", err, asked)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	// A server that accepts and never speaks.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	p := filepath.Join(t.TempDir(), "config")
	os.WriteFile(p, []byte(fmt.Sprintf("Host silent\n  HostName 127.0.0.1\n  Port %d\n  ConnectTimeout 1\n  UserKnownHostsFile /dev/null\n", addr.Port)), 0o600)
	d := &Dialer{ConfigFile: p, AgentSocket: "none"}
	start := time.Now()
	_, err = d.Dial(context.Background(), "silent", Override{})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v; want ErrTimeout", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("timeout after %v; want about 1s", el)
	}
}

func TestHostKeyChangedNamesLine(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	kh, err := os.ReadFile(f.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(kh)), "\n")
	// known_hosts: a comment, then h001 (hashed) with h002's key.
	khp := filepath.Join(t.TempDir(), "known_hosts")
	h1 := f.Hosts[0]
	evil := strings.Fields(lines[0])[0] + " " + string(ssh.MarshalAuthorizedKey(f.Hosts[1].HostKey))
	os.WriteFile(khp, []byte("# test\n"+evil), 0o600)
	p := filepath.Join(t.TempDir(), "config")
	os.WriteFile(p, []byte(fmt.Sprintf("Host h001\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking accept-new\n",
		h1.Addr, h1.Port, h1.User, f.ClientKey, khp)), 0o600)
	d := &Dialer{ConfigFile: p, AgentSocket: "none"}
	err = runTrue(t, d, "h001")
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("got %v; want ErrHostKeyChanged even under accept-new", err)
	}
	if !strings.Contains(err.Error(), khp+":2") || !strings.Contains(err.Error(), "CHANGED") {
		t.Errorf("error %q does not name %s:2 loudly", err, khp)
	}
}

// TestServerAliveClosesFrozenHost checks that ServerAliveInterval notices a host that stopped
// answering and closes the connection, as ssh does after ServerAliveCountMax misses.
func TestServerAliveClosesFrozenHost(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	h := f.Hosts[0]
	p := filepath.Join(t.TempDir(), "config")
	os.WriteFile(p, []byte(fmt.Sprintf("Host h001\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
		h.Addr, h.Port, h.User, f.ClientKey, f.KnownHosts)), 0o600)
	d := &Dialer{ConfigFile: p, AgentSocket: "none"}
	c, err := d.Dial(context.Background(), "h001", Override{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h.Freeze()
	defer h.Thaw()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("connection to a frozen host still open after 20s with ServerAliveInterval 1")
	}
}

// TestAcceptNewHashed checks that accept-new writes a hashed line under HashKnownHosts, which a
// second, strict connection then accepts.
func TestAcceptNewHashed(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	h := f.Hosts[0]
	kh := filepath.Join(t.TempDir(), "ssh", "known_hosts") // the directory does not exist yet
	p := filepath.Join(t.TempDir(), "config")
	write := func(policy string) {
		os.WriteFile(p, []byte(fmt.Sprintf("Host h001\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking %s\n  HashKnownHosts yes\n",
			h.Addr, h.Port, h.User, f.ClientKey, kh, policy)), 0o600)
	}
	write("yes")
	if err := runTrue(t, &Dialer{ConfigFile: p, AgentSocket: "none"}, "h001"); !errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("strict, unknown: got %v; want ErrHostKeyUnknown", err)
	}
	write("accept-new")
	if err := runTrue(t, &Dialer{ConfigFile: p, AgentSocket: "none"}, "h001"); err != nil {
		t.Fatalf("accept-new: %v", err)
	}
	b, err := os.ReadFile(kh)
	if err != nil || !strings.HasPrefix(string(b), "|1|") || strings.Contains(string(b), h.Addr) {
		t.Fatalf("known_hosts after accept-new: %q, %v; want one hashed line", b, err)
	}
	write("yes")
	if err := runTrue(t, &Dialer{ConfigFile: p, AgentSocket: "none"}, "h001"); err != nil {
		t.Fatalf("strict after accept-new: %v", err)
	}
}
