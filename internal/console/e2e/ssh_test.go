package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestConfigSSHMatchesSSHG runs `shoal config ssh` on configs of the sshx corpus and compares
// its output with the lines of the same keys `ssh -G` prints.
func TestConfigSSHMatchesSSHG(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("SKIPPING: no ssh binary to compare with")
	}
	corpus := filepath.Join("..", "..", "sshx", "testdata", "sshconfig")
	dir := t.TempDir()
	for _, tc := range []struct{ file, hosts string }{
		{"04-bastion-chain.conf", "target edge inner"},
		{"12-match-final.conf", "f1 f2"},
		{"19-tokens.conf", "t1 t2"},
		{"22-certificates.conf", "cert1"},
	} {
		file := filepath.Join(corpus, tc.file)
		hosts := strings.Fields(tc.hosts)
		out, errOut, code := shoal(t, dir, "", append([]string{"config", "ssh", "-F", file}, hosts...)...)
		if code != 0 {
			t.Fatalf("shoal config ssh -F %s %s: status %d\n%s", tc.file, tc.hosts, code, errOut)
		}
		keys := map[string]bool{}
		for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			k, _, _ := strings.Cut(line, " ")
			keys[k] = true
		}
		var want bytes.Buffer
		for _, h := range hosts {
			g, err := exec.Command("ssh", "-G", "-F", file, h).Output()
			if err != nil {
				t.Fatalf("ssh -G -F %s %s: %v", file, h, err)
			}
			for line := range strings.SplitSeq(string(g), "\n") {
				if k, _, _ := strings.Cut(line, " "); keys[k] {
					want.WriteString(line + "\n")
				}
			}
		}
		if out != want.String() {
			t.Errorf("shoal config ssh -F %s %s:\n%s\nwant (ssh -G):\n%s", tc.file, tc.hosts, out, want.String())
		}
	}
	// An unknown option is an error naming file and line.
	bad := filepath.Join(dir, "bad_config")
	os.WriteFile(bad, []byte("Host x\n  NoSuchOption 1\n"), 0o600)
	_, errOut, code := shoal(t, dir, "", "config", "ssh", "-F", bad, "x")
	if code != 1 || !strings.Contains(errOut, bad+" line 2: bad configuration option: nosuchoption") {
		t.Errorf("config ssh on a bad file: status %d, stderr %q", code, errOut)
	}
}

