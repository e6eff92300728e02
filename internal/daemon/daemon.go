package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/hostsess"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/state"
	"github.com/shoal-sh/shoal/internal/transport"
)

// DefaultFanout is the number of concurrent SSH handshakes when Options.Fanout is 0.
const DefaultFanout = 64

// ClientMaxFrame is the largest frame on a client connection.
const ClientMaxFrame = 64 << 20

// Host is how to reach one host: the transport and its target.
type Host struct {
	Target        transport.Target
	Transport     transport.Transport
	TransportName string // "ssh", "openssh" or "local", for the state file
	// Key identifies the connection the host is reached by (its transport and everything
	// the configuration resolves for it): requests for hosts of one Key share one session.
	// "" means the host name.
	Key string
	// Config describes the configuration the host was resolved from, for status.
	Config string
}

// Options configure a daemon. The zero value serves nothing useful: Resolve is required.
type Options struct {
	// Resolve says how to reach a host; it is called once per host, on first use.
	Resolve func(host string) (Host, error)
	// ResolveFor, when set, replaces Resolve: it says how to reach a host under the
	// configuration of the client whose request names it (the zero ClientConfig for a
	// request with none: a gateway's, or a remote client's), and is called for every
	// request, so that what the configuration files say at that moment decides. Requests
	// whose hosts resolve to the same Key share a session.
	ResolveFor func(cfg proto.ClientConfig, host string) (Host, error)
	// Reload, when set, is called for a reload request: configuration files are to be read
	// again at their next use.
	Reload func() error
	// Fanout bounds concurrent connects (SSH handshakes) across all hosts; 0 = DefaultFanout.
	Fanout int
	// Version is the program version reported to clients.
	Version string
	// Socket is reported in status (the listener's path).
	Socket string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Audit receives the audit records; nil discards them. Serve does not close it.
	Audit *audit.Log
	// StateFile is the private state file; "" keeps no state file.
	StateFile string
	// HistoryFile keeps the result history across restarts; "" keeps it in memory only.
	HistoryFile string
	// HistoryRuns and HistoryBytes bound the result history (0 = defaults).
	HistoryRuns  int
	HistoryBytes int64
	// OutputCap bounds the output (stdout and stderr together) each host's agent
	// keeps and sends for a run (config agent.output_cap); 0 = the agent's default.
	OutputCap int64
	// IdleExit stops the daemon after this long with no client; 0 = stay.
	IdleExit time.Duration
	// IdleHostTimeout closes a connected host session unused for this long (its agent
	// exits; the next request reconnects); 0 means DefaultIdleHostTimeout. Sessions of
	// unreachable hosts are forgotten once their reconnects end, whatever it is.
	IdleHostTimeout time.Duration
	// KeepOnDisconnect lets a client's running commands finish after it disconnects
	// (results go to the audit log and history); the default kills them.
	KeepOnDisconnect bool
	// AllowUnverifiedTLS accepts TLS clients that show no verified certificate
	// (config insecure_no_client_auth). Do not.
	AllowUnverifiedTLS bool
	// Gateways are other daemons that reach some hosts: the first whose Match
	// takes a host gets that host's share of every request.
	Gateways []Gateway
	// Session tunes every host session (heartbeat, backoff, timeouts); Target,
	// Transport, Handshakes, Logger, Orphan and OnState are filled in by the daemon.
	Session hostsess.Options
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// MetricsListener, when set, serves Prometheus metrics over HTTP at /metrics
	// (config daemon.metrics_listen). Serve closes it.
	MetricsListener net.Listener

	// peerCred reads a connection's peer; nil = SO_PEERCRED. Tests replace it.
	peerCred func(net.Conn) (PeerCred, error)
	// sendTimeout bounds one frame to a client; 0 = sendTimeout. Tests shorten it.
	sendTimeout time.Duration
	// gatewayBeat is how often gateways are checked; 0 = gatewayBeat. Tests shorten it.
	gatewayBeat time.Duration
}

