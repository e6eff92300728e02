package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// fleetPort is the TCP port every bench sshd listens on, each on its own loopback address.
const fleetPort = 22022

// fleet is a set of sshd processes on loopback addresses, one per simulated host.
//
// Each sshd runs in its own mount namespace with its host directory bound over /root,
// so every host has its own home (agent installs and pushed files do not collide).
type fleet struct {
	dir        string // fleet directory: keys, configs, logs, host homes
	n          int
	sshConfig  string
	knownHosts string
	clientKey  string
	pidFile    string // PIDs of the sshd listeners, for bench/run's trap

	mu    sync.Mutex // mu protects the following
	procs []*proc
	nss   map[string]bool // mount namespaces of the listeners ("mnt:[4026...]")
}

// hostName returns the name of host i (1-based): h001, h002, ...
func hostName(i int) string { return fmt.Sprintf("h%03d", i) }

// hostAddr returns the loopback address of host i (1-based).
func hostAddr(i int) string { return fmt.Sprintf("127.%d.%d.%d", fleetNet, (i-1)/200, (i-1)%200+1) }

// fleetNet is the second byte of the fleet's loopback addresses (-net): two fleets on one
// machine, say a benchmark run and a hand-held one, need different ones.
var fleetNet = 77

// hostRange returns the pdsh/clush expression for hosts 1..n.
func hostRange(n int) string { return fmt.Sprintf("h[001-%03d]", n) }

// homeDir returns the directory bound over /root for host i.
func (f *fleet) homeDir(i int) string { return filepath.Join(f.dir, "hosts", hostName(i), "home") }

// startFleet generates keys and configs for n hosts and starts their sshd.
func startFleet(ctx context.Context, dir string, n int, logf func(string, ...any)) (*fleet, error) {
	f := &fleet{dir: dir, n: n, nss: map[string]bool{},
		sshConfig:  filepath.Join(dir, "ssh_config"),
		knownHosts: filepath.Join(dir, "known_hosts"),
		clientKey:  filepath.Join(dir, "client_key"),
		pidFile:    filepath.Join(dir, "pids"),
	}
	if err := os.MkdirAll(filepath.Join(dir, "hosts"), 0o755); err != nil {
		return nil, fmt.Errorf("making fleet directory: %w", err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("making /run/sshd: %w", err)
	}
	if err := keygen(f.clientKey, "bench-client"); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(f.clientKey + ".pub")
	if err != nil {
		return nil, fmt.Errorf("reading client key: %w", err)
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o600); err != nil {
		return nil, fmt.Errorf("writing authorized_keys: %w", err)
	}

	// Host keys, in parallel (ssh-keygen is a process each).
	logf("fleet: generating %d host keys", n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			hd := filepath.Join(dir, "hosts", hostName(i))
			if err := os.MkdirAll(filepath.Join(hd, "home"), 0o700); err != nil {
				errs <- err
				return
			}
			if err := keygen(filepath.Join(hd, "ssh_host_ed25519_key"), hostName(i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, fmt.Errorf("preparing hosts: %w", err)
	}

	var kh, sc strings.Builder
	sc.WriteString("# ssh_config of the bench fleet, shared by every tool.\n")
	for i := 1; i <= n; i++ {
		hd := filepath.Join(dir, "hosts", hostName(i))
		hpub, err := os.ReadFile(filepath.Join(hd, "ssh_host_ed25519_key.pub"))
		if err != nil {
			return nil, fmt.Errorf("reading host key: %w", err)
		}
		fields := strings.Fields(string(hpub))
		fmt.Fprintf(&kh, "%s,[%s]:%d %s %s\n", hostName(i), hostAddr(i), fleetPort, fields[0], fields[1])
		fmt.Fprintf(&sc, "Host %s\n  HostName %s\n", hostName(i), hostAddr(i))
		cfg := fmt.Sprintf(`ListenAddress %s:%d
HostKey %s
HostKeyAlgorithms ssh-ed25519
KexAlgorithms curve25519-sha256
Ciphers aes128-gcm@openssh.com
PidFile none
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 2000:30:4000
MaxSessions 1000
LoginGraceTime 60
PrintMotd no
PrintLastLog no
SetEnv BENCH_HOST=%s
Subsystem sftp internal-sftp
LogLevel DEBUG1
`, hostAddr(i), fleetPort, filepath.Join(hd, "ssh_host_ed25519_key"), authKeys, hostName(i))
		if err := os.WriteFile(filepath.Join(hd, "sshd_config"), []byte(cfg), 0o600); err != nil {
			return nil, fmt.Errorf("writing sshd_config: %w", err)
		}
	}
	fmt.Fprintf(&sc, `Host h*
  Port %d
  User root
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  HostKeyAlgorithms ssh-ed25519
  KexAlgorithms curve25519-sha256
  Ciphers aes128-gcm@openssh.com
  BatchMode yes
  ConnectTimeout 30
  LogLevel ERROR
`, fleetPort, f.clientKey, f.knownHosts)
	if err := os.WriteFile(f.knownHosts, []byte(kh.String()), 0o600); err != nil {
		return nil, fmt.Errorf("writing known_hosts: %w", err)
	}
	if err := os.WriteFile(f.sshConfig, []byte(sc.String()), 0o600); err != nil {
		return nil, fmt.Errorf("writing ssh_config: %w", err)
	}

	logf("fleet: starting %d sshd on 127.%d.x.y:%d", n, fleetNet, fleetPort)
	pids, err := os.Create(f.pidFile)
	if err != nil {
		return nil, fmt.Errorf("creating pid file: %w", err)
	}
	defer pids.Close()
	for i := 1; i <= n; i++ {
		hd := filepath.Join(dir, "hosts", hostName(i))
		// unshare gives the sshd a private mount namespace, the bind mount gives it its own /root;
		// both exec in place, so the PID we hold is the sshd's.
		c := exec.Command("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
			`mount --bind "$1" /root && exec /usr/sbin/sshd -D -f "$2" -E "$3"`, "sh",
			filepath.Join(hd, "home"), filepath.Join(hd, "sshd_config"), filepath.Join(hd, "sshd.log"))
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			f.stop(logf)
			return nil, fmt.Errorf("starting sshd for %s: %w", hostName(i), err)
		}
		p := &proc{cmd: c, done: make(chan struct{})}
		go func() { c.Wait(); close(p.done) }()
		f.mu.Lock()
		f.procs = append(f.procs, p)
		f.mu.Unlock()
		fmt.Fprintln(pids, c.Process.Pid)
	}
	pids.Sync()
	if err := f.waitListening(ctx, 30*time.Second); err != nil {
		f.stop(logf)
		return nil, err
	}
	for _, p := range f.procs {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", p.cmd.Process.Pid)); err == nil {
			f.nss[ns] = true
		}
	}
	own, _ := os.Readlink("/proc/self/ns/mnt")
	if f.nss[own] {
		f.stop(logf)
		return nil, fmt.Errorf("sshd shares the harness's mount namespace: unshare did not isolate it")
	}
	for i, p := range f.procs {
		select {
		case <-p.done:
			f.stop(logf)
			return nil, fmt.Errorf("sshd of %s exited after it seemed to listen (another fleet on 127.%d.x.y? try -net)", hostName(i+1), fleetNet)
		default:
		}
	}
	logf("fleet: %d sshd listening", n)
	return f, nil
}

// proc is a started process and a channel closed once it has been reaped.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// keygen writes an ed25519 key pair at path.
func keygen(path, comment string) error {
	os.Remove(path)
	os.Remove(path + ".pub")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("generating key %s: %v: %s", path, err, out)
	}
	return nil
}

