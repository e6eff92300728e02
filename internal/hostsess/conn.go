package hostsess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// conn is one connection to one agent process. One reader goroutine reads it;
// every write goes through pc, which serialises them.
type conn struct {
	s         *Session
	tc        transport.Conn
	pc        *proto.Conn
	cw        *countingWriter // counts bytes written, to tell a slow link from a dead agent
	rx        atomic.Int64    // frames received
	hello     proto.Hello
	redeliver bool // the agent keeps results across connections

	// recovering is set while recoverConn kills the agent: the reader then leaves
	// the shutdown to it, so calls learn that their commands were killed.
	recovering atomic.Bool

	once sync.Once
	err  error // why the connection ended

	// hbMu protects the heartbeat state.
	hbMu    sync.Mutex
	hb      *time.Timer
	hbWG    sync.WaitGroup // a tick writing a ping
	hbStop  bool
	sending bool // a ping is being written
	pingID  uint64
	pingAt  time.Time
	pingOut bool // a heartbeat ping is unanswered
	misses  int
	lastRx  int64 // rx at the last tick
	lastTx  int64 // cw.n at the last tick

	// orphans collects re-delivered results nobody waits for; only the reader touches it.
	orphans map[uint64]*Result
}

// send writes one message to the agent.
func (c *conn) send(id uint64, t proto.Type, body any) error {
	if err := c.pc.Send(id, t, body); err != nil {
		return fmt.Errorf("sending %s: %w", t, err)
	}
	return nil
}

// shutdown closes the connection once, stops the heartbeat and fails or parks
// the calls that were using it. killed says the agent and its commands were killed.
func (c *conn) shutdown(err error, killed bool) {
	c.once.Do(func() {
		c.err = err
		c.tc.Close()
		c.stopHeartbeat()
		c.s.connLost(c, err, killed)
	})
}

// readLoop reads frames until the connection ends and routes each to its call.
func (c *conn) readLoop() {
	defer c.s.wg.Done()
	for {
		env, err := c.pc.Recv()
		c.rx.Add(1)
		if err != nil {
			var de *proto.DecodeError
			var ut *proto.UnknownTypeError
			if errors.As(err, &de) || (errors.As(err, &ut) && env != nil) {
				c.s.log.Warn("ignoring a bad message from the agent", "err", err)
				continue
			}
			if c.recovering.Load() {
				return
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("the agent closed the connection")
			}
			c.shutdown(err, false)
			return
		}
		body, err := env.DecodeBody()
		if err != nil {
			c.s.log.Warn("ignoring a bad message from the agent", "type", env.Type, "err", err)
			continue
		}
		c.dispatch(env.ID, env.Type, body)
	}
}

// dispatch routes one message from the agent.
func (c *conn) dispatch(id uint64, t proto.Type, body any) {
	s := c.s
	now := s.opts.Now()
	s.mu.Lock()
	s.lastSeen = now
	cl := s.calls[id]
	if t == proto.TypePong && (cl == nil || cl.kind != kindPing) {
		s.mu.Unlock()
		c.heartbeatAnswered(id, now)
		return
	}
	if cl == nil {
		s.mu.Unlock()
		c.orphan(id, t, body)
		return
	}
	cl.replied = true
	if t == proto.TypeStarted {
		st := body.(*proto.Started)
		if st.PID > 0 {
			cl.pid = st.PID
		}
		cl.started = true
		if !st.Redelivered {
			cl.agentPID = c.hello.PID
		}
		if cl.conn != c {
			// A result re-delivered on a new connection: the call lives here now.
			cl.conn = c
			cl.reoffer = false
			cl.unstarted = false
		}
	}
	if cl.abandoned {
		switch t {
		case proto.TypeStarted:
			s.mu.Unlock()
			if !body.(*proto.Started).Redelivered {
				// The caller gave up before the command started: stop it now.
				c.send(s.ids.Add(1), proto.TypeKill, &proto.Kill{Target: id, Signal: 9})
			}
			return
		case proto.TypeExit:
			delete(s.calls, id)
			s.mu.Unlock()
			c.send(id, proto.TypeAck, nil)
			return
		}
		s.mu.Unlock()
		return
	}
	cl.push(item{c: c, t: t, body: body})
	s.mu.Unlock()
}

