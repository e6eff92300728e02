package hostsess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// Defaults for zero Options fields.
const (
	defaultHeartbeat      = 5 * time.Second
	defaultMissed         = 3
	defaultBackoff        = time.Second
	maxBackoffFactor      = 64
	defaultConnectTimeout = 60 * time.Second
	defaultKillWait       = 2 * time.Second
	defaultSideTimeout    = 10 * time.Second
	// maxReconnects bounds the background connect attempts after a loss; past it
	// the session waits for the next request to try again.
	maxReconnects = 6
	// readBufferSize is the per-connection read buffer: frames larger than it are
	// read straight into their own buffer, so a small one costs nothing but keeps
	// thousands of idle sessions cheap.
	readBufferSize = 512
)

// errClosed is the cause of everything that fails because Close was called.
var errClosed = errors.New("session closed")

// Session is one host's connection to its agent. Its methods are safe for concurrent use.
type Session struct {
	opts Options
	host string
	log  *slog.Logger
	ids  atomic.Uint64

	ctx    context.Context // cancelled by Close; bounds connects and side commands
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // readers, dials and recoveries

	// mu protects the following.
	mu      sync.Mutex
	state   State
	stateQ  []State // state changes not yet passed to OnState
	cur     *conn   // the ready connection, or nil
	dialing chan struct{}
	// recovering is closed when the recovery of an unresponsive agent ends.
	recovering chan struct{}
	lastErr    error
	failures   int // consecutive failed connects
	retryAt    time.Time
	retry      *time.Timer
	keep       bool // reconnect in the background after a loss (set once connected)
	calls      map[uint64]*call
	unacked    map[uint64]bool // results delivered whose ack could not be sent
	hello      proto.Hello
	lastRTT    time.Duration
	lastSeen   time.Time
	lastUsed   time.Time // when a call last started or ended
	closed     bool

	notifyMu sync.Mutex // serialises OnState calls, in order
}

// New returns a session; it connects lazily on the first request and reconnects after loss.
func New(opts Options) *Session {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = defaultHeartbeat
	}
	if opts.Missed <= 0 {
		opts.Missed = defaultMissed
	}
	if opts.Backoff <= 0 {
		opts.Backoff = defaultBackoff
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = defaultConnectTimeout
	}
	if opts.KillWait <= 0 {
		opts.KillWait = defaultKillWait
	}
	if opts.SideTimeout <= 0 {
		opts.SideTimeout = defaultSideTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Session{opts: opts, host: opts.Target.Name, state: StateIdle, lastUsed: opts.Now()}
	s.log = log.With("host", s.host)
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	// Request ids start from the clock so that they stay unique across daemon
	// restarts: an agent re-delivers old results under their original ids.
	s.ids.Store(uint64(time.Now().UnixNano()))
	return s
}

// Host returns the host name of the session's target.
func (s *Session) Host() string { return s.host }

// ConnInfo describes how the current connection to the agent was made (where the agent
// binary is and its hash); it is zero while the session is not connected. When the transport
// does not know the hash, it is the one the agent reported in hello.
func (s *Session) ConnInfo() transport.ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return transport.ConnInfo{}
	}
	ci := s.cur.tc.Info()
	if ci.AgentHash == "" {
		ci.AgentHash = s.cur.hello.BinarySHA256
	}
	return ci
}

// Status returns a snapshot of the session.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Host:         s.host,
		State:        s.state,
		AgentVersion: s.hello.Program,
		AgentPID:     s.hello.PID,
		LastRTT:      s.lastRTT,
		LastSeen:     s.lastSeen,
		Err:          s.lastErr,
	}
	for _, cl := range s.calls {
		if cl.kind == kindExec && !cl.abandoned {
			st.Running++
		}
	}
	return st
}

// Close stops the session: closes the agent's stdin (running commands finish into
// their result dirs), stops the heartbeat and waits for its goroutines. Calls in
// flight fail with a Closed error.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.setStateLocked(StateClosed)
	if s.retry != nil {
		s.retry.Stop()
		s.retry = nil
	}
	c := s.cur
	s.cur = nil
	for id, cl := range s.calls {
		cl.push(item{lost: true, err: errClosed})
		if cl.abandoned {
			delete(s.calls, id)
		}
	}
	s.mu.Unlock()
	s.flushStates()
	s.cancel(errClosed)
	if c != nil {
		c.shutdown(errClosed, false)
	}
	s.wg.Wait()
	return nil
}

// errorf returns an *Error with reason r for op on this host.
func (s *Session) errorf(r proto.Reason, op string, err error) *Error {
	return &Error{Reason: r, Host: s.host, Op: op, Err: err}
}