// server is one running daemon.
type server struct {
	opts    Options
	log     *slog.Logger
	audit   *audit.Log
	hist    *history
	metrics *promMetrics
	started time.Time
	uid     int
	sem     chan struct{}
	gws     []*gateway

	ctx      context.Context // cancelled when the daemon stops
	stop     context.CancelCauseFunc
	nextRun  atomic.Uint64
	nextConn atomic.Uint64

	mu       sync.Mutex // protects the following
	sessions map[string]*hostSess
	// peakSessions is the most sessions held since the map was last copied (see sweep).
	peakSessions int
	// reported holds the results reported to clients in the last reportedFor, by
	// reportedKey, and recovering the runs a previous daemon left in flight (recover.go).
	reported   map[string]time.Time
	recovering map[uint64]bool
	clients    map[uint64]*clientConn
	idle       *time.Timer
	st         *state.File
	dirty      bool

	stateKick chan struct{}
	wg        sync.WaitGroup // client connections and helpers
}

// hostSess is a host session and how it was made.
type hostSess struct {
	*hostsess.Session
	transport string
	config    string // the configuration it was resolved from
	pins      int    // requests using the session; guarded by server.mu
}

// errStopped is the cause when a client asked the daemon to stop.
var errStopped = errors.New("daemon stopped by a client")

// errIdle is the cause when the daemon exits for having no clients.
var errIdle = errors.New("daemon idle")

// Serve accepts clients on ln until ctx is done, a client sends stop, or IdleExit
// passes with no client. It then closes ln, ends every client connection (their
// runs are cancelled), closes every host session and writes the state file.
// It returns nil after a clean stop.
func Serve(ctx context.Context, ln net.Listener, opts Options) error {
	if opts.Resolve == nil && opts.ResolveFor == nil {
		return errors.New("daemon options: Resolve is required")
	}
	if opts.Fanout <= 0 {
		opts.Fanout = DefaultFanout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.peerCred == nil {
		opts.peerCred = peerCred
	}
	if opts.sendTimeout <= 0 {
		opts.sendTimeout = sendTimeout
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	s := &server{
		opts:       opts,
		log:        opts.Logger,
		audit:      opts.Audit,
		started:    opts.Now(),
		uid:        os.Getuid(),
		sem:        make(chan struct{}, opts.Fanout),
		sessions:   map[string]*hostSess{},
		recovering: map[uint64]bool{},
		clients:    map[uint64]*clientConn{},
		stateKick:  make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, g := range opts.Gateways {
		if g.Match == nil || g.Dial == nil {
			return fmt.Errorf("daemon options: gateway %s needs Match and Dial", g.Address)
		}
		beat := opts.gatewayBeat
		if beat <= 0 {
			beat = gatewayBeat
		}
		s.gws = append(s.gws, &gateway{Gateway: g, beat: beat, stop: make(chan struct{})})
	}
	if s.audit == nil {
		s.audit = audit.Discard()
	}
	// Run ids stay unique across restarts: start from the clock.
	s.nextRun.Store(uint64(s.started.UnixNano()) &^ 0xffff)
	var err error
	if s.hist, err = newHistory(opts.HistoryFile, opts.HistoryRuns, opts.HistoryBytes); err != nil {
		return err
	}
	s.st = &state.File{Hosts: map[string]state.Host{}}
	if opts.StateFile != "" {
		var pe *fsutil.PrivateError
		if s.st, err = state.Load(opts.StateFile); errors.As(err, &pe) {
			return err // another user's state file names the hosts to reconnect to
		} else if err != nil {
			s.log.Warn("starting with an empty state", "err", err)
			s.st = &state.File{Hosts: map[string]state.Host{}}
		}
	}
	s.metrics = newMetrics(s)
	if opts.MetricsListener != nil {
		stopMetrics := s.metrics.serveMetrics(opts.MetricsListener, s.log.Warn)
		defer stopMetrics()
		s.log.Info("serving metrics", "listen", opts.MetricsListener.Addr().String())
	}
	s.ctx, s.stop = context.WithCancelCause(ctx)
	defer s.stop(nil)

	s.audit.Event("daemon started", "pid", os.Getpid(), "version", opts.Version, "socket", opts.Socket)
	s.log.Info("daemon serving", "socket", opts.Socket, "pid", os.Getpid())

	s.wg.Add(3)
	go s.stateLoop()
	go s.sweepLoop()
	go s.recoverRuns()
	s.mu.Lock()
	s.armIdleLocked()
	s.mu.Unlock()

	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		s.acceptLoop(ln)
	}()
	<-s.ctx.Done()
	ln.Close()
	<-acceptDone

	// Close the host sessions first: each agent's input ends, so it takes no more
	// work but lets running commands finish and keeps their results for the next
	// daemon; the runs waiting on them end with an error. Then the clients go.
	s.mu.Lock()
	if s.idle != nil {
		s.idle.Stop()
	}
	sessions := make([]*hostSess, 0, len(s.sessions))
	for _, hs := range s.sessions {
		sessions = append(sessions, hs)
	}
	s.mu.Unlock()
	var cwg sync.WaitGroup
	for _, gw := range s.gws {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			gw.close()
		}()
	}
	for _, hs := range sessions {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			hs.Close()
		}()
	}
	cwg.Wait()
	s.mu.Lock()
	for _, c := range s.clients {
		c.stopping()
	}
	s.mu.Unlock()
	s.wg.Wait() // clients gone, state loop ended
	s.dirty = true
	s.flushState()
	cause := context.Cause(s.ctx)
	s.audit.Event("daemon stopped", "pid", os.Getpid(), "cause", cause.Error())
	s.log.Info("daemon stopped", "cause", cause)
	if errors.Is(cause, errStopped) || errors.Is(cause, errIdle) || errors.Is(cause, context.Canceled) {
		return nil
	}
	return cause
}

