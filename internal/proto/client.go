package proto

import (
	"fmt"
	"time"
)

// Client↔daemon messages (wire values 64–127). The spec is in doc.go.

// ClientVersion is the version of the client↔daemon message set. It is checked in
// hello besides the envelope's Version, and bumps on any incompatible change to the
// messages below, so a client never talks to a daemon it misunderstands.
const ClientVersion uint16 = 1

// Client↔daemon message types. See the package documentation for who sends which.
const (
	TypeClientHello  Type = 64
	TypeDaemonHello  Type = 65
	TypeRun          Type = 66
	TypeRunAccepted  Type = 67
	TypeRunEvent     Type = 68
	TypeRunEnd       Type = 69
	TypeCancel       Type = 70
	TypePingHosts    Type = 71
	TypePingResults  Type = 72
	TypeInfoHosts    Type = 73
	TypeInfoResults  Type = 74
	TypeTimeHosts    Type = 75
	TypeTimeResults  Type = 76
	TypePut          Type = 77
	TypeGet          Type = 78
	TypeFileResults  Type = 79
	TypeStatus       Type = 80
	TypeStatusResult Type = 81
	TypeLast         Type = 82
	TypeLastResult   Type = 83
	TypeStop         Type = 84
	TypeStopping     Type = 85
	TypeFailed       Type = 86
	TypePutStream    Type = 87
	TypePutData      Type = 88
	TypeGetStream    Type = 89
	TypeGetData      Type = 90
	TypeReload       Type = 91
	TypeReloaded     Type = 92
)

// CapFileStream is the capability (DaemonHello.Caps) of a daemon that takes
// put-stream and get-stream: file bytes travel over the client connection.
const CapFileStream = "file-stream"

// FileChunk is the most file bytes one put-data or get-data frame carries.
const FileChunk = 1 << 20

// ClientHello is the client's first frame.
type ClientHello struct {
	Protocol     uint16 `cbor:"1,keyasint"`           // the sender's Version
	Client       uint16 `cbor:"2,keyasint"`           // the sender's ClientVersion
	Program      string `cbor:"3,keyasint,omitempty"` // program version
	Identity     string `cbor:"4,keyasint,omitempty"` // the person at the console, as she said
	PID          int    `cbor:"5,keyasint,omitempty"`
	BinarySHA256 string `cbor:"6,keyasint,omitempty"`
	// Hops is how many daemons forwarded this client's requests: 0 for a console,
	// 1 for a daemon forwarding to its gateway, and so on. A daemon refuses to
	// forward past MaxHops, which stops a loop of gateways.
	Hops int `cbor:"7,keyasint,omitempty"`
	// Config is the configuration the client was started with, which decides how the
	// daemon reaches the hosts of its requests; nil means the daemon's own.
	Config *ClientConfig `cbor:"8,keyasint,omitempty"`
}

// ClientConfig names the configuration a client runs with: its --config, -F and
// --connect-timeout, as absolute paths. An empty field means the default.
type ClientConfig struct {
	ConfigFile     string `cbor:"1,keyasint,omitempty"` // --config
	SSHConfig      string `cbor:"2,keyasint,omitempty"` // -F
	ConnectTimeout int64  `cbor:"3,keyasint,omitempty"` // --connect-timeout, ns
	User           string `cbor:"4,keyasint,omitempty"` // -l: log in as this user on every host
}

// MaxHops is the longest chain of gateways a request may travel.
const MaxHops = 8

// DaemonHello is the daemon's first frame. When Err is set the daemon refuses the
// client (version mismatch, wrong user) and closes the connection.
type DaemonHello struct {
	Protocol     uint16 `cbor:"1,keyasint"`
	Client       uint16 `cbor:"2,keyasint"`
	Program      string `cbor:"3,keyasint,omitempty"`
	PID          int    `cbor:"4,keyasint,omitempty"`
	Started      int64  `cbor:"5,keyasint,omitempty"` // Unix ns
	Socket       string `cbor:"6,keyasint,omitempty"`
	BinarySHA256 string `cbor:"7,keyasint,omitempty"`
	Err          string `cbor:"8,keyasint,omitempty"`
	// Caps names what this daemon can do beyond the ClientVersion's messages
	// (CapFileStream); an older daemon sends none, and a client asks it for nothing new.
	Caps []string `cbor:"9,keyasint,omitempty"`
}

