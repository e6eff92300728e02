package shoaltest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/install"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is the OpenSSH server the fleet runs.
var SSHD = "/usr/sbin/sshd"

// FleetOptions configures StartFleet.
type FleetOptions struct {
	// N is the number of hosts (1 when 0).
	N int
	// SharedHome makes every host log in as one user with one home directory, as hosts sharing
	// an NFS home do. Otherwise each host has its own user (shoalt001, ...) and home.
	SharedHome bool
	// ServerDefaultKex lets sshd offer its default key exchanges (sntrup761x25519 first, ~100 ms
	// of CPU per connection); otherwise the fleet offers curve25519-sha256 only.
	ServerDefaultKex bool
	// ExtraConfig is appended to every sshd_config.
	ExtraConfig string
	// StockLimits leaves sshd's MaxStartups, MaxSessions and MaxAuthTries at OpenSSH's
	// defaults (10:30:100, 10, 6) instead of raising them, as a stock bastion has them.
	StockLimits bool
}

// FleetHost is one sshd of a fleet.
type FleetHost struct {
	Name    string // ssh_config alias: h001, h002, ...
	Addr    string // loopback address, 127.x.y.z
	Port    int
	User    string
	Home    string // $HOME of sessions on this host
	HostKey ssh.PublicKey
	Log     string // sshd's stderr

	f   *Fleet
	dir string
	cfg string

	// mu protects the following.
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// Fleet is N real sshd processes on loopback addresses, with a client key, known_hosts and an
// ssh_config naming them. Tests run as root create the test users they need (shoalt000 to
// shoaltNNN, kept between runs); every other file lives in Dir and is removed at cleanup.
type Fleet struct {
	Dir        string
	SSHConfig  string // Host hNNN entries plus identity, known_hosts and strict checking
	KnownHosts string
	ClientKey  string // private key file (ed25519, no passphrase); its .pub beside it
	Signer     ssh.Signer
	Hosts      []*FleetHost
	Options    FleetOptions
}

// AgentSource returns an install source whose binary for this machine's platform is the shoal
// binary built for the test (Binary), so transports install and start the real agent on the
// fleet. Build a transport on the fleet with, for example:
//
//	ssh.New(ssh.Options{Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"}, Source: f.AgentSource(t)})
//	openssh.New(openssh.Options{ConfigFile: f.SSHConfig, Source: f.AgentSource(t)})
//
// The package's TestMain must call Main.
func (f *Fleet) AgentSource(t testing.TB) *install.Source {
	t.Helper()
	return &install.Source{Self: Binary(t)}
}

// Names returns the aliases of the hosts.
func (f *Fleet) Names() []string {
	var n []string
	for _, h := range f.Hosts {
		n = append(n, h.Name)
	}
	return n
}

// fleetSkip fails the test in CI and skips it elsewhere, with the reason.
func fleetSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := "sshd fleet unavailable: " + fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// StartFleet starts a fleet for t and stops it (by PID, with every process its sshd started) when
// t ends. When sshd cannot run it fails the test if CI=true and skips it otherwise.
func StartFleet(t testing.TB, o FleetOptions) *Fleet {
	t.Helper()
	if o.N <= 0 {
		o.N = 1
	}
	if _, err := os.Stat(SSHD); err != nil {
		fleetSkip(t, "%v (install openssh-server)", err)
	}
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			fleetSkip(t, "creating /run/sshd: %v", err)
		}
	}
	dir, err := os.MkdirTemp("", "shoal-fleet-")
	if err != nil {
		t.Fatalf("creating fleet dir: %v", err)
	}
	f := &Fleet{Dir: dir, Options: o}
	t.Cleanup(func() {
		f.stopAll()
		os.RemoveAll(dir)
	})
	// Test users must reach their homes and the authorized keys below this directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.writeClient(); err != nil {
		t.Fatalf("writing fleet client files: %v", err)
	}
	users, err := fleetUsers(o)
	if err != nil {
		fleetSkip(t, "%v", err)
	}
	base := randomBase()
	var sharedHome string
	for i := 0; i < o.N; i++ {
		h := &FleetHost{
			Name: fmt.Sprintf("h%03d", i+1),
			Addr: fmt.Sprintf("127.%d.%d.%d", base[0], base[1]+(i+1)/250, (i+1)%250+1),
			User: users[i].Username,
			f:    f,
		}
		h.dir = filepath.Join(dir, h.Name)
		if err := os.Mkdir(h.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case o.SharedHome && sharedHome != "":
			h.Home = sharedHome
		default:
			h.Home = filepath.Join(h.dir, "home")
			if o.SharedHome {
				h.Home = filepath.Join(dir, "home")
				sharedHome = h.Home
			}
			if err := mkHome(h.Home, users[i]); err != nil {
				t.Fatalf("creating home of %s: %v", h.Name, err)
			}
		}
		if err := f.writeHost(h); err != nil {
			t.Fatalf("configuring %s: %v", h.Name, err)
		}
		f.Hosts = append(f.Hosts, h)
	}
	// Start every sshd at once, then wait for each port.
	var wg sync.WaitGroup
	errs := make([]error, len(f.Hosts))
	sem := make(chan struct{}, 32)
	for i, h := range f.Hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = h.startRetry()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fleetSkip(t, "starting sshd: %v", err)
	}
	if err := f.writeConfigs(); err != nil {
		t.Fatalf("writing fleet ssh_config: %v", err)
	}
	return f
}

