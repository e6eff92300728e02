package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/proto"
)

// maxFrame is the largest frame on the daemon connection (the daemon's ClientMaxFrame).
const maxFrame = 64 << 20

// Options configure Dial.
type Options struct {
	// Socket is the daemon's Unix socket.
	Socket string
	// Addr and TLS, when TLS is set, reach a daemon's mutual-TLS listener (HOST:PORT)
	// instead of Socket. Such a client may not stop the daemon; its put and get
	// stream the files over the connection (PutFrom, GetTo).
	Addr string
	TLS  *tls.Config
	// DialFunc, when set, replaces dialling Socket (the in-process daemon's pipe).
	DialFunc func(ctx context.Context) (net.Conn, error)
	// Identity is the person at the console, for the audit log.
	Identity string
	// Version is this program's version, sent in hello.
	Version string
	// Start, when set, starts a daemon if none answers (see Start).
	Start *StartOptions
	// Hops is how many daemons forwarded to reach this one (a daemon dialling its
	// gateway sets it); 0 for a console.
	Hops int
	// Config is this client's configuration, which decides how the daemon reaches the
	// hosts of its requests; nil leaves it to the daemon's own.
	Config *proto.ClientConfig
}

// Client is a connection to a daemon. It implements Session.
type Client struct {
	nc    net.Conn
	pc    *proto.Conn
	hello proto.DaemonHello
	// remote is a connection over TLS: put and get stream the file's bytes.
	remote bool

	nextID atomic.Uint64

	mu      sync.Mutex // protects the following
	pending map[uint64]*call
	err     error // why the connection ended; set once

	done    chan struct{} // closed when the reader stops
	closing chan struct{} // closed by Close: run pumps stop delivering
	once    sync.Once
	wg      sync.WaitGroup
}

var _ Session = (*Client)(nil)

// call is a request waiting for its reply, or a run receiving events.
type call struct {
	reply chan *proto.Envelope // unary requests: exactly one envelope
	run   *runState
	// data, when set, takes the get-data frames of a get-stream (in the read loop);
	// the final reply still goes to reply.
	data func(*proto.GetData)
}

// ErrNotRunning reports that no daemon answers on the socket.
var ErrNotRunning = errors.New("no shoal daemon is running")

// ErrClosed reports a call on a closed or broken connection.
var ErrClosed = errors.New("connection to the shoal daemon closed")

// VersionError says the daemon speaks another version of the protocol than this client.
type VersionError struct {
	Daemon, Client string // program versions
	DaemonProtocol string // "protocol.client" versions, e.g. "1.1"
	ClientProtocol string
	Detail         string // what the daemon said, if anything
	DaemonPID      int    // the daemon's pid, when it said (so `shoal daemon stop` can signal it)
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("the running shoal daemon (version %s, protocol %s) does not match this shoal (version %s, protocol %s); "+
		"run `shoal daemon stop` and try again: a matching daemon starts by itself", e.Daemon, e.DaemonProtocol, e.Client, e.ClientProtocol)
}

// RefusedError says the daemon refused this client for another reason than versions.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "the shoal daemon refused the connection: " + e.Reason }

// Dial connects to the daemon at opts.Socket (or through opts.DialFunc), starting
// one first when none answers and opts.Start is set.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	var c *Client
	var err error
	// A daemon that is dying may still accept a connection and then reset it: try
	// once more (starting a new daemon) when the greeting breaks.
	for range 2 {
		var nc net.Conn
		nc, err = dialOnce(ctx, opts)
		if err != nil && opts.Start != nil && opts.DialFunc == nil && opts.TLS == nil && !untrusted(err) {
			if err = autoStart(ctx, *opts.Start); err == nil {
				nc, err = dialRetry(ctx, opts)
			}
		}
		if err != nil {
			return nil, err
		}
		c, err = New(ctx, nc, opts)
		var ve *VersionError
		var re *RefusedError
		if err == nil || errors.As(err, &ve) || errors.As(err, &re) || ctx.Err() != nil {
			return c, err
		}
	}
	return nil, err
}