func (s *server) acceptLoop(ln net.Listener) {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				s.stop(fmt.Errorf("accepting clients: %w", err))
				return
			}
			// Temporary failure (EMFILE): back off, bounded.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accepting a client", "err", err)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		c := s.newClient(nc)
		if c == nil {
			continue
		}
		go func() {
			defer s.wg.Done()
			c.serve()
		}()
	}
}

// newClient registers a connection; it returns nil when the daemon is stopping.
func (s *server) newClient(nc net.Conn) *clientConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		nc.Close()
		return nil
	}
	c := &clientConn{s: s, nc: nc, id: s.nextConn.Add(1), runs: map[uint64]context.CancelCauseFunc{},
		killNow: map[uint64]chan struct{}{}}
	s.clients[c.id] = c
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	s.wg.Add(1)
	return c
}

func (s *server) dropClient(c *clientConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, c.id)
	s.armIdleLocked()
}

// armIdleLocked starts the idle timer when no client is connected.
func (s *server) armIdleLocked() {
	if s.opts.IdleExit <= 0 || len(s.clients) > 0 || s.idle != nil {
		return
	}
	s.idle = time.AfterFunc(s.opts.IdleExit, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.clients) == 0 {
			s.stop(errIdle)
		}
	})
}

// checkHost refuses host names no transport should see: empty, too long, starting
// with '-' (an option to ssh), or holding spaces or control characters.
func checkHost(host string) error {
	if host == "" || len(host) > 255 || strings.HasPrefix(host, "-") ||
		strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("bad host name %q", host)
	}
	return nil
}

// configKey is the context key of the configuration of the client a request came from.
type configKey struct{}

func withClientConfig(ctx context.Context, cfg *proto.ClientConfig) context.Context {
	if cfg == nil {
		return ctx
	}
	return context.WithValue(ctx, configKey{}, *cfg)
}

// session returns the host session by which the request of ctx reaches host, creating it on
// first use, pinned: the sweep does not close it until the returned func (never nil) unpins it.
func (s *server) session(ctx context.Context, host string) (*hostSess, func(), error) {
	nop := func() {}
	if err := checkHost(host); err != nil {
		return nil, nop, err
	}
	var h Host
	key := host
	if s.opts.ResolveFor != nil {
		cfg, _ := ctx.Value(configKey{}).(proto.ClientConfig)
		var err error
		if h, err = s.opts.ResolveFor(cfg, host); err != nil {
			return nil, nop, fmt.Errorf("resolving host %s: %w", host, err)
		}
		if h.Key != "" {
			key = h.Key
		}
	} else {
		s.mu.Lock()
		if hs, ok := s.sessions[key]; ok {
			return hs, s.pinLocked(hs), nil
		}
		s.mu.Unlock()
		var err error
		if h, err = s.opts.Resolve(host); err != nil {
			return nil, nop, fmt.Errorf("resolving host %s: %w", host, err)
		}
	}
	s.mu.Lock()
	if hs, ok := s.sessions[key]; ok {
		return hs, s.pinLocked(hs), nil
	}
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return nil, nop, errors.New("daemon is stopping")
	}
	o := s.opts.Session
	o.Target = h.Target
	if o.Target.Name == "" {
		o.Target.Name = host
	}
	o.Transport = h.Transport
	o.Handshakes = s.sem
	o.Logger = s.log.With("host", host)
	if o.Now == nil {
		o.Now = s.opts.Now
	}
	o.Orphan = s.orphan
	userOnState := s.opts.Session.OnState
	o.OnState = func(host string, st hostsess.State) {
		s.noteState(key, host, st)
		if userOnState != nil {
			userOnState(host, st)
		}
	}
	hs := &hostSess{Session: hostsess.New(o), transport: h.TransportName, config: h.Config}
	s.sessions[key] = hs
	return hs, s.pinLocked(hs), nil
}

