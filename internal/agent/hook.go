package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

// Signaled is the cause with which the context of an Options.Exec command is canceled when the
// command is killed (by a kill request, its timeout or the agent stopping): Signal is the signal
// a process would have been sent.
type Signaled struct{ Signal int }

func (e *Signaled) Error() string { return fmt.Sprintf("killed by signal %d", e.Signal) }

// runHook runs j with Options.Exec instead of a process: the same result directory, messages and
// files as run, with no process id (Started.PID 0) and a kill that cancels the hook's context.
func (s *server) runHook(ctx context.Context, j *job) *proto.Exit {
	hctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var once sync.Once
	stop := func(sig int) { once.Do(func() { cancel(&Signaled{Signal: sig}) }) }

	s.mu.Lock()
	sig := j.canceled
	if sig == 0 {
		j.stop = stop
	}
	s.mu.Unlock()
	start := s.now()
	if sig != 0 {
		now := start.UnixNano()
		return &proto.Exit{Code: -1, Signal: sig, Canceled: true, Start: now, End: now}
	}
	if b, err := proto.Marshal(&jobRecord{Cmd: j.req.Cmd}); err == nil {
		if err := overwrite(filepath.Join(j.dir, fileRequest), b); err != nil {
			s.log.Warn("writing request record", "id", j.id, "err", err)
		}
	}
	s.send(j.id, proto.TypeStarted, &proto.Started{Dir: j.dir})

	var timer *time.Timer
	if j.req.Timeout > 0 {
		timer = time.AfterFunc(time.Duration(j.req.Timeout), func() {
			s.mu.Lock()
			j.timedOut = true
			s.mu.Unlock()
			stop(int(syscall.SIGKILL))
		})
	}
	limit := j.req.OutputCap
	if limit <= 0 {
		limit = s.opts.OutputCap
	}
	p := &pump{s: s, j: j, limit: limit}
	out := p.sink(filepath.Join(j.dir, fileOut), proto.Stdout, &p.outBytes)
	errs := p.sink(filepath.Join(j.dir, fileErr), proto.Stderr, &p.errBytes)
	mono := time.Now()
	code, err := s.opts.Exec(hctx, j.req, out, errs)
	elapsed, end := time.Since(mono), s.now()
	if timer != nil {
		timer.Stop()
	}
	out.close()
	errs.close()
	s.mu.Lock()
	j.stop = nil
	timedOut := j.timedOut
	s.mu.Unlock()
	ex := &proto.Exit{
		Code:        code,
		Start:       start.UnixNano(),
		End:         end.UnixNano(),
		Duration:    int64(elapsed),
		TimedOut:    timedOut,
		Truncated:   p.truncated,
		StdoutBytes: p.outBytes,
		StderrBytes: p.errBytes,
	}
	if sg, ok := context.Cause(hctx).(*Signaled); ok {
		ex.Code, ex.Signal = -1, sg.Signal
	} else if err != nil {
		ex.Code, ex.Err = -1, err.Error()
	}
	return ex
}
