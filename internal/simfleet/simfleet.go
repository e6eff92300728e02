// Package simfleet is a simulated fleet: one process serving many SSH hosts on loopback
// addresses, each with its own host key and user, real SSH handshakes (x/crypto/ssh's server),
// and the real agent (agent.Serve) behind each session, whose commands run from a command
// table (Exec) instead of being forked. It measures what a daemon costs per host at scales no
// box holds in real sshd processes; scripts/simfleet starts one by hand, tests and benchmarks
// call Start.
//
// The bootstrap command a daemon sends is answered as a host would answer it: SHOAL-EXEC and
// the agent when the host has the agent whose install name the command names (Options.Installed,
// or one uploaded before), else SHOAL-MISSING and, on the upload script, SHOAL-READY, the
// upload read and thrown away, SHOAL-EXEC and the agent reporting the uploaded hash. Any other
// command (a daemon's side session) succeeds with no output.
package simfleet

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-sh/shoal/internal/agent"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Options configures Start.
type Options struct {
	// N is the number of hosts (1 when 0).
	N int
	// Dir receives the client files (client/ssh_config, client/known_hosts, client/id_ed25519,
	// hosts) and the agents' state directories (state/<host>); it is created and must not
	// hold a fleet already. Required.
	Dir string
	// Installed are the full hex SHA-256 hashes of the agent binaries every host has from the
	// start (install.Source.Available gives those a daemon offers); others are uploaded on
	// first contact.
	Installed []string
	// MaxRunning is each agent's agent.Options.MaxRunning; default 2.
	MaxRunning int
	// Logger receives diagnostics of the fleet (not the agents'); nil discards them.
	Logger *slog.Logger
}

// Fleet is a running simulated fleet. Close stops it.
type Fleet struct {
	Dir        string
	SSHConfig  string // Host entries plus identity, known_hosts and strict checking
	KnownHosts string
	ClientKey  string // private key file (ed25519, no passphrase)
	HostsFile  string // the host names, one a line (a ^file target)
	Hosts      []*Host

	opts    Options
	client  ssh.PublicKey
	byAddr  map[string]*Host // "127.x.y.z" -> host
	ln      net.Listener     // one lo-bound wildcard listener, or nil with per-host listeners
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped sync.Once
}

// Host is one simulated host.
type Host struct {
	Name    string // ssh_config alias: h001, h002, ... (wider past 999 hosts)
	Addr    string // loopback address, 127.x.y.z
	Port    int
	User    string
	HostKey ssh.PublicKey

	f        *Fleet
	signer   ssh.Signer
	stateDir string

	// mu protects the following.
	mu        sync.Mutex
	cfg       *ssh.ServerConfig // built at the first connection
	conns     map[net.Conn]struct{}
	ln        net.Listener    // own listener, when the fleet has no shared one
	thaw      chan struct{}   // non-nil while frozen; closed by Thaw
	dead      bool            // Kill was called: connections are refused
	ctx       context.Context // the agents' context: canceled by Kill
	cancel    context.CancelFunc
	installed map[string]bool // full hashes of the agents on this host
	brk       Break           // what the next command does instead (BreakNext)
}

