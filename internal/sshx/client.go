package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// DefaultConnectTimeout bounds a TCP connect plus SSH handshake when ssh_config sets no
// ConnectTimeout.
const DefaultConnectTimeout = 30 * time.Second

// kexAlgos is offered to servers, fastest modern exchanges first: sntrup761 costs ~100 ms of CPU
// per connection on a small machine where curve25519 costs ~35 ms.
var kexAlgos = []string{
	ssh.KeyExchangeMLKEM768X25519,
	ssh.KeyExchangeCurve25519,
	"curve25519-sha256@libssh.org",
	ssh.KeyExchangeECDHP256,
	ssh.KeyExchangeECDHP384,
	ssh.KeyExchangeECDHP521,
	ssh.KeyExchangeDH16SHA512,
	ssh.KeyExchangeDH14SHA256,
}

// Dialer connects to hosts. It caches the parsed ssh_config, known_hosts and decrypted identities,
// so one Dialer should serve every connection of a process. Set the fields before the first Dial.
type Dialer struct {
	// ConfigFile is an ssh_config to use alone (ssh -F); empty means ~/.ssh/config then
	// /etc/ssh/ssh_config.
	ConfigFile string
	// Home and User describe the local account; empty means the current user's.
	Home, User string
	// AgentSocket is the ssh-agent socket; empty means $SSH_AUTH_SOCK, "none" disables the agent.
	AgentSocket string
	// Prompt asks for key passphrases, passwords and keyboard-interactive answers, each
	// question once; nil means keys with passphrases are skipped and no password is tried.
	Prompt PromptFunc
	// Warn receives non-fatal problems (an unreadable system config), each once; nil discards them.
	Warn func(msg string)
	// SystemConfig is the system-wide ssh_config; empty means /etc/ssh/ssh_config.
	SystemConfig string
	// KeyExchanges overrides the key exchanges offered; nil means the fast defaults.
	KeyExchanges []string

	// ConnectTimeout bounds the connection and handshake of a host whose ssh_config sets no
	// ConnectTimeout; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ForceConnectTimeout, when not 0, bounds every connection whatever ssh_config says.
	ForceConnectTimeout time.Duration
	// AcceptNew records the key of an unknown host, as StrictHostKeyChecking accept-new, for
	// hosts whose ssh_config leaves StrictHostKeyChecking unset (or "ask").
	AcceptNew bool
	// KnownHostsFile, when not empty, is checked before ssh_config's UserKnownHostsFile and
	// receives the keys accept-new records.
	KnownHostsFile string
	// IdentityFiles are offered after ssh_config's IdentityFile.
	IdentityFiles []string
	// BastionStartups bounds the connections being set up at once through one jump host,
	// whose one connection every host behind it shares; 0 means DefaultBastionStartups.
	BastionStartups int

	once    sync.Once
	cfg     *sshConfig
	files   configFiles
	keys    hostKeys
	ids     identities
	secrets secrets

	// bmu protects bastions and their reference counts.
	bmu      sync.Mutex
	bastions map[string]*bastion

	// warnMu protects warned.
	warnMu sync.Mutex
	warned map[string]bool
}

// warn passes msg to Warn once for the life of the Dialer.
func (d *Dialer) warn(msg string) {
	d.warnMu.Lock()
	seen := d.warned[msg]
	if d.warned == nil {
		d.warned = map[string]bool{}
	}
	d.warned[msg] = true
	d.warnMu.Unlock()
	if !seen && d.Warn != nil {
		d.Warn(msg)
	}
}

