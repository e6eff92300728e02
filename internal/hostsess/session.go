package hostsess

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"
)

var errTODO = errors.New("not implemented yet")

// Session is one host's connection to its agent.
type Session struct {
	opts Options
}

// New returns a session; it connects lazily on the first request and reconnects after loss.
func New(opts Options) *Session { return &Session{opts: opts} }

// Host returns the host name of the session's target.
func (s *Session) Host() string { return s.opts.Target.Name }

// Exec runs a command and blocks until it ends. onEvent (may be nil) is called from one goroutine, in order.
func (s *Session) Exec(ctx context.Context, req ExecRequest, onEvent func(Event)) (Result, error) {
	return Result{}, errTODO
}

// Ping sends a ping to the agent and returns the round trip.
func (s *Session) Ping(ctx context.Context) (time.Duration, error) { return 0, errTODO }

// WriteFile writes size bytes from r to dest on the host, atomically, with mode.
func (s *Session) WriteFile(ctx context.Context, dest string, mode fs.FileMode, r io.Reader, size int64) error {
	return errTODO
}

// ReadFile copies src on the host to w and returns its size and mode.
func (s *Session) ReadFile(ctx context.Context, src string, w io.Writer) (int64, fs.FileMode, error) {
	return 0, 0, errTODO
}

// KillAll kills every command the agent runs.
func (s *Session) KillAll(ctx context.Context) error { return errTODO }

// Status returns a snapshot of the session.
func (s *Session) Status() Status { return Status{Host: s.Host(), State: StateIdle} }

// Close stops the session.
func (s *Session) Close() error { return nil }