// RunRequest asks for a command on hosts. The daemon answers RunAccepted (or Failed),
// then RunEvent frames in any order across hosts, then RunEnd, all with the request's id.
type RunRequest struct {
	Hosts    []string          `cbor:"1,keyasint"`
	Command  string            `cbor:"2,keyasint"`
	Timeout  int64             `cbor:"3,keyasint,omitempty"` // ns per host; 0 = none
	Env      map[string]string `cbor:"4,keyasint,omitempty"`
	Stdin    []byte            `cbor:"5,keyasint,omitempty"`
	Identity string            `cbor:"6,keyasint,omitempty"`
	Fanout   int               `cbor:"7,keyasint,omitempty"`
	Dir      string            `cbor:"8,keyasint,omitempty"` // working directory on each host; empty = home
	// KillGrace is how long a stopped command has between SIGTERM and SIGKILL (ns); 0 means
	// SIGKILL at once.
	KillGrace int64 `cbor:"9,keyasint,omitempty"`
	// Rollout paces the run (batches, canaries, a failure limit); nil starts every host at once.
	// Only a daemon with CapRollout honours it.
	Rollout *Rollout `cbor:"10,keyasint,omitempty"`
	// Subst expands %h (the host's name) and %i (its SHOAL_INDEX) in Command on each host;
	// %% is a percent sign.
	Subst bool `cbor:"11,keyasint,omitempty"`
	// Masked names the variables of Env whose values are secret: the audit log shows *** for them.
	Masked []string `cbor:"12,keyasint,omitempty"`
	// Index, Count and RunID are set by a daemon forwarding a run to a gateway, so the hosts
	// there see the SHOAL_INDEX, SHOAL_COUNT and SHOAL_RUN_ID of the whole run: Index[k] is
	// the place of Hosts[k] in the sorted target set, Count its size, RunID the run's id.
	Index []int  `cbor:"13,keyasint,omitempty"`
	Count int    `cbor:"14,keyasint,omitempty"`
	RunID uint64 `cbor:"15,keyasint,omitempty"`
	// SudoUser runs the command through sudo as this user on every host; SudoPassword is
	// for the hosts whose sudo asks for one (never logged or recorded). SudoCheck runs
	// nothing and records nothing in the history: each host's result says whether sudo
	// would run a command there (ok) or why not (HostResult.Sudo).
	SudoUser     string `cbor:"16,keyasint,omitempty"`
	SudoPassword []byte `cbor:"17,keyasint,omitempty"`
	SudoCheck    bool   `cbor:"18,keyasint,omitempty"`
	// Script is a local program to run on every host instead of Command (which then shows
	// it, as the history records it), with Args; ScriptName is its file's name, for the
	// audit log, which records its SHA-256 too.
	Script     []byte   `cbor:"19,keyasint,omitempty"`
	ScriptName string   `cbor:"20,keyasint,omitempty"`
	Args       []string `cbor:"21,keyasint,omitempty"`
	// Login runs the command with a login shell on every host.
	Login bool `cbor:"22,keyasint,omitempty"`
	// PTY gives the command a pseudo-terminal on every host (stdout and stderr merge).
	PTY *PTY `cbor:"23,keyasint,omitempty"`
}

// CapRollout is the capability (DaemonHello.Caps) of a daemon that honours RunRequest.Rollout.
const CapRollout = "rollout"

// CapSudo is the capability (DaemonHello.Caps) of a daemon that honours RunRequest.SudoUser.
const CapSudo = "sudo"