// Start starts a fleet of o.N hosts. It raises RLIMIT_NOFILE as far as it can (RaiseFDLimit).
func Start(o Options) (*Fleet, error) {
	if o.N <= 0 {
		o.N = 1
	}
	if o.MaxRunning <= 0 {
		o.MaxRunning = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Dir == "" {
		return nil, errors.New("simfleet: no directory")
	}
	RaiseFDLimit(uint64(o.N)*2 + 256) // a connection and an agent lock per host
	if err := os.MkdirAll(filepath.Join(o.Dir, "client"), 0o700); err != nil {
		return nil, fmt.Errorf("simfleet: creating fleet directory: %w", err)
	}
	f := &Fleet{
		Dir:        o.Dir,
		SSHConfig:  filepath.Join(o.Dir, "client", "ssh_config"),
		KnownHosts: filepath.Join(o.Dir, "client", "known_hosts"),
		ClientKey:  filepath.Join(o.Dir, "client", "id_ed25519"),
		HostsFile:  filepath.Join(o.Dir, "hosts"),
		opts:       o,
		byAddr:     map[string]*Host{},
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if err := f.writeClientKey(); err != nil {
		return nil, fmt.Errorf("simfleet: writing the client key: %w", err)
	}
	var seed [32]byte
	rand.Read(seed[:])
	width := max(3, len(strconv.Itoa(o.N)))
	for i := range o.N {
		h := &Host{
			Name: fmt.Sprintf("h%0*d", width, i+1),
			User: fmt.Sprintf("shoalt%0*d", width, i+1),
			f:    f, conns: map[net.Conn]struct{}{}, installed: map[string]bool{},
		}
		for _, hash := range o.Installed {
			h.installed[strings.ToLower(hash)] = true
		}
		// A key from a per-host seed: cheap, and different in every fleet.
		hs := sha256.Sum256(binary.BigEndian.AppendUint64(seed[:], uint64(i)))
		s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(hs[:]))
		if err != nil {
			return nil, fmt.Errorf("simfleet: making host key: %w", err)
		}
		h.signer, h.HostKey = s, s.PublicKey()
		h.stateDir = filepath.Join(o.Dir, "state", h.Name)
		f.Hosts = append(f.Hosts, h)
	}
	if err := f.listen(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.writeConfigs(); err != nil {
		f.Close()
		return nil, fmt.Errorf("simfleet: writing client files: %w", err)
	}
	return f, nil
}

// RaiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit, and both to want when the hard
// limit is lower and the process may raise it (root). It returns the soft limit now.
func RaiseFDLimit(want uint64) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Max < want {
		up := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return want
		}
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

func (f *Fleet) writeClientKey() error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	f.client = s.PublicKey()
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return err
	}
	if err := os.WriteFile(f.ClientKey, pem.EncodeToMemory(blk), 0o600); err != nil {
		return err
	}
	return os.WriteFile(f.ClientKey+".pub", ssh.MarshalAuthorizedKey(f.client), 0o644)
}

// listen binds the hosts' addresses: one wildcard socket bound to the loopback device where
// the system allows it (SO_BINDTODEVICE: only loopback traffic reaches it, and each connection's
// local address names its host), else one socket per host. Addresses and the port are random,
// so concurrent fleets rarely collide; a collision tries others.
func (f *Fleet) listen() error {
	var err error
	for range 8 {
		n, _ := rand.Int(rand.Reader, big.NewInt(200*30000))
		v := int(n.Int64())
		oct, port := 20+v%200, 20000+v/200
		clear(f.byAddr)
		for i, h := range f.Hosts {
			h.Addr = fmt.Sprintf("127.%d.%d.%d", oct, (i+1)/250, (i+1)%250+1)
			h.Port = port
			f.byAddr[h.Addr] = h
		}
		if err = f.listenShared(port); err == nil {
			f.wg.Add(1)
			go f.acceptLoop(f.ln, nil)
			return nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			if err = f.listenEach(); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("simfleet: listening: %w", err)
}

func (f *Fleet) listenShared(port int) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, "lo")
		}); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(f.ctx, "tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	f.ln = ln
	return nil
}

func (f *Fleet) listenEach() error {
	for _, h := range f.Hosts {
		if err := h.listen(); err != nil {
			for _, h := range f.Hosts {
				h.closeListener()
			}
			return err
		}
	}
	return nil
}

func (h *Host) listen() error {
	ln, err := net.Listen("tcp4", net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)))
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.ln = ln
	h.mu.Unlock()
	h.f.wg.Add(1)
	go h.f.acceptLoop(ln, h)
	return nil
}

