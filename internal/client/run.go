package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

// runState collects one run's frames and feeds its Events channel. Events queue
// without bound (output is bounded by the agents' caps), so a slow reader of one
// run never stalls the connection's other calls.
type runState struct {
	c        *Client
	hosts    []string
	accepted chan error // the daemon's first answer: nil (run-accepted) or why not
	runID    uint64
	out      chan proto.RunEvent
	// cancelled is set by Cancel: output events still queued or arriving are
	// dropped, so the results come at once rather than after the output.
	cancelled atomic.Bool

	mu       sync.Mutex // protects the following
	queue    []proto.RunEvent
	finished bool // no more events will be queued
	answered bool // accepted has been sent to
	done     map[string]bool
	stdout   map[string][]byte
	stderr   map[string][]byte

	notify chan struct{} // capacity 1: the queue changed
}

// Run starts req.Command on every host of req.Hosts and returns once the daemon
// has accepted it. See Session.Run.
func (c *Client) Run(ctx context.Context, req RunRequest) (*Run, error) {
	if req.Rollout != nil && !slices.Contains(c.hello.Caps, proto.CapRollout) {
		return nil, errors.New("this daemon cannot pace a run (--batch, --max-fail, --canary); stop it with `shoal daemon stop` so that one of this version starts")
	}
	if req.SudoUser != "" && !slices.Contains(c.hello.Caps, proto.CapSudo) {
		return nil, errors.New("this daemon cannot run commands through sudo; stop it with `shoal daemon stop` so that one of this version starts")
	}
	if (req.Script != nil || req.Login) && !slices.Contains(c.hello.Caps, proto.CapScript) {
		return nil, errors.New("this daemon cannot run a script or a login shell; stop it with `shoal daemon stop` so that one of this version starts")
	}
	if req.PTY != nil && !slices.Contains(c.hello.Caps, proto.CapPTY) {
		return nil, errors.New("this daemon cannot give commands a terminal (--pty); stop it with `shoal daemon stop` so that one of this version starts")
	}
	rs := &runState{c: c, hosts: req.Hosts, accepted: make(chan error, 1), out: make(chan proto.RunEvent),
		done: map[string]bool{}, stdout: map[string][]byte{}, stderr: map[string][]byte{}, notify: make(chan struct{}, 1)}
	id, err := c.register(&call{run: rs})
	if err != nil {
		return nil, err
	}
	body := &proto.RunRequest{Hosts: req.Hosts, Command: req.Command, Timeout: int64(req.Timeout), Env: req.Env,
		Stdin: req.Stdin, Identity: req.Identity, Fanout: req.Fanout, Dir: req.Dir, KillGrace: int64(req.KillGrace),
		Rollout: req.Rollout, Subst: req.Subst, Masked: req.Masked, Index: req.Index, Count: req.Count, RunID: req.RunID,
		SudoUser: req.SudoUser, SudoPassword: req.SudoPassword, SudoCheck: req.SudoCheck,
		Script: req.Script, ScriptName: req.ScriptName, Args: req.Args, Login: req.Login, PTY: req.PTY}
	if err := c.pc.Send(id, proto.TypeRun, body); err != nil {
		c.unregister(id)
		return nil, fmt.Errorf("sending run: %w", err)
	}
	var once, nowOnce sync.Once
	cancel := func() {
		once.Do(func() {
			rs.cancelled.Store(true)
			c.pc.Send(id, proto.TypeCancel, &proto.Cancel{})
		})
	}
	killNow := func() {
		nowOnce.Do(func() {
			rs.cancelled.Store(true)
			c.pc.Send(id, proto.TypeCancel, &proto.Cancel{Now: true})
		})
	}
	select {
	case err := <-rs.accepted:
		if err != nil {
			c.unregister(id)
			return nil, err
		}
	case <-ctx.Done():
		cancel()
		c.unregister(id)
		return nil, ctx.Err()
	}
	stop := context.AfterFunc(ctx, cancel)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer stop()
		rs.pump()
	}()
	return &Run{ID: rs.runID, Events: rs.out, Cancel: cancel, KillNow: killNow}, nil
}

