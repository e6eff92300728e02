package render

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shoal-sh/shoal/internal/proto"
)

// TimeFormat is how JSON output writes times: RFC 3339 in UTC with all nine
// digits of nanoseconds, so the strings sort as the times do.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// JSONResult is the JSON object written for one host's result: a proto.HostResult in
// the form scripts read (docs/json.md), with null for what is unknown, output as text
// or base64, and times as RFC 3339 strings. It is that output schema, not a second
// result type: its fields are never renamed or removed, whatever happens to the wire's.
type JSONResult struct {
	Host       string       `json:"host"`
	Status     proto.Status `json:"status"`
	ExitCode   *int         `json:"exit_code"`
	Signal     *string      `json:"signal"`
	PID        *int         `json:"pid"`
	Stdout     *string      `json:"stdout,omitempty"`
	StdoutB64  []byte       `json:"stdout_b64,omitempty"`
	Stderr     *string      `json:"stderr,omitempty"`
	StderrB64  []byte       `json:"stderr_b64,omitempty"`
	StartedAt  *string      `json:"started_at"`
	EndedAt    *string      `json:"ended_at"`
	DurationMS *float64     `json:"duration_ms"`
	Error      *string      `json:"error"`
	Reason     *string      `json:"reason"` // the proto.Reason, null when none
	Truncated  bool         `json:"truncated"`
}

// JSONEvent is the JSON object written for one event in the event form
// (`-o stream --json`), for decoding it. An "end" event carries every field of
// JSONResult except stdout and stderr, null when unknown; other events omit
// the fields they do not use.
type JSONEvent struct {
	Type    string  `json:"type"` // start, stdout, stderr or end (see jsonType)
	Host    string  `json:"host"`
	Time    *string `json:"time"`
	PID     *int    `json:"pid,omitempty"`
	Data    *string `json:"data,omitempty"`
	DataB64 []byte  `json:"data_b64,omitempty"`

	Status     proto.Status `json:"status,omitempty"`
	ExitCode   *int         `json:"exit_code,omitempty"`
	Signal     *string      `json:"signal,omitempty"`
	StartedAt  *string      `json:"started_at,omitempty"`
	EndedAt    *string      `json:"ended_at,omitempty"`
	DurationMS *float64     `json:"duration_ms,omitempty"`
	Error      *string      `json:"error,omitempty"`
	Reason     *string      `json:"reason,omitempty"`
	Truncated  bool         `json:"truncated,omitempty"`
}

// jsonResultMeta is JSONResult without the output, for "end" events; every
// key is always present, null when unknown.
type jsonResultMeta struct {
	Host       string       `json:"host"`
	Status     proto.Status `json:"status"`
	ExitCode   *int         `json:"exit_code"`
	Signal     *string      `json:"signal"`
	PID        *int         `json:"pid"`
	StartedAt  *string      `json:"started_at"`
	EndedAt    *string      `json:"ended_at"`
	DurationMS *float64     `json:"duration_ms"`
	Error      *string      `json:"error"`
	Reason     *string      `json:"reason"` // the proto.Reason, null when none
	Truncated  bool         `json:"truncated"`
}

// jsonEnd is the "end" event object.
type jsonEnd struct {
	Type string  `json:"type"`
	Time *string `json:"time"`
	jsonResultMeta
}

// meta returns j without its output, for an "end" event.
func (j JSONResult) meta() jsonResultMeta {
	return jsonResultMeta{Host: j.Host, Status: j.Status, ExitCode: j.ExitCode, Signal: j.Signal, PID: j.PID,
		StartedAt: j.StartedAt, EndedAt: j.EndedAt, DurationMS: j.DurationMS, Error: j.Error, Reason: j.Reason, Truncated: j.Truncated}
}

// NewJSONResult converts r to its JSON form.
func NewJSONResult(r proto.HostResult) JSONResult {
	j := JSONResult{
		Host:       r.Host,
		Status:     r.Status,
		Signal:     optString(signalName(r.Signal)),
		PID:        optInt(r.PID),
		StartedAt:  optTime(r.Started.Time()),
		EndedAt:    optTime(r.Ended.Time()),
		DurationMS: durationMS(r.Started.Time(), r.Ended.Time()),
		Error:      optString(shownError(&r)),
		Reason:     optString(string(r.Reason)),
		Truncated:  r.Truncated,
	}
	if j.Status == "" {
		j.Status = proto.StatusError
	}
	if hasExitCode(&r) {
		code := r.ExitCode
		j.ExitCode = &code
	}
	j.Stdout, j.StdoutB64 = textOrBytes(r.Stdout)
	j.Stderr, j.StderrB64 = textOrBytes(r.Stderr)
	return j
}