// orphan collects a re-delivered result for which no call waits, hands it to
// Options.Orphan when complete, and acknowledges it.
func (c *conn) orphan(id uint64, t proto.Type, body any) {
	switch t {
	case proto.TypeStarted:
		st := body.(*proto.Started)
		if !st.Redelivered {
			return
		}
		if c.orphans == nil {
			c.orphans = make(map[uint64]*Result)
		}
		c.orphans[id] = &Result{RequestID: id, PID: st.PID}
	case proto.TypeOutput:
		r := c.orphans[id]
		if r == nil {
			return
		}
		o := body.(*proto.Output)
		if o.Stream == proto.Stderr {
			r.Stderr = append(r.Stderr, o.Data...)
		} else {
			r.Stdout = append(r.Stdout, o.Data...)
		}
	case proto.TypeExit:
		r := c.orphans[id]
		e := body.(*proto.Exit)
		if r == nil {
			if !e.Redelivered {
				return
			}
			r = &Result{RequestID: id}
		}
		delete(c.orphans, id)
		fillExit(r, e)
		c.s.mu.Lock()
		seen := c.s.unacked[id]
		delete(c.s.unacked, id)
		c.s.mu.Unlock()
		if f := c.s.opts.Orphan; f != nil && !seen && !f(c.s.host, *r) {
			return // not kept: the next agent offers it again
		}
		if err := c.send(id, proto.TypeAck, nil); err != nil {
			c.s.log.Debug("acknowledging a re-delivered result", "id", id, "err", err)
		}
	}
}

// connLost is called once when c ends: the session forgets it, calls that used it
// fail or, when the agent keeps their results, wait for them after a reconnect.
func (s *Session) connLost(c *conn, err error, killed bool) {
	s.mu.Lock()
	wasCur := s.cur == c
	if wasCur {
		s.cur = nil
		s.lastErr = err
		s.setStateLocked(StateLost)
	}
	waiting := 0
	for id, cl := range s.calls {
		if cl.conn != c {
			continue
		}
		if cl.abandoned {
			delete(s.calls, id)
			continue
		}
		if s.closed {
			cl.push(item{lost: true, err: errClosed})
			continue
		}
		if cl.kind == kindExec && cl.started && c.redeliver && !killed {
			cl.reoffer = true
			waiting++
			cl.push(item{lost: true, wait: true, err: err})
			continue
		}
		if cl.kind == kindExec && !cl.replied && !cl.resent && c.redeliver && !killed {
			// The exec was written (or was about to be) but nothing came back
			// for it before the connection ended. The agent may never have
			// read it (it died idle, its sshd went away), or it may have
			// started it and be running it still. Wait as for a started
			// command; checkRedelivery resends it once, only when that is
			// provably safe.
			cl.reoffer = true
			cl.unstarted = true
			cl.agentPID = c.hello.PID
			waiting++
			cl.push(item{lost: true, wait: true, err: err})
			continue
		}
		cl.push(item{lost: true, err: err})
	}
	if !s.closed && wasCur && (s.keep || waiting > 0) && s.dialing == nil {
		s.failures = 0
		s.startDialLocked()
	}
	s.mu.Unlock()
	s.flushStates()
}

// startHeartbeat arms the heartbeat timer. No goroutine waits between pings.
func (c *conn) startHeartbeat() {
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	if !c.hbStop {
		c.hb = time.AfterFunc(c.s.opts.Heartbeat, c.tick)
	}
}

// stopHeartbeat stops the timer and waits for a ping being written.
func (c *conn) stopHeartbeat() {
	c.hbMu.Lock()
	c.hbStop = true
	if c.hb != nil {
		c.hb.Stop()
	}
	c.hbMu.Unlock()
	c.hbWG.Wait()
}

