package hostsess

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"golang.org/x/sys/unix"
)

// lostErr returns the error for a call whose connection ended with cause.
func (s *Session) lostErr(op string, cause error) error {
	if errors.Is(cause, errClosed) {
		return s.errorf(proto.ReasonClosed, op, cause)
	}
	return s.errorf(proto.ReasonLost, op, cause)
}

// execRun is the caller-side state of one Exec.
type execRun struct {
	s       *Session
	cl      *call
	onEvent func(Event)
	res     Result
	msg     *proto.Exec // the request, kept to resend it
	keep    int64       // bytes of output res may still keep; < 0 = no bound
	quiet   bool        // stopping: output is dropped, not kept or passed on
	sent    [3]int64    // bytes of stdout/stderr passed on, by proto stream
	skip    [3]int64    // bytes to skip on a re-delivery, by proto stream

	waiting  bool // lost; waiting for the agent to re-deliver the result
	newConn  bool // a new connection came up while waiting
	cycles   int  // connections recycled to make a new agent collect the result
	sideErrs int  // failed checks of the command through Side
}

func (x *execRun) emit(ev Event) {
	if x.onEvent != nil {
		x.onEvent(ev)
	}
}

// handle applies one item; done reports that the Exec is over with err.
func (x *execRun) handle(it item) (done bool, err error) {
	s := x.s
	switch {
	case it.lost:
		if it.wait {
			// The agent keeps the result and re-offers it after the reconnect,
			// from the start: skip what was already passed on.
			x.skip = x.sent
			x.waiting = true
			return false, nil
		}
		return true, s.lostErr("exec", it.err)
	case it.reconnected != nil:
		x.newConn = true
		return false, nil
	case it.t == 0:
		if it.state != "" {
			x.emit(Event{Kind: proto.EventState, State: it.state})
		}
		return false, nil
	}
	switch b := it.body.(type) {
	case *proto.Started:
		if b.Redelivered {
			x.skip = x.sent
			x.waiting = false
			return false, nil
		}
		x.res.PID = b.PID
		x.emit(Event{Kind: proto.EventStart, PID: b.PID, RequestID: x.cl.id})
	case *proto.Output:
		st := b.Stream
		if st != proto.Stdout && st != proto.Stderr {
			return false, nil
		}
		data := b.Data
		if n := x.skip[st]; n > 0 {
			if n > int64(len(data)) {
				n = int64(len(data))
			}
			data = data[n:]
			x.skip[st] -= n
		}
		if len(data) == 0 {
			return false, nil
		}
		x.sent[st] += int64(len(data))
		if x.quiet {
			x.res.Dropped += int64(len(data))
			return false, nil
		}
		kept := data
		if x.keep >= 0 && int64(len(kept)) > x.keep {
			kept = kept[:x.keep]
		}
		if x.keep >= 0 {
			x.keep -= int64(len(kept))
		}
		x.res.Dropped += int64(len(data) - len(kept))
		kind := proto.EventStdout
		if st == proto.Stdout {
			x.res.Stdout = append(x.res.Stdout, kept...)
		} else {
			kind = proto.EventStderr
			x.res.Stderr = append(x.res.Stderr, kept...)
		}
		x.emit(Event{Kind: kind, Data: data})
	case *proto.Exit:
		fillExit(&x.res, b)
		s.dropCall(x.cl)
		if b.Redelivered && b.Err != "" && x.res.PID > 0 {
			// The agent died while the command ran (or before it recorded the
			// command): nobody watches the group any more, so make sure it is gone.
			x.killGroup(it.c, x.res.PID)
			it.c.send(x.cl.id, proto.TypeAck, nil)
			return true, s.errorf(proto.ReasonLost, "exec", fmt.Errorf("the agent died while the command ran (%s); killed what was left of it", b.Err))
		}
		if err := it.c.send(x.cl.id, proto.TypeAck, nil); err != nil {
			// The next agent offers it again; acknowledge it then, silently.
			s.log.Debug("acknowledging a result", "id", x.cl.id, "err", err)
			s.mu.Lock()
			if s.unacked == nil {
				s.unacked = make(map[uint64]bool)
			}
			s.unacked[x.cl.id] = true
			s.mu.Unlock()
		}
		switch {
		case b.TimedOut:
			return true, s.errorf(proto.ReasonCommandTimeout, "exec", errors.New("the command ran past its timeout and was killed"))
		case b.Err != "":
			return true, s.errorf(proto.ReasonRemote, "exec", errors.New(b.Err))
		case b.Canceled:
			return true, s.errorf(proto.ReasonRemote, "exec", errors.New("the command was cancelled before it started"))
		}
		return true, nil
	case *proto.Busy:
		s.dropCall(x.cl)
		return true, s.errorf(proto.ReasonBusy, "exec", fmt.Errorf("the agent is busy (%d running, %d queued)", b.Running, b.Queued))
	case *proto.Error:
		s.dropCall(x.cl)
		return true, s.errorf(proto.ReasonRemote, "exec", b)
	}
	return false, nil
}

