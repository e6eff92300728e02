package proto

import (
	"fmt"
	"time"
)

// Hello is the first message each way: who is speaking and what it can do.
type Hello struct {
	Protocol     uint16   `cbor:"1,keyasint"`           // the sender's Version
	Program      string   `cbor:"2,keyasint,omitempty"` // program version, e.g. "v0.3.1" or "dev"
	BinarySHA256 string   `cbor:"3,keyasint,omitempty"` // hex SHA-256 of the sender's executable
	Capabilities []string `cbor:"4,keyasint,omitempty"` // see the package documentation
	AgentID      string   `cbor:"5,keyasint,omitempty"` // agent instance id: "<host>-<pid>-<random>"
	PID          int      `cbor:"6,keyasint,omitempty"` // the sender's process id
	Role         string   `cbor:"7,keyasint,omitempty"` // "agent", "daemon" or "client"
	Hostname     string   `cbor:"8,keyasint,omitempty"` // os.Hostname of the sender
	Clock        int64    `cbor:"9,keyasint,omitempty"` // the sender's clock, Unix ns
}

// Ping asks the agent to answer at once.
type Ping struct{}

// Pong answers a ping.
type Pong struct {
	Clock int64 `cbor:"1,keyasint,omitempty"` // the agent's clock, Unix ns
}

// InfoRequest asks for Info.
type InfoRequest struct{}

// Info describes the agent's host.
type Info struct {
	Hostname     string     `cbor:"1,keyasint,omitempty"`
	OS           string     `cbor:"2,keyasint,omitempty"` // runtime.GOOS
	Arch         string     `cbor:"3,keyasint,omitempty"` // runtime.GOARCH
	Kernel       string     `cbor:"4,keyasint,omitempty"` // uname release, e.g. "6.8.0-45-generic"
	CPUs         int        `cbor:"5,keyasint,omitempty"`
	MemTotal     uint64     `cbor:"6,keyasint,omitempty"` // bytes
	MemAvailable uint64     `cbor:"7,keyasint,omitempty"` // bytes
	Load         [3]float64 `cbor:"8,keyasint"`           // 1, 5 and 15 minute load averages
	Uptime       int64      `cbor:"9,keyasint,omitempty"` // host uptime, ns
	Version      string     `cbor:"10,keyasint,omitempty"`
	BinarySHA256 string     `cbor:"11,keyasint,omitempty"`
	Clock        int64      `cbor:"12,keyasint,omitempty"` // the agent's clock, Unix ns
	AgentID      string     `cbor:"13,keyasint,omitempty"`
	PID          int        `cbor:"14,keyasint,omitempty"`
	Running      int        `cbor:"15,keyasint,omitempty"` // commands running now
	Queued       int        `cbor:"16,keyasint,omitempty"` // commands waiting
	StateDir     string     `cbor:"17,keyasint,omitempty"`
}

// Exec asks the agent to run `bash -c Cmd` (`sh -c` without bash).
type Exec struct {
	Cmd       string   `cbor:"1,keyasint"`
	Env       []string `cbor:"2,keyasint,omitempty"` // extra KEY=VALUE pairs on top of the agent's environment
	Stdin     []byte   `cbor:"3,keyasint,omitempty"` // the command's whole stdin; empty means /dev/null
	Timeout   int64    `cbor:"4,keyasint,omitempty"` // ns; 0 means none. On expiry the group is stopped (KillGrace)
	Dir       string   `cbor:"5,keyasint,omitempty"` // working directory, absolute or relative to home; empty means home
	OutputCap int64    `cbor:"6,keyasint,omitempty"` // bytes of output to keep; 0 means the agent's default
	// KillGrace is how long a command stopped by its Timeout has between SIGTERM and SIGKILL
	// (ns); 0 means SIGKILL at once.
	KillGrace int64 `cbor:"7,keyasint,omitempty"`
	// SudoUser, when set, runs the command through sudo as this user. SudoPassword is given
	// to sudo through the agent's askpass helper, only on a host where sudo asks for one,
	// and is never written anywhere. SudoCheck runs nothing: the exit says whether sudo
	// would run a command (Code 0) or why not (Sudo).
	SudoUser     string `cbor:"8,keyasint,omitempty"`
	SudoPassword []byte `cbor:"9,keyasint,omitempty"`
	SudoCheck    bool   `cbor:"10,keyasint,omitempty"`
	// Script, when set, is a program to run instead of Cmd (which then only describes it):
	// the agent writes it to a private file, runs it with Args by its #! line (or the
	// shell), and removes it when it ends.
	Script []byte   `cbor:"11,keyasint,omitempty"`
	Args   []string `cbor:"12,keyasint,omitempty"`
	// Login runs Cmd with a login shell (bash -l -c), so the profiles set PATH and the rest.
	Login bool `cbor:"13,keyasint,omitempty"`
	// PTY, when set, gives the command a pseudo-terminal of this size and TERM as its
	// stdin, stdout and stderr: its output then all arrives as stdout.
	PTY *PTY `cbor:"14,keyasint,omitempty"`
}