// WriteJSON writes one JSON object per result, one per line.
func WriteJSON(w io.Writer, results []proto.HostResult) error {
	// One object at a time: a buffer for all of them held every host's output twice more
	// (16 MiB from each of nine hosts took the console past 1 GiB).
	var b bytes.Buffer
	enc := newEncoder(&b)
	for _, r := range results {
		b.Reset()
		if err := enc.Encode(NewJSONResult(r)); err != nil {
			return err
		}
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// newEncoder returns a JSON encoder that leaves <, > and & alone: the output
// is read by people and jq, never pasted into HTML.
func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// JSONStream writes events as JSON lines as they arrive, one object per line
// of output: partial lines are held per host until their newline or the host's
// end. A JSONStream is safe for concurrent use.
type JSONStream struct {
	// mu protects the following and serialises writes to w, so objects stay whole.
	mu    sync.Mutex
	w     io.Writer
	lines lineBuffer
	buf   bytes.Buffer
}

// NewJSONStream returns a JSONStream writing to w.
func NewJSONStream(w io.Writer) *JSONStream {
	return &JSONStream{w: w}
}

// Event writes the objects for e: "start", one "stdout" or "stderr" object per
// complete line (the data keeps its newline), and "end" after the host's
// unfinished lines.
func (s *JSONStream) Event(e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	enc := newEncoder(&s.buf)
	var encErr error
	put := func(j JSONEvent) {
		if err := enc.Encode(j); err != nil && encErr == nil {
			encErr = err
		}
	}
	base := JSONEvent{Type: jsonType(e.Kind), Host: e.Host, Time: optTime(e.Time)}
	output := func(stderr bool, line []byte) {
		j := base
		j.Type = jsonType(proto.EventStdout)
		if stderr {
			j.Type = jsonType(proto.EventStderr)
		}
		j.Data, j.DataB64 = textOrBytes(line)
		put(j)
	}
	switch e.Kind {
	case proto.EventStart:
		j := base
		j.PID = optInt(e.PID)
		put(j)
	case proto.EventStdout, proto.EventStderr:
		stderr := e.Kind == proto.EventStderr
		s.lines.feed(e.Host, stderr, e.Data, func(line []byte, nl bool) {
			if nl {
				line = append(line[:len(line):len(line)], '\n') // copy: line is not ours
			}
			output(stderr, line)
		})
	case proto.EventDone:
		s.lines.flush(e.Host, output)
		r := NewJSONResult(e.Result)
		r.Host = e.Host
		if err := enc.Encode(jsonEnd{Type: base.Type, Time: base.Time, jsonResultMeta: r.meta()}); err != nil && encErr == nil {
			encErr = err
		}
	default:
		put(base)
	}
	if encErr != nil {
		return encErr
	}
	if s.buf.Len() == 0 {
		return nil
	}
	_, err := s.w.Write(s.buf.Bytes())
	return err
}

// jsonType is the `type` key of an event of kind k in the JSON event form (docs/json.md): the
// kind's name, except that a host's last event is "end".
func jsonType(k proto.EventKind) string {
	if k == proto.EventDone {
		return "end"
	}
	return k.String()
}

// textOrBytes returns b as a string when it is valid UTF-8, else as raw bytes
// (which encoding/json writes as base64). Empty b gives an empty string.
func textOrBytes(b []byte) (*string, []byte) {
	if !utf8.Valid(b) {
		return nil, b
	}
	s := string(b)
	return &s, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(TimeFormat)
	return &s
}

// durationMS returns the time from start to end in milliseconds with
// microsecond precision, or nil when either is unknown.
func durationMS(start, end time.Time) *float64 {
	if start.IsZero() || end.IsZero() {
		return nil
	}
	ms := math.Round(float64(end.Sub(start))/float64(time.Microsecond)) / 1000
	return &ms
}

// WriteJSONStatus writes r's JSON object without its output (every other key of WriteJSON's,
// byte for byte), on one line: what `--outdir` keeps in HOST.status.
func WriteJSONStatus(w io.Writer, r proto.HostResult) error {
	var b bytes.Buffer
	if err := newEncoder(&b).Encode(NewJSONResult(r).meta()); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}
