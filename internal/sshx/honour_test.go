package sshx

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// serveAgent serves kr on a Unix socket until the test ends and returns the socket's path.
func serveAgent(t *testing.T, kr agent.Agent) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
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
	return sock
}

// TestProxyCommand reaches a host through a ProxyCommand (OpenSSH's ssh -W through the same
// host), and checks that the command runs through the shell, is killed with the connection,
// and that a failing one is an error about the proxy.
func TestProxyCommand(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	h := f.Hosts[0]
	pidFile := filepath.Join(t.TempDir(), "proxy.pid")
	// The proxy records its pid, then becomes ssh -W to the host's address.
	proxy := fmt.Sprintf(`sh -c 'echo $$ > %s; exec ssh -F %s -W %%h:%%p %s'`, pidFile, f.SSHConfig, h.Name)
	cfg := hostConfig(t, f, "  IdentityFile "+f.ClientKey+"\n  ProxyCommand "+proxy+"\n")
	d := &Dialer{ConfigFile: cfg, AgentSocket: "none"}
	ctx := t.Context()
	c, err := d.Dial(ctx, h.Name, Override{})
	if err != nil {
		t.Fatalf("dial through ProxyCommand: %v", err)
	}
	out, err := c.Run(ctx, "echo ok", nil)
	if err != nil || string(out) != "ok\n" {
		t.Fatalf("run through ProxyCommand: %q, %v", out, err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the ProxyCommand did not run: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("the ProxyCommand (pid %d) still runs after Close", pid)
	}

	// The example: the proxy fails, and shoal must not dial HostName itself.
	cfg = hostConfig(t, f, "  IdentityFile "+f.ClientKey+"\n  ProxyCommand /bin/false\n")
	d = &Dialer{ConfigFile: cfg, AgentSocket: "none"}
	err = runTrue(t, d, h.Name)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), `ProxyCommand "/bin/false"`) {
		t.Errorf("failing ProxyCommand: got %v; want unreachable, naming the ProxyCommand", err)
	}
}

// TestHostKeyAliasAndGlobalKnownHosts checks that a host key is looked up under HostKeyAlias,
// and in GlobalKnownHostsFile after UserKnownHostsFile.
func TestHostKeyAliasAndGlobalKnownHosts(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	h := f.Hosts[0]
	dir := t.TempDir()
	aliasKH := filepath.Join(dir, "alias_known_hosts")
	os.WriteFile(aliasKH, []byte(knownhosts.Line([]string{"fleet-alias"}, h.HostKey)+"\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	base := fmt.Sprintf("Host %s\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  StrictHostKeyChecking yes\n",
		h.Name, h.Addr, h.Port, h.User, f.ClientKey)
	for _, tc := range []struct {
		name, extra string
		ok          bool
	}{
		{"alias", "  HostKeyAlias Fleet-Alias\n  UserKnownHostsFile " + aliasKH + "\n", true},
		{"no alias", "  UserKnownHostsFile " + aliasKH + "\n", false},
		{"global", "  UserKnownHostsFile " + empty + "\n  GlobalKnownHostsFile " + f.KnownHosts + "\n", true},
		{"global none", "  UserKnownHostsFile " + empty + "\n  GlobalKnownHostsFile none\n", false},
	} {
		p := filepath.Join(dir, "config-"+strings.ReplaceAll(tc.name, " ", "-"))
		os.WriteFile(p, []byte(base+tc.extra), 0o600)
		err := runTrue(t, &Dialer{ConfigFile: p, AgentSocket: "none"}, h.Name)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrHostKeyUnknown) {
			t.Errorf("%s: got %v; want ok=%v (else an unknown host key)", tc.name, err, tc.ok)
		}
	}
}

// TestIdentityAgent checks IdentityAgent: a path, SSH_AUTH_SOCK and none.
func TestIdentityAgent(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	raw, _ := os.ReadFile(f.ClientKey)
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	kr.Add(agent.AddedKey{PrivateKey: key})
	sock := serveAgent(t, kr)
	t.Setenv("SSH_AUTH_SOCK", sock)
	for _, tc := range []struct {
		agent string
		ok    bool
	}{
		{sock, true},
		{"SSH_AUTH_SOCK", true},
		{"$SSH_AUTH_SOCK", true},
		{"none", false},
		{filepath.Join(t.TempDir(), "no-agent-here"), false},
	} {
		cfg := hostConfig(t, f, "  IdentityFile /nonexistent\n  IdentityAgent "+tc.agent+"\n")
		err := runTrue(t, &Dialer{ConfigFile: cfg}, "h001")
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrAuth) {
			t.Errorf("IdentityAgent %s: got %v; want ok=%v (else an auth failure)", tc.agent, err, tc.ok)
		}
	}
}