func (d *Dialer) init() {
	d.once.Do(func() {
		if d.Home == "" || d.User == "" {
			if u, err := user.Current(); err == nil {
				if d.Home == "" {
					d.Home = u.HomeDir
				}
				if d.User == "" {
					d.User = u.Username
				}
			}
		}
		if d.Home == "" {
			d.Home = os.Getenv("HOME")
		}
		d.ids.prompt = d.Prompt
		host, _ := os.Hostname()
		env := &sshEnv{home: d.Home, localUser: d.User, uid: strconv.Itoa(os.Getuid()), thisHost: host,
			readFile: d.files.read, exec: runExec, lookupHost: lookupHost, getenv: os.LookupEnv}
		system := d.SystemConfig
		if system == "" {
			system = systemConfig
		}
		d.cfg = &sshConfig{file: d.ConfigFile, system: system, env: env, warn: d.warn}
	})
}

// Override replaces parts of the ssh_config of a host; zero fields leave it alone.
type Override struct {
	HostName string
	Port     int
	User     string
}

// Resolve returns the configuration of alias with o applied.
func (d *Dialer) Resolve(alias string, o Override) (*HostConfig, error) {
	d.init()
	h, err := d.cfg.resolve(alias)
	if err != nil {
		return nil, err
	}
	if d.ForceConnectTimeout > 0 {
		h.ConnectTimeout = d.ForceConnectTimeout
	} else if h.ConnectTimeout == 0 {
		h.ConnectTimeout = d.ConnectTimeout
	}
	if d.AcceptNew && h.StrictHostKeyChecking == "ask" {
		h.StrictHostKeyChecking = "accept-new"
	}
	if d.KnownHostsFile != "" {
		h.UserKnownHostsFiles = slices.Insert(slices.DeleteFunc(h.UserKnownHostsFiles,
			func(f string) bool { return f == d.KnownHostsFile }), 0, d.KnownHostsFile)
	}
	for _, f := range d.IdentityFiles {
		if !slices.Contains(h.IdentityFiles, f) {
			h.IdentityFiles = append(h.IdentityFiles, f)
		}
	}
	if o.HostName != "" {
		h.HostName = o.HostName
	}
	if o.Port != 0 {
		h.Port = o.Port
	}
	if o.User != "" {
		h.User = o.User
	}
	return h, nil
}

// Client is an SSH connection to one host (and the jump hosts on the way).
type Client struct {
	Config *HostConfig
	c      *ssh.Client
	// bastion is the shared connection to the last jump host, released after c closes.
	bastion *bastion
	d       *Dialer
	drains  sync.WaitGroup // the streams' stderr drains and the connections' request loops, which end with the connection

	closeOnce sync.Once
	closeErr  error
	alive     *time.Timer
	closed    atomic.Bool
	pending   atomic.Bool  // a keepalive request waits for its answer
	misses    atomic.Int32 // keepalive intervals that passed with a request unanswered
}

// Dial connects and logs in to alias, following ProxyJump hops. Its errors are *Error values whose
// class (ErrRefused, ErrHostKeyChanged, ...) errors.Is reports.
func (d *Dialer) Dial(ctx context.Context, alias string, o Override) (*Client, error) {
	h, err := d.Resolve(alias, o)
	if err != nil {
		return nil, &Error{Host: alias, Op: "reading ssh config", Err: err}
	}
	timeout := h.ConnectTimeout
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cl := &Client{Config: h}
	hops, err := d.jumpHosts(h, 0)
	if err != nil {
		return nil, &Error{Host: alias, Op: "reading ProxyJump", Err: err}
	}
	var via *ssh.Client
	if len(hops) > 0 {
		b, err := d.acquireBastion(ctx, hops)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				err = &Error{Host: alias, Op: e.Op, Class: e.Class, Err: e.Err}
			} else {
				err = &Error{Host: alias, Op: "connecting to jump host " + hops[len(hops)-1].Alias, Class: ErrTimeout, Err: err}
			}
			return nil, err
		}
		cl.bastion, cl.d, via = b, d, b.c
	}
	c, err := d.connectThrough(ctx, cl.bastion, h, via, &cl.drains)
	if err != nil {
		cl.Close()
		return nil, err
	}
	cl.c = c
	if h.ServerAliveInterval > 0 {
		// Create the timer stopped, so cl.alive is set before keepalive can first run.
		cl.alive = time.AfterFunc(time.Duration(1<<62), cl.keepalive)
		cl.alive.Reset(h.ServerAliveInterval)
	}
	return cl, nil
}