// Exec runs a command and blocks until it ends. onEvent (may be nil) is called from one goroutine, in order.
// Cancelling ctx kills the remote process group (via the agent's kill, else via Side()) and returns ctx's cause.
// When the connection is lost after the command started, Exec waits for the agent
// to re-deliver the result after the reconnect; otherwise a loss is a Lost error.
func (s *Session) Exec(ctx context.Context, req ExecRequest, onEvent func(Event)) (Result, error) {
	cl := s.newCall(kindExec, onEvent != nil)
	x := &execRun{s: s, cl: cl, onEvent: onEvent, keep: -1}
	if req.KeepCap > 0 {
		x.keep = req.KeepCap
	} else if req.OutputCap > 0 {
		x.keep = req.OutputCap
	}
	x.res.RequestID = cl.id
	c, err := s.ready(ctx, cl)
	x.drainStates()
	if err != nil {
		return x.res, err
	}
	m := &proto.Exec{Cmd: req.Command, Dir: req.Dir, Stdin: req.Stdin, Timeout: int64(req.Timeout), OutputCap: req.OutputCap,
		KillGrace: int64(req.KillGrace), SudoUser: req.SudoUser, SudoPassword: req.SudoPassword, SudoCheck: req.SudoCheck,
		Script: req.Script, Args: req.Args, Login: req.Login, PTY: req.PTY}
	if len(req.Env) > 0 {
		for k, v := range req.Env {
			m.Env = append(m.Env, k+"="+v)
		}
		sort.Strings(m.Env)
	}
	x.msg = m
	if err := c.send(cl.id, proto.TypeExec, m); err != nil {
		// A failed write breaks the framed stream: end the connection. The
		// loss reaches this call like any other, and decides about a resend.
		c.shutdown(fmt.Errorf("sending the command: %w", err), false)
	}
	var backstop <-chan time.Time
	if req.Timeout > 0 {
		// The agent enforces the timeout; this only catches an agent that does not.
		t := time.NewTimer(req.Timeout + req.KillGrace + s.opts.KillWait + s.opts.Heartbeat)
		defer t.Stop()
		backstop = t.C
	}
	poll := time.NewTimer(time.Hour)
	poll.Stop()
	defer poll.Stop()
	for {
		select {
		case <-cl.wake:
			for _, it := range cl.take() {
				if ctx.Err() != nil {
					x.quiet = true // cancelled: stop passing on what was queued
				}
				if done, err := x.handle(it); done {
					return x.res, err
				}
			}
			if x.newConn {
				x.newConn = false
				if x.waiting {
					poll.Reset(0) // check at once, then every heartbeat
				}
			}
		case <-poll.C:
			if done, err := x.checkRedelivery(); done {
				return x.res, err
			} else if !x.newConn {
				poll.Reset(s.opts.Heartbeat)
			}
		case <-ctx.Done():
			return x.stop(context.Cause(ctx), req.KillGrace, req.KillNow)
		case <-backstop:
			return x.stop(s.errorf(proto.ReasonCommandTimeout, "exec", fmt.Errorf("no result %v past the %v timeout", req.KillGrace+s.opts.KillWait+s.opts.Heartbeat, req.Timeout)), 0, nil)
		}
	}
}