// untrusted reports whether err refuses a daemon, its socket or its files as another
// user's: starting a daemon or retrying cannot help.
func untrusted(err error) bool {
	var pe *fsutil.PrivateError
	var ue *UntrustedError
	return errors.As(err, &pe) || errors.As(err, &ue)
}

func dialOnce(ctx context.Context, opts Options) (net.Conn, error) {
	if opts.DialFunc != nil {
		return opts.DialFunc(ctx)
	}
	if opts.TLS != nil {
		d := tls.Dialer{Config: opts.TLS}
		nc, err := d.DialContext(ctx, "tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", opts.Addr, err)
		}
		return nc, nil
	}
	if err := checkSocket(opts.Socket); err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", opts.Socket)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w: %w", opts.Socket, ErrNotRunning, err)
	}
	if err := checkPeer(nc, opts.Socket); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// checkSocket refuses a socket, or a socket directory, that another user owns or may
// write: whoever listens there would get this user's commands and stdin. A missing one
// is ErrNotRunning.
func checkSocket(socket string) error {
	for _, p := range []struct{ path, what string }{
		{filepath.Dir(socket), "the shoal daemon's socket directory"},
		{socket, "the shoal daemon's socket"},
	} {
		err := fsutil.CheckPrivate(p.path, p.what)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("connecting to %s: %w: %w", socket, ErrNotRunning, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// UntrustedError says the process answering on the daemon's socket runs as another user.
type UntrustedError struct {
	Socket   string
	UID, PID int // the peer's
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("refusing the shoal daemon on %s: it runs as uid %d (pid %d), not as you (uid %d)",
		e.Socket, e.UID, e.PID, os.Getuid())
}

// checkPeer refuses a connection whose other end (SO_PEERCRED) is another user's
// process: the socket's owner was checked, but a name can be swapped between the check
// and the connect.
func checkPeer(nc net.Conn, socket string) error {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("reading the shoal daemon's credentials: %w", err)
	}
	var uid, pid int
	var cerr error
	if err := raw.Control(func(fd uintptr) { uid, pid, cerr = fsutil.SocketPeer(int(fd)) }); err != nil {
		return fmt.Errorf("reading the shoal daemon's credentials: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("reading the shoal daemon's credentials: %w", cerr)
	}
	if uid != os.Getuid() {
		return &UntrustedError{Socket: socket, UID: uid, PID: pid}
	}
	return nil
}

// dialRetry dials with backoff for a bounded time while a daemon comes up.
func dialRetry(ctx context.Context, opts Options) (net.Conn, error) {
	delay := 5 * time.Millisecond
	deadline := time.Now().Add(startWait)
	for {
		nc, err := dialOnce(ctx, opts)
		if err == nil || untrusted(err) || time.Now().After(deadline) {
			return nc, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// New speaks hello over nc and returns a client. It takes ownership of nc.
func New(ctx context.Context, nc net.Conn, opts Options) (*Client, error) {
	c := &Client{nc: nc, pc: proto.NewConn(nc, nc, proto.ConnOptions{MaxFrame: maxFrame}),
		pending: map[uint64]*call{}, done: make(chan struct{}), closing: make(chan struct{}), remote: opts.TLS != nil}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	sendErr := make(chan error, 1)
	go func() {
		sendErr <- c.pc.Send(0, proto.TypeClientHello, &proto.ClientHello{Protocol: proto.Version,
			Client: proto.ClientVersion, Program: version, Identity: opts.Identity, PID: os.Getpid(), Hops: opts.Hops,
			Config: opts.Config})
	}()
	env, err := c.pc.Recv()
	var hello proto.DaemonHello
	var verr *proto.VersionError
	if env != nil && (err == nil || errors.As(err, &verr)) && env.Type == proto.TypeDaemonHello {
		env.Decode(&hello)
	}
	mismatch := verr != nil || (err == nil && (hello.Protocol != proto.Version || hello.Client != proto.ClientVersion))
	if err == nil && !mismatch && env.Type != proto.TypeDaemonHello {
		err = fmt.Errorf("the daemon's first frame is %v, want daemon-hello", env.Type)
	}
	if !mismatch && err == nil && hello.Err != "" {
		if hello.Protocol != proto.Version || hello.Client != proto.ClientVersion || isVersionRefusal(hello.Err) {
			mismatch = true
		} else {
			err = &RefusedError{Reason: hello.Err}
		}
	}
	if mismatch {
		var dp uint16
		if env != nil {
			dp = env.Version
		}
		if hello.Protocol != 0 {
			dp = hello.Protocol
		}
		err = &VersionError{Daemon: hello.Program, Client: version,
			DaemonProtocol: fmt.Sprintf("%d.%d", dp, hello.Client),
			ClientProtocol: fmt.Sprintf("%d.%d", proto.Version, proto.ClientVersion), Detail: hello.Err, DaemonPID: hello.PID}
	}
	if err != nil {
		nc.Close()
		<-sendErr
		if ctx.Err() != nil {
			return nil, fmt.Errorf("greeting the shoal daemon: %w", ctx.Err())
		}
		var ve *VersionError
		var re *RefusedError
		if errors.As(err, &ve) || errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("greeting the shoal daemon: %w", err)
	}
	if err := <-sendErr; err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting the shoal daemon: %w", err)
	}
	if !stop() {
		// ctx ended just now and its deadline may be on the connection.
		nc.Close()
		return nil, fmt.Errorf("greeting the shoal daemon: %w", ctx.Err())
	}
	nc.SetDeadline(time.Time{})
	if opts.Config != nil && opts.Config.User != "" && !slices.Contains(hello.Caps, proto.CapLoginUser) {
		nc.Close()
		return nil, errors.New("this daemon cannot log in to hosts as another user (-l); stop it with `shoal daemon stop` so that one of this version starts")
	}
	c.hello = hello
	c.wg.Add(1)
	go c.readLoop()
	return c, nil
}

// isVersionRefusal reports whether the daemon's refusal is about versions.
func isVersionRefusal(msg string) bool {
	return strings.Contains(msg, "protocol") || strings.Contains(msg, "version")
}

// DaemonPID returns the daemon's process id, from its hello.
func (c *Client) DaemonPID() int { return c.hello.PID }

// Err returns why the connection to the daemon ended, or nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// DaemonVersion returns the daemon's program version, from its hello.
func (c *Client) DaemonVersion() string { return c.hello.Program }

// Close ends the connection; runs still going are cancelled by the daemon.
func (c *Client) Close() error {
	c.once.Do(func() { close(c.closing) })
	c.nc.Close()
	c.wg.Wait()
	return nil
}

// readLoop routes every frame to the call waiting for it.
func (c *Client) readLoop() {
	defer c.wg.Done()
	var err error
	for {
		var env *proto.Envelope
		env, err = c.pc.Recv()
		if err != nil {
			break
		}
		c.mu.Lock()
		cl := c.pending[env.ID]
		if cl != nil && cl.data != nil && env.Type == proto.TypeGetData {
			c.mu.Unlock()
			var d proto.GetData
			if env.Decode(&d) == nil {
				cl.data(&d)
			}
			continue
		}
		if cl != nil && (cl.reply != nil || env.Type == proto.TypeRunEnd || env.Type == proto.TypeFailed) {
			delete(c.pending, env.ID)
		}
		c.mu.Unlock()
		switch {
		case cl == nil:
			// A reply to a request nobody waits for any more: drop it.
		case cl.reply != nil:
			cl.reply <- env
		default:
			cl.run.handle(env)
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	} else {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	c.mu.Lock()
	c.err = err
	pending := c.pending
	c.pending = map[uint64]*call{}
	c.mu.Unlock()
	close(c.done)
	for _, cl := range pending {
		if cl.reply != nil {
			close(cl.reply)
		} else {
			cl.run.fail(err)
		}
	}
}

// register reserves a new request id.
func (c *Client) register(cl *call) (uint64, error) {
	id := c.nextID.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.pending[id] = cl
	return id, nil
}

func (c *Client) unregister(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// roundTrip sends one request and waits for its reply, decoded into out.
func (c *Client) roundTrip(ctx context.Context, t proto.Type, body any, want proto.Type, out any) error {
	cl := &call{reply: make(chan *proto.Envelope, 1)}
	id, err := c.register(cl)
	if err != nil {
		return err
	}
	if err := c.pc.Send(id, t, body); err != nil {
		c.unregister(id)
		return fmt.Errorf("sending %v: %w", t, err)
	}
	return c.wait(ctx, id, cl, want, out, false)
}

// wait waits for the reply to request id, decoded into out. When ctx ends first
// and cancel is set, the daemon is asked to cancel the request.
func (c *Client) wait(ctx context.Context, id uint64, cl *call, want proto.Type, out any, cancel bool) error {
	select {
	case env, ok := <-cl.reply:
		if !ok {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return err
		}
		return decodeReply(env, want, out)
	case <-ctx.Done():
		c.unregister(id)
		if cancel {
			c.pc.Send(id, proto.TypeCancel, &proto.Cancel{})
		}
		return ctx.Err()
	}
}

func decodeReply(env *proto.Envelope, want proto.Type, out any) error {
	if env.Type == proto.TypeFailed {
		var f proto.Failed
		if err := env.Decode(&f); err != nil {
			return err
		}
		return &f
	}
	if env.Type != want {
		return fmt.Errorf("the daemon answered %v, want %v", env.Type, want)
	}
	return env.Decode(out)
}

// Ping checks each host's agent and reports its round trip.
func (c *Client) Ping(ctx context.Context, hosts []string) ([]PingResult, error) {
	var r proto.PingResults
	if err := c.roundTrip(ctx, proto.TypePingHosts, &proto.HostsRequest{Hosts: hosts}, proto.TypePingResults, &r); err != nil {
		return nil, err
	}
	out := make([]PingResult, len(r.Results))
	for i, p := range r.Results {
		out[i] = PingResult{Host: p.Host, RTT: time.Duration(p.RTT), Status: p.Status, Err: p.Err}
	}
	return out, nil
}

// Info asks each host's agent to describe its host.
func (c *Client) Info(ctx context.Context, hosts []string) ([]InfoResult, error) {
	var r proto.InfoResults
	if err := c.roundTrip(ctx, proto.TypeInfoHosts, &proto.HostsRequest{Hosts: hosts}, proto.TypeInfoResults, &r); err != nil {
		return nil, err
	}
	out := make([]InfoResult, len(r.Results))
	for i, p := range r.Results {
		out[i] = InfoResult{Host: p.Host, Status: p.Status, Err: p.Err, Hostname: p.Hostname, OS: p.OS,
			Arch: p.Arch, Kernel: p.Kernel, CPUs: p.CPUs, MemTotal: p.MemTotal, MemAvailable: p.MemAvailable,
			Load: p.Load, Uptime: time.Duration(p.Uptime), AgentVersion: p.AgentVersion, AgentHash: p.AgentHash,
			Clock: unixTime(p.Clock)}
	}
	return out, nil
}

// Time reports each host's clock offset from the daemon's, corrected for round trip.
func (c *Client) Time(ctx context.Context, hosts []string) ([]TimeResult, error) {
	var r proto.TimeResults
	if err := c.roundTrip(ctx, proto.TypeTimeHosts, &proto.HostsRequest{Hosts: hosts}, proto.TypeTimeResults, &r); err != nil {
		return nil, err
	}
	out := make([]TimeResult, len(r.Results))
	for i, p := range r.Results {
		out[i] = TimeResult{Host: p.Host, Status: p.Status, Err: p.Err, Offset: time.Duration(p.Offset), RTT: time.Duration(p.RTT)}
	}
	return out, nil
}

// Put copies a local file to Dest on every host. Over a Unix socket the daemon
// reads the file itself, so LocalPath is made absolute here; over TLS the file's
// bytes are streamed to the daemon (PutFrom).
func (c *Client) Put(ctx context.Context, hosts []string, req PutRequest) ([]FileResult, error) {
	p, err := filepath.Abs(req.LocalPath)
	if err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	if req.Tree && !slices.Contains(c.hello.Caps, proto.CapTree) {
		return nil, errTreeUnsupported
	}
	if c.remote {
		return c.putStream(ctx, hosts, p, req)
	}
	var r proto.FileResults
	if err := c.roundTrip(ctx, proto.TypePut, &proto.PutRequest{Hosts: hosts, LocalPath: p, Dest: req.Dest, Mode: uint32(req.Mode.Perm()), Tree: req.Tree},
		proto.TypeFileResults, &r); err != nil {
		return nil, err
	}
	return fileResults(r), nil
}

// Get copies Src from every host into DestDir/<host>/<base name of Src>. Over a
// Unix socket the daemon writes the files; over TLS they are streamed back and
// written here (GetTo and Saver).
func (c *Client) Get(ctx context.Context, hosts []string, req GetRequest) ([]FileResult, error) {
	d, err := filepath.Abs(req.DestDir)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	switch {
	case req.Tree && !slices.Contains(c.hello.Caps, proto.CapTree):
		return nil, errTreeUnsupported
	case c.remote:
		return c.getStream(ctx, hosts, req.Src, d, req.Tree)
	}
	var r proto.FileResults
	if err := c.roundTrip(ctx, proto.TypeGet, &proto.GetRequest{Hosts: hosts, Src: req.Src, DestDir: d, Tree: req.Tree}, proto.TypeFileResults, &r); err != nil {
		return nil, err
	}
	return fileResults(r), nil
}

func fileResults(r proto.FileResults) []FileResult {
	out := make([]FileResult, len(r.Results))
	for i, p := range r.Results {
		out[i] = FileResult{Host: p.Host, Status: p.Status, Err: p.Err, Bytes: p.Bytes, Path: p.Path, Mode: fs.FileMode(p.Mode).Perm()}
	}
	return out
}

// Status describes the daemon and every host session it holds.
func (c *Client) Status(ctx context.Context) (*DaemonStatus, error) {
	var r proto.DaemonStatus
	if err := c.roundTrip(ctx, proto.TypeStatus, &proto.StatusRequest{}, proto.TypeStatusResult, &r); err != nil {
		return nil, err
	}
	out := &DaemonStatus{PID: r.PID, Version: r.Version, Started: unixTime(r.Started), Clients: r.Clients, Socket: r.Socket,
		Goroutines: r.Goroutines, HeapLive: r.HeapLive, HeapInUse: r.HeapInUse, FDs: r.FDs, GCCycles: r.GCCycles}
	for _, h := range r.Hosts {
		out.Hosts = append(out.Hosts, HostStatus{Host: h.Host, State: h.State, AgentVersion: h.AgentVersion,
			AgentPID: h.AgentPID, LastRTT: time.Duration(h.LastRTT), LastSeen: unixTime(h.LastSeen), Running: h.Running, Err: h.Err,
			Config: h.Config})
	}
	return out, nil
}

// Last returns the results of this user's most recent completed runs, newest first. When
// the history could not be read whole it returns the runs it could read and a *HistoryError.
func (c *Client) Last(ctx context.Context, n int) ([]proto.RunRecord, error) {
	var r proto.LastResult
	if err := c.roundTrip(ctx, proto.TypeLast, &proto.LastRequest{N: n}, proto.TypeLastResult, &r); err != nil {
		return nil, err
	}
	if r.Problem != "" {
		return r.Runs, &HistoryError{Problem: r.Problem}
	}
	return r.Runs, nil
}

// Stop asks the daemon to shut down and waits for its acknowledgement.
func (c *Client) Stop(ctx context.Context) error {
	var r proto.Stopping
	return c.roundTrip(ctx, proto.TypeStop, &proto.Stop{}, proto.TypeStopping, &r)
}

// Reload asks the daemon to read every configuration file again at its next use.
func (c *Client) Reload(ctx context.Context) error {
	var r proto.Reloaded
	return c.roundTrip(ctx, proto.TypeReload, &proto.Reload{}, proto.TypeReloaded, &r)
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