// CapLoginUser is the capability (DaemonHello.Caps) of a daemon that honours ClientConfig.User.
const CapLoginUser = "login-user"

// CapScript is the capability (DaemonHello.Caps) of a daemon that honours RunRequest.Script
// and Login.
const CapScript = "script"

// CapPTY is the capability (DaemonHello.Caps) of a daemon that honours RunRequest.PTY.
const CapPTY = "pty"

// Rollout says how a run paces its hosts. The command runs on at most a batch of hosts at
// a time, a sliding window by default (a host starts as soon as another finishes) or
// strict waves; the canaries run first, alone; and once the failure limit is reached no
// host starts any more: the hosts not started end as "skipped". Hosts start in
// request order, or shuffled.
type Rollout struct {
	Batch          int   `cbor:"1,keyasint,omitempty"` // hosts running the command at once; 0: all
	BatchPercent   int   `cbor:"2,keyasint,omitempty"` // or this percentage of the hosts, rounded up (when Batch is 0)
	Waves          bool  `cbor:"3,keyasint,omitempty"` // a batch starts only when the one before has finished
	Wait           int64 `cbor:"4,keyasint,omitempty"` // ns: pause between waves, or before a freed place is taken
	MaxFail        int   `cbor:"5,keyasint,omitempty"` // start no host once this many did not succeed; 0: no limit
	MaxFailPercent int   `cbor:"6,keyasint,omitempty"` // or this percentage of the hosts, rounded up (when MaxFail is 0)
	Canary         int   `cbor:"7,keyasint,omitempty"` // run on this many hosts first; go on only when all succeed
	Shuffle        bool  `cbor:"8,keyasint,omitempty"` // start the hosts in a random order
	Seed           int64 `cbor:"9,keyasint,omitempty"` // the shuffle's seed; 0: a random one
}

// RunAccepted says the daemon started a run; RunID is unique within the daemon and across its restarts.
type RunAccepted struct {
	RunID uint64 `cbor:"1,keyasint"`
}

// EventKind says what a RunEvent carries. It travels as its number: values are never
// reordered or reused.
type EventKind uint8

// The kinds of run event, in the order a host produces them.
const (
	EventState  EventKind = 1 // the host session's state changed (State: connecting, installing, ready, …)
	EventStart  EventKind = 2 // the command started (PID)
	EventStdout EventKind = 3 // a chunk of stdout (Data)
	EventStderr EventKind = 4 // a chunk of stderr (Data)
	EventDone   EventKind = 5 // the host finished (Result); its last event
)