// usersLockWait bounds the wait for another test process creating the fleet's test users.
const usersLockWait = 5 * time.Minute

// randomBase picks the second and third octets of the fleet's 127.x.y.z addresses, so fleets of
// concurrent test processes rarely collide (and a collision only costs a retry of the port).
func randomBase() [2]int {
	n, _ := rand.Int(rand.Reader, big.NewInt(200*200))
	v := int(n.Int64())
	return [2]int{20 + v/200, 10 + v%200}
}

// fleetUsers returns the accounts for o's hosts, creating test users when running as root.
func fleetUsers(o FleetOptions) ([]*user.User, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		us := make([]*user.User, o.N)
		for i := range us {
			us[i] = u
		}
		return us, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), usersLockWait)
	defer cancel()
	lock, err := fsutil.WaitLock(ctx, "/run/shoal-fleet-users.lock")
	if err != nil {
		return nil, fmt.Errorf("creating the fleet's test users: %w", err)
	}
	defer lock.Unlock()
	us := make([]*user.User, o.N)
	for i := range us {
		name := fmt.Sprintf("shoalt%03d", i+1)
		if o.SharedHome {
			name = "shoalt000"
		}
		if i > 0 && o.SharedHome {
			us[i] = us[0]
			continue
		}
		u, err := user.Lookup(name)
		if err != nil {
			out, err := exec.Command("useradd", "-m", "-s", "/bin/sh", "-p", "*", name).CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("useradd %s: %v: %s", name, err, out)
			}
			if u, err = user.Lookup(name); err != nil {
				return nil, err
			}
		}
		us[i] = u
	}
	return us, nil
}

func mkHome(home string, u *user.User) error {
	if err := os.Mkdir(home, 0o700); err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if os.Geteuid() == 0 {
		return os.Chown(home, uid, gid)
	}
	return nil
}

func genKey() (ed25519.PrivateKey, ssh.Signer, []byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, nil, err
	}
	return priv, s, pem.EncodeToMemory(blk), nil
}

func (f *Fleet) writeClient() error {
	cdir := filepath.Join(f.Dir, "client")
	if err := os.Mkdir(cdir, 0o700); err != nil {
		return err
	}
	_, s, pemb, err := genKey()
	if err != nil {
		return err
	}
	f.Signer = s
	f.ClientKey = filepath.Join(cdir, "id_ed25519")
	f.KnownHosts = filepath.Join(cdir, "known_hosts")
	f.SSHConfig = filepath.Join(cdir, "ssh_config")
	if err := os.WriteFile(f.ClientKey, pemb, 0o600); err != nil {
		return err
	}
	pub := ssh.MarshalAuthorizedKey(s.PublicKey())
	if err := os.WriteFile(f.ClientKey+".pub", pub, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(f.Dir, "authorized_keys"), pub, 0o644)
}

func (f *Fleet) writeHost(h *FleetHost) error {
	_, s, pemb, err := genKey()
	if err != nil {
		return err
	}
	h.HostKey = s.PublicKey()
	key := filepath.Join(h.dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(key, pemb, 0o600); err != nil {
		return err
	}
	h.Log = filepath.Join(h.dir, "sshd.log")
	h.cfg = filepath.Join(h.dir, "sshd_config")
	return nil
}

// sshdConfig returns h's sshd_config for port.
func (f *Fleet) sshdConfig(h *FleetHost, port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ListenAddress %s:%d\n", h.Addr, port)
	fmt.Fprintf(&b, "HostKey %s\n", filepath.Join(h.dir, "ssh_host_ed25519_key"))
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(f.Dir, "authorized_keys"))
	fmt.Fprintf(&b, "SetEnv HOME=%s\n", h.Home)
	b.WriteString("PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n" +
		"KbdInteractiveAuthentication no\nPermitRootLogin no\nPrintMotd no\nUseDNS no\nLogLevel ERROR\n")
	if !f.Options.StockLimits {
		b.WriteString("MaxStartups 2000:100:4000\nMaxSessions 1000\nMaxAuthTries 20\n")
	}
	if !f.Options.ServerDefaultKex {
		b.WriteString("KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n")
	}
	b.WriteString(f.Options.ExtraConfig)
	b.WriteString("\n")
	return b.String()
}