// TestCertificateOnly logs in with a key sshd does not know, certified by a CA it trusts: from
// CertificateFile, from the identity's "-cert.pub", and from ssh-agent.
func TestCertificateOnly(t *testing.T) {
	dir := t.TempDir()
	caPub, caKey, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := ssh.NewSignerFromKey(caKey)
	caSSH, _ := ssh.NewPublicKey(caPub)
	caFile := filepath.Join(dir, "ca.pub")
	os.WriteFile(caFile, ssh.MarshalAuthorizedKey(caSSH), 0o644)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1, ExtraConfig: "TrustedUserCAKeys " + caFile + "\n"})
	h := f.Hosts[0]

	userPub, userKey, _ := ed25519.GenerateKey(rand.Reader)
	userSSH, _ := ssh.NewPublicKey(userPub)
	block, _ := ssh.MarshalPrivateKey(userKey, "")
	keyFile := filepath.Join(dir, "id_user")
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	cert := &ssh.Certificate{Key: userSSH, CertType: ssh.UserCert, KeyId: "test", ValidPrincipals: []string{h.User},
		ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}}}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "user-cert")
	os.WriteFile(certFile, ssh.MarshalAuthorizedKey(cert), 0o644)

	// The key alone is refused: only the certificate lets it in.
	if err := runTrue(t, &Dialer{ConfigFile: hostConfig(t, f, "  IdentityFile "+keyFile+"\n"), AgentSocket: "none"}, h.Name); !errors.Is(err, ErrAuth) {
		t.Fatalf("the bare key: got %v; want an auth failure", err)
	}
	cfg := hostConfig(t, f, "  IdentityFile "+keyFile+"\n  CertificateFile "+certFile+"\n")
	if err := runTrue(t, &Dialer{ConfigFile: cfg, AgentSocket: "none"}, h.Name); err != nil {
		t.Errorf("CertificateFile: %v", err)
	}
	os.WriteFile(keyFile+"-cert.pub", ssh.MarshalAuthorizedKey(cert), 0o644)
	if err := runTrue(t, &Dialer{ConfigFile: hostConfig(t, f, "  IdentityFile "+keyFile+"\n"), AgentSocket: "none"}, h.Name); err != nil {
		t.Errorf("the identity's -cert.pub: %v", err)
	}
	kr := agent.NewKeyring()
	kr.Add(agent.AddedKey{PrivateKey: userKey, Certificate: cert})
	sock := serveAgent(t, kr)
	if err := runTrue(t, &Dialer{ConfigFile: hostConfig(t, f, "  IdentityFile /nonexistent\n"), AgentSocket: sock}, h.Name); err != nil {
		t.Errorf("a certificate in ssh-agent: %v", err)
	}
}

