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
	"fmt"
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

// Kind says why a session call failed, so callers can map it to a status.
type Kind int

// The failure kinds of a session call.
const (
	Other       Kind = iota
	Unreachable      // connecting to the host failed (the cause is a *transport.Error)
	Refused          // the agent refused the request (busy)
	Timeout          // the command ran past ExecRequest.Timeout and was killed
	Lost             // the connection to the agent was lost during the call
	Protocol         // the agent broke the protocol or its version/hash does not match
	Remote           // the agent reported an error for the request
	Closed           // the session is closed
	Install          // the agent could not be installed or has no binary for the host (the cause is a *transport.Error)
)

var kindNames = [...]string{"error", "unreachable", "refused", "timeout", "lost", "protocol error", "remote error", "closed", "install failed"}

func (k Kind) String() string {
	if int(k) >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a failed session call: its kind, the host, what was being done, and the cause.
type Error struct {
	Kind Kind
	Host string
	Op   string // what was being done, e.g. "exec", "connect"
	Err  error
}

func (e *Error) Error() string {
	if te, ok := e.Err.(*transport.Error); ok {
		// The transport's kind is the real reason: "h003: host key changed: ...".
		return e.Host + ": " + strings.TrimPrefix(te.Error(), e.Host+": ")
	}
	s := e.Host + ": " + e.Kind.String()
	if e.Op != "" {
		s = e.Host + ": " + e.Op + ": " + e.Kind.String()
	}
	if e.Err != nil {
		// Causes from this host's transport or session name the host already.
		s += ": " + strings.TrimPrefix(e.Err.Error(), e.Host+": ")
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// connectKind is the Kind of a failed transport connect: Install for a missing or failed agent
// install, Unreachable for everything else (network, refused, timeout, auth, host key).
func connectKind(err error) Kind {
	switch transport.KindOf(err) {
	case transport.NoAgentBinary, transport.InstallFailed:
		return Install
	}
	return Unreachable
}

// KindOf returns the Kind of err, or Other when err is not an *Error.
func KindOf(err error) Kind {
	var he *Error
	if errors.As(err, &he) {
		return he.Kind
	}
	return Other
}