// waitListening waits until every host accepts TCP connections.
func (f *fleet) waitListening(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for i := 1; i <= f.n; i++ {
		addr := net.JoinHostPort(hostAddr(i), fmt.Sprint(fleetPort))
		for {
			// An sshd that could not bind (another fleet on these addresses) exits, and the
			// one that answers is not ours.
			select {
			case <-f.procs[i-1].done:
				log, _ := os.ReadFile(filepath.Join(f.dir, "hosts", hostName(i), "sshd.log"))
				return fmt.Errorf("sshd of %s at %s exited (another fleet on 127.%d.x.y? try -net): %s", hostName(i), addr, fleetNet, tail(string(log), 400))
			default:
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				// An sshd greets with its version line; reading it proves it is ours and alive.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Close()
				if strings.HasPrefix(line, "SSH-2.0-") {
					break
				}
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				log, _ := os.ReadFile(filepath.Join(f.dir, "hosts", hostName(i), "sshd.log"))
				return fmt.Errorf("waiting for sshd of %s at %s: %v; log: %s", hostName(i), addr, err, tail(string(log), 400))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// stop kills every process of the fleet: the sshd listeners, then whatever still runs in their
// mount namespaces (session sshd, agents). Only processes this harness started are touched.
func (f *fleet) stop(logf func(string, ...any)) {
	f.mu.Lock()
	procs := f.procs
	f.procs = nil
	f.mu.Unlock()
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	// Session children and agents live in the listeners' namespaces.
	listeners := map[int]bool{}
	for _, p := range procs {
		listeners[p.cmd.Process.Pid] = true
	}
	killed := 0
	for pass := 0; pass < 3; pass++ {
		n := 0
		for _, pid := range listPids() {
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
			if err == nil && f.nss[ns] && !listeners[pid] {
				syscall.Kill(pid, syscall.SIGKILL)
				n++
			}
		}
		killed += n
		if n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	timeout := time.After(5 * time.Second)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-timeout:
			p.cmd.Process.Kill()
		}
	}
	os.Remove(f.pidFile)
	if logf != nil {
		logf("fleet: stopped %d sshd (and %d leftover processes in their namespaces)", len(procs), killed)
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
