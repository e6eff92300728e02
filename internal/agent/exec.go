package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

// Files in a command's result directory.
const (
	fileStdin   = "stdin"   // the command's stdin, written at acceptance when there is any
	fileRequest = "request" // CBOR jobRecord, written once the process exists
	fileOut     = "out"     // outHeader and the command's stdout; created at its first byte
	fileErr     = "err"     // the same for stderr
	fileStatus  = "status"  // CBOR proto.Exit, written when the command is over
	fileScript  = "script"  // the program of an exec with a Script, while it runs

	// Output files of agents before fileOut and fileErr: the bare stream, read back as such.
	fileStdout = "stdout"
	fileStderr = "stderr"
)

// outHeader is the first byte of an output file; the output follows. A recycled output file is
// cut back to this byte, not emptied: on ext4 cutting a file to nothing makes its next close
// start writing it back to disk (auto_da_alloc), which costs more than a new file.
const outHeader = 0x0a

// jobRecord is what a later agent needs to know about a command that was started.
type jobRecord struct {
	Cmd string `cbor:"1,keyasint"`
	PID int    `cbor:"2,keyasint"`
}

type jobState int

const (
	jobQueued jobState = iota
	jobRunning
	jobDone
)

// job is one accepted exec, from acceptance to acknowledgement.
type job struct {
	id       uint64
	req      *proto.Exec // without Stdin once accepted
	dir      string
	hasStdin bool // the stdin file exists
	script   int  // 0: no script; scriptShebang or scriptShell: how to run the script file

	// These are guarded by server.mu.
	state    jobState
	acked    bool // the ack came before the status was on disk
	pgid     int
	canceled int // signal that canceled it while queued, or 0
	timedOut bool
	escalate *time.Timer   // sends SIGKILL when a stopped command outlives its grace
	stop     func(sig int) // cancels an Options.Exec command, in place of a signal to pgid

	// sendMu orders seq and sends of this job's output across its two streams.
	sendMu sync.Mutex
	seq    uint64
}

// accept creates the result directory of an exec and queues it, or refuses with busy.
func (s *server) accept(id uint64, req *proto.Exec) {
	s.mu.Lock()
	if s.idInUseLocked(id) {
		s.mu.Unlock()
		s.sendError(id, proto.CodeDuplicateID, "request id %d is still pending", id)
		return
	}
	if s.stopping {
		s.mu.Unlock()
		s.sendError(id, proto.CodeStopping, "the agent takes no new work")
		return
	}
	if s.accepted >= s.opts.MaxRunning+s.opts.MaxQueued {
		b := s.busyLocked()
		s.mu.Unlock()
		s.send(id, proto.TypeBusy, b)
		return
	}
	s.accepted++
	j := &job{id: id, req: req, dir: filepath.Join(s.runDir, strconv.FormatUint(id, 10))}
	s.jobs[id] = j // reserve the id while the directory is made
	s.mu.Unlock()

	if err := s.prepareDir(j); err != nil {
		s.mu.Lock()
		delete(s.jobs, id)
		s.accepted--
		s.mu.Unlock()
		os.RemoveAll(j.dir)
		s.sendError(id, proto.CodeIO, "preparing command directory: %v", err)
		return
	}
	s.queue <- j // never blocks: the queue holds MaxRunning+MaxQueued jobs and accepted counts them
}

func (s *server) busyLocked() *proto.Busy {
	return &proto.Busy{Running: s.running, Queued: s.accepted - s.running, MaxRunning: s.opts.MaxRunning, MaxQueued: s.opts.MaxQueued}
}

func (s *server) prepareDir(j *job) error {
	if err := s.makeResultDir(j.dir); err != nil {
		return err
	}
	if len(j.req.Stdin) > 0 {
		if err := os.WriteFile(filepath.Join(j.dir, fileStdin), j.req.Stdin, 0o600); err != nil {
			return err
		}
		// A queued job must not pin its stdin in memory: the file has it now.
		j.hasStdin = true
		req := *j.req
		req.Stdin = nil
		j.req = &req
	}
	if len(j.req.Script) > 0 {
		if err := os.WriteFile(filepath.Join(j.dir, fileScript), j.req.Script, 0o700); err != nil {
			return err
		}
		j.script = scriptShell
		if bytes.HasPrefix(j.req.Script, []byte("#!")) {
			j.script = scriptShebang
		}
		req := *j.req
		req.Script = nil
		j.req = &req
	}
	return nil
}

