// Package agent is the remote half of shoal: it reads request frames, runs commands and answers.
//
// Serve is the whole agent. It speaks package proto over a reader and a writer (the stdin and
// stdout of `shoal agent`, or pipes in tests), runs commands with `bash -c` in their own process
// groups and result directories under Options.StateDir, and keeps each result on disk until the
// daemon acknowledges it, so a result survives a broken connection and is offered again by the
// next agent on the same host.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/proto"
)

// Options configures Serve. Zero fields take the defaults listed.
type Options struct {
	// StateDir holds run/<agent id>/<request id>/ result directories. Required.
	StateDir string
	// MaxRunning is how many commands run at once; default 2×CPUs, at least 4.
	MaxRunning int
	// MaxQueued is how many accepted commands may wait for a worker; default 256. Negative means 0.
	MaxQueued int
	// OutputCap is how many bytes of output (stdout and stderr together) a command keeps; default 64 MiB.
	OutputCap int64
	// ChunkSize is the size of output and read chunks; default 32 KiB.
	ChunkSize int
	// MaxFrame is the largest frame accepted; default proto.DefaultMaxFrame.
	MaxFrame int
	// MaxFileSize bounds what one read sends and one write receives; default 1 GiB.
	MaxFileSize int64
	// DrainGrace is how long output pipes may stay silent after a command's main process exited
	// before the agent stops reading them (a background child holding them open); default 2 s.
	DrainGrace time.Duration
	// Version is the program version reported in hello and info.
	Version string
	// BinarySHA256 is the hex SHA-256 reported in hello; empty means hash os.Executable()
	// once, cached in StateDir by the file's identity.
	BinarySHA256 string
	// AgentID names this agent instance; empty means "<hostname>-<pid>-<random>".
	AgentID string
	// Shell runs commands with Shell -c; empty means bash, or sh when there is no bash.
	Shell string
	// AskpassHelper is the program sudo runs as SUDO_ASKPASS to get a password from the
	// agent (AskpassMain); empty means the agent's own executable.
	AskpassHelper string
	// Logger receives diagnostics; nil means discard.
	Logger *Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Exec, when set, runs each command in place of Shell, in the agent's own process: it
	// writes the command's output to stdout and stderr and returns its exit code, or an error
	// when it cannot start it. ctx is canceled with a *Signaled cause when the command is
	// killed or times out. Nothing is forked; simulated hosts (internal/simfleet) use it.
	Exec func(ctx context.Context, req *proto.Exec, stdout, stderr io.Writer) (code int, err error)
}

// Default values of Options.
const (
	DefaultMaxQueued   = 256
	DefaultOutputCap   = 64 << 20
	DefaultChunkSize   = 32 << 10
	DefaultMaxFileSize = 1 << 30
	DefaultDrainGrace  = 2 * time.Second
)

func (o *Options) setDefaults() error {
	if o.StateDir == "" {
		return errors.New("agent: no state directory")
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return fmt.Errorf("agent: resolving state directory: %w", err)
	}
	o.StateDir = abs
	if o.MaxRunning <= 0 {
		o.MaxRunning = max(4, 2*runtime.NumCPU())
	}
	if o.MaxQueued == 0 {
		o.MaxQueued = DefaultMaxQueued
	} else if o.MaxQueued < 0 {
		o.MaxQueued = 0
	}
	if o.OutputCap <= 0 {
		o.OutputCap = DefaultOutputCap
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = proto.DefaultMaxFrame
	}
	if o.ChunkSize > o.MaxFrame/2 {
		o.ChunkSize = o.MaxFrame / 2
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.DrainGrace <= 0 {
		o.DrainGrace = DefaultDrainGrace
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.BinarySHA256 == "" {
		o.BinarySHA256 = selfHash(o.StateDir)
	}
	if o.AgentID == "" {
		o.AgentID = NewAgentID()
	}
	if strings.ContainsAny(o.AgentID, "/\x00") || strings.HasPrefix(o.AgentID, ".") {
		return fmt.Errorf("agent: bad agent id %q", o.AgentID)
	}
	if o.Shell == "" {
		o.Shell = defaultShell()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AskpassHelper == "" {
		o.AskpassHelper, _ = os.Executable()
	}
	return nil
}

var (
	selfHashOnce sync.Once
	selfHashVal  string
)

// selfHash returns the hex SHA-256 of the running executable, computed once per process and
// cached across processes in stateDir (see ExecutableHash).
func selfHash(stateDir string) string {
	selfHashOnce.Do(func() {
		selfHashVal, _ = ExecutableHash(stateDir)
	})
	return selfHashVal
}

// ExecutableHash returns the hex SHA-256 of the running executable. With cacheDir not empty it
// reuses the hash stored in cacheDir/.hash-<executable name> when that was taken of the very
// same file (device, inode, size, mtime and ctime: fsutil.CachedHash), and stores it there
// otherwise, so an agent does not read its whole binary on every start. This does not weaken
// the daemon's check of the hash in hello: modifying or replacing the binary changes its ctime,
// which nobody can set back, so a tampered binary is hashed afresh.
func ExecutableHash(cacheDir string) (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding own executable: %w", err)
	}
	cache := ""
	if cacheDir != "" {
		cache = hashCachePath(cacheDir, p)
	}
	h, _, err := fsutil.CachedHash(p, cache)
	if err != nil {
		return "", fmt.Errorf("hashing own executable: %w", err)
	}
	return h, nil
}

// NewAgentID returns a fresh agent instance id: "<hostname>-<pid>-<8 hex digits>".
func NewAgentID() string {
	var b [4]byte
	rand.Read(b[:])
	return hostTag() + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// hostTag is the host name made safe for a file name.
func hostTag() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r < ' ' {
			return '_'
		}
		return r
	}, h)
}