// answer delivers the daemon's first answer, once.
func (rs *runState) answerLocked(err error) bool {
	if rs.answered {
		return false
	}
	rs.answered = true
	rs.accepted <- err
	return true
}

// handle takes one frame for this run from the reader.
func (rs *runState) handle(env *proto.Envelope) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	switch env.Type {
	case proto.TypeRunAccepted:
		var a proto.RunAccepted
		err := env.Decode(&a)
		rs.runID = a.RunID
		rs.answerLocked(err)
	case proto.TypeFailed:
		var f proto.Failed
		if err := env.Decode(&f); err != nil {
			rs.failLocked(err)
			return
		}
		rs.failLocked(&f)
	case proto.TypeRunEvent:
		var e proto.RunEvent
		if err := env.Decode(&e); err != nil {
			return
		}
		rs.eventLocked(&e)
	case proto.TypeRunEnd:
		rs.finishLocked(fmt.Errorf("the daemon ended the run without a result for this host"))
	}
}

func (rs *runState) eventLocked(e *proto.RunEvent) {
	if rs.finished || rs.done[e.Host] {
		return
	}
	switch e.Kind {
	case proto.EventStdout, proto.EventStderr:
		if rs.cancelled.Load() {
			return
		}
	}
	switch e.Kind {
	case proto.EventStdout:
		rs.stdout[e.Host] = append(rs.stdout[e.Host], e.Data...)
	case proto.EventStderr:
		rs.stderr[e.Host] = append(rs.stderr[e.Host], e.Data...)
	case proto.EventDone:
		if e.Result == nil {
			e.Result = &proto.HostResult{Host: e.Host, Status: proto.StatusError, Err: "no result"}
		}
		e.Result.Host = e.Host
		if !e.Result.Output {
			e.Result.Stdout, e.Result.Stderr = rs.stdout[e.Host], rs.stderr[e.Host]
		}
		delete(rs.stdout, e.Host)
		delete(rs.stderr, e.Host)
		rs.done[e.Host] = true
	}
	rs.pushLocked(*e)
}

func (rs *runState) pushLocked(ev proto.RunEvent) {
	rs.queue = append(rs.queue, ev)
	select {
	case rs.notify <- struct{}{}:
	default:
	}
}

// failLocked ends the run with err: before it was accepted, Run returns err;
// after, every host not yet done gets an proto.EventDone with proto.StatusError.
func (rs *runState) failLocked(err error) {
	if rs.answerLocked(err) {
		rs.finished = true
		return
	}
	rs.finishLocked(err)
}

func (rs *runState) fail(err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.failLocked(err)
}

// finishLocked gives every host still running a done event with err and closes the queue.
func (rs *runState) finishLocked(err error) {
	if rs.finished {
		return
	}
	now := proto.UnixNanoOf(time.Now())
	for _, h := range rs.hosts {
		if rs.done[h] {
			continue
		}
		rs.done[h] = true
		hr := &proto.HostResult{Host: h, Status: proto.StatusError, Err: err.Error(), Ended: now,
			Stdout: rs.stdout[h], Stderr: rs.stderr[h]}
		rs.pushLocked(proto.RunEvent{Host: h, Kind: proto.EventDone, Result: hr})
	}
	rs.finished = true
	select {
	case rs.notify <- struct{}{}:
	default:
	}
}

// pump delivers queued events in order and closes the channel after the last one,
// or when the client is closed.
func (rs *runState) pump() {
	defer close(rs.out)
	for {
		rs.mu.Lock()
		q := rs.queue
		rs.queue = nil
		fin := rs.finished
		rs.mu.Unlock()
		for _, ev := range q {
			if (ev.Kind == proto.EventStdout || ev.Kind == proto.EventStderr) && rs.cancelled.Load() {
				continue
			}
			select {
			case rs.out <- ev:
			case <-rs.c.closing:
				return
			}
		}
		if len(q) > 0 {
			continue
		}
		if fin {
			return
		}
		select {
		case <-rs.notify:
		case <-rs.c.closing:
			return
		}
	}
}