var eventKindNames = [...]string{EventState: "state", EventStart: "start", EventStdout: "stdout", EventStderr: "stderr", EventDone: "done"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// RunEvent is one thing that happened on one host of a run. The done event's Result
// carries Stdout and Stderr only when they differ from what the host's stdout and stderr
// events carried (a result re-delivered after a reconnect); otherwise the client keeps
// the streamed bytes.
type RunEvent struct {
	Host   string      `cbor:"1,keyasint"`
	Kind   EventKind   `cbor:"2,keyasint"`
	State  string      `cbor:"3,keyasint,omitempty"`
	PID    int         `cbor:"4,keyasint,omitempty"`
	Data   []byte      `cbor:"5,keyasint,omitempty"`
	Result *HostResult `cbor:"6,keyasint,omitempty"`
}

// Status is how one host's part of a request ended: a run's command, a ping, info, time,
// or a file copy. It travels as its string, and the same strings are the `status` of
// `--json` output and the audit log (docs/json.md), so values are never renamed.
type Status string

// The statuses. ok and failed say the command ran; the others say it did not run, or
// did not run to its end, and come with an Err.
const (
	StatusOK          Status = "ok"          // the command ran and exited 0 (or the ping, info, time or copy worked)
	StatusFailed      Status = "failed"      // the command ran and exited non-zero, or a signal killed it
	StatusTimeout     Status = "timeout"     // the command ran past its timeout and was stopped
	StatusCancelled   Status = "cancelled"   // the client cancelled the request (Ctrl-C)
	StatusUnreachable Status = "unreachable" // the host could not be reached: network, connection refused, connect timeout, authentication, host key
	StatusRefused     Status = "refused"     // the agent refused the command: its queue was full
	StatusError       Status = "error"       // anything else: the agent could not be installed, broke the protocol, was lost or reported an error
	StatusSkipped     Status = "skipped"     // not started: a rollout stopped first (--max-fail, a failed canary)
)

// Statuses lists every Status, in the order above: the order summaries show them in.
var Statuses = []Status{StatusOK, StatusFailed, StatusTimeout, StatusCancelled, StatusUnreachable, StatusRefused, StatusError, StatusSkipped}

// HostResult is one host's outcome for one run. It is the one result type of every layer:
// the daemon sends it in a done event and keeps it in its history, the client hands it to
// the console, and render shows it.
//
// ExitCode is meaningful only when Status is ok or failed and Signal is empty.
type HostResult struct {
	Host      string        `cbor:"1,keyasint"`
	Status    Status        `cbor:"2,keyasint"`
	ExitCode  int           `cbor:"3,keyasint,omitempty"`
	Signal    string        `cbor:"4,keyasint,omitempty"` // the signal that ended the command, as "KILL"; empty if none
	PID       int           `cbor:"5,keyasint,omitempty"` // the remote process id; 0 when the command never started
	Stdout    []byte        `cbor:"6,keyasint,omitempty"`
	Stderr    []byte        `cbor:"7,keyasint,omitempty"`
	Truncated bool          `cbor:"8,keyasint,omitempty"` // output past the agent's cap was dropped
	Started   UnixNano      `cbor:"9,keyasint,omitempty"`
	Ended     UnixNano      `cbor:"10,keyasint,omitempty"`
	UserCPU   time.Duration `cbor:"11,keyasint,omitempty"`
	SysCPU    time.Duration `cbor:"12,keyasint,omitempty"`
	MaxRSS    int64         `cbor:"13,keyasint,omitempty"` // bytes
	Err       string        `cbor:"14,keyasint,omitempty"` // why, for every status but ok and failed; may start with "host: "
	Output    bool          `cbor:"15,keyasint,omitempty"` // Stdout and Stderr are the whole output (replace, not append)
	Sudo      string        `cbor:"16,keyasint,omitempty"` // why sudo did not run the command (proto.SudoPasswordRequired...)
	Reason    Reason        `cbor:"17,keyasint,omitempty"` // why, finer than Status, when the command did not run or report
}

// UnixNano is an instant as messages carry it: nanoseconds since the Unix epoch, 0 when unknown.
type UnixNano int64

// UnixNanoOf returns t as a UnixNano; the zero time.Time gives 0.
func UnixNanoOf(t time.Time) UnixNano {
	if t.IsZero() {
		return 0
	}
	return UnixNano(t.UnixNano())
}

// Time returns n as a time.Time; 0 gives the zero time.Time.
func (n UnixNano) Time() time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n))
}

// RunEnd follows the last host's done event of a run.
type RunEnd struct{}

// Cancel asks the daemon to kill the run whose request id the envelope carries.
type Cancel struct {
	// Now kills at once (SIGKILL), without the run's KillGrace: a second Ctrl-C.
	Now bool `cbor:"1,keyasint,omitempty"`
}

// HostsRequest names the hosts of a ping, info or time request.
type HostsRequest struct {
	Hosts []string `cbor:"1,keyasint"`
}

// PingResult is one host's answer to a ping.
type PingResult struct {
	Host   string `cbor:"1,keyasint"`
	RTT    int64  `cbor:"2,keyasint,omitempty"` // ns
	Status Status `cbor:"3,keyasint"`
	Err    string `cbor:"4,keyasint,omitempty"`
}