// maxJumpDepth bounds the chain of jump hosts, which ssh_config could make circular.
const maxJumpDepth = 8

// jumpHosts returns the hosts to go through to reach h, first first. As with ssh, whose ProxyJump
// runs "ssh -J rest -W host:port last", the first hop's own ProxyJump applies too, recursively.
func (d *Dialer) jumpHosts(h *HostConfig, depth int) ([]*HostConfig, error) {
	if len(h.ProxyJump) == 0 {
		return nil, nil
	}
	if depth >= maxJumpDepth {
		return nil, fmt.Errorf("more than %d jump hosts (a ProxyJump loop?)", maxJumpDepth)
	}
	var out []*HostConfig
	for i, hop := range h.ProxyJump {
		user, host, port, err := parseHop(hop)
		if err != nil {
			return nil, err
		}
		hc, err := d.Resolve(host, Override{User: user, Port: port})
		if err != nil {
			return nil, fmt.Errorf("ssh config of jump host %s: %w", host, err)
		}
		if i == 0 {
			before, err := d.jumpHosts(hc, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, before...)
		}
		out = append(out, hc)
	}
	if len(out) > maxJumpDepth {
		return nil, fmt.Errorf("more than %d jump hosts (a ProxyJump loop?)", maxJumpDepth)
	}
	return out, nil
}

// keepalive runs on the timer's goroutine every ServerAliveInterval: it counts a miss when the
// previous request is still unanswered and closes the connection after ServerAliveCountMax
// misses, as ssh does; otherwise it sends a request and waits for the answer.
func (c *Client) keepalive() {
	if c.closed.Load() {
		return
	}
	c.alive.Reset(c.Config.ServerAliveInterval)
	if !c.pending.CompareAndSwap(false, true) {
		if c.misses.Add(1) >= int32(max(c.Config.ServerAliveCountMax, 1)) {
			c.Close()
		}
		return
	}
	_, _, err := c.c.SendRequest("keepalive@openssh.com", true, nil)
	c.pending.Store(false)
	if err != nil {
		c.Close()
		return
	}
	c.misses.Store(0)
}