// sameHostAgent parses name as the id of an agent on this host, "<hostTag>-<pid>-<hex8>", and
// returns its pid.
func sameHostAgent(name string) (pid int, ok bool) {
	rest, ok := strings.CutPrefix(name, hostTag()+"-")
	if !ok {
		return 0, false
	}
	p, rnd, ok := strings.Cut(rest, "-")
	if !ok || len(rnd) != 8 {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 {
		return 0, false
	}
	if _, err := hex.DecodeString(rnd); err != nil {
		return 0, false
	}
	return pid, true
}

func defaultShell() string {
	for _, p := range []string{"/bin/bash", "/usr/bin/bash", "/usr/local/bin/bash"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return "/bin/sh"
}

// Serve runs an agent reading requests from r and writing responses to w until r ends, then lets
// running and queued commands finish into their result directories and returns nil. When ctx is
// canceled it kills every running command, stops, and returns ctx's cause; a Read blocked on r is
// not interrupted, so the caller must also close r. Serve never closes r or w.
func Serve(ctx context.Context, r io.Reader, w io.Writer, opts Options) error {
	if err := opts.setDefaults(); err != nil {
		return err
	}
	growPipe(r)
	s, err := newServer(opts, proto.NewConn(r, w, proto.ConnOptions{MaxFrame: opts.MaxFrame}))
	if err != nil {
		return err
	}
	return s.serve(ctx)
}

// server is one running agent.
type server struct {
	opts   Options
	conn   *proto.Conn
	log    *Logger
	runDir string // <state>/run/<agent id>
	lock   *fsutil.Lock

	queue chan *job
	wg    sync.WaitGroup // workers, readers, writers, timers

	// mu protects the following.
	mu       sync.Mutex
	jobs     map[uint64]*job           // accepted execs not yet acknowledged
	adopted  map[uint64]*adoptedResult // results of dead agents offered but not acknowledged
	reads    map[uint64]context.CancelFunc
	writes   map[uint64]*fileWrite
	running  int // jobs running now
	accepted int // jobs queued or running
	stopping bool
	spares   []string // emptied result directories ready for reuse (see spare.go)
	spareSeq uint64
}

func newServer(opts Options, conn *proto.Conn) (*server, error) {
	s := &server{
		opts:    opts,
		conn:    conn,
		log:     opts.Logger.With("agent", opts.AgentID),
		queue:   make(chan *job, opts.MaxRunning+opts.MaxQueued),
		jobs:    map[uint64]*job{},
		adopted: map[uint64]*adoptedResult{},
		reads:   map[uint64]context.CancelFunc{},
		writes:  map[uint64]*fileWrite{},
	}
	if err := s.makeRunDir(); err != nil {
		return nil, err
	}
	return s, nil
}

// makeRunDir takes over an idle run directory a previous agent left (see claimIdle), or creates
// run/<agent id> under a hidden name, locks it, and renames it into place, so no other agent ever
// sees it unlocked and mistakes it for a dead agent's.
func (s *server) makeRunDir() error {
	base := filepath.Join(s.opts.StateDir, "run")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return fmt.Errorf("agent: creating run directory: %w", err)
	}
	final := filepath.Join(base, s.opts.AgentID)
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("agent: run directory %s already exists", final)
	}
	if s.claimIdle(base, final) {
		return nil
	}
	tmp := filepath.Join(base, "."+s.opts.AgentID+".new")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("agent: creating run directory: %w", err)
	}
	lock, err := fsutil.TryLock(filepath.Join(tmp, lockName))
	if errors.Is(err, fsutil.ErrLocked) {
		os.RemoveAll(tmp)
		return fmt.Errorf("agent: locking run directory: %w", err)
	}
	if err != nil {
		// Some network file systems refuse locks (ENOLCK). Run anyway: other agents on this host
		// still see this one alive through its pid.
		s.log.Warn("running without a lock on the run directory", "err", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		lock.Unlock()
		os.RemoveAll(tmp)
		return fmt.Errorf("agent: placing run directory: %w", err)
	}
	s.runDir, s.lock = final, lock
	return nil
}

const lockName = ".lock"

func (s *server) now() time.Time { return s.opts.Now() }

// send writes a message; a failure is logged once by the conn's sticky error and otherwise ignored,
// because results are on disk and will be offered again.
func (s *server) send(id uint64, t proto.Type, body any) error {
	err := s.conn.Send(id, t, body)
	if err != nil && !errors.Is(err, proto.ErrFrameTooLarge) {
		s.log.Debug("sending", "type", t, "id", id, "err", err)
	}
	return err
}