// PingResults answers PingHosts, one entry per host in request order.
type PingResults struct {
	Results []PingResult `cbor:"1,keyasint"`
}

// InfoResult describes one host (see client.InfoResult).
type InfoResult struct {
	Host         string     `cbor:"1,keyasint"`
	Status       Status     `cbor:"2,keyasint"`
	Err          string     `cbor:"3,keyasint,omitempty"`
	Hostname     string     `cbor:"4,keyasint,omitempty"`
	OS           string     `cbor:"5,keyasint,omitempty"`
	Arch         string     `cbor:"6,keyasint,omitempty"`
	Kernel       string     `cbor:"7,keyasint,omitempty"`
	CPUs         int        `cbor:"8,keyasint,omitempty"`
	MemTotal     int64      `cbor:"9,keyasint,omitempty"`
	MemAvailable int64      `cbor:"10,keyasint,omitempty"`
	Load         [3]float64 `cbor:"11,keyasint"`
	Uptime       int64      `cbor:"12,keyasint,omitempty"` // ns
	AgentVersion string     `cbor:"13,keyasint,omitempty"`
	AgentHash    string     `cbor:"14,keyasint,omitempty"`
	Clock        int64      `cbor:"15,keyasint,omitempty"` // Unix ns
}

// InfoResults answers InfoHosts, one entry per host in request order.
type InfoResults struct {
	Results []InfoResult `cbor:"1,keyasint"`
}

// TimeResult is one host's clock offset from the daemon's.
type TimeResult struct {
	Host   string `cbor:"1,keyasint"`
	Status Status `cbor:"2,keyasint"`
	Err    string `cbor:"3,keyasint,omitempty"`
	Offset int64  `cbor:"4,keyasint,omitempty"` // ns, host minus daemon
	RTT    int64  `cbor:"5,keyasint,omitempty"` // ns
}

// TimeResults answers TimeHosts, one entry per host in request order.
type TimeResults struct {
	Results []TimeResult `cbor:"1,keyasint"`
}

// PutRequest copies a file the daemon can read (LocalPath, absolute) to Dest on every host.
type PutRequest struct {
	Hosts     []string `cbor:"1,keyasint"`
	LocalPath string   `cbor:"2,keyasint"`
	Dest      string   `cbor:"3,keyasint"`
	Mode      uint32   `cbor:"4,keyasint,omitempty"` // 0 keeps the local file's mode
	Tree      bool     `cbor:"5,keyasint,omitempty"` // LocalPath is a tar of a tree to lay out at Dest (CapTree)
}

// CapTree is the capability (DaemonHello.Caps) of a daemon that takes PutRequest.Tree and
// PutStream.Tree: a directory tree copied as one tar archive.
const CapTree = "tree"

// GetRequest copies Src from every host into DestDir/<host>/<base name of Src>, written by the daemon.
type GetRequest struct {
	Hosts   []string `cbor:"1,keyasint"`
	Src     string   `cbor:"2,keyasint"`
	DestDir string   `cbor:"3,keyasint"`           // absolute
	Tree    bool     `cbor:"4,keyasint,omitempty"` // Src is a directory: copy its tree into DestDir/<host>/<base> (CapTree)
}

// FileResult is one host's outcome for put or get.
type FileResult struct {
	Host   string `cbor:"1,keyasint"`
	Status Status `cbor:"2,keyasint"`
	Err    string `cbor:"3,keyasint,omitempty"`
	Bytes  int64  `cbor:"4,keyasint,omitempty"`
	Path   string `cbor:"5,keyasint,omitempty"`
	Mode   uint32 `cbor:"6,keyasint,omitempty"` // get-stream: the file's mode on the host
}