// connect makes one TCP (or jumped) connection to h and logs in. The goroutine that
// answers the server's requests is added to wg; it ends when the connection does.
func (d *Dialer) connect(ctx context.Context, h *HostConfig, via *ssh.Client, wg *sync.WaitGroup) (*ssh.Client, error) {
	addr := h.Addr()
	fail := func(op string, class, err error) error {
		return &Error{Host: h.Alias, Op: op, Class: class, Err: err}
	}
	if h.Unsupported != nil {
		return nil, fail("reading ssh config", nil, h.Unsupported)
	}
	var conn net.Conn
	var proxy *proxyConn
	var err error
	switch {
	case via != nil:
		conn, err = via.DialContext(ctx, "tcp", addr)
	case h.ProxyCommand != "":
		if proxy, err = startProxy(h); err != nil {
			return nil, fail("running ProxyCommand", ErrUnreachable, err)
		}
		conn = proxy
	default:
		var nd net.Dialer
		if h.BindAddress != "" {
			nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(h.BindAddress)}
		}
		conn, err = nd.DialContext(ctx, h.AddressFamily, addr)
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetNoDelay(true)
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fail("connecting to "+addr, ErrTimeout, err)
		}
		if via != nil && !isNetErr(err) {
			// The jump host reports why it could not connect in an OpenChannelError.
			return nil, fail("connecting to "+addr, ErrUnreachable, err)
		}
		return nil, fail("connecting to "+addr, classifyNet(err), err)
	}
	cb, algos, err := d.keys.callback(h)
	if err != nil {
		conn.Close()
		return nil, fail("reading known hosts", nil, err)
	}
	var agentConn net.Conn
	if sock := d.agentSocket(h); sock != "" && sock != "none" {
		agentConn, _ = net.Dial("unix", sock) // no agent is not an error: files may do
	}
	signers, err := d.ids.signers(h, agentConn)
	if err != nil {
		if agentConn != nil {
			agentConn.Close()
		}
		conn.Close()
		return nil, fail("collecting keys", ErrAuth, err)
	}
	kex := d.KeyExchanges
	if kex == nil {
		kex = kexAlgos
	}
	if h.KexAlgorithms != nil {
		kex = h.KexAlgorithms
	}
	cfg := &ssh.ClientConfig{
		User:              h.User,
		Auth:              append([]ssh.AuthMethod{ssh.PublicKeys(signers...)}, d.interactiveAuth(h)...),
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Config:            ssh.Config{KeyExchanges: kex, Ciphers: h.Ciphers, MACs: h.MACs},
	}
	// A deadline on the connection bounds the handshake; ctx cancellation closes it.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	stopped := stop()
	if agentConn != nil {
		agentConn.Close()
	}
	if err != nil {
		var proxyErr error // why the ProxyCommand ended, when it did
		if proxy != nil && stopped {
			proxyErr = proxy.exited()
		}
		conn.Close()
		var hke *HostKeyError
		switch {
		case proxyErr != nil && !errors.As(err, &hke):
			return nil, fail(fmt.Sprintf("running ProxyCommand %q", h.ProxyCommand), ErrUnreachable, proxyErr)
		case errors.As(err, &hke):
			return nil, fail("checking host key", nil, hke)
		case !stopped || errors.Is(err, os.ErrDeadlineExceeded):
			return nil, fail("handshake with "+addr, ErrTimeout, err)
		case strings.Contains(err.Error(), "unable to authenticate"), errors.As(err, new(*keyError)):
			return nil, fail(fmt.Sprintf("logging in as %s", h.User), ErrAuth, err)
		}
		return nil, fail("handshake with "+addr, nil, err)
	}
	conn.SetDeadline(time.Time{})
	fwd := ""
	if h.ForwardAgent != "" {
		if fwd = h.ForwardAgent; fwd == "yes" {
			fwd = d.agentSocket(h)
		}
		if fwd == "none" {
			fwd = ""
		}
	}
	return newClient(sc, chans, reqs, wg, fwd), nil
}

// agentSocket returns the ssh-agent socket for h: the Dialer's AgentSocket, else ssh_config's
// IdentityAgent as ssh reads it, else $SSH_AUTH_SOCK; "none" or "" for no agent.
func (d *Dialer) agentSocket(h *HostConfig) string {
	if d.AgentSocket != "" {
		return d.AgentSocket
	}
	switch a := h.IdentityAgent; {
	case a == "" || a == "SSH_AUTH_SOCK":
		return os.Getenv("SSH_AUTH_SOCK")
	case len(a) > 1 && a[0] == '$' && a[1] != '{':
		return os.Getenv(a[1:])
	default:
		return a
	}
}

// closedChans and closedReqs are closed channels handed to ssh.NewClient, so that the
// two goroutines it starts to serve them return at once.
var (
	closedChans = func() chan ssh.NewChannel { c := make(chan ssh.NewChannel); close(c); return c }()
	closedReqs  = func() chan *ssh.Request { c := make(chan *ssh.Request); close(c); return c }()
)

// newClient returns an ssh.Client on sc whose incoming channel opens and global requests
// are answered by one goroutine, added to wg, instead of ssh.NewClient's two: goroutines
// are most of what an idle connection costs, and thousands of connections stay open. As
// ssh.Client does, it refuses every request (keepalives get their "no") and every channel
// the server opens, but agent channels when agentSock, the agent ForwardAgent forwards, is set.
func newClient(sc ssh.Conn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, wg *sync.WaitGroup, agentSock string) *ssh.Client {
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveIncoming(chans, reqs, wg, agentSock)
	}()
	return ssh.NewClient(sc, closedChans, closedReqs)
}