// pinLocked pins hs, unlocks s.mu and returns the func that unpins it.
func (s *server) pinLocked(hs *hostSess) func() {
	hs.pins++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			hs.pins--
			s.mu.Unlock()
		})
	}
}

// DefaultIdleHostTimeout is how long a connected host session may go unused before the
// daemon closes it (its agent exits), when Options.IdleHostTimeout is 0.
const DefaultIdleHostTimeout = 10 * time.Minute

// maxSweepEvery bounds the time between two sweeps of the host sessions.
const maxSweepEvery = 10 * time.Second

// sweepLoop closes host sessions nobody uses, until the daemon stops: see sweep.
func (s *server) sweepLoop() {
	defer s.wg.Done()
	every := min(s.idleHostTimeout()/4, maxSweepEvery)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.sweep()
		}
	}
}

func (s *server) idleHostTimeout() time.Duration {
	if s.opts.IdleHostTimeout > 0 {
		return s.opts.IdleHostTimeout
	}
	return DefaultIdleHostTimeout
}

// sweep forgets the host sessions that are neither pinned by a request nor busy
// (hostsess.Session.Idle): a session that never connected or whose reconnects ended
// (idle or lost: the host is unreachable and its backoff is over) at once, a connected
// one after IdleHostTimeout without use. A host that never answered leaves the state
// file too, so a run over many unreachable names leaves nothing behind.
func (s *server) sweep() {
	now := s.opts.Now()
	var gone []*hostSess
	s.mu.Lock()
	for name, hs := range s.sessions {
		if hs.pins > 0 {
			continue
		}
		since, idle := hs.Idle()
		if !idle {
			continue
		}
		switch hs.Status().State {
		case hostsess.StateIdle, hostsess.StateLost, hostsess.StateClosed:
		default:
			if now.Sub(since) < s.idleHostTimeout() {
				continue
			}
		}
		delete(s.sessions, name)
		if h, ok := s.st.Hosts[hs.Host()]; ok && h.AgentPath == "" && h.LastSeen.IsZero() {
			delete(s.st.Hosts, hs.Host())
			s.dirty = true
		}
		gone = append(gone, hs)
	}
	// Go maps keep their buckets when emptied: copy them once they have shrunk a lot, or
	// a run over many names would hold their size for good.
	if len(gone) > 0 {
		if s.peakSessions = max(s.peakSessions, len(s.sessions)+len(gone)); len(s.sessions) < s.peakSessions/4 {
			s.sessions, s.peakSessions = maps.Clone(s.sessions), len(s.sessions)
			if s.sessions == nil {
				s.sessions = map[string]*hostSess{}
			}
			s.st.Hosts = maps.Clone(s.st.Hosts)
			if s.st.Hosts == nil {
				s.st.Hosts = map[string]state.Host{}
			}
		}
	}
	s.mu.Unlock()
	if len(gone) == 0 {
		return
	}
	s.log.Debug("closing unused host sessions", "n", len(gone))
	var wg sync.WaitGroup
	for _, hs := range gone {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs.Close()
		}()
	}
	wg.Wait()
	select {
	case s.stateKick <- struct{}{}:
	default:
	}
}

// connInfoer is implemented by host sessions that expose their transport's ConnInfo.
type connInfoer interface {
	ConnInfo() transport.ConnInfo
}

