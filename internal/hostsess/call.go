package hostsess

import (
	"strconv"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"golang.org/x/sys/unix"
)

// callKind says what a call is waiting for.
type callKind uint8

const (
	kindExec callKind = iota
	kindPing
	kindInfo
	kindRead
	kindWrite
	kindKill
)

var callKindNames = [...]string{"exec", "ping", "info", "read", "write", "kill"}

func (k callKind) String() string { return callKindNames[k] }

// call is one request waiting for its responses. The reader pushes items onto
// its queue without ever blocking; the caller's goroutine drains it.
type call struct {
	id    uint64
	kind  callKind
	watch bool // wants state changes as items

	// These are guarded by Session.mu.
	conn      *conn
	started   bool
	pid       int  // the command's process (and group) id
	agentPID  int  // the agent that started the command
	reoffer   bool // lost with the agent keeping the result; waits for it after a reconnect
	abandoned bool // the caller gave up; an exit is acknowledged and dropped
	replied   bool // a message for this request came back
	unstarted bool // waiting like reoffer, for an exec of which nothing came back: resent when provably not run
	resent    bool // the exec was sent a second time; it is not resent again

	qmu  sync.Mutex
	q    []item
	wake chan struct{}
}

// item is one thing that happened to a call.
type item struct {
	c    *conn // the connection a message came on
	t    proto.Type
	body any

	state       State // a state change (when non-empty and t == 0)
	lost        bool  // the connection ended (err says why)
	wait        bool  // ... but the agent keeps the result: wait for the reconnect
	reconnected *conn // a new connection is ready (for calls waiting for a result)
	err         error
}

func (s *Session) newCall(k callKind, watch bool) *call {
	return &call{id: s.ids.Add(1), kind: k, watch: watch, wake: make(chan struct{}, 1)}
}

// push queues it and wakes the caller. It never blocks.
func (cl *call) push(it item) {
	cl.qmu.Lock()
	cl.q = append(cl.q, it)
	cl.qmu.Unlock()
	select {
	case cl.wake <- struct{}{}:
	default:
	}
}

// take returns the queued items, oldest first.
func (cl *call) take() []item {
	cl.qmu.Lock()
	q := cl.q
	cl.q = nil
	cl.qmu.Unlock()
	return q
}

// fillExit copies an exit message into r.
func fillExit(r *Result, e *proto.Exit) {
	r.ExitCode = e.Code
	if e.Signal != 0 {
		r.Signal = unix.SignalName(unix.Signal(e.Signal))
		if r.Signal == "" {
			r.Signal = "signal " + strconv.Itoa(e.Signal)
		}
	}
	r.Truncated = e.Truncated
	r.Sudo = e.Sudo
	if e.Start != 0 {
		r.Started = time.Unix(0, e.Start)
	}
	if e.End != 0 {
		r.Ended = time.Unix(0, e.End)
	}
	r.UserCPU = time.Duration(e.UserCPU)
	r.SysCPU = time.Duration(e.SysCPU)
	r.MaxRSS = e.MaxRSS
}