// PTY describes the terminal a command gets.
type PTY struct {
	Term string `cbor:"1,keyasint,omitempty"` // TERM; empty means "xterm"
	Rows int    `cbor:"2,keyasint,omitempty"` // 0 means 24
	Cols int    `cbor:"3,keyasint,omitempty"` // 0 means 80
}

// Why sudo did not run a command (Exit.Sudo, HostResult.Sudo).
const (
	SudoPasswordRequired  = "password-required"  // sudo wants a password and none was given
	SudoPasswordIncorrect = "password-incorrect" // the password given was refused
	SudoNoTTY             = "no-tty"             // sudo wants a terminal (requiretty)
	SudoRefused           = "refused"            // the user may not run the command as SudoUser
	SudoMissing           = "missing"            // no sudo on the host
)

// Started says the process of request id exists, or that a re-delivered result follows.
type Started struct {
	PID         int    `cbor:"1,keyasint,omitempty"`
	Dir         string `cbor:"2,keyasint,omitempty"` // the result directory on the host
	Redelivered bool   `cbor:"3,keyasint,omitempty"` // the result comes from an earlier agent
	Cmd         string `cbor:"4,keyasint,omitempty"` // set when Redelivered, so the daemon can tell what it was
	AgentID     string `cbor:"5,keyasint,omitempty"` // the agent that ran it, when Redelivered
}

// Streams of Output.
const (
	Stdout uint8 = 1
	Stderr uint8 = 2
)

// Output is a chunk of a command's output. Seq starts at 0 and grows by one per chunk of a request,
// across both streams.
type Output struct {
	Stream uint8  `cbor:"1,keyasint"`
	Data   []byte `cbor:"2,keyasint"`
	Seq    uint64 `cbor:"3,keyasint,omitempty"`
}

// Exit is the end of a command. Code is -1 when the command was killed by Signal.
type Exit struct {
	Code        int    `cbor:"1,keyasint"`
	Signal      int    `cbor:"2,keyasint,omitempty"`
	Start       int64  `cbor:"3,keyasint,omitempty"` // Unix ns
	End         int64  `cbor:"4,keyasint,omitempty"` // Unix ns
	Duration    int64  `cbor:"5,keyasint,omitempty"` // ns, from a monotonic clock
	UserCPU     int64  `cbor:"6,keyasint,omitempty"` // ns
	SysCPU      int64  `cbor:"7,keyasint,omitempty"` // ns
	MaxRSS      int64  `cbor:"8,keyasint,omitempty"` // bytes
	Truncated   bool   `cbor:"9,keyasint,omitempty"` // output past the cap was dropped
	TimedOut    bool   `cbor:"10,keyasint,omitempty"`
	Canceled    bool   `cbor:"11,keyasint,omitempty"` // killed while still queued; never ran
	Redelivered bool   `cbor:"12,keyasint,omitempty"`
	StdoutBytes int64  `cbor:"13,keyasint,omitempty"` // bytes the command wrote to stdout, kept or not
	StderrBytes int64  `cbor:"14,keyasint,omitempty"`
	Err         string `cbor:"15,keyasint,omitempty"` // why the command could not be started or waited for
	Sudo        string `cbor:"16,keyasint,omitempty"` // why sudo did not run the command (SudoPasswordRequired...)
}

// Elapsed returns Duration as a time.Duration.
func (e *Exit) Elapsed() time.Duration { return time.Duration(e.Duration) }

// Ack tells the agent the result of request id is safe, so it removes the result directory.
type Ack struct{}

// Read asks for a file, in chunks.
type Read struct {
	Path      string `cbor:"1,keyasint"`
	Offset    int64  `cbor:"2,keyasint,omitempty"`
	Length    int64  `cbor:"3,keyasint,omitempty"` // bytes to read from Offset; 0 means to the end
	MaxSize   int64  `cbor:"4,keyasint,omitempty"` // refuse to send more than this; 0 means the agent's default
	ChunkSize int    `cbor:"5,keyasint,omitempty"` // 0 means the agent's default
	// Tree asks for the directory tree at Path as a tar archive (see fsutil.Pack); Size and
	// Mode of the chunks are then the archive's size and the directory's mode.
	Tree bool `cbor:"6,keyasint,omitempty"`
}