// drainStates passes on state items queued while connecting.
func (x *execRun) drainStates() {
	for _, it := range x.cl.take() {
		if it.t == 0 && it.state != "" {
			x.emit(Event{Kind: proto.EventState, State: it.state})
		}
	}
}

// stop kills the command's process group: first through the agent (SIGTERM, then SIGKILL
// grace later, or at once when grace is 0 or now closes), then, when no exit comes within
// grace and KillWait, through a side command. It returns cause.
func (x *execRun) stop(cause error, grace time.Duration, now <-chan struct{}) (Result, error) {
	s, cl := x.s, x.cl
	// What is still queued or comes before the exit was asked for by nobody: drop it.
	x.quiet = true
	s.mu.Lock()
	c := cl.conn
	live := c != nil && s.cur == c
	s.mu.Unlock()
	select {
	case <-now:
		grace = 0
	default:
	}
	if live {
		// The kill is a request of its own; its answer (killed) goes nowhere, the exit tells.
		k := &proto.Kill{Target: cl.id, Signal: int(unix.SIGKILL)}
		if grace > 0 {
			k.Signal, k.Grace = int(unix.SIGTERM), int64(grace)
		} else {
			now = nil
		}
		if err := c.send(s.ids.Add(1), proto.TypeKill, k); err != nil {
			live = false
		}
	}
	if live {
		t := time.NewTimer(grace + s.opts.KillWait)
		defer t.Stop()
	wait:
		for {
			select {
			case <-now:
				now = nil
				if err := c.send(s.ids.Add(1), proto.TypeKill, &proto.Kill{Target: cl.id, Signal: int(unix.SIGKILL)}); err != nil {
					break wait
				}
				t.Reset(s.opts.KillWait)
			case <-cl.wake:
				for _, it := range cl.take() {
					if it.lost {
						break wait
					}
					if done, _ := x.handle(it); done {
						return x.res, cause
					}
				}
			case <-t.C:
				break wait
			}
		}
	}
	// No exit from the agent: kill the group from outside, and acknowledge the
	// result if it still comes.
	s.mu.Lock()
	pid := cl.pid
	side := s.cur
	if side == nil {
		side = cl.conn
	}
	if s.calls[cl.id] == cl {
		cl.abandoned = true
	}
	s.mu.Unlock()
	if pid > 0 && side != nil {
		x.killGroup(side, pid)
	}
	return x.res, cause
}

