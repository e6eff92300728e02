// Package hostsess holds one host's session with its agent: a state machine that
// connects lazily (connecting → installing → ready), watches the agent with
// heartbeats (unresponsive → lost → backoff → connecting), routes responses to
// the calls waiting for them, and delivers results the agent kept across a
// reconnect.
//
// One reader goroutine per connection routes every frame by request id; calls
// queue what they receive without ever blocking the reader, and every write goes
// through the connection's single framed writer. The heartbeat is a timer, not a
// goroutine. A ping unanswered for Missed heartbeats while nothing else moves on
// the link makes the agent unresponsive: a side command kills its commands'
// process groups and the agent (when that pid is still an agent), and the session
// reconnects; requests made meanwhile wait for the new agent.
//
// When a connection is lost after a command started, and the agent keeps
// results, Exec waits: while the old agent lives it finishes the command into its
// result directory; when both are gone, the session reconnects once or twice so
// that a fresh agent offers the result. An agent that died under a running
// command, or a reconnect that keeps failing, ends the wait with a Lost error.
// Results offered that no call waits for go to Options.Orphan; every delivered
// result is acknowledged, so the agent removes it. A command of which nothing came
// back before the connection ended waits the same way, and is sent again once,
// under a new id, only when it provably never ran: the old agent was seen dead and
// a fresh agent started after that offered nothing for it.
//
// An agent that exits, or writes anything but a hello, before its hello is
// reinstalled once (Target.Reinstall), as one with the wrong hash or protocol
// version is; a failed transport connect never reinstalls.
package hostsess