// ReadChunk is a part of a file. The last chunk of a read has EOF set (and may be empty).
type ReadChunk struct {
	Offset int64  `cbor:"1,keyasint,omitempty"`
	Data   []byte `cbor:"2,keyasint,omitempty"`
	EOF    bool   `cbor:"3,keyasint,omitempty"`
	Size   int64  `cbor:"4,keyasint,omitempty"` // the file's size when the read began
	Mode   uint32 `cbor:"5,keyasint,omitempty"` // permission bits (fs.FileMode & fs.ModePerm)
	MTime  int64  `cbor:"6,keyasint,omitempty"` // Unix ns
}

// Write begins writing Path. Chunks follow as WriteChunk with the same id, then WriteDone.
type Write struct {
	Path     string `cbor:"1,keyasint"`
	Mode     uint32 `cbor:"2,keyasint,omitempty"` // permission bits; 0 means 0644
	Size     int64  `cbor:"3,keyasint,omitempty"` // expected size, checked at WriteDone when positive
	MkdirAll bool   `cbor:"4,keyasint,omitempty"` // create missing parent directories (0755)
	Sum      bool   `cbor:"5,keyasint,omitempty"` // report the SHA-256 of the data in Written
	// Tree says the data is a tar archive of a directory tree to lay out at Path, a directory
	// (see fsutil.Unpack): each file and link replaced atomically, modes and times kept, no
	// entry outside Path. Mode is then unused.
	Tree bool `cbor:"6,keyasint,omitempty"`
}

// WriteChunk carries data for a write, in order.
type WriteChunk struct {
	Data []byte `cbor:"1,keyasint"`
}

// WriteDone ends the data of a write.
type WriteDone struct{}

// Written says a write is in place.
type Written struct {
	Size   int64  `cbor:"1,keyasint"`
	SHA256 string `cbor:"2,keyasint,omitempty"` // hex; only when the write asked for it (Write.Sum)
}

// Kill sends Signal to the process group of request Target, or of every running command when All is
// set. A queued command is dropped (its exit has Canceled set); a pending write is abandoned.
type Kill struct {
	Target uint64 `cbor:"1,keyasint,omitempty"`
	All    bool   `cbor:"2,keyasint,omitempty"`
	Signal int    `cbor:"3,keyasint,omitempty"` // 0 means SIGTERM
	// Grace, when positive, is how long after Signal the agent sends SIGKILL to a command
	// that still runs (ns).
	Grace int64 `cbor:"4,keyasint,omitempty"`
}

// Killed answers a kill.
type Killed struct {
	Count int `cbor:"1,keyasint"` // process groups signalled plus queued commands dropped
}

// Busy refuses an exec because the queue is full.
type Busy struct {
	Running    int `cbor:"1,keyasint,omitempty"`
	Queued     int `cbor:"2,keyasint,omitempty"`
	MaxRunning int `cbor:"3,keyasint,omitempty"`
	MaxQueued  int `cbor:"4,keyasint,omitempty"`
}

// ErrorCode classifies an Error. Values are never reordered.
type ErrorCode uint16

// Error codes.
const (
	CodeInternal    ErrorCode = 1  // a bug or an unexpected failure
	CodeBadRequest  ErrorCode = 2  // the body did not decode or made no sense
	CodeUnknownType ErrorCode = 3  // the type is not known to the receiver
	CodeVersion     ErrorCode = 4  // protocol versions differ
	CodeDuplicateID ErrorCode = 5  // the id is already in use by a pending request
	CodeNotFound    ErrorCode = 6  // no such file or request
	CodeIO          ErrorCode = 7  // a file system or process error
	CodeTooLarge    ErrorCode = 8  // a file or chunk exceeds a limit
	CodeStopping    ErrorCode = 9  // the agent takes no new work
	CodePermission  ErrorCode = 10 // permission denied
	CodeBusy        ErrorCode = 11 // too many reads or writes in progress (2026-11-25)
)

var codeNames = map[ErrorCode]string{
	CodeInternal: "internal", CodeBadRequest: "bad request", CodeUnknownType: "unknown type",
	CodeVersion: "version mismatch", CodeDuplicateID: "duplicate id", CodeNotFound: "not found",
	CodeIO: "i/o error", CodeTooLarge: "too large", CodeStopping: "stopping", CodePermission: "permission denied", CodeBusy: "busy",
}

// String returns the name of c.
func (c ErrorCode) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// Error reports that a request failed. It is also a Go error, so callers can return it as is.
type Error struct {
	Code    ErrorCode `cbor:"1,keyasint"`
	Message string    `cbor:"2,keyasint,omitempty"`
}

// Error returns the code and message.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Message
}