// How a script file runs (job.script).
const (
	scriptShebang = 1 // by its #! line
	scriptShell   = 2 // as the shell's script
)

// command returns the process of j: Shell -c Cmd (with -l for a login shell), or j's script
// file with its arguments.
func (s *server) command(j *job) *exec.Cmd {
	switch j.script {
	case scriptShebang:
		return exec.Command(filepath.Join(j.dir, fileScript), j.req.Args...)
	case scriptShell:
		return exec.Command(s.opts.Shell, append([]string{filepath.Join(j.dir, fileScript)}, j.req.Args...)...)
	}
	if j.req.Login {
		return exec.Command(s.opts.Shell, "-l", "-c", j.req.Cmd)
	}
	return exec.Command(s.opts.Shell, "-c", j.req.Cmd)
}

// worker runs queued jobs until the queue is closed and drained.
func (s *server) worker(ctx context.Context) {
	defer s.wg.Done()
	for j := range s.queue {
		s.mu.Lock()
		sig := j.canceled
		if sig == 0 {
			j.state = jobRunning
			s.running++
		}
		s.mu.Unlock()
		if sig != 0 {
			now := s.now().UnixNano()
			s.finish(j, &proto.Exit{Code: -1, Signal: sig, Canceled: true, Start: now, End: now})
			continue
		}
		ex := s.run(ctx, j)
		s.mu.Lock()
		s.running--
		s.mu.Unlock()
		s.finish(j, ex)
	}
}

// finish records the exit status on disk, then sends it, so a daemon that has the exit knows the
// result is on disk. The status is written in one write without fsync: it is in the page cache,
// where the next agent finds it even if this one dies, and only a crash of the host loses it; a
// torn or missing status is then reported as unknown by the next agent.
func (s *server) finish(j *job, ex *proto.Exit) {
	if b, err := proto.Marshal(ex); err == nil {
		if err := overwrite(filepath.Join(j.dir, fileStatus), b); err != nil {
			s.log.Warn("writing status", "id", j.id, "err", err)
		}
	}
	s.send(j.id, proto.TypeExit, ex)
	s.mu.Lock()
	j.state = jobDone
	j.pgid = 0
	if j.escalate != nil {
		j.escalate.Stop()
	}
	s.accepted--
	acked := j.acked
	if acked {
		delete(s.jobs, j.id)
	}
	s.mu.Unlock()
	if acked {
		s.removeResult(j.id, j.dir)
	}
}