// PutStream copies Size bytes, sent by the client in put-data frames with this
// request's id, to Dest on every host. The daemon answers file-results (or failed).
type PutStream struct {
	Hosts []string `cbor:"1,keyasint"`
	Dest  string   `cbor:"2,keyasint"`
	Mode  uint32   `cbor:"3,keyasint,omitempty"` // 0: 0644
	Size  int64    `cbor:"4,keyasint"`
	Name  string   `cbor:"5,keyasint,omitempty"` // the local file's name, for the audit log
	Tree  bool     `cbor:"6,keyasint,omitempty"` // the bytes are a tar of a tree to lay out at Dest (CapTree)
}

// PutData is a chunk (at most FileChunk bytes) of a put-stream's file; EOF marks the last.
type PutData struct {
	Data []byte `cbor:"1,keyasint,omitempty"`
	EOF  bool   `cbor:"2,keyasint,omitempty"`
}

// GetStream asks for Src from every host. The daemon answers get-data frames, in any
// order across hosts, then file-results (or failed).
type GetStream struct {
	Hosts []string `cbor:"1,keyasint"`
	Src   string   `cbor:"2,keyasint"`
	Tree  bool     `cbor:"3,keyasint,omitempty"` // Src is a directory: send each host's tree as a tar archive (CapTree)
}

// GetData is a chunk of one host's file (at most FileChunk bytes); End, set on the
// host's last get-data, is its outcome (with the file's Mode). A host whose End is
// not ok sent a partial file, to be thrown away.
type GetData struct {
	Host string      `cbor:"1,keyasint"`
	Data []byte      `cbor:"2,keyasint,omitempty"`
	End  *FileResult `cbor:"3,keyasint,omitempty"`
}

// FileResults answers Put and Get, one entry per host in request order.
type FileResults struct {
	Results []FileResult `cbor:"1,keyasint"`
}

// StatusRequest asks the daemon to describe itself.
type StatusRequest struct{}

// HostStatus is one host session as the daemon sees it.
type HostStatus struct {
	Host         string `cbor:"1,keyasint"`
	State        string `cbor:"2,keyasint"`
	AgentVersion string `cbor:"3,keyasint,omitempty"`
	AgentPID     int    `cbor:"4,keyasint,omitempty"`
	LastRTT      int64  `cbor:"5,keyasint,omitempty"` // ns
	LastSeen     int64  `cbor:"6,keyasint,omitempty"` // Unix ns
	Running      int    `cbor:"7,keyasint,omitempty"`
	Err          string `cbor:"8,keyasint,omitempty"`
	// Config is the configuration the session was resolved from, as the daemon describes it.
	Config string `cbor:"9,keyasint,omitempty"`
}

// DaemonStatus answers Status.
type DaemonStatus struct {
	PID     int          `cbor:"1,keyasint"`
	Version string       `cbor:"2,keyasint,omitempty"`
	Started int64        `cbor:"3,keyasint,omitempty"` // Unix ns
	Clients int          `cbor:"4,keyasint,omitempty"`
	Socket  string       `cbor:"5,keyasint,omitempty"`
	Hosts   []HostStatus `cbor:"6,keyasint,omitempty"`
	// The daemon's own resources, for spotting leaks; 0 means not reported (an older daemon,
	// or no /proc for FDs).
	Goroutines int    `cbor:"7,keyasint,omitempty"`
	HeapLive   uint64 `cbor:"8,keyasint,omitempty"`  // bytes of heap marked live by the last GC
	HeapInUse  uint64 `cbor:"9,keyasint,omitempty"`  // bytes of heap spans in use, garbage included
	FDs        int    `cbor:"10,keyasint,omitempty"` // open file descriptors
	GCCycles   uint64 `cbor:"11,keyasint,omitempty"` // GC cycles completed, to tell a fresh HeapLive
}

// LastRequest asks for the N most recent runs of this client's user (N ≤ 0: one).
type LastRequest struct {
	N int `cbor:"1,keyasint,omitempty"`
}