// TestUnsupportedOption checks that an option the built-in client cannot honour is an error
// naming it, its file and line, and the openssh transport.
func TestUnsupportedOption(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("Host x\n  HostName 127.0.0.1\n  ControlMaster no\nHost *\n  ControlMaster auto\n  PKCS11Provider /usr/lib/p11.so\n"), 0o600)
	_, err := (&Dialer{ConfigFile: cfg, AgentSocket: "none"}).Dial(t.Context(), "y", Override{})
	want := cfg + ` line 5: controlmaster auto is not supported by shoal's built-in SSH client; set transport = "openssh"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v; want %q", err, want)
	}
	// ControlMaster no comes first for x, and is honoured: the next option is the problem.
	_, err = (&Dialer{ConfigFile: cfg, AgentSocket: "none"}).Dial(t.Context(), "x", Override{})
	if err == nil || !strings.Contains(err.Error(), "line 6: pkcs11provider") {
		t.Errorf("got %v; want PKCS11Provider on line 6", err)
	}
}

// bastionConfig writes an ssh_config naming bastion, a host of fleet b, and n aliases t001... of
// fleet a's first host behind it.
func bastionConfig(t *testing.T, a, b *shoaltest.Fleet, n int) string {
	t.Helper()
	bh, th := b.Hosts[0], a.Hosts[0]
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "Host bastion\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n",
		bh.Addr, bh.Port, bh.User, b.ClientKey, b.KnownHosts)
	fmt.Fprintf(&cfg, "Host t*\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n  ProxyJump bastion\n",
		th.Addr, th.Port, th.User, a.ClientKey, a.KnownHosts)
	cfg.WriteString("Host *\n  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n")
	p := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(p, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBastionShared dials many hosts at once through one stock sshd bastion (MaxStartups
// 10:30:100, which drops most of 64 connections at once): they share one connection to it.
func TestBastionShared(t *testing.T) {
	targets := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	bastions := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1, StockLimits: true})
	d := &Dialer{ConfigFile: bastionConfig(t, targets, bastions, 64), AgentSocket: "none"}
	const n = 64
	clients := make([]*Client, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[i], errs[i] = d.Dial(t.Context(), fmt.Sprintf("t%03d", i+1), Override{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("dialing %d hosts through one bastion: %v", n, err)
	}
	d.bmu.Lock()
	shared, refs := len(d.bastions), 0
	for _, b := range d.bastions {
		refs = b.refs
	}
	d.bmu.Unlock()
	if shared != 1 || refs != n {
		t.Errorf("%d bastion connections with %d references; want 1 with %d", shared, refs, n)
	}
	out, err := clients[n-1].Run(t.Context(), "echo ok", nil)
	if err != nil || string(out) != "ok\n" {
		t.Errorf("running through the shared bastion: %q, %v", out, err)
	}
	for _, c := range clients {
		c.Close()
	}
	d.bmu.Lock()
	left := len(d.bastions)
	d.bmu.Unlock()
	if left != 0 {
		t.Errorf("%d bastion connections left after every host closed", left)
	}
	// The next dial connects a new one.
	if err := runTrue(t, d, "t001"); err != nil {
		t.Errorf("dial after the bastion closed: %v", err)
	}
}

// TestSendEnvSetEnv checks that SendEnv's local variables and SetEnv's reach the command, on
// both Exec (the agent's stream) and Run.
func TestSendEnvSetEnv(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1, ExtraConfig: "AcceptEnv SHOALTEST_*\n"})
	t.Setenv("SHOALTEST_A", "ay")
	t.Setenv("SHOALTEST_NOT", "unsent")
	cfg := hostConfig(t, f, "  IdentityFile "+f.ClientKey+"\n  SendEnv SHOALTEST_A\n  SetEnv SHOALTEST_B=bee\n")
	d := &Dialer{ConfigFile: cfg, AgentSocket: "none"}
	c, err := d.Dial(t.Context(), "h001", Override{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const cmd = `echo "$SHOALTEST_A-$SHOALTEST_B-$SHOALTEST_NOT"`
	want := "ay-bee-\n"
	out, err := c.Run(t.Context(), cmd, nil)
	if err != nil || string(out) != want {
		t.Errorf("Run: %q, %v; want %q", out, err, want)
	}
	st, err := c.Exec(cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := make([]byte, 64)
	n, _ := io.ReadFull(st, b[:len(want)])
	if string(b[:n]) != want {
		t.Errorf("Exec: %q; want %q", b[:n], want)
	}
}

// TestForwardAgent checks ForwardAgent yes: the command on the host sees the local agent's
// key; without it, no agent.
func TestForwardAgent(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	raw, _ := os.ReadFile(f.ClientKey)
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	kr.Add(agent.AddedKey{PrivateKey: key, Comment: "forwarded-key"})
	sock := serveAgent(t, kr)
	for _, tc := range []struct {
		extra string
		want  bool
	}{
		{"  ForwardAgent yes\n", true},
		{"  ForwardAgent " + sock + "\n", true},
		{"", false},
	} {
		cfg := hostConfig(t, f, "  IdentityFile "+f.ClientKey+"\n"+tc.extra)
		c, err := (&Dialer{ConfigFile: cfg, AgentSocket: sock}).Dial(t.Context(), "h001", Override{})
		if err != nil {
			t.Fatal(err)
		}
		out, _ := c.Run(t.Context(), "ssh-add -l", nil)
		c.Close()
		if got := strings.Contains(string(out), "forwarded-key"); got != tc.want {
			t.Errorf("%q: ssh-add -l on the host says %q; want the key listed: %v", tc.extra, out, tc.want)
		}
	}
}

// TestAlgorithmOptions checks that KexAlgorithms and Ciphers limit what the client offers, and
// that a list of only algorithms it lacks is a configuration error naming the option.
func TestAlgorithmOptions(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1}) // its sshd offers curve25519 only
	for _, tc := range []struct {
		extra, want string // want: "" for success, else text of the error
	}{
		{"  KexAlgorithms curve25519-sha256\n  Ciphers aes256-gcm@openssh.com\n", ""},
		{"  KexAlgorithms ecdh-sha2-nistp256\n", "handshake"},
		{"  Ciphers 3des-cbc\n", "handshake"},
		{"  KexAlgorithms sntrup761x25519-sha512@openssh.com\n", "kexalgorithms sntrup761x25519-sha512@openssh.com names nothing"},
	} {
		cfg := hostConfig(t, f, "  IdentityFile "+f.ClientKey+"\n"+tc.extra)
		err := runTrue(t, &Dialer{ConfigFile: cfg, AgentSocket: "none"}, "h001")
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: got %v; want %q", tc.extra, err, tc.want)
		}
	}
}