// setStateLocked records a state change and tells the calls that watch states.
func (s *Session) setStateLocked(st State) {
	if s.state == st {
		return
	}
	s.state = st
	if s.opts.OnState != nil {
		s.stateQ = append(s.stateQ, st)
	}
	for _, cl := range s.calls {
		if cl.watch && !cl.abandoned {
			cl.push(item{state: st})
		}
	}
}

// flushStates passes queued state changes to OnState, in order, without holding mu.
func (s *Session) flushStates() {
	if s.opts.OnState == nil {
		return
	}
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	for {
		s.mu.Lock()
		if len(s.stateQ) == 0 {
			s.stateQ = nil
			s.mu.Unlock()
			return
		}
		st := s.stateQ[0]
		s.stateQ = s.stateQ[1:]
		s.mu.Unlock()
		s.opts.OnState(s.host, st)
	}
}

// ready returns the session's connection, connecting when there is none, and binds cl to it.
// While it waits, cl is registered (without a connection) so that it sees state
// changes; on error it is forgotten.
func (s *Session) ready(ctx context.Context, cl *call) (c *conn, err error) {
	defer func() {
		if err != nil {
			s.dropCall(cl)
		}
	}()
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, s.errorf(proto.ReasonClosed, cl.kind.String(), errClosed)
		}
		s.addCallLocked(cl)
		if c := s.cur; c != nil && s.recovering == nil {
			cl.conn = c
			s.mu.Unlock()
			return c, nil
		}
		var done chan struct{}
		joined := s.dialing != nil || s.recovering != nil
		switch {
		case s.recovering != nil:
			// The agent stopped answering and is being replaced: wait for that.
			done = s.recovering
		case joined:
			done = s.dialing
		case attempt > 0 || (s.state == StateBackoff && s.opts.Now().Before(s.retryAt)):
			err := s.lastErr
			s.mu.Unlock()
			if err == nil {
				err = errors.New("connection lost before use")
			}
			var he *Error
			if errors.As(err, &he) {
				return nil, err
			}
			return nil, s.errorf(connectReason(err), "connect", err)
		default:
			if s.retry != nil {
				s.retry.Stop()
				s.retry = nil
			}
			done = s.startDialLocked()
		}
		if cl.watch && attempt == 0 && joined {
			// Joining a connect already under way: the caller has not seen its state.
			cl.push(item{state: s.state})
		}
		s.mu.Unlock()
		s.flushStates()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// addCallLocked registers cl so that responses with its id reach it.
func (s *Session) addCallLocked(cl *call) {
	if s.calls == nil {
		s.calls = make(map[uint64]*call)
	}
	s.calls[cl.id] = cl
	s.lastUsed = s.opts.Now()
}

// dropCall forgets cl.
func (s *Session) dropCall(cl *call) {
	s.mu.Lock()
	if s.calls[cl.id] == cl {
		delete(s.calls, cl.id)
	}
	s.lastUsed = s.opts.Now()
	s.mu.Unlock()
}

// Idle reports whether the session has nothing to do: no call in flight, no connect,
// backoff or recovery under way, and no acknowledgement owed to the agent. since is when
// its last call started or ended (or when it was made).
func (s *Session) Idle() (since time.Time, idle bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) > 0 || s.dialing != nil || s.retry != nil || s.recovering != nil || len(s.unacked) > 0 {
		return time.Time{}, false
	}
	return s.lastUsed, true
}

// startDialLocked starts a connect attempt in the background and returns a channel
// closed when it ends.
func (s *Session) startDialLocked() chan struct{} {
	if s.dialing != nil {
		return s.dialing
	}
	done := make(chan struct{})
	s.dialing = done
	s.setStateLocked(StateConnecting)
	s.wg.Add(1)
	go s.dial(done)
	return done
}

// dial runs one connect attempt (with one reinstall on a hash mismatch) and
// installs the connection or schedules the next attempt.
func (s *Session) dial(done chan struct{}) {
	defer s.wg.Done()
	c, err := s.connect()
	s.mu.Lock()
	s.dialing = nil
	close(done)
	if s.closed {
		s.mu.Unlock()
		if c != nil {
			c.shutdown(errClosed, false)
		}
		return
	}
	if err == nil {
		s.cur = c
		s.hello = c.hello
		s.lastSeen = s.opts.Now()
		s.failures = 0
		s.lastErr = nil
		s.keep = true
		s.setStateLocked(StateReady)
		for _, cl := range s.calls {
			if cl.reoffer {
				cl.push(item{reconnected: c})
			}
		}
		s.wg.Add(1)
		go c.readLoop()
		c.startHeartbeat()
		s.mu.Unlock()
		s.flushStates()
		return
	}
	s.log.Debug("connect failed", "err", err)
	s.lastErr = err
	s.failures++
	waiting := s.reofferWaitersLocked()
	if s.keep && s.failures < maxReconnects {
		delay := backoffDelay(s.opts.Backoff, s.failures, rand.N[time.Duration])
		s.retryAt = s.opts.Now().Add(delay)
		s.setStateLocked(StateBackoff)
		s.retry = time.AfterFunc(delay, s.retryNow)
	} else {
		s.setStateLocked(StateLost)
		for _, cl := range waiting {
			what := "reconnecting to collect the result"
			if cl.unstarted {
				what = "reconnecting to send the command again"
			}
			cl.reoffer = false
			cl.unstarted = false
			cl.push(item{lost: true, err: fmt.Errorf("%s: %w", what, err)})
		}
	}
	s.mu.Unlock()
	s.flushStates()
}