// writeConfigs writes the client's ssh_config and known_hosts. Odd hosts get hashed known_hosts
// entries, even hosts plain ones, so both forms are always exercised.
func (f *Fleet) writeConfigs() error {
	var cfg, kh strings.Builder
	for i, h := range f.Hosts {
		fmt.Fprintf(&cfg, "Host %s\n  HostName %s\n  Port %d\n  User %s\n", h.Name, h.Addr, h.Port, h.User)
		addr := knownhosts.Normalize(net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)))
		if i%2 == 0 {
			addr = knownhosts.HashHostname(addr)
		}
		kh.WriteString(knownhosts.Line([]string{addr}, h.HostKey) + "\n")
	}
	fmt.Fprintf(&cfg, "Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n"+
		"  StrictHostKeyChecking yes\n  ConnectTimeout 5\n  BatchMode yes\n  LogLevel ERROR\n",
		f.ClientKey, f.KnownHosts)
	if err := os.WriteFile(f.SSHConfig, []byte(cfg.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(f.KnownHosts, []byte(kh.String()), 0o644)
}

func randomPort() int {
	n, _ := rand.Int(rand.Reader, big.NewInt(30000))
	return 20000 + int(n.Int64())
}

// errPortTaken means sshd could not bind its address.
var errPortTaken = errors.New("address in use")

// startRetry starts h's sshd on a random port, trying other ports while the chosen one is taken.
func (h *FleetHost) startRetry() error {
	var err error
	for range 5 {
		h.Port = randomPort()
		if err = h.start(); !errors.Is(err, errPortTaken) {
			return err
		}
	}
	return err
}

// start starts h's sshd on h.Port and waits until the port answers.
func (h *FleetHost) start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd != nil {
		return nil
	}
	addr := net.JoinHostPort(h.Addr, strconv.Itoa(h.Port))
	// Make sure nobody listens there already, or the readiness dial below could reach them.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", h.Name, addr, errPortTaken)
	}
	l.Close()
	if err := os.WriteFile(h.cfg, []byte(h.f.sshdConfig(h, h.Port)), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(h.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", h.cfg)
	cmd.Stderr = logf
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	logf.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	h.cmd, h.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(h.Log)
			h.cmd = nil
			if strings.Contains(string(log), "Address already in use") || strings.Contains(string(log), "Cannot bind any address") {
				os.Truncate(h.Log, 0)
				return fmt.Errorf("%s: port %d: %w", h.Name, h.Port, errPortTaken)
			}
			return fmt.Errorf("%s: sshd exited: %s", h.Name, strings.TrimSpace(string(log)))
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			h.stopLocked()
			return fmt.Errorf("%s: sshd did not listen on %s within 10s", h.Name, addr)
		}
	}
}

// Stop stops h's sshd and every process it started (sessions, agents), by PID.
func (h *FleetHost) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopLocked()
}

// Start starts h's sshd again after Stop, on the same address and port.
func (h *FleetHost) Start() error { return h.start() }

// Freeze stops (SIGSTOP) h's sshd and every process below it, so the host accepts TCP but
// answers nothing: connections hang as on a host that froze or a network that drops packets.
func (h *FleetHost) Freeze() { h.signalAll(syscall.SIGSTOP) }

// Thaw resumes a host after Freeze.
func (h *FleetHost) Thaw() { h.signalAll(syscall.SIGCONT) }

func (h *FleetHost) signalAll(sig syscall.Signal) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return
	}
	h.cmd.Process.Signal(sig)
	// A process may be forking while we scan: repeat until a scan finds no new process.
	seen := map[int]bool{}
	for range 10 {
		fresh := 0
		for _, p := range descendants(h.cmd.Process.Pid) {
			if !seen[p] {
				seen[p] = true
				fresh++
				syscall.Kill(p, sig)
			}
		}
		if fresh == 0 {
			return
		}
	}
}

func (h *FleetHost) stopLocked() {
	if h.cmd == nil {
		return
	}
	pids := descendants(h.cmd.Process.Pid)
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.cmd.Process.Signal(syscall.SIGCONT) // in case it was frozen
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
	}
	h.cmd = nil
}

func (f *Fleet) stopAll() {
	var wg sync.WaitGroup
	for _, h := range f.Hosts {
		wg.Add(1)
		go func() { defer wg.Done(); h.Stop() }()
	}
	wg.Wait()
}

// descendants returns the PIDs of every process below pid, read from /proc.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces and parens; fields start after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 100000 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