func (s *server) sendError(id uint64, code proto.ErrorCode, format string, args ...any) {
	s.send(id, proto.TypeError, &proto.Error{Code: code, Message: fmt.Sprintf(format, args...)})
}

func (s *server) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	s.send(0, proto.TypeHello, &proto.Hello{
		Protocol: proto.Version, Program: s.opts.Version, BinarySHA256: s.opts.BinarySHA256,
		Capabilities: proto.AgentCapabilities, AgentID: s.opts.AgentID, PID: os.Getpid(),
		Role: "agent", Hostname: hostTag(), Clock: s.now().UnixNano(),
	})
	s.log.Debug("agent started", "state", s.opts.StateDir, "max_running", s.opts.MaxRunning, "max_queued", s.opts.MaxQueued)

	s.redeliver()

	for range s.opts.MaxRunning {
		s.wg.Add(1)
		go s.worker(ctx)
	}

	// Cancellation kills everything; the loop below then ends when the caller closes r.
	stopKill := context.AfterFunc(ctx, func() { s.killAll(9, true) })
	defer stopKill()

	loopErr := s.readLoop(ctx)

	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	close(s.queue)
	s.abortWrites()
	s.wg.Wait()
	s.releaseAdopted()
	s.retireRunDir()
	s.lock.Unlock()
	// A normal start and stop log at debug level only: the daemon forwards an agent's stderr
	// to the user, and one line per host says nothing.
	if loopErr != nil {
		s.log.Info("agent stopped", "err", loopErr)
	} else {
		s.log.Debug("agent stopped")
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return loopErr
}

// readLoop reads and dispatches requests until the input ends. It returns nil at a clean end.
func (s *server) readLoop(ctx context.Context) error {
	gotHello := false
	for {
		env, err := s.conn.Recv()
		if ctx.Err() != nil {
			return nil
		}
		var ute *proto.UnknownTypeError
		var ve *proto.VersionError
		var de *proto.DecodeError
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return nil
		case errors.As(err, &ve):
			s.sendError(env.ID, proto.CodeVersion, "%v", err)
			if !gotHello {
				return fmt.Errorf("agent: %w", err)
			}
			continue
		case errors.As(err, &ute):
			s.sendError(env.ID, proto.CodeUnknownType, "%v", err)
			continue
		case errors.As(err, &de):
			s.sendError(0, proto.CodeBadRequest, "%v", err)
			continue
		default:
			// A broken frame: the stream cannot be resynchronised.
			s.sendError(0, proto.CodeBadRequest, "%v", err)
			return fmt.Errorf("agent: reading requests: %w", err)
		}
		if !gotHello {
			if env.Type != proto.TypeHello {
				s.sendError(env.ID, proto.CodeBadRequest, "expected hello, got %v", env.Type)
				return fmt.Errorf("agent: first message is %v, not hello", env.Type)
			}
			var h proto.Hello
			if err := env.Decode(&h); err != nil {
				s.sendError(env.ID, proto.CodeBadRequest, "%v", err)
				return fmt.Errorf("agent: %w", err)
			}
			if h.Protocol != proto.Version {
				err := &proto.VersionError{Got: h.Protocol, Want: proto.Version}
				s.sendError(env.ID, proto.CodeVersion, "%v", err)
				return fmt.Errorf("agent: %w", err)
			}
			gotHello = true
			continue
		}
		s.dispatch(ctx, env)
	}
}

func (s *server) dispatch(ctx context.Context, env *proto.Envelope) {
	body, err := env.DecodeBody()
	if err != nil {
		s.sendError(env.ID, proto.CodeBadRequest, "%v", err)
		return
	}
	switch m := body.(type) {
	case *proto.Ping:
		s.send(env.ID, proto.TypePong, &proto.Pong{Clock: s.now().UnixNano()})
	case *proto.InfoRequest:
		s.send(env.ID, proto.TypeInfoResult, s.info())
	case *proto.Exec:
		s.accept(env.ID, m)
	case *proto.Ack:
		s.ack(env.ID)
	case *proto.Kill:
		s.send(env.ID, proto.TypeKilled, &proto.Killed{Count: s.kill(m)})
	case *proto.Read:
		s.startRead(ctx, env.ID, m)
	case *proto.Write:
		s.startWrite(env.ID, m)
	case *proto.WriteChunk:
		s.writeChunk(env.ID, m)
	case *proto.WriteDone:
		s.writeDone(env.ID)
	case *proto.Hello:
		// A repeated hello is harmless.
	default:
		s.sendError(env.ID, proto.CodeBadRequest, "%v is not a request", env.Type)
	}
}

// idInUseLocked reports whether id names a pending request of any kind.
func (s *server) idInUseLocked(id uint64) bool {
	_, j := s.jobs[id]
	_, a := s.adopted[id]
	_, r := s.reads[id]
	_, w := s.writes[id]
	return j || a || r || w
}