// serveIncoming refuses the server's requests and channel opens until the connection
// closes both channels; with agentSock set it connects the server's agent channels to that
// agent, in goroutines added to wg that end with the channel.
func serveIncoming(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, wg *sync.WaitGroup, agentSock string) {
	for chans != nil || reqs != nil {
		select {
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		case ch, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			if agentSock != "" && ch.ChannelType() == agentChannel {
				forwardAgent(ch, agentSock, wg)
				continue
			}
			ch.Reject(ssh.UnknownChannelType, "unknown channel type: "+ch.ChannelType())
		}
	}
}

// agentChannel is the channel an sshd opens to reach a forwarded agent.
const agentChannel = "auth-agent@openssh.com"

// forwardAgent connects a forwarded-agent channel to the agent at sock.
func forwardAgent(nc ssh.NewChannel, sock string, wg *sync.WaitGroup) {
	ac, err := net.Dial("unix", sock)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, "no agent: "+err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		ac.Close()
		return
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	go func() {
		defer wg.Done()
		done := make(chan struct{})
		go func() {
			io.Copy(ch, ac)
			ch.CloseWrite()
			close(done)
		}()
		io.Copy(ac, ch)
		ac.Close() // ends the copy above
		<-done
		ch.Close()
	}()
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

// Close closes the connection and the jump connections under it.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		if c.alive != nil {
			c.alive.Stop()
		}
		if c.c != nil {
			c.closeErr = c.c.Close()
		}
		c.drains.Wait()
		if c.bastion != nil {
			c.d.releaseBastion(c.bastion)
		}
	})
	return c.closeErr
}

// Wait blocks until the connection ends and returns why.
func (c *Client) Wait() error { return c.c.Wait() }

// Stream is a remote command's stdin (Write) and stdout (Read).
type Stream struct {
	ch ssh.Channel
	// wmu is held by each packet's write and by CloseWrite: x/crypto's channel lets neither
	// run beside the other (its EOF flag is unguarded).
	wmu sync.Mutex
}

// Exec starts cmd on the host. The command's stderr is copied to stderr (nil discards it).
// One goroutine per stream drains stderr and channel requests; it ends when the channel closes.
func (c *Client) Exec(cmd string, stderr io.Writer) (*Stream, error) {
	ch, reqs, err := c.c.OpenChannel("session", nil)
	if err != nil {
		return nil, fmt.Errorf("opening session: %w", err)
	}
	if c.Config.ForwardAgent != "" {
		ch.SendRequest("auth-agent-req@openssh.com", true, nil) // a refusal leaves the command without the agent, as ssh
	}
	for _, kv := range c.Config.environment() {
		// As ssh, ask without waiting: sshd drops what its AcceptEnv does not name.
		if _, err := ch.SendRequest("env", false, ssh.Marshal(struct{ Name, Value string }{kv[0], kv[1]})); err != nil {
			break // the exec request below reports the broken channel
		}
	}
	ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{cmd}))
	if err == nil && !ok {
		err = errors.New("the server refused the command")
	}
	if err != nil {
		ch.Close()
		go ssh.DiscardRequests(reqs)
		return nil, fmt.Errorf("starting remote command: %w", err)
	}
	s := &Stream{ch: ch}
	c.drains.Add(1)
	go func() {
		defer c.drains.Done()
		drain(stderr, ch.Stderr())
		ssh.DiscardRequests(reqs)
	}()
	return s, nil
}

// drainBufferSize is the buffer each stream's stderr drain holds for as long as the
// stream lives. It is small on purpose: an agent's stderr is a few log lines, and
// io.Copy's 32 KiB (8 KiB into io.Discard) per stream was the largest allocation of
// an idle connected host.
const drainBufferSize = 1 << 10

