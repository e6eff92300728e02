package render

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shoal-sh/shoal/internal/proto"
)

// Event is one thing that happened on one host while a command runs.
type Event struct {
	Kind proto.EventKind // EventState is not shown
	Host string
	Time time.Time // when it happened; zero means unknown
	PID  int       // for proto.EventStart
	// Data is a chunk of output for proto.EventStdout and EventStderr. It need not
	// end at a line boundary: printers buffer partial lines per host.
	Data []byte
	// Result is the host's outcome for proto.EventDone; its Stdout and Stderr are
	// ignored, since the output arrived as events.
	Result proto.HostResult
}

// maxPartial bounds the bytes a printer holds for one host's unfinished line;
// a longer line is printed in pieces of this size.
const maxPartial = 64 << 10

// lineBuffer holds each host's unfinished stdout and stderr lines.
type lineBuffer struct {
	partial map[lineKey][]byte
}

type lineKey struct {
	host   string
	stderr bool
}

// feed adds data for a host's stream and calls emit for every complete line,
// without its newline (nl is true), and for every piece of a line longer than
// maxPartial (nl is false). line is valid only during the call.
func (lb *lineBuffer) feed(host string, stderr bool, data []byte, emit func(line []byte, nl bool)) {
	if lb.partial == nil {
		lb.partial = make(map[lineKey][]byte)
	}
	k := lineKey{host, stderr}
	buf := lb.partial[k]
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			buf = append(buf, data...)
			for len(buf) >= maxPartial {
				emit(buf[:maxPartial], false)
				buf = buf[maxPartial:]
			}
			break
		}
		if len(buf) > 0 {
			buf = append(buf, data[:i]...)
			emit(buf, true)
			buf = buf[:0]
		} else {
			emit(data[:i], true)
		}
		data = data[i+1:]
	}
	if len(buf) == 0 {
		delete(lb.partial, k)
		return
	}
	lb.partial[k] = append([]byte(nil), buf...)
}

// flush calls emit for the host's unfinished stdout line and then its stderr
// line, if any, and forgets them.
func (lb *lineBuffer) flush(host string, emit func(stderr bool, line []byte)) {
	for _, stderr := range []bool{false, true} {
		k := lineKey{host, stderr}
		if buf, ok := lb.partial[k]; ok {
			delete(lb.partial, k)
			emit(stderr, buf)
		}
	}
}

// Stream prints events as they arrive, one line per line of output, each after
// a column with the host name padded to the widest host:
//
//	web01 | Wed Nov 25 22:17:50 UTC 2026
//	web2  | stderr: date: bad format
//	web2  | exit 1
//
// Partial lines are held per host until their newline or the host's end, and
// each Event call writes whole lines with one Write, so lines of different
// hosts never mix. Send a proto.EventDone for every host, even one cancelled or
// unreachable: it prints the host's unfinished lines and frees them. A Stream
// is safe for concurrent use.
type Stream struct {
	opt      Options
	progress *Progress

	// mu protects the following and serialises writes to w: the printer's job
	// is to keep lines whole, so it holds the lock across the Write.
	mu    sync.Mutex
	w     io.Writer
	width int
	lines lineBuffer
	buf   bytes.Buffer
}

// NewStream returns a Stream writing to w. hosts are the targets, used to size
// the host column (a longer name seen later widens it). When progress is not
// nil, its line is cleared before output and drawn again after it.
func NewStream(w io.Writer, hosts []string, progress *Progress, opt Options) *Stream {
	s := &Stream{w: w, opt: opt, progress: progress}
	for _, h := range hosts {
		s.width = max(s.width, utf8.RuneCountInString(h))
	}
	return s
}

// Event prints what e reports: complete lines of output, and for a host that
// ended, its unfinished lines and (unless it exited 0) how it ended.
func (s *Stream) Event(e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.width = max(s.width, utf8.RuneCountInString(e.Host))
	s.buf.Reset()
	switch e.Kind {
	case proto.EventStdout, proto.EventStderr:
		stderr := e.Kind == proto.EventStderr
		s.lines.feed(e.Host, stderr, e.Data, func(line []byte, _ bool) { s.writeLineLocked(e.Host, stderr, line) })
	case proto.EventDone:
		s.lines.flush(e.Host, func(stderr bool, line []byte) { s.writeLineLocked(e.Host, stderr, line) })
		r := &e.Result
		var msg string
		if ran(r) {
			msg = outcome(r)
			if m := shownError(r); m != "" {
				msg = strings.TrimPrefix(msg+": "+m, ": ")
			}
		} else {
			msg = string(r.Status)
			if m := shownError(r); m != "" {
				msg += ": " + m
			}
		}
		if r.Truncated {
			msg = strings.TrimPrefix(msg+" (output truncated)", " ")
		}
		if msg != "" {
			s.writePrefixLocked(e.Host)
			s.buf.WriteString(s.opt.paint(SGRRed, msg))
			s.buf.WriteByte('\n')
		}
	}
	if s.buf.Len() == 0 {
		return nil
	}
	return s.flushLocked()
}

// flushLocked writes the buffered lines, around the progress line if any.
func (s *Stream) flushLocked() error {
	if s.progress != nil {
		return s.progress.writeAround(s.w, s.buf.Bytes())
	}
	_, err := s.w.Write(s.buf.Bytes())
	return err
}

// writePrefixLocked appends the host column to the buffer.
func (s *Stream) writePrefixLocked(host string) {
	pad := s.width - utf8.RuneCountInString(host)
	if s.opt.Color {
		s.buf.WriteString(hostColor(host))
		s.buf.WriteString(host)
		s.buf.WriteString(SGRReset)
	} else {
		s.buf.WriteString(host)
	}
	for range pad {
		s.buf.WriteByte(' ')
	}
	s.buf.WriteString(" | ")
}

// writeLineLocked appends one line of a host's output to the buffer.
func (s *Stream) writeLineLocked(host string, stderr bool, line []byte) {
	if !s.opt.NoPrefix {
		s.writePrefixLocked(host)
	}
	if stderr {
		s.buf.WriteString(s.opt.paint(SGRRed, "stderr: "))
	}
	if isBinary(line) {
		writeEscaped(&s.buf, line)
	} else {
		writeText(&s.buf, displayLine(line), s.opt.Color)
	}
	s.buf.WriteByte('\n')
}