// tick is the heartbeat: count a miss when the last ping is unanswered, declare
// the agent unresponsive after Missed misses, else send the next ping.
func (c *conn) tick() {
	c.hbMu.Lock()
	if c.hbStop {
		c.hbMu.Unlock()
		return
	}
	// A tick is missed when the last ping is unanswered and nothing moved either
	// way since the previous tick: a pong stuck behind a long upload or a flood
	// of output on a slow link is not a dead agent.
	rx, tx := c.rx.Load(), c.cw.n.Load()
	moved := rx != c.lastRx || tx != c.lastTx
	c.lastRx, c.lastTx = rx, tx
	switch {
	case !c.pingOut:
	case moved:
		c.misses = 0
	default:
		c.misses++
	}
	if c.misses >= c.s.opts.Missed {
		c.hbStop = true
		c.hbMu.Unlock()
		c.s.unresponsive(c)
		return
	}
	// The next tick is armed before this one writes, so a write stuck on a
	// frozen agent still lets the misses be counted.
	c.hb.Reset(c.s.opts.Heartbeat)
	if c.sending {
		c.hbMu.Unlock()
		return
	}
	c.sending = true
	c.pingID = c.s.ids.Add(1)
	c.pingAt = c.s.opts.Now()
	c.pingOut = true
	id := c.pingID
	c.hbWG.Add(1)
	c.hbMu.Unlock()
	// AfterFunc runs tick in a goroutine of its own: write from it.
	defer c.hbWG.Done()
	c.send(id, proto.TypePing, nil)
	c.hbMu.Lock()
	c.sending = false
	c.lastTx = c.cw.n.Load() // our own ping is no sign of life
	c.hbMu.Unlock()
}

// heartbeatAnswered records a pong to a heartbeat ping.
func (c *conn) heartbeatAnswered(id uint64, now time.Time) {
	c.hbMu.Lock()
	c.pingOut = false
	c.misses = 0
	var rtt time.Duration
	if id == c.pingID {
		rtt = now.Sub(c.pingAt)
	}
	c.hbMu.Unlock()
	if rtt > 0 {
		c.s.mu.Lock()
		c.s.lastRTT = rtt
		c.s.mu.Unlock()
	}
}

// unresponsive marks the session unresponsive and starts the recovery of c.
func (s *Session) unresponsive(c *conn) {
	s.mu.Lock()
	if s.closed || s.cur != c {
		s.mu.Unlock()
		return
	}
	s.setStateLocked(StateUnresponsive)
	done := make(chan struct{})
	s.recovering = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.recoverConn(c)
		s.mu.Lock()
		s.recovering = nil
		s.mu.Unlock()
		close(done)
	}()
	s.mu.Unlock()
	s.flushStates()
}

// recoverConn deals with an agent that stopped answering: through a side command
// it kills the process groups of the commands it ran and the agent itself (when
// that pid is still a shoal agent), then drops the connection so it is rebuilt.
func (s *Session) recoverConn(c *conn) {
	c.recovering.Store(true)
	s.mu.Lock()
	var groups []int
	for _, cl := range s.calls {
		if cl.conn == c && cl.pid > 0 {
			groups = append(groups, cl.pid)
		}
	}
	s.mu.Unlock()
	script := killScript(c.hello.PID, groups)
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.SideTimeout)
	out, err := c.tc.Side(ctx, script)
	cancel()
	why := fmt.Sprintf("the agent (pid %d) missed %d heartbeats", c.hello.PID, s.opts.Missed)
	killed := err == nil
	if err != nil {
		s.log.Warn("agent unresponsive; side command failed", "pid", c.hello.PID, "err", err)
		why += "; checking it failed: " + err.Error()
	} else {
		o := strings.TrimSpace(string(out))
		s.log.Warn("agent unresponsive", "pid", c.hello.PID, "side", o)
		if o != "" {
			why += "; " + o
		}
	}
	c.shutdown(errors.New(why), killed)
}

// killScript returns a POSIX shell command that kills the process groups and the
// agent pid, the latter only when that pid still runs `shoal agent`. Group kills
// are written `kill -KILL -PGID`: dash, a common /bin/sh, rejects `--`.
func killScript(agentPID int, groups []int) string {
	var b strings.Builder
	for _, g := range groups {
		fmt.Fprintf(&b, "kill -KILL -%d 2>/dev/null; ", g)
	}
	if agentPID > 0 {
		p := strconv.Itoa(agentPID)
		fmt.Fprintf(&b, "if { tr '\\0' ' ' </proc/%s/cmdline || ps -o args= -p %s; } 2>/dev/null | grep -q agent; then kill -KILL %s && echo 'killed the agent'; else echo 'the agent is gone'; fi", p, p, p)
	} else {
		b.WriteString("true")
	}
	return b.String()
}

// recycle ends c gracefully (the agent finishes its commands into their result
// directories) so that the session reconnects to a fresh agent, which offers the
// results of the agents that ended before it.
func (s *Session) recycle(c *conn) {
	s.log.Info("reconnecting to collect kept results")
	c.shutdown(errors.New("reconnecting to collect kept results"), false)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n.Add(int64(n))
	return n, err
}