// backoffDelay returns how long to wait after the failures-th failed connect in a row: a
// random duration up to base doubled per failure, capped at base*maxBackoffFactor ("full
// jitter"), so hosts that lost their link together (a network blip) do not all retry in
// lock-step. random(n) returns a duration in [0, n).
func backoffDelay(base time.Duration, failures int, random func(time.Duration) time.Duration) time.Duration {
	ceil := base * maxBackoffFactor
	if failures <= 7 { // 1<<6 = maxBackoffFactor; beyond that the cap holds
		ceil = min(ceil, base<<max(failures-1, 0))
	}
	return random(ceil) + 1
}

// reofferWaitersLocked returns the exec calls waiting for a re-delivered result.
func (s *Session) reofferWaitersLocked() []*call {
	var w []*call
	for _, cl := range s.calls {
		if cl.reoffer && !cl.abandoned {
			w = append(w, cl)
		}
	}
	return w
}

// retryNow is the backoff timer's callback: it starts the next connect attempt.
func (s *Session) retryNow() {
	s.mu.Lock()
	if s.closed || s.retry == nil || s.cur != nil || s.dialing != nil {
		s.mu.Unlock()
		return
	}
	s.retry = nil
	s.startDialLocked()
	s.mu.Unlock()
	s.flushStates()
}

// connect acquires a handshake slot and connects, reinstalling the agent once
// when its hash or protocol version does not match.
func (s *Session) connect() (*conn, error) {
	if sem := s.opts.Handshakes; sem != nil {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		case <-s.ctx.Done():
			return nil, s.errorf(proto.ReasonClosed, "connect", context.Cause(s.ctx))
		}
	}
	t := s.opts.Target
	for {
		c, err := s.connectOnce(t)
		var mm *mismatchError
		var nh *noHelloError
		switch {
		case err == nil || t.Reinstall:
		case errors.As(err, &mm):
			s.log.Info("agent mismatch; reinstalling", "err", mm)
			t.Reinstall = true
			continue
		case errors.As(err, &nh) && ReasonOf(err) == proto.ReasonProtocol:
			// The transport connected but the installed agent did not come up
			// (tampered, truncated, not an agent): replace it once. Transport
			// failures (unreachable, auth, host key) never get here.
			s.log.Info("agent did not come up; reinstalling", "err", nh)
			t.Reinstall = true
			continue
		}
		return c, err
	}
}

// noHelloError is an agent process that ended, or spoke something other than
// the protocol, before its hello.
type noHelloError struct {
	what string // e.g. "agent exited before hello"
	head []byte // the first bytes it wrote
	err  error  // the read or decode error, if any
}

func (e *noHelloError) Error() string {
	s := e.what
	if len(e.head) == 0 {
		s += ": no output"
	} else {
		s += ": output " + strconv.Quote(string(e.head))
	}
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *noHelloError) Unwrap() error { return e.err }

// headReader keeps the first bytes read through it until done is set, to name
// what a broken agent wrote instead of its hello. Only the reader uses it.
type headReader struct {
	r    io.Reader
	head []byte
	done bool
}

// maxHead bounds the bytes headReader keeps.
const maxHead = 120

func (h *headReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if !h.done && len(h.head) < maxHead {
		h.head = append(h.head, p[:min(n, maxHead-len(h.head))]...)
	}
	return n, err
}

// mismatchError is an agent of the wrong hash or protocol version.
type mismatchError struct {
	msg string
	err error // transport.ErrHashMismatch for a hash, or nil
}

func (e *mismatchError) Error() string { return e.msg }
func (e *mismatchError) Unwrap() error { return e.err }

