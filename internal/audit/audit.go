// Package audit writes shoal's audit log: JSON lines through log/slog, in a private
// file rotated by size.
//
// Each line is one event: a client connected or left, a request, one host's outcome.
// The field names are stable; scripts may read them.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"log/syslog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

// Defaults for Options.
const (
	DefaultMaxSize = 10 << 20 // bytes before the log is rotated
	DefaultBackups = 5        // rotated files kept: audit.log.1 … audit.log.N
)

// Options configure an audit log.
type Options struct {
	Path    string // the log file; rotated copies get .1, .2, … appended
	MaxSize int64  // rotate when the file would grow past this many bytes; 0 = DefaultMaxSize
	Backups int    // rotated files kept; 0 = DefaultBackups
	// Syslog also sends every record, the same JSON line, to syslog (facility auth, tag
	// shoal): the local daemon, or SyslogNetwork and SyslogAddr when set (log/syslog.Dial).
	// Syslog being away is no error: the file log carries on, and sending is retried.
	Syslog        bool
	SyslogNetwork string
	SyslogAddr    string
}

// Log is an open audit log. Its methods are safe for concurrent use.
type Log struct {
	w      *rotator
	logger *slog.Logger
}

// Open opens (creating, mode 0600, directory 0700) the audit log described by opts.
func Open(opts Options) (*Log, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Backups <= 0 {
		opts.Backups = DefaultBackups
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("creating audit log directory: %w", err)
	}
	r := &rotator{path: opts.Path, max: opts.MaxSize, backups: opts.Backups}
	if err := r.open(); err != nil {
		return nil, err
	}
	if opts.Syslog {
		r.syslog = &syslogWriter{network: opts.SyslogNetwork, addr: opts.SyslogAddr}
	}
	return &Log{w: r, logger: slog.New(slog.NewJSONHandler(r, nil))}, nil
}

// syslogWriter sends each record to syslog, connecting on first use and again after an error.
type syslogWriter struct {
	network, addr string

	mu sync.Mutex // protects the following
	w  *syslog.Writer
}

// send writes one record; it is called with the record's bytes, one JSON line.
func (s *syslogWriter) send(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		w, err := syslog.Dial(s.network, s.addr, syslog.LOG_AUTH|syslog.LOG_INFO, "shoal")
		if err != nil {
			return // no syslog here now: the file has the record
		}
		s.w = w
	}
	if _, err := s.w.Write(b); err != nil {
		s.w.Close()
		s.w = nil
	}
}

func (s *syslogWriter) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
}

// Discard returns a Log that writes nowhere.
func Discard() *Log {
	return &Log{logger: slog.New(slog.DiscardHandler)}
}

// Logger returns the slog logger writing to the audit log.
func (l *Log) Logger() *slog.Logger { return l.logger }

// Close closes the file.
func (l *Log) Close() error {
	if l.w == nil {
		return nil
	}
	return l.w.close()
}

// Client describes a connected client.
type Client struct {
	ID       uint64 // connection number within this daemon
	UID      int    // peer uid from the socket (-1 when unknown)
	PID      int    // peer pid from the socket (0 when unknown)
	Identity string // who the person at the console said she is
	Version  string // the client's program version
	Cert     string // a network client's certificate name ("" for local clients)
}

func (c Client) attrs() slog.Attr {
	args := []any{"conn", c.ID, "uid", c.UID, "pid", c.PID, "identity", c.Identity, "version", c.Version}
	if c.Cert != "" {
		args = append(args, "cert", c.Cert)
	}
	return slog.Group("client", args...)
}

// ClientConnected records a client that completed its hello.
func (l *Log) ClientConnected(c Client) {
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "client connected", c.attrs())
}

// ClientLeft records a client that went away, and why when it was an error.
func (l *Log) ClientLeft(c Client, err error) {
	attrs := []slog.Attr{c.attrs()}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "client left", attrs...)
}

// Request records one client request: what, where, and who asked, then any extra attributes
// (a run's environment, sudo).
func (l *Log) Request(c Client, request uint64, op string, hosts []string, command string, extra ...slog.Attr) {
	attrs := append([]slog.Attr{c.attrs(),
		slog.Uint64("request", request), slog.String("op", op),
		slog.Any("targets", hosts), slog.Int("count", len(hosts)), slog.String("command", command)}, extra...)
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

// HostOutcome records one host's result r for request: its status, exit, duration, output
// sizes and error, not the output.
func (l *Log) HostOutcome(c Client, request uint64, r *proto.HostResult) {
	var d time.Duration
	if r.Started != 0 && r.Ended != 0 {
		d = time.Duration(r.Ended - r.Started)
	}
	attrs := []slog.Attr{
		c.attrs(),
		slog.Uint64("request", request), slog.String("host", r.Host), slog.String("status", string(r.Status)),
		slog.Int("exit", r.ExitCode), slog.Float64("duration_s", d.Seconds()),
		slog.Int("stdout_bytes", len(r.Stdout)), slog.Int("stderr_bytes", len(r.Stderr)),
	}
	if r.Signal != "" {
		attrs = append(attrs, slog.String("signal", r.Signal))
	}
	if r.Err != "" {
		attrs = append(attrs, slog.String("error", r.Err))
	}
	if r.Reason != "" {
		attrs = append(attrs, slog.String("reason", string(r.Reason)))
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "host outcome", attrs...)
}

// Event records anything else (daemon start and stop, orphan results) with free-form attributes.
func (l *Log) Event(msg string, args ...any) {
	l.logger.Info(msg, args...)
}

// rotator is an io.Writer over a file that is renamed aside when it grows past max.
// slog handlers write each record with a single Write, so records are never split.
type rotator struct {
	path    string
	max     int64
	backups int
	syslog  *syslogWriter // nil: the file only

	mu   sync.Mutex // protects the following
	f    *os.File
	size int64
}

func (r *rotator) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening audit log: %w", err)
	}
	f.Chmod(0o600)
	r.f, r.size = f, st.Size()
	return nil
}

func (r *rotator) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.max {
		if err := r.rotateLocked(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	if r.syslog != nil {
		r.syslog.send(p)
	}
	return n, err
}

func (r *rotator) rotateLocked() error {
	r.f.Close()
	r.f = nil
	for i := r.backups - 1; i >= 1; i-- {
		os.Rename(r.path+"."+strconv.Itoa(i), r.path+"."+strconv.Itoa(i+1))
	}
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return fmt.Errorf("rotating audit log: %w", err)
	}
	return r.open()
}

func (r *rotator) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	if r.syslog != nil {
		r.syslog.close()
	}
	return err
}