// run starts the command, streams its output and waits for it.
func (s *server) run(ctx context.Context, j *job) *proto.Exit {
	if s.opts.Exec != nil {
		return s.runHook(ctx, j)
	}
	start := s.now()
	var wrapSudo func(*exec.Cmd, []string) // set when the command goes through sudo
	sudoTTY := false                       // that sudo wants a terminal (requiretty)
	fail := func(err error) *proto.Exit {
		end := s.now()
		return &proto.Exit{Code: -1, Start: start.UnixNano(), End: end.UnixNano(), Err: err.Error()}
	}
	if j.req.SudoUser != "" {
		// The password lives no longer than the command: it is never written anywhere.
		defer clear(j.req.SudoPassword)
		sr, ex := s.sudoPrepare(ctx, j)
		if ex != nil {
			return ex
		}
		defer sr.close()
		wrapSudo, sudoTTY = sr.wrap, sr.tty
	}
	stdin, err := os.Open(os.DevNull)
	if j.hasStdin {
		stdin, err = os.Open(filepath.Join(j.dir, fileStdin))
	}
	if err != nil {
		return fail(fmt.Errorf("opening stdin: %w", err))
	}
	defer stdin.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("creating pipe: %w", err))
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return fail(fmt.Errorf("creating pipe: %w", err))
	}

	cmd := s.command(j)
	if j.script != 0 {
		// The script is the command's, not a result: it goes as soon as the command ends.
		defer os.Remove(filepath.Join(j.dir, fileScript))
	}
	// Commands start where ssh would start them: in the home directory, or the one asked for
	// (relative paths and "~/" are taken from home, as for files). The result directory is
	// the agent's bookkeeping and no command's business.
	cmd.Dir, err = workDir(j.req.Dir)
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return fail(err)
	}
	if st, err := os.Stat(cmd.Dir); err != nil || !st.IsDir() {
		// exec would blame the shell ("fork/exec /bin/bash: no such file or directory").
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		var pe *fs.PathError
		if err == nil {
			err = errors.New("not a directory")
		} else if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return fail(fmt.Errorf("working directory %s: %w", cmd.Dir, err))
	}
	extra := append([]string{"SHOAL_RUN_DIR=" + j.dir, "SHOAL_REQUEST_ID=" + strconv.FormatUint(j.id, 10)}, j.req.Env...)
	if p := j.req.PTY; p != nil {
		term := p.Term
		if term == "" {
			term = "xterm"
		}
		extra = append(extra, "TERM="+term)
	}
	cmd.Env = append(os.Environ(), extra...)
	if wrapSudo != nil {
		wrapSudo(cmd, extra)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if j.req.PTY != nil {
		// A terminal for stdin, stdout and stderr, controlling a session of its own (whose
		// group is the process's, as with Setpgid). Output comes from the master, as stdout.
		master, slave, err := openPTY(j.req.PTY)
		if err != nil {
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			return fail(err)
		}
		outR.Close()
		outW.Close()
		outR, outW = master, slave // outW (the slave) is closed once the process has it
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	ttyStarted := func() {}
	if sudoTTY && j.req.PTY == nil {
		started, ended, err := withTTY(cmd)
		if err != nil {
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			return fail(err)
		}
		defer ended()
		ttyStarted = started
	}

	s.mu.Lock()
	sig := j.canceled
	s.mu.Unlock()
	if sig != 0 {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		now := s.now().UnixNano()
		return &proto.Exit{Code: -1, Signal: sig, Canceled: true, Start: now, End: now}
	}
	err = cmd.Start()
	ttyStarted()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return fail(fmt.Errorf("starting %s: %w", cmd.Path, err))
	}
	mono := time.Now()
	pid := cmd.Process.Pid
	s.mu.Lock()
	j.pgid = pid
	sig = j.canceled // a kill that came while the process was being started
	s.mu.Unlock()
	if sig != 0 {
		syscall.Kill(-pid, syscall.Signal(sig))
	}
	// The pid record goes to disk before started is sent: an agent killed in between must leave
	// a record that says the command runs, not one that says it never started.
	if b, err := proto.Marshal(&jobRecord{Cmd: j.req.Cmd, PID: pid}); err == nil {
		if err := overwrite(filepath.Join(j.dir, fileRequest), b); err != nil {
			s.log.Warn("writing request record", "id", j.id, "err", err)
		}
	}
	s.send(j.id, proto.TypeStarted, &proto.Started{PID: pid, Dir: j.dir})

	var timer *time.Timer
	if j.req.Timeout > 0 {
		timer = time.AfterFunc(time.Duration(j.req.Timeout), func() {
			s.mu.Lock()
			j.timedOut = true
			if grace := time.Duration(j.req.KillGrace); grace > 0 {
				s.signalJobLocked(j, int(syscall.SIGTERM))
				s.escalateLocked(j, grace)
			} else {
				s.signalJobLocked(j, int(syscall.SIGKILL))
			}
			s.mu.Unlock()
		})
	}

	limit := j.req.OutputCap
	if limit <= 0 {
		limit = s.opts.OutputCap
	}
	p := &pump{s: s, j: j, limit: limit, exited: make(chan struct{})}
	var pw sync.WaitGroup
	if j.req.PTY != nil {
		// The terminal's input: the command's stdin, if any, then end-of-file (Ctrl-D), so a
		// command reading it never waits. The write ends when the pump closes the master.
		pw.Add(1)
		go func() {
			defer pw.Done()
			if j.hasStdin {
				io.Copy(outR, stdin)
			}
			outR.Write([]byte{4})
		}()
	}
	pw.Add(2)
	go func() { defer pw.Done(); p.run(outR, filepath.Join(j.dir, fileOut), proto.Stdout, &p.outBytes) }()
	go func() { defer pw.Done(); p.run(errR, filepath.Join(j.dir, fileErr), proto.Stderr, &p.errBytes) }()

	waitErr := cmd.Wait()
	elapsed, end := time.Since(mono), s.now()
	if timer != nil {
		timer.Stop()
	}
	close(p.exited)
	// A background child may hold the pipes open: stop reading once they have been silent for
	// the grace period (the pumps push the deadline on while data flows).
	grace := time.Now().Add(s.opts.DrainGrace)
	outR.SetReadDeadline(grace)
	errR.SetReadDeadline(grace)
	pw.Wait()
	ex := &proto.Exit{
		Code:        -1,
		Start:       start.UnixNano(),
		End:         end.UnixNano(),
		Duration:    int64(elapsed),
		Truncated:   p.truncated,
		StdoutBytes: p.outBytes,
		StderrBytes: p.errBytes,
	}
	s.mu.Lock()
	ex.TimedOut = j.timedOut
	s.mu.Unlock()
	if st := cmd.ProcessState; st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				ex.Signal = int(ws.Signal())
			} else {
				ex.Code = ws.ExitStatus()
			}
		}
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			ex.UserCPU = ru.Utime.Nano()
			ex.SysCPU = ru.Stime.Nano()
			ex.MaxRSS = ru.Maxrss * 1024 // Linux reports KiB
		}
	} else if waitErr != nil {
		ex.Err = waitErr.Error()
	}
	return ex
}