func (h *Host) closeListener() {
	h.mu.Lock()
	ln := h.ln
	h.ln = nil
	h.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// acceptLoop serves the connections of ln, for host h, or for the host each names (h nil).
func (f *Fleet) acceptLoop(ln net.Listener, h *Host) {
	defer f.wg.Done()
	for delay := time.Duration(0); ; {
		nc, err := ln.Accept()
		if err != nil {
			if f.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: wait a little and go on.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.opts.Logger.Warn("accepting", "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		host := h
		if host == nil {
			if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
				host = f.byAddr[a.IP.String()]
			}
		}
		if host == nil || !host.track(nc) {
			if tc, ok := nc.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset, as near as one listener comes to a refused connection
			}
			nc.Close()
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer host.untrack(nc)
			host.serve(nc)
		}()
	}
}

// track adds a connection, unless the host is dead or the fleet stopping.
func (h *Host) track(nc net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dead || h.f.ctx.Err() != nil {
		return false
	}
	h.conns[nc] = struct{}{}
	return true
}

func (h *Host) untrack(nc net.Conn) {
	nc.Close()
	h.mu.Lock()
	delete(h.conns, nc)
	h.mu.Unlock()
}

func (h *Host) config() *ssh.ServerConfig {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cfg == nil {
		cfg := &ssh.ServerConfig{
			Config: ssh.Config{KeyExchanges: []string{"curve25519-sha256", "curve25519-sha256@libssh.org"}},
			PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
				if c.User() != h.User || string(k.Marshal()) != string(h.f.client.Marshal()) {
					return nil, fmt.Errorf("simfleet: %s: key or user %q refused", h.Name, c.User())
				}
				return nil, nil
			},
		}
		cfg.AddHostKey(h.signer)
		h.cfg = cfg
	}
	return h.cfg
}

// serve runs one SSH connection to h.
func (h *Host) serve(nc net.Conn) {
	sc, chans, reqs, err := ssh.NewServerConn(&gateConn{Conn: nc, h: h}, h.config())
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs) // ends when the connection does
	var wg sync.WaitGroup
	defer wg.Wait()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.session(ch, creqs)
		}()
	}
}

// session waits for a session's exec request and runs its command.
func (h *Host) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cmd string
	for req := range reqs {
		if req.Type == "exec" {
			var p struct{ Cmd string }
			ok := ssh.Unmarshal(req.Payload, &p) == nil
			req.Reply(ok, nil)
			if ok {
				cmd = p.Cmd
				break
			}
			continue
		}
		req.Reply(req.Type == "env", nil) // env is accepted and ignored; no shells, no ptys
	}
	if cmd == "" {
		return
	}
	go ssh.DiscardRequests(reqs) // ends when the channel closes
	code := 0
	if strings.Contains(cmd, "SHOAL-MISSING") {
		code = h.bootstrap(ch, cmd)
	}
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Code uint32 }{uint32(code)}))
}

var (
	reAgentName = regexp.MustCompile(`agent-([0-9a-f]{16})`)
	reHeadC     = regexp.MustCompile(`head -c ([0-9]+)`)
	reHash      = regexp.MustCompile(`SHOAL_AGENT_HASH=([0-9a-f]{64})`)
)

// uname is what `uname -sm` says on this machine's platform.
func uname() string {
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686"}[runtime.GOARCH]
	if arch == "" {
		arch = runtime.GOARCH
	}
	return strings.ToUpper(runtime.GOOS[:1]) + runtime.GOOS[1:] + " " + arch
}

// bootstrap answers install.Bootstrap's command and runs the agent; it returns the exit code.
func (h *Host) bootstrap(ch ssh.Channel, cmd string) int {
	r := bufio.NewReaderSize(ch, 4096)
	hash := ""
	if m := reAgentName.FindStringSubmatch(cmd); m != nil {
		hash = h.has(m[1])
	}
	if hash == "" {
		fmt.Fprintf(ch, "SHOAL-MISSING %s\tgzip zstd\n", uname())
		script, err := r.ReadString('\n')
		if err != nil {
			return 1 // end of input: no install
		}
		hm, sm := reHash.FindStringSubmatch(script), reHeadC.FindStringSubmatch(script)
		if hm == nil || sm == nil {
			fmt.Fprintf(ch, "SHOAL-FAIL simfleet cannot read this upload script\n")
			return 1
		}
		size, _ := strconv.ParseInt(sm[1], 10, 64)
		io.WriteString(ch, "SHOAL-READY\n")
		if _, err := io.CopyN(io.Discard, r, size); err != nil {
			return 1
		}
		hash = hm[1]
		h.mu.Lock()
		h.installed[hash] = true
		h.mu.Unlock()
	}
	fmt.Fprintf(ch, "SHOAL-EXEC %s\t/home/%s/.cache/shoal/agent-%s\n", uname(), h.User, hash[:16])
	err := agent.Serve(h.agentCtx(), r, ch, agent.Options{
		StateDir:     h.stateDir,
		MaxRunning:   h.f.opts.MaxRunning,
		BinarySHA256: hash,
		Version:      "simfleet",
		Exec:         h.exec,
	})
	if err != nil {
		return 1
	}
	return 0
}