// RunRecord is a completed run kept in the daemon's result history.
type RunRecord struct {
	ID       uint64       `cbor:"1,keyasint"`
	Command  string       `cbor:"2,keyasint"`
	Started  UnixNano     `cbor:"3,keyasint,omitempty"`
	Ended    UnixNano     `cbor:"4,keyasint,omitempty"`
	Identity string       `cbor:"5,keyasint,omitempty"`
	Results  []HostResult `cbor:"6,keyasint,omitempty"`
	UID      int          `cbor:"7,keyasint,omitempty"`
	Cert     string       `cbor:"8,keyasint,omitempty"` // a network client's certificate name
	// Unseen marks a run whose results no client has received (recovered after a
	// crash, or its client gone before the end): the history keeps it until one does.
	Unseen bool `cbor:"9,keyasint,omitempty" json:",omitempty"`
}

// LastResult answers Last, newest first.
type LastResult struct {
	Runs []RunRecord `cbor:"1,keyasint,omitempty"`
	// Problem says why the history could not be read whole ("" when it could).
	Problem string `cbor:"2,keyasint,omitempty"`
}

// Stop asks the daemon to shut down cleanly.
type Stop struct{}

// Stopping answers Stop; the daemon closes every connection after sending it.
type Stopping struct{}

// Reload asks the daemon to read every configuration file again at its next use, even one
// whose size and modification time did not change.
type Reload struct{}

// Reloaded answers Reload.
type Reloaded struct{}

// Failed says client request id failed as a whole (not one host of it).
type Failed struct {
	Code    ErrorCode `cbor:"1,keyasint"`
	Message string    `cbor:"2,keyasint,omitempty"`
}

// Error returns the message, so a Failed can be returned as an error.
func (f *Failed) Error() string {
	if f.Message == "" {
		return f.Code.String()
	}
	return f.Message
}

func init() {
	Register(TypeClientHello, "client-hello", func() any { return new(ClientHello) })
	Register(TypeDaemonHello, "daemon-hello", func() any { return new(DaemonHello) })
	Register(TypeRun, "run", func() any { return new(RunRequest) })
	Register(TypeRunAccepted, "run-accepted", func() any { return new(RunAccepted) })
	Register(TypeRunEvent, "run-event", func() any { return new(RunEvent) })
	Register(TypeRunEnd, "run-end", func() any { return new(RunEnd) })
	Register(TypeCancel, "cancel", func() any { return new(Cancel) })
	Register(TypePingHosts, "ping-hosts", func() any { return new(HostsRequest) })
	Register(TypePingResults, "ping-results", func() any { return new(PingResults) })
	Register(TypeInfoHosts, "info-hosts", func() any { return new(HostsRequest) })
	Register(TypeInfoResults, "info-results", func() any { return new(InfoResults) })
	Register(TypeTimeHosts, "time-hosts", func() any { return new(HostsRequest) })
	Register(TypeTimeResults, "time-results", func() any { return new(TimeResults) })
	Register(TypePut, "put", func() any { return new(PutRequest) })
	Register(TypeGet, "get", func() any { return new(GetRequest) })
	Register(TypeFileResults, "file-results", func() any { return new(FileResults) })
	Register(TypeStatus, "status", func() any { return new(StatusRequest) })
	Register(TypeStatusResult, "status-result", func() any { return new(DaemonStatus) })
	Register(TypeLast, "last", func() any { return new(LastRequest) })
	Register(TypeLastResult, "last-result", func() any { return new(LastResult) })
	Register(TypeStop, "stop", func() any { return new(Stop) })
	Register(TypeReload, "reload", func() any { return new(Reload) })
	Register(TypeReloaded, "reloaded", func() any { return new(Reloaded) })
	Register(TypeStopping, "stopping", func() any { return new(Stopping) })
	Register(TypeFailed, "failed", func() any { return new(Failed) })
	Register(TypePutStream, "put-stream", func() any { return new(PutStream) })
	Register(TypePutData, "put-data", func() any { return new(PutData) })
	Register(TypeGetStream, "get-stream", func() any { return new(GetStream) })
	Register(TypeGetData, "get-data", func() any { return new(GetData) })
}