// workDir returns the directory a command asked to run in dir starts in: home when dir is empty
// (or "/" when there is no home to be found), else dir, relative to home.
func workDir(dir string) (string, error) {
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "/", nil
		}
		return home, nil
	}
	d, err := resolvePath(dir)
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	return d, nil
}

// pump copies one output stream of a job to its file and to the connection, keeping at most limit
// bytes across both streams. Past the limit it keeps reading, so the command never blocks on a full
// pipe, and drops the data.
type pump struct {
	s      *server
	j      *job
	limit  int64
	exited chan struct{} // closed when the main process has been waited for

	mu        sync.Mutex // protects kept and truncated
	kept      int64
	truncated bool

	outBytes, errBytes int64 // written only by their own stream's goroutine
}

func (p *pump) run(r *os.File, path string, stream uint8, total *int64) {
	defer r.Close()
	k := p.sink(path, stream, total)
	defer k.close()
	for {
		select {
		case <-p.exited:
			r.SetReadDeadline(time.Now().Add(p.s.opts.DrainGrace))
		default:
		}
		n, err := r.Read(k.buf())
		if n > 0 {
			k.take(n)
		}
		if err != nil {
			// A terminal's master reads EIO once the last process holding it is gone.
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, syscall.EIO) {
				p.s.log.Warn("reading command output", "id", p.j.id, "err", err)
			}
			return
		}
	}
}

// sink returns the writer of one stream of p to its file at path and to the connection.
func (p *pump) sink(path string, stream uint8, total *int64) *sink {
	// hbuf[0] is room for outHeader, so the first write puts it and the data in one call.
	hbuf := make([]byte, 1+p.s.opts.ChunkSize)
	hbuf[0] = outHeader
	return &sink{p: p, path: path, stream: stream, total: total, hbuf: hbuf}
}

// sink is one output stream of a job: what take is given goes to the stream's file (opened at
// the first kept byte) and to the connection, within the pump's limit. One goroutine uses it.
type sink struct {
	p      *pump
	path   string
	stream uint8
	total  *int64
	f      *os.File
	off    int64 // where the next kept byte goes in f
	hbuf   []byte
}

// buf is where the next chunk of output goes before take.
func (k *sink) buf() []byte { return k.hbuf[1:] }