// checkRedelivery runs while a lost command's result has not come back on the new
// connection. The agent offers only results of agents that have ended, when it
// starts. So: while the old agent lives (a cut connection; it finishes the
// command into its result directory) keep waiting; when the old agent died but
// the command lives, nobody can record its result: kill its group and fail; when
// both are gone, recycle the connection so that a fresh agent collects the
// result (twice at most), then give up. It reports done with the error to
// return; newConn is set when a recycle was started.
//
// An exec of which nothing came back before its connection ended (no started, no
// exit: the agent died idle as it was sent, or its sshd was killed) is resent,
// once, under a new request id, when it provably did not run: the old agent was
// seen dead, and then a fresh agent, started after that, offered nothing for the
// request once it answered a ping (an agent offers every kept result of dead
// agents before it answers anything, and it keeps a result from the moment it
// starts a command). While the old agent may live it is not resent: if it
// started the command, its result comes back under the original id.
func (x *execRun) checkRedelivery() (done bool, err error) {
	s, cl := x.s, x.cl
	s.mu.Lock()
	c, waiting, pid, apid := s.cur, cl.reoffer, cl.pid, cl.agentPID
	s.mu.Unlock()
	if !waiting || c == nil {
		return false, nil // delivered, or a reconnect is under way and will say so
	}
	// The agent offers kept results before it answers anything: once a ping
	// comes back, every offer on this connection has been routed.
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.SideTimeout)
	_, err = s.Ping(ctx)
	cancel()
	s.mu.Lock()
	waiting = cl.reoffer
	unstarted := cl.unstarted && !cl.started
	s.mu.Unlock()
	if !waiting || err != nil {
		return false, nil
	}
	// alive is false for a missing or zombie process.
	script := `alive() { kill -0 "$1" 2>/dev/null || return 1; case "$(ps -o stat= -p "${1#-}" 2>/dev/null)" in Z*) return 1;; esac; }`
	if apid > 0 {
		script += fmt.Sprintf("; alive %d && echo agent", apid)
	}
	if pid > 0 {
		script += fmt.Sprintf("; kill -0 -%d 2>/dev/null && echo command", pid)
	}
	script += "; true"
	ctx, cancel = context.WithTimeout(s.ctx, s.opts.SideTimeout)
	out, err := c.tc.Side(ctx, script)
	cancel()
	if err != nil {
		x.sideErrs++
		if x.sideErrs >= 3 {
			s.dropCall(cl)
			return true, s.errorf(proto.ReasonLost, "exec", fmt.Errorf("the connection was lost and checking the command failed: %w", err))
		}
		return false, nil
	}
	s.log.Debug("checking a kept result", "id", cl.id, "agent", apid, "pgid", pid, "found", strings.Fields(string(out)))
	agentAlive := bytes.Contains(out, []byte("agent"))
	cmdAlive := bytes.Contains(out, []byte("command"))
	switch {
	case agentAlive:
		return false, nil // it finishes the command and keeps the result
	case cmdAlive:
		x.killGroup(c, pid)
		s.markAbandoned(cl)
		return true, s.errorf(proto.ReasonLost, "exec", fmt.Errorf("the agent (pid %d) died while the command ran; killed the command", apid))
	case unstarted && x.cycles >= 1:
		// The agent on c started after the old one was seen dead and offered nothing.
		x.resend(c)
		return false, nil
	case x.cycles >= 2:
		s.dropCall(cl)
		return true, s.errorf(proto.ReasonLost, "exec", errors.New("the connection was lost and the agent kept no result for the command"))
	}
	x.cycles++
	x.newConn = true // the reconnect re-arms the check
	s.recycle(c)
	return false, nil
}

// resend sends the exec again on c under a new request id, once (see
// checkRedelivery for when that is safe). A result the old id still gets goes to
// Options.Orphan. When c is no longer current or the call moved on, it does nothing.
func (x *execRun) resend(c *conn) {
	s, cl := x.s, x.cl
	s.mu.Lock()
	if s.closed || s.cur != c || s.calls[cl.id] != cl || !cl.reoffer || !cl.unstarted || cl.started || cl.replied {
		s.mu.Unlock()
		return
	}
	old := cl.id
	delete(s.calls, old)
	cl.id = s.ids.Add(1)
	s.calls[cl.id] = cl
	cl.conn = c
	cl.reoffer = false
	cl.unstarted = false
	cl.resent = true
	cl.agentPID = 0
	s.mu.Unlock()
	s.log.Info("resending a command that never started", "old", old, "id", cl.id)
	x.res.RequestID = cl.id
	x.waiting = false
	x.cycles = 0
	x.sideErrs = 0
	x.skip = [3]int64{}
	if err := c.send(cl.id, proto.TypeExec, x.msg); err != nil {
		c.shutdown(fmt.Errorf("resending the command: %w", err), false)
	}
}

// markAbandoned keeps cl registered only so that a late result is acknowledged.
func (s *Session) markAbandoned(cl *call) {
	s.mu.Lock()
	if s.calls[cl.id] == cl {
		cl.abandoned = true
	}
	s.mu.Unlock()
}

// killGroup kills process group pgid on the host through a side command.
func (x *execRun) killGroup(c *conn, pgid int) {
	s := x.s
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.SideTimeout)
	defer cancel()
	if out, err := c.tc.Side(ctx, fmt.Sprintf("kill -KILL -%d 2>/dev/null; true", pgid)); err != nil {
		s.log.Warn("killing a process group through a side command", "pgid", pgid, "err", err, "output", string(out))
	}
}