// agentCtx returns the context of h's agents, canceled when h is killed.
func (h *Host) agentCtx() context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx == nil {
		h.ctx, h.cancel = context.WithCancel(h.f.ctx)
	}
	return h.ctx
}

// has returns the full hash of the installed agent whose hash starts with prefix, or "".
func (h *Host) has(prefix string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for full := range h.installed {
		if strings.HasPrefix(full, prefix) {
			return full
		}
	}
	return ""
}

// Freeze makes h stop answering: reads and writes on its connections block (new connections
// too), as on a host that froze or a network that drops packets, until Thaw.
func (h *Host) Freeze() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.thaw == nil {
		h.thaw = make(chan struct{})
	}
}

// Thaw resumes a host after Freeze.
func (h *Host) Thaw() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.thaw != nil {
		close(h.thaw)
		h.thaw = nil
	}
}

// Kill drops h's connections and refuses new ones (a host that died), until Revive.
func (h *Host) Kill() {
	h.mu.Lock()
	h.dead = true
	if h.cancel != nil {
		h.cancel()
		h.ctx, h.cancel = nil, nil
	}
	conns := make([]net.Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	h.closeListener()
	for _, c := range conns {
		c.Close()
	}
}

// Revive lets a host Kill stopped take connections again.
func (h *Host) Revive() error {
	h.mu.Lock()
	h.dead = false
	h.mu.Unlock()
	if h.f.ln == nil {
		return h.listen()
	}
	return nil
}

// Conns returns the number of h's open connections.
func (h *Host) Conns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// gate returns the channel a frozen host's I/O waits on, or nil.
func (h *Host) gate() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.thaw
}

// gateConn is a host's connection, whose I/O waits while the host is frozen.
type gateConn struct {
	net.Conn
	h *Host
}

func (c *gateConn) wait() {
	if g := c.h.gate(); g != nil {
		select {
		case <-g:
		case <-c.h.f.ctx.Done():
		}
	}
}

func (c *gateConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.wait()
	return n, err
}

func (c *gateConn) Write(b []byte) (int, error) {
	c.wait()
	return c.Conn.Write(b)
}

// writeConfigs writes the client's ssh_config, known_hosts and hosts file.
func (f *Fleet) writeConfigs() error {
	var cfg, kh, hosts strings.Builder
	for _, h := range f.Hosts {
		fmt.Fprintf(&cfg, "Host %s\n  HostName %s\n  Port %d\n  User %s\n", h.Name, h.Addr, h.Port, h.User)
		addr := knownhosts.Normalize(net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)))
		kh.WriteString(knownhosts.Line([]string{addr}, h.HostKey) + "\n")
		hosts.WriteString(h.Name + "\n")
	}
	fmt.Fprintf(&cfg, "Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n"+
		"  StrictHostKeyChecking yes\n  ConnectTimeout 30\n  BatchMode yes\n  LogLevel ERROR\n",
		f.ClientKey, f.KnownHosts)
	if err := os.WriteFile(f.SSHConfig, []byte(cfg.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(f.KnownHosts, []byte(kh.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(f.HostsFile, []byte(hosts.String()), 0o644)
}

// Names returns the hosts' aliases.
func (f *Fleet) Names() []string {
	n := make([]string, len(f.Hosts))
	for i, h := range f.Hosts {
		n[i] = h.Name
	}
	return n
}

// Conns returns the number of open connections to the fleet.
func (f *Fleet) Conns() int {
	n := 0
	for _, h := range f.Hosts {
		n += h.Conns()
	}
	return n
}

// Close stops the fleet: it closes the listeners and every connection (the agents stop, their
// commands canceled) and waits for every goroutine. The directory stays; the caller removes it.
func (f *Fleet) Close() error {
	f.stopped.Do(func() {
		f.cancel()
		if f.ln != nil {
			f.ln.Close()
		}
		for _, h := range f.Hosts {
			h.Thaw()
			h.closeListener()
			h.mu.Lock()
			for c := range h.conns {
				c.Close()
			}
			h.mu.Unlock()
		}
		f.wg.Wait()
	})
	return nil
}

// Uninstall removes every agent from h, so its next connection is a first contact (an upload).
func (h *Host) Uninstall() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.installed)
}