// drain copies r to w until r ends, through a small buffer, and keeps reading after
// w fails so that the channel's window stays open.
func drain(w io.Writer, r io.Reader) {
	buf := make([]byte, drainBufferSize)
	for {
		n, err := r.Read(buf)
		if n > 0 && w != nil {
			if _, werr := w.Write(buf[:n]); werr != nil {
				w = nil
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *Stream) Read(p []byte) (int, error) { return s.ch.Read(p) }

// Packet sizes of Stream.Write. x/crypto keeps, for the life of a connection, a packet
// buffer in the channel and a sealing buffer in the cipher as large as the largest packet
// ever sent: 32 KiB packets everywhere left every idle host holding some 80 KiB of heap for
// good. So ordinary writes (the agent's frames) go in packets of at most maxWrite bytes, and
// only a bulk write, bulkMin bytes or more in one call (an agent upload, a file chunk), goes
// in packets of bulkWrite, the most OpenSSH's sshd accepts. sshd grows its channel buffer by
// copying it into new memory, one packet at a time, when data outruns the command reading
// it: half as many packets cut the hosts' CPU of a first contact by a fifth (62 to 49 ms per
// host) and of a 50 MB push by about as much, measured on the bench fleet. The price: a
// connection that carried a bulk write keeps 32 KiB buffers.
const (
	maxWrite  = 16 << 10
	bulkWrite = 32 << 10
	bulkMin   = 64 << 10
)

// packetSize returns the largest packet Write sends a write of n bytes in.
func packetSize(n int) int {
	if n >= bulkMin {
		return bulkWrite
	}
	return maxWrite
}

// Write sends p to the command's stdin, in packets of packetSize(len(p)) bytes at most.
func (s *Stream) Write(p []byte) (int, error) {
	max := packetSize(len(p))
	n := 0
	for len(p) > 0 {
		k := min(len(p), max)
		s.wmu.Lock()
		m, err := s.ch.Write(p[:k])
		s.wmu.Unlock()
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// CloseWrite sends EOF on the command's stdin. It does not wait for a write in flight, which
// may be stuck on a host that stopped reading: it then sends no EOF and returns
// ErrWriteInFlight, and the caller closes the stream or the connection instead.
func (s *Stream) CloseWrite() error {
	if !s.wmu.TryLock() {
		return ErrWriteInFlight
	}
	defer s.wmu.Unlock()
	return s.ch.CloseWrite()
}

// ErrWriteInFlight means CloseWrite found a write under way and sent no EOF.
var ErrWriteInFlight = errors.New("a write is in flight: no EOF sent")

// Close closes the channel. Its drain goroutine ends when the host acknowledges the close, or
// when the Client closes, which waits for it.
func (s *Stream) Close() error {
	err := s.ch.Close()
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// Run runs cmd with stdin (nil for none) and returns its combined output. A non-zero exit is an
// *ssh.ExitError. When ctx ends first the session is closed and ctx's error returned.
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	sess, err := c.c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("opening session: %w", err)
	}
	defer sess.Close()
	for _, kv := range c.Config.environment() {
		sess.Setenv(kv[0], kv[1]) // refused when sshd does not accept it, as ssh ignores
	}
	if c.Config.ForwardAgent != "" {
		agent.RequestAgentForwarding(sess)
	}
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	var out lockedBuffer
	sess.Stdout, sess.Stderr, sess.Stdin = &out, &out, stdin
	err = sess.Run(cmd)
	if ctx.Err() != nil {
		return out.bytes(), ctx.Err()
	}
	return out.bytes(), err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) < 1<<20 { // bounded: Side output is for people, not data
		l.b = append(l.b, p...)
	}
	return len(p), nil
}

func (l *lockedBuffer) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b...)
}

// RemoteAddr returns the address of the host's end of the connection (through a jump host, the
// address that host reports for the forwarded connection).
func (c *Client) RemoteAddr() net.Addr { return c.c.RemoteAddr() }
