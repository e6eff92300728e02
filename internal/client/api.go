// Package client talks to a shoal daemon: over its Unix socket, over mutual TLS, or in-process.
//
// This file is the contract between the daemon side (which implements Session in
// *Client) and the console and one-shot commands (which use Session). It holds
// plain data types only; the wire messages live in package proto, and a run's
// events and results are proto's own (proto.RunEvent, proto.HostResult).
package client

import (
	"context"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

// Session is what the console and the one-shot commands need from a daemon.
// *Client implements it; tests may use fakes.
type Session interface {
	// Run starts req.Command on every host of req.Hosts and returns at once.
	// Events arrive on the Run's channel as hosts answer; it is closed after the
	// last host's proto.EventDone. Cancelling ctx (or calling Run.Cancel) kills the
	// remote process groups; every host still gets a proto.EventDone (status cancelled).
	Run(ctx context.Context, req RunRequest) (*Run, error)
	// Ping checks each host's agent and reports its round trip.
	Ping(ctx context.Context, hosts []string) ([]PingResult, error)
	// Info asks each host's agent to describe its host.
	Info(ctx context.Context, hosts []string) ([]InfoResult, error)
	// Time reports each host's clock offset from the daemon's, corrected for round trip.
	Time(ctx context.Context, hosts []string) ([]TimeResult, error)
	// Put copies a local file to Dest on every host, keeping its mode unless req.Mode is set.
	Put(ctx context.Context, hosts []string, req PutRequest) ([]FileResult, error)
	// Get copies Src from every host into DestDir/<host>/<base name of Src>.
	Get(ctx context.Context, hosts []string, req GetRequest) ([]FileResult, error)
	// Status describes the daemon and every host session it holds.
	Status(ctx context.Context) (*DaemonStatus, error)
	// Last returns the results of this user's most recent completed runs, newest first (n ≤ 0: one).
	Last(ctx context.Context, n int) ([]proto.RunRecord, error)
	// Close ends the session; runs still going are cancelled.
	Close() error
}

// RunRequest asks for a command on a set of hosts.
type RunRequest struct {
	Hosts   []string // expanded host names, in the order to report them
	Command string   // run with bash -c on each host
	Dir     string   // where it starts: absolute or relative to the remote home; empty = home
	// KillGrace is how long a stopped command (timeout, cancel) has between SIGTERM and
	// SIGKILL to clean up; 0 means SIGKILL at once. Run.KillNow skips what is left of it.
	KillGrace time.Duration
	Timeout   time.Duration     // per host; 0 means none
	Env       map[string]string // extra environment
	Stdin     []byte            // given to the command's stdin on every host
	Identity  string            // the person at the console, for the audit log
	Fanout    int               // at most this many new SSH connections at once; 0 = daemon default
	Rollout   *proto.Rollout    // batches, canaries, a failure limit; nil starts every host at once
	// Subst expands %h (the host's name as targeted), %i (its SHOAL_INDEX) and %% in Command
	// on each host.
	Subst bool
	// Masked names the variables of Env whose values are secret (--env-file): the audit log
	// shows *** for them.
	Masked []string
	// Index, Count and RunID are set only by a daemon forwarding a run to a gateway: the place
	// of each of Hosts in the whole run's sorted target set, its size, and its id.
	Index []int
	Count int
	RunID uint64
	// SudoUser runs the command through sudo as this user; SudoPassword is given to sudo on
	// the hosts whose sudo asks for one. SudoCheck runs nothing: each host's result says
	// whether sudo would run a command there (ok) or why not (HostResult.Sudo).
	SudoUser     string
	SudoPassword []byte
	SudoCheck    bool
	// Script runs this local program on every host instead of Command (which then shows it),
	// with Args; ScriptName is its file's name, for the audit log.
	Script     []byte
	ScriptName string
	Args       []string
	// Login runs the command with a login shell (bash -l -c) on every host.
	Login bool
	// PTY gives the command a pseudo-terminal on every host; stdout and stderr then merge.
	PTY *proto.PTY
}

// Run is a command in flight.
type Run struct {
	ID uint64
	// Events carries what happens on the hosts, in order for each host; a done event's
	// Result holds all the output the host's stdout and stderr events carried.
	Events <-chan proto.RunEvent
	// Cancel stops the command on every host that has not finished (SIGTERM, then SIGKILL
	// after RunRequest.KillGrace). It returns at once.
	Cancel func()
	// KillNow kills the command at once (SIGKILL) on every host that has not finished,
	// cancelling it first if need be: a second Ctrl-C. It returns at once.
	KillNow func()
}

// PingResult is one host's answer to a ping.
type PingResult struct {
	Host   string
	RTT    time.Duration
	Status proto.Status // ok, unreachable, error
	Err    string
}

// InfoResult describes one host.
type InfoResult struct {
	Host         string
	Status       proto.Status
	Err          string
	Hostname     string
	OS, Arch     string
	Kernel       string
	CPUs         int
	MemTotal     int64 // bytes
	MemAvailable int64 // bytes
	Load         [3]float64
	Uptime       time.Duration
	AgentVersion string
	AgentHash    string
	Clock        time.Time
}

// TimeResult is one host's clock compared with the daemon's.
type TimeResult struct {
	Host   string
	Status proto.Status
	Err    string
	Offset time.Duration // host clock minus daemon clock, at the midpoint of the round trip
	RTT    time.Duration
}

// PutRequest copies a local file to the hosts.
type PutRequest struct {
	LocalPath string      // file on the client's machine
	Dest      string      // absolute path, or relative to the remote user's home
	Mode      fs.FileMode // 0 keeps the local file's mode
	Tree      bool        // LocalPath is a tar archive of a directory tree (fsutil.Pack) to lay out at Dest
}

// RemotePath returns what the remote path p means for a command started in dir: p itself when it
// is absolute, starts with "~" or dir is empty (home), else p under dir. A relative dir is itself
// taken from the remote home, so put, get and run agree on what a relative path means.
func RemotePath(dir, p string) string {
	if dir == "" || p == "" || path.IsAbs(p) || p == "~" || strings.HasPrefix(p, "~/") {
		return p
	}
	return path.Join(dir, p)
}

// GetRequest copies a file from the hosts.
type GetRequest struct {
	Src     string // remote path
	DestDir string // local directory; each host gets DestDir/<host>/
	Tree    bool   // Src is a directory: copy the tree (get -r); the daemon writes it, so not over TLS
}

// FileResult is one host's outcome for put or get.
type FileResult struct {
	Host   string
	Status proto.Status
	Err    string
	Bytes  int64
	Path   string      // where it was written (remote for put, local for get)
	Mode   fs.FileMode // GetTo: the file's mode on the host
}

// DaemonStatus describes a running daemon.
type DaemonStatus struct {
	PID     int
	Version string
	Started time.Time
	Clients int
	Socket  string
	Hosts   []HostStatus
	// The daemon's own resources; 0 when the daemon does not report them (an older daemon, or
	// FDs where there is no /proc).
	Goroutines int
	HeapLive   uint64 // bytes of heap the last GC found live
	HeapInUse  uint64 // bytes of heap spans in use, garbage not yet swept included
	FDs        int    // open file descriptors
	GCCycles   uint64 // GC cycles completed; HeapLive is as of the last one
}

// HostStatus is one host session as the daemon sees it.
type HostStatus struct {
	Host         string
	State        string // connecting, installing, ready, unresponsive, lost, backoff
	AgentVersion string
	AgentPID     int
	LastRTT      time.Duration
	LastSeen     time.Time
	Running      int
	Err          string
	Config       string // the configuration the session was resolved from
}

// HistoryError says the daemon's result history could not be read whole; Last returns it
// with the runs it could read.
type HistoryError struct{ Problem string }

func (e *HistoryError) Error() string { return "the result history is not whole: " + e.Problem }