// shoalNoAgent is shoal without an ssh-agent, so only the keys a test names can log in.
func shoalNoAgent(t *testing.T, dir string, args ...string) (string, string, int, time.Duration) {
	t.Helper()
	requireConsole(t)
	cmd := exec.Command(shoaltest.Binary(t), args...)
	for _, kv := range env(dir) {
		if !strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running shoal %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code, took
}

// silentHost listens on a loopback address and accepts connections but never says a word, as a
// host whose sshd hangs does. It returns the port; the listener and connections close with t.
func silentHost(t *testing.T, addr string) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// TestSSHConnectTimeout checks that [ssh] connect_timeout and --connect-timeout end the wait for
// a host that accepts the connection and never speaks, rather than the 30 s of ssh_config's
// default.
func TestSSHConnectTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := silentHost(t, "127.0.55.1")
	sshConfig := filepath.Join(dir, "ssh_config")
	os.WriteFile(sshConfig, []byte(fmt.Sprintf("Host silent\n  HostName 127.0.55.1\n  Port %d\n", port)), 0o600)
	conf := func(timeout string) string {
		p := filepath.Join(dir, "c-"+timeout+".toml")
		os.WriteFile(p, []byte("[daemon]\nuse = false\n[ssh]\nssh_config = \""+sshConfig+"\"\nconnect_timeout = \""+timeout+"\"\n"), 0o600)
		return p
	}
	confOpenSSH := filepath.Join(dir, "openssh.toml")
	os.WriteFile(confOpenSSH, []byte("[daemon]\nuse = false\n[ssh]\nssh_config = \""+sshConfig+"\"\n"+
		"[[host]]\nname = \"silent\"\ntransport = \"openssh\"\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"--config", conf("2s")}, 2 * time.Second},
		{[]string{"--config", conf("60s"), "--connect-timeout", "2s"}, 2 * time.Second},
		// The ssh program gets --connect-timeout as ConnectTimeout.
		{[]string{"--config", confOpenSSH, "--connect-timeout", "2s"}, 2 * time.Second},
	} {
		out, errOut, code, took := shoalNoAgent(t, dir, append(tc.args, "run", "silent", "--", "true")...)
		// At least the timeout, and far below the next longer one a bug would give (10 s, 30 s,
		// 60 s): generous, since the machine may be loaded.
		if code != 255 || !strings.Contains(out+errOut, "timed out") || took < tc.want || took > 4*tc.want {
			t.Errorf("shoal %v: status %d after %v; want 255, timed out, after about %v\nstdout:\n%s\nstderr:\n%s",
				tc.args, code, took.Round(time.Millisecond), tc.want, out, errOut)
		}
	}
}

// TestSSHKeysOfShoal checks shoal's own [ssh] keys against a real sshd: known_hosts =
// "accept-new", known_hosts_file, identity_files and ssh_config = "none".
func TestSSHKeysOfShoal(t *testing.T) {
	t.Parallel()
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	h := f.Hosts[0]
	dir := t.TempDir()
	emptyKH := filepath.Join(dir, "empty_known_hosts")
	// An ssh_config that names the host but neither its key nor a known_hosts file with its key.
	bare := filepath.Join(dir, "bare_ssh_config")
	os.WriteFile(bare, []byte(fmt.Sprintf("Host %s\n  HostName %s\n  Port %d\n  User %s\n  IdentitiesOnly yes\n"+
		"  IdentityFile %s\n  UserKnownHostsFile %s\n  BatchMode yes\n", h.Name, h.Addr, h.Port, h.User, f.ClientKey, emptyKH)), 0o600)
	run := func(conf string) (string, int) {
		t.Helper()
		p := filepath.Join(dir, "config.toml")
		os.WriteFile(p, []byte("[daemon]\nuse = false\n"+conf), 0o600)
		out, errOut, code, _ := shoalNoAgent(t, dir, "--config", p, "run", h.Name, "--", "echo", "reached")
		return out + errOut, code
	}
	q := strconv.Quote

	// strict, the default: the unknown key is refused.
	if out, code := run("[ssh]\nssh_config = " + q(bare) + "\n"); code == 0 || !strings.Contains(out, "unknown") {
		t.Errorf("strict: status %d; want the unknown host key refused\n%s", code, out)
	}
	// accept-new: the key is recorded in ssh_config's UserKnownHostsFile and the host reached.
	if out, code := run("[ssh]\nssh_config = " + q(bare) + "\nknown_hosts = \"accept-new\"\n"); code != 0 || !strings.Contains(out, "reached") {
		t.Errorf("accept-new: status %d; want the host reached\n%s", code, out)
	}
	if b, _ := os.ReadFile(emptyKH); !strings.Contains(string(b), "ssh-ed25519") {
		t.Errorf("accept-new recorded no key in %s: %q", emptyKH, b)
	}
	os.Remove(emptyKH)
	// known_hosts_file: the fleet's known_hosts holds the key.
	if out, code := run("[ssh]\nssh_config = " + q(bare) + "\nknown_hosts_file = " + q(f.KnownHosts) + "\n"); code != 0 || !strings.Contains(out, "reached") {
		t.Errorf("known_hosts_file: status %d; want the host reached\n%s", code, out)
	}
	// ssh_config = "none" with identity_files, known_hosts_file and [[host]] for the rest: no
	// ssh_config is read, so the key and the known hosts come from shoal's own keys alone.
	conf := "[ssh]\nssh_config = \"none\"\nknown_hosts_file = " + q(f.KnownHosts) + "\nidentity_files = [" + q(f.ClientKey) + "]\n" +
		"[[host]]\nname = " + q(h.Name) + "\naddress = " + q(h.Addr) + "\nport = " + strconv.Itoa(h.Port) + "\nuser = " + q(h.User) + "\n"
	if out, code := run(conf); code != 0 || !strings.Contains(out, "reached") {
		t.Errorf("ssh_config none + identity_files: status %d; want the host reached\n%s", code, out)
	}
	// Without identity_files the same configuration has no key the host accepts.
	if out, code := run(strings.Replace(conf, "identity_files = ["+q(f.ClientKey)+"]\n", "", 1)); code == 0 {
		t.Errorf("ssh_config none without identity_files: reached the host with no key\n%s", out)
	}
}

// startDaemonCleanup stops, at the end of the test, the daemon a command of dir started: with
// `shoal daemon stop`, then by PID if it is still there.
func startDaemonCleanup(t *testing.T, dir, conf string) {
	t.Cleanup(func() {
		out, _, _, _ := shoalNoAgent(t, dir, "--config", conf, "daemon", "status")
		var pid int
		fmt.Sscanf(out, "pid %d,", &pid)
		shoalNoAgent(t, dir, "--config", conf, "daemon", "stop")
		if pid > 0 {
			deadline := time.Now().Add(10 * time.Second)
			for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// TestBastion200 runs a command through the daemon on 200 hosts behind one bastion whose sshd
// has OpenSSH's default MaxStartups (10:30:100): they share one connection to it, so none is
// dropped. The 200 hosts are aliases of one sshd, which is what the bastion forwards to.
func TestBastion200(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	targets := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1, SharedHome: true})
	bastions := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1, StockLimits: true})
	dir := t.TempDir()
	bh, th := bastions.Hosts[0], targets.Hosts[0]
	sshConfig := filepath.Join(dir, "ssh_config")
	os.WriteFile(sshConfig, []byte(fmt.Sprintf("Host bastion\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n"+
		"Host t*\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n  ProxyJump bastion\n"+
		"Host *\n  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n",
		bh.Addr, bh.Port, bh.User, bastions.ClientKey, bastions.KnownHosts,
		th.Addr, th.Port, th.User, targets.ClientKey, targets.KnownHosts)), 0o600)
	conf := filepath.Join(dir, "config.toml")
	os.WriteFile(conf, []byte("[ssh]\nssh_config = "+strconv.Quote(sshConfig)+"\nconnect_timeout = \"60s\"\n[[host]]\nname = \"t[001-200]\"\n"), 0o600)
	startDaemonCleanup(t, dir, conf)
	out, errOut, code, took := shoalNoAgent(t, dir, "--config", conf, "run", "t[001-200]", "--", "echo", "reached")
	if code != 0 || !strings.Contains(out, "t[001-200] (200)") {
		t.Fatalf("200 hosts behind a stock bastion: status %d after %v\nstdout:\n%s\nstderr:\n%s", code, took, out, errOut)
	}
	t.Logf("200 hosts through one bastion: %v", took.Round(time.Millisecond))
}

// TestSSHConfigThroughDaemon reaches, through the daemon, a host only its ProxyCommand reaches,
// a host that lets in only a certificate, and a host whose key is known only under its
// HostKeyAlias.
func TestSSHConfigThroughDaemon(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	dir := t.TempDir()
	caPub, caKey, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := ssh.NewSignerFromKey(caKey)
	caSSH, _ := ssh.NewPublicKey(caPub)
	caFile := filepath.Join(dir, "ca.pub")
	os.WriteFile(caFile, ssh.MarshalAuthorizedKey(caSSH), 0o644)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1, ExtraConfig: "TrustedUserCAKeys " + caFile + "\n"})
	h := f.Hosts[0]

	// A key sshd does not know, and a certificate for it.
	userPub, userKey, _ := ed25519.GenerateKey(rand.Reader)
	userSSH, _ := ssh.NewPublicKey(userPub)
	block, _ := ssh.MarshalPrivateKey(userKey, "")
	keyFile := filepath.Join(dir, "id_cert_only")
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	cert := &ssh.Certificate{Key: userSSH, CertType: ssh.UserCert, KeyId: "e2e", ValidPrincipals: []string{h.User},
		ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix())}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "cert_only.pub")
	os.WriteFile(certFile, ssh.MarshalAuthorizedKey(cert), 0o644)

	// Known hosts: the host's key under the unreachable name the proxied host has, under the
	// alias, and under its address for the certificate host.
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.9.9", strconv.Itoa(h.Port)))}, h.HostKey)+"\n"+
		knownhosts.Line([]string{"fleet-alias"}, h.HostKey)+"\n"+
		knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)))}, h.HostKey)+"\n"), 0o600)
	sshConfig := filepath.Join(dir, "ssh_config")
	os.WriteFile(sshConfig, []byte(fmt.Sprintf(`Host proxied
  HostName 127.0.9.9
  ProxyCommand ssh -F %s -W %s:%d %s
  IdentityFile %s
Host certified
  HostName %s
  IdentityFile %s
  CertificateFile %s
Host aliased
  HostName %s
  HostKeyAlias fleet-alias
  IdentityFile %s
Host *
  Port %d
  User %s
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  IdentitiesOnly yes
  BatchMode yes
`, f.SSHConfig, h.Addr, h.Port, h.Name, f.ClientKey, h.Addr, keyFile, certFile, h.Addr, f.ClientKey, h.Port, h.User, kh)), 0o600)
	conf := filepath.Join(dir, "config.toml")
	os.WriteFile(conf, []byte("[ssh]\nssh_config = "+strconv.Quote(sshConfig)+"\n"), 0o600)
	startDaemonCleanup(t, dir, conf)
	out, errOut, code, _ := shoalNoAgent(t, dir, "--config", conf, "run", "proxied,certified,aliased", "--", "echo", "reached")
	if code != 0 || !strings.Contains(out, "(3)") || !strings.Contains(out, "reached") {
		t.Errorf("status %d; want the three hosts reached\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestDaemonManyConfigurations runs one daemon for clients with different configurations: each
// reaches the host its own -F names, a changed file takes effect at the next request, status
// says which configuration each session came from, and --connect-timeout is the client's.
func TestDaemonManyConfigurations(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	h1, h2 := f.Hosts[0], f.Hosts[1]
	dir := t.TempDir()
	port := silentHost(t, "127.0.55.2")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	entry := func(h *shoaltest.FleetHost) string {
		return fmt.Sprintf("Host web\n  HostName %s\n  Port %d\n  User %s\nHost silent\n  HostName 127.0.55.2\n  Port %d\n"+
			"Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n",
			h.Addr, h.Port, h.User, port, f.ClientKey, f.KnownHosts)
	}
	sshA, sshB := write("ssh_config_a", entry(h1)), write("ssh_config_b", entry(h2))
	conf := write("config.toml", "")
	startDaemonCleanup(t, dir, conf)
	whoami := func(args ...string) string {
		t.Helper()
		out, errOut, code, _ := shoalNoAgent(t, dir, append(append([]string{"--config", conf}, args...), "run", "web", "--", "id", "-un")...)
		if code != 0 {
			t.Fatalf("shoal %v: status %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		}
		return out
	}
	if out := whoami("-F", sshA); !strings.Contains(out, h1.User) {
		t.Errorf("-F %s reached %q; want %s", sshA, out, h1.User)
	}
	if out := whoami("-F", sshB); !strings.Contains(out, h2.User) {
		t.Errorf("-F %s (second client, same daemon) reached %q; want %s", sshB, out, h2.User)
	}
	status, _, _, _ := shoalNoAgent(t, dir, "--config", conf, "daemon", "status")
	if strings.Count(status, "\nweb ") != 2 || !strings.Contains(status, "-F "+sshA) || !strings.Contains(status, "-F "+sshB) {
		t.Errorf("status does not show two sessions for web, one per configuration:\n%s", status)
	}
	// Point a's web at the second host: the next request goes there.
	write("ssh_config_a", entry(h2))
	if out := whoami("-F", sshA); !strings.Contains(out, h2.User) {
		t.Errorf("after editing %s, reached %q; want %s", sshA, out, h2.User)
	}
	// A [[host]] added to config.toml takes effect at once: it sends web to the first host.
	write("config.toml", fmt.Sprintf("[[host]]\nname = \"web\"\naddress = %q\nport = %d\nuser = %q\n", h1.Addr, h1.Port, h1.User))
	if out := whoami("-F", sshA); !strings.Contains(out, h1.User) {
		t.Errorf("after adding a [[host]] user, reached %q; want %s", out, h1.User)
	}
	out, _, _ := shoal(t, dir, "", "--config", conf, "daemon", "reload")
	if !strings.Contains(out, "again") {
		t.Errorf("daemon reload: %q", out)
	}
	// The daemon was started with no --connect-timeout: this client's bounds its request.
	out, errOut, code, took := shoalNoAgent(t, dir, "--config", conf, "-F", sshA, "--connect-timeout", "1s", "run", "silent", "--", "true")
	if code != 255 || took > 5*time.Second {
		t.Errorf("--connect-timeout 1s through the daemon: status %d after %v; want 255 after about 1s\n%s%s", code, took, out, errOut)
	}
}