// take handles the first n bytes of buf.
func (k *sink) take(n int) {
	p := k.p
	*k.total += int64(n)
	p.mu.Lock()
	keep := min(int64(n), p.limit-p.kept)
	if keep < int64(n) {
		p.truncated = true
	}
	p.kept += max(keep, 0)
	p.mu.Unlock()
	if keep <= 0 {
		return
	}
	data := k.buf()[:keep]
	write := data
	if k.f == nil && k.off == 0 {
		// A recycled directory has the file already, cut back to its header.
		var ferr error
		if k.f, ferr = os.OpenFile(k.path, os.O_WRONLY|os.O_CREATE, 0o600); ferr != nil {
			p.s.log.Warn("creating output file", "id", p.j.id, "err", ferr)
		}
		write = k.hbuf[:1+keep]
	}
	if k.f != nil {
		if _, werr := k.f.WriteAt(write, k.off); werr != nil {
			p.s.log.Warn("writing output file", "id", p.j.id, "err", werr)
		}
	}
	k.off += int64(len(write))
	p.j.sendMu.Lock()
	seq := p.j.seq
	p.j.seq++
	p.s.send(p.j.id, proto.TypeOutput, &proto.Output{Stream: k.stream, Data: data, Seq: seq})
	p.j.sendMu.Unlock()
}

// Write passes b on in chunks, for an Options.Exec command; it never fails.
func (k *sink) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		c := copy(k.buf(), b)
		k.take(c)
		b = b[c:]
	}
	return n, nil
}

func (k *sink) close() {
	if k.f != nil {
		k.f.Close()
	}
}

// kill signals one request or all of them and returns how many were affected.
func (s *server) kill(k *proto.Kill) int {
	sig := k.Signal
	if sig <= 0 {
		sig = int(syscall.SIGTERM)
	}
	if k.All {
		return s.killAll(sig, false)
	}
	s.mu.Lock()
	j, isJob := s.jobs[k.Target]
	cancelRead, isRead := s.reads[k.Target]
	fw, isWrite := s.writes[k.Target]
	n := 0
	if isJob {
		n = s.signalJobLocked(j, sig)
		if k.Grace > 0 && sig != int(syscall.SIGKILL) {
			s.escalateLocked(j, time.Duration(k.Grace))
		}
	}
	s.mu.Unlock()
	if isRead {
		cancelRead()
		n++
	}
	if isWrite {
		s.abortWrite(k.Target, fw, "killed")
		n++
	}
	return n
}

// killAll signals every running command and cancels every queued one.
func (s *server) killAll(sig int, alsoFiles bool) int {
	s.mu.Lock()
	n := 0
	for _, j := range s.jobs {
		n += s.signalJobLocked(j, sig)
	}
	s.mu.Unlock()
	if alsoFiles {
		s.abortWrites()
	}
	return n
}

// escalateLocked sends SIGKILL to j's process group after grace unless it is over by then: a
// command stopped with SIGTERM gets that long to clean up (its traps run), not forever.
func (s *server) escalateLocked(j *job, grace time.Duration) {
	if j.escalate != nil || j.state == jobDone {
		return
	}
	j.escalate = time.AfterFunc(grace, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if j.state == jobRunning {
			s.signalJobLocked(j, int(syscall.SIGKILL))
		}
	})
}

func (s *server) signalJobLocked(j *job, sig int) int {
	switch j.state {
	case jobQueued:
		if j.canceled == 0 {
			j.canceled = sig
			return 1
		}
	case jobRunning:
		if j.stop != nil {
			j.stop(sig)
			return 1
		}
		if j.pgid > 0 {
			if err := syscall.Kill(-j.pgid, syscall.Signal(sig)); err == nil {
				return 1
			}
		} else if j.canceled == 0 {
			j.canceled = sig // about to start
			return 1
		}
	}
	return 0
}

// ack removes an acknowledged result, now or, when its status is still being written, once it is.
func (s *server) ack(id uint64) {
	s.mu.Lock()
	j, ok := s.jobs[id]
	if ok {
		if j.state == jobDone {
			delete(s.jobs, id)
		} else {
			j.acked = true // an ack before the exit was seen is the daemon's mistake; finish handles it
			ok = false
		}
	}
	a, aok := s.adopted[id]
	if aok {
		delete(s.adopted, id)
	}
	s.mu.Unlock()
	if ok {
		s.removeResult(id, j.dir)
	}
	if aok {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.removeAdopted(a)
		}()
	}
}

// removeResult deletes an acknowledged result directory, or empties it and keeps it as a spare
// for a later command, in the background, off the reader loop.
func (s *server) removeResult(id uint64, dir string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if s.recycle(dir) {
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			s.log.Warn("removing result", "id", id, "err", err)
		}
	}()
}