// noteState updates the state file's record of host, whose session is sessions[key].
func (s *server) noteState(key, host string, st hostsess.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, known := s.st.Hosts[host]
	if _, live := s.sessions[key]; !live && !known {
		return // a forgotten host's session closing (see sweep)
	}
	h.LastState = string(st)
	if hs, ok := s.sessions[key]; ok {
		h.Transport = hs.transport
		if st == hostsess.StateReady {
			h.LastSeen = s.opts.Now().UTC()
			if ci, ok := any(hs.Session).(connInfoer); ok {
				info := ci.ConnInfo()
				h.AgentPath, h.AgentHash = info.AgentPath, info.AgentHash
			}
		}
	}
	s.st.Hosts[host] = h
	s.dirty = true
	select {
	case s.stateKick <- struct{}{}:
	default:
	}
}

// noteAgent records an agent's version and hash in the state file.
func (s *server) noteAgent(host, version, hash string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.st.Hosts[host]
	if h.AgentVersion == version && h.AgentHash == hash {
		return
	}
	h.AgentVersion, h.AgentHash = version, hash
	s.st.Hosts[host] = h
	s.dirty = true
	select {
	case s.stateKick <- struct{}{}:
	default:
	}
}

// stateLoop writes the state file at most twice a second while it changes, and once more at the end.
func (s *server) stateLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.stateKick:
		}
		s.flushState()
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *server) flushState() {
	if s.opts.StateFile == "" {
		return
	}
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return
	}
	// Refresh agent versions and last-seen times from the live sessions.
	for _, hs := range s.sessions {
		name := hs.Host()
		st := hs.Status()
		h := s.st.Hosts[name]
		if st.AgentVersion != "" {
			h.AgentVersion = st.AgentVersion
		}
		if st.LastSeen.After(h.LastSeen) {
			h.LastSeen = st.LastSeen.UTC()
		}
		s.st.Hosts[name] = h
	}
	s.st.Updated = s.opts.Now().UTC()
	data := *s.st
	data.Hosts = make(map[string]state.Host, len(s.st.Hosts))
	for k, v := range s.st.Hosts {
		data.Hosts[k] = v
	}
	data.Runs = make(map[uint64]state.Run, len(s.st.Runs))
	for k, v := range s.st.Runs {
		data.Runs[k] = v.Clone()
	}
	s.dirty = false
	s.mu.Unlock()
	if err := data.Save(s.opts.StateFile); err != nil {
		s.log.Warn("writing the state file", "err", err)
	}
}

// status describes the daemon.
func (s *server) status() *proto.DaemonStatus {
	s.mu.Lock()
	out := &proto.DaemonStatus{PID: os.Getpid(), Version: s.opts.Version, Started: s.started.UnixNano(),
		Clients: len(s.clients), Socket: s.opts.Socket}
	sessions := make([]*hostSess, 0, len(s.sessions))
	for _, hs := range s.sessions {
		sessions = append(sessions, hs)
	}
	s.mu.Unlock()
	for _, hs := range sessions {
		st := hs.Status()
		h := proto.HostStatus{Host: hs.Host(), State: string(st.State), AgentVersion: st.AgentVersion,
			AgentPID: st.AgentPID, LastRTT: int64(st.LastRTT), Running: st.Running, Config: hs.config}
		if !st.LastSeen.IsZero() {
			h.LastSeen = st.LastSeen.UnixNano()
		}
		if st.Err != nil {
			h.Err = st.Err.Error()
		}
		out.Hosts = append(out.Hosts, h)
	}
	sort.Slice(out.Hosts, func(i, j int) bool { return out.Hosts[i].Host < out.Hosts[j].Host })
	addResources(out)
	return out
}

// resourceMetrics are the runtime/metrics samples the status answer reports. None of them
// forces a GC: the live heap is what the last cycle found.
var resourceMetrics = [...]string{
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/gc/cycles/total:gc-cycles",
}

// addResources fills in the daemon's goroutines, heap and open file descriptors.
func addResources(out *proto.DaemonStatus) {
	out.Goroutines = runtime.NumGoroutine()
	var samples [len(resourceMetrics)]metrics.Sample
	for i, name := range resourceMetrics {
		samples[i].Name = name
	}
	metrics.Read(samples[:])
	u := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0 // unknown to this runtime
		}
		return samples[i].Value.Uint64()
	}
	out.HeapLive = u(0)
	out.HeapInUse = u(1) + u(2)
	out.GCCycles = u(3)
	out.FDs = openFDs()
}

// openFDs counts the process's open file descriptors from /proc/self/fd, not counting the one
// that reads it; 0 where there is no /proc.
func openFDs() int {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil || len(names) == 0 {
		return 0
	}
	return len(names) - 1
}