// checkHash compares the agent's hello with the hash the transport meant to start for this
// host's platform (ConnInfo.AgentHash), or, where the transport does not say, with
// Options.ExpectHash. A mismatch wraps transport.ErrHashMismatch.
func (s *Session) checkHash(info transport.ConnInfo, h *proto.Hello) error {
	if info.AgentHash == "" {
		info.AgentHash = s.opts.ExpectHash
	}
	return info.CheckHash(h.BinarySHA256)
}

// connectOnce makes one transport connection and exchanges hellos.
func (s *Session) connectOnce(t transport.Target) (*conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.ConnectTimeout)
	defer cancel()
	if t.Reinstall {
		s.mu.Lock()
		s.setStateLocked(StateInstalling)
		s.mu.Unlock()
		s.flushStates()
	}
	tc, err := s.opts.Transport.Connect(ctx, t)
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, s.errorf(proto.ReasonClosed, "connect", errClosed)
		}
		return nil, s.errorf(connectReason(err), "connect", err)
	}
	if tc.Info().Installed {
		s.mu.Lock()
		s.setStateLocked(StateInstalling)
		s.mu.Unlock()
		s.flushStates()
	}
	cw := &countingWriter{w: tc}
	hr := &headReader{r: tc}
	pc := proto.NewConn(hr, cw, proto.ConnOptions{ReadBufferSize: readBufferSize})
	// The hello exchange must not hang: a timeout or Close closes the connection under it.
	stop := context.AfterFunc(ctx, func() { tc.Close() })
	h, err := s.handshake(pc)
	if !stop() {
		if err == nil {
			err = context.Cause(ctx)
		}
	}
	hr.done = true
	if err != nil {
		tc.Close()
		var mm *mismatchError
		var nh *noHelloError
		switch {
		case s.ctx.Err() != nil:
			return nil, s.errorf(proto.ReasonClosed, "connect", errClosed)
		case errors.As(err, &mm):
			return nil, s.errorf(proto.ReasonProtocol, "hello", err)
		case ctx.Err() != nil:
			return nil, s.errorf(proto.ReasonUnreachable, "hello", fmt.Errorf("no hello from the agent within %v: %w", s.opts.ConnectTimeout, err))
		case errors.As(err, &nh):
			nh.head = hr.head
			if t.Reinstall {
				nh.what += " (even after reinstalling it)"
			} else {
				nh.what += " (reinstalling)"
			}
		}
		return nil, s.errorf(proto.ReasonProtocol, "hello", err)
	}
	if err := s.checkHash(tc.Info(), h); err != nil {
		tc.Close()
		how := "reinstalling"
		if t.Reinstall {
			how = "even after reinstalling it"
		}
		return nil, s.errorf(proto.ReasonProtocol, "hello", &mismatchError{msg: fmt.Sprintf("%v (%s)", err, how), err: err})
	}
	c := &conn{s: s, tc: tc, pc: pc, cw: cw, hello: *h}
	for _, cp := range h.Capabilities {
		if cp == "redeliver" {
			c.redeliver = true
		}
	}
	return c, nil
}

// handshake sends the daemon's hello and reads the agent's.
func (s *Session) handshake(pc *proto.Conn) (*proto.Hello, error) {
	mine := proto.Hello{Protocol: proto.Version, Role: "daemon", PID: os.Getpid(), Clock: s.opts.Now().UnixNano()}
	sendErr := pc.Send(0, proto.TypeHello, &mine)
	// Read even when the send failed: an agent that exited at once left its
	// output, or at least its end of file, to say why.
	env, err := pc.Recv()
	if sendErr != nil && err == nil && env.Type == proto.TypeHello {
		return nil, fmt.Errorf("sending hello: %w", sendErr)
	}
	var ve *proto.VersionError
	if errors.As(err, &ve) {
		return nil, &mismatchError{msg: fmt.Sprintf("agent speaks %v", ve)}
	}
	if err != nil {
		var ne net.Error
		var te *transport.Error
		if errors.As(err, &ne) || errors.As(err, &te) {
			// The link failed, not the agent: no reinstall.
			return nil, fmt.Errorf("reading the agent's hello: %w", err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &noHelloError{what: "agent exited before hello"}
		}
		// Bytes that are not a frame: a banner, garbage, a truncated binary.
		return nil, &noHelloError{what: "agent sent no hello", err: err}
	}
	if env.Type != proto.TypeHello {
		return nil, &noHelloError{what: "agent sent no hello", err: fmt.Errorf("first message from the agent is %s, want hello", env.Type)}
	}
	var h proto.Hello
	if err := env.Decode(&h); err != nil {
		return nil, err
	}
	if h.Protocol != proto.Version {
		return nil, &mismatchError{msg: fmt.Sprintf("agent speaks protocol %d, want %d", h.Protocol, proto.Version)}
	}
	return &h, nil
}