import (
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// Options configure one host session.
type Options struct {
	Target     transport.Target
	Transport  transport.Transport
	ExpectHash string        // hex SHA-256 the agent must report in hello ("" = don't check)
	Handshakes chan struct{} // shared semaphore bounding concurrent connects across all hosts (fan-out); nil = unbounded
	Heartbeat  time.Duration // ping interval (default 5s)
	Missed     int           // missed pings before unresponsive (default 3)
	Backoff    time.Duration // reconnect delay ceiling, doubled per failure up to 64x (default 1s); each wait is random below it (full jitter)
	Logger     *slog.Logger
	Now        func() time.Time // injected clock
	// Orphan receives results the agent re-offers after a reconnect for which no caller waits
	// (e.g. after a daemon restart); the daemon logs them to the audit log/history. It must not block long.
	// Orphan is called from the connection's reader goroutine. The result is acknowledged
	// to the agent (which then deletes it) only when Orphan reports true: that it is kept
	// durably; on false the agent offers it again on the next connection.
	Orphan func(host string, r Result) bool
	// OnState is told state changes, for status and progress events, in order and
	// with no lock held; it must not block long or call Close.
	OnState func(host string, st State)

	// ConnectTimeout bounds one connect and hello exchange (default 60s).
	ConnectTimeout time.Duration
	// KillWait is how long a cancelled Exec waits for the agent to confirm a kill
	// before killing the process group through Conn.Side (default 2s).
	KillWait time.Duration
	// SideTimeout bounds one Conn.Side command (default 10s).
	SideTimeout time.Duration
}

// State is where a host session is in its life.
type State string

// The states of a host session.
const (
	StateIdle         State = "idle"         // not connected yet; connects on the first request
	StateConnecting   State = "connecting"   // transport connect and hello in progress
	StateInstalling   State = "installing"   // the transport uploaded the agent
	StateReady        State = "ready"        // connected, answering heartbeats
	StateUnresponsive State = "unresponsive" // missed heartbeats; being checked and killed
	StateLost         State = "lost"         // connection gone
	StateBackoff      State = "backoff"      // waiting before the next connect attempt
	StateClosed       State = "closed"       // Close was called
)

// ExecRequest is one command for this host.
type ExecRequest struct {
	Command string
	Dir     string // working directory, absolute or relative to home; empty means home
	Env     map[string]string
	Stdin   []byte
	Timeout time.Duration
	// KillGrace is how long a stopped command (its Timeout, or ctx cancelled) has between
	// SIGTERM and SIGKILL, to run its cleanup; 0 means SIGKILL at once.
	KillGrace time.Duration
	// KillNow, when closed, turns a stop under way into SIGKILL at once (a second Ctrl-C).
	// nil never closes.
	KillNow <-chan struct{}
	// OutputCap bounds the output (stdout and stderr together) the agent keeps and
	// sends; past it the result is Truncated. 0 means the agent's default (64 MiB),
	// which is also what Exec may hold in memory for the call.
	OutputCap int64
	// KeepCap bounds the output (stdout and stderr together) Result keeps in
	// memory; output past it still goes to onEvent and counts in Result.Dropped.
	// 0 means OutputCap.
	KeepCap int64
	// SudoUser, SudoPassword and SudoCheck run the command through sudo (see proto.Exec).
	SudoUser     string
	SudoPassword []byte
	SudoCheck    bool
	// Script, Args and Login: see proto.Exec.
	Script []byte
	Args   []string
	Login  bool
	PTY    *proto.PTY
}

// Event is one thing that happened during Exec, for the caller to pass on: a proto.RunEvent
// without the host (a session has one) and with the session's own State. Kind is
// proto.EventState, EventStart, EventStdout or EventStderr; Exec's return is the end.
type Event struct {
	Kind      proto.EventKind
	State     State
	PID       int
	RequestID uint64 // proto.EventStart: the agent's id of the command, under which it keeps the result
	Data      []byte
}

// Result is what the agent reported for one request: its exit message with the output
// collected, before the daemon turns it and Exec's error into a status. It is the
// session's own view, not a second proto.HostResult: it names the request (RequestID),
// counts what it did not keep (Dropped), and has no host, status or error.
type Result struct {
	RequestID      uint64
	ExitCode       int
	Signal         string
	PID            int
	Stdout, Stderr []byte
	// Dropped counts output bytes not kept in Stdout and Stderr: past KeepCap
	// (they went to onEvent) or after Exec's context ended (they went nowhere).
	Dropped         int64
	Truncated       bool
	Started, Ended  time.Time
	UserCPU, SysCPU time.Duration
	MaxRSS          int64
	Sudo            string // why sudo did not run the command (proto.SudoPasswordRequired...)
}

// Status is a snapshot of a session for `shoal daemon status`.
type Status struct {
	Host         string
	State        State
	AgentVersion string
	AgentPID     int
	LastRTT      time.Duration
	LastSeen     time.Time
	Running      int   // Exec calls in flight
	Err          error // the last connect or connection error, if any
}

// Error is a failed session call: why (a proto.Reason: for a failed connect the
// transport's own), the host, what was being done, and the cause.
type Error struct {
	Reason proto.Reason
	Host   string
	Op     string // what was being done, e.g. "exec", "connect"
	Err    error
}

func (e *Error) Error() string {
	if te, ok := e.Err.(*transport.Error); ok {
		// The transport's message says the reason: "h003: host key changed: ...".
		return e.Host + ": " + strings.TrimPrefix(te.Error(), e.Host+": ")
	}
	s := e.Host + ": " + e.Reason.Phrase()
	if e.Op != "" {
		s = e.Host + ": " + e.Op + ": " + e.Reason.Phrase()
	}
	if e.Err != nil {
		// Causes from this host's transport or session name the host already.
		s += ": " + strings.TrimPrefix(e.Err.Error(), e.Host+": ")
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// connectReason is the Reason of a failed transport connect: the transport's, which keeps
// an authentication failure apart from a changed host key, or proto.ReasonUnreachable when
// the transport gave none.
func connectReason(err error) proto.Reason {
	if r := transport.ReasonOf(err); r != "" {
		return r
	}
	return proto.ReasonUnreachable
}

// ReasonOf returns the Reason of the first *Error in err's chain, else that of the first
// *transport.Error, or "" when there is neither.
func ReasonOf(err error) proto.Reason {
	var he *Error
	if errors.As(err, &he) {
		return he.Reason
	}
	return transport.ReasonOf(err)
}
