package render

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

func streamEvents() []Event {
	return []Event{
		{Kind: proto.EventStart, Host: "web01", PID: 41},
		{Kind: proto.EventStart, Host: "db1", PID: 42},
		{Kind: proto.EventStdout, Host: "web01", Data: []byte("hello ")},
		{Kind: proto.EventStdout, Host: "db1", Data: []byte("one\ntwo\nthr")},
		{Kind: proto.EventStdout, Host: "web01", Data: []byte("world\n")},
		{Kind: proto.EventStderr, Host: "db1", Data: []byte("warning: disk\n")},
		{Kind: proto.EventStdout, Host: "web01", Data: []byte("bin\xff\x00\n")},
		{Kind: proto.EventDone, Host: "web01", Result: proto.HostResult{Host: "web01", Status: proto.StatusOK}},
		{Kind: proto.EventStderr, Host: "db1", Data: []byte("no newline")},
		{Kind: proto.EventDone, Host: "db1", Result: proto.HostResult{Host: "db1", Status: proto.StatusFailed, ExitCode: 3}},
		{Kind: proto.EventDone, Host: "loadbalancer", Result: proto.HostResult{Host: "loadbalancer", Status: proto.StatusUnreachable, Err: "loadbalancer: connection refused", Reason: proto.ReasonConnRefused}},
		{Kind: proto.EventDone, Host: "web02", Result: proto.HostResult{Host: "web02", Status: proto.StatusTimeout, Signal: "TERM", Truncated: true}},
	}
}

func TestStreamGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Options
	}{{"stream", Options{}}, {"stream_color", Options{Color: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			s := NewStream(&b, []string{"web01", "web02", "db1"}, nil, tc.opt)
			for _, e := range streamEvents() {
				if err := s.Event(e); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, tc.name, b.Bytes())
		})
	}
}

// TestStreamChunking checks that however output is cut into chunks, the
// printed lines are the same.
func TestStreamChunking(t *testing.T) {
	const out = "alpha\nbeta\n\ngamma delta\nlast"
	render := func(chunks []string) string {
		var b bytes.Buffer
		s := NewStream(&b, []string{"h"}, nil, Options{})
		for _, c := range chunks {
			s.Event(Event{Kind: proto.EventStdout, Host: "h", Data: []byte(c)})
		}
		s.Event(Event{Kind: proto.EventDone, Host: "h", Result: proto.HostResult{Host: "h", Status: proto.StatusOK}})
		return b.String()
	}
	want := render([]string{out})
	for i := 0; i <= len(out); i++ {
		for j := i; j <= len(out); j++ {
			if got := render([]string{out[:i], out[i:j], out[j:]}); got != want {
				t.Fatalf("chunks cut at %d,%d: got %q; want %q", i, j, got, want)
			}
		}
	}
}

func TestStreamLongLine(t *testing.T) {
	var b bytes.Buffer
	s := NewStream(&b, []string{"h"}, nil, Options{})
	s.Event(Event{Kind: proto.EventStdout, Host: "h", Data: bytes.Repeat([]byte("x"), 2*maxPartial+10)})
	if got, want := strings.Count(b.String(), "\n"), 2; got != want {
		t.Errorf("lines printed before the end = %d; want %d", got, want)
	}
	s.Event(Event{Kind: proto.EventDone, Host: "h", Result: proto.HostResult{Host: "h", Status: proto.StatusOK}})
	if got, want := strings.Count(b.String(), "x"), 2*maxPartial+10; got != want {
		t.Errorf("bytes printed = %d; want %d", got, want)
	}
}

// lineWriter records each Write, to check that lines never split across writes.
type lineWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestStreamConcurrentWholeLines(t *testing.T) {
	w := &lineWriter{}
	s := NewStream(w, []string{"a", "b", "c", "d"}, nil, Options{})
	var wg sync.WaitGroup
	for _, h := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s.Event(Event{Kind: proto.EventStdout, Host: h, Data: []byte(h + h)})
				s.Event(Event{Kind: proto.EventStdout, Host: h, Data: []byte(h + "\n")})
			}
		}()
	}
	wg.Wait()
	for _, out := range w.writes {
		if !strings.HasSuffix(out, "\n") {
			t.Fatalf("write %q does not end a line", out)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			h := line[:1]
			if line != h+" | "+strings.Repeat(h, 3) {
				t.Fatalf("mixed line %q", line)
			}
		}
	}
}

func TestStreamWithProgress(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, 0, Options{})
	s := NewStream(&b, []string{"h1"}, p, Options{})
	s.Event(Event{Kind: proto.EventStdout, Host: "h1", Data: []byte("before\n")})
	p.Draw(Counts{Total: 2, Running: 2}, 1500*time.Millisecond)
	s.Event(Event{Kind: proto.EventStdout, Host: "h1", Data: []byte("during\n")})
	p.Clear()
	golden(t, "stream_progress", []byte(strings.ReplaceAll(b.String(), "\x1b", "<ESC>")))
}

func TestJSONStream(t *testing.T) {
	var b bytes.Buffer
	s := NewJSONStream(&b)
	for i, e := range streamEvents() {
		e.Time = t0.Add(time.Duration(i) * time.Millisecond)
		if e.Kind == proto.EventDone {
			e.Result.Started, e.Result.Ended = proto.UnixNanoOf(t0), proto.UnixNanoOf(e.Time)
		}
		if err := s.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "json_stream", b.Bytes())
	decodeLines[JSONEvent](t, b.Bytes()) // JSONEvent knows every key written
	evs := decodeLines[map[string]any](t, b.Bytes())
	var sawB64, sawPartial bool
	for _, ev := range evs {
		switch ev["type"] {
		case "stdout", "stderr":
			if d, ok := ev["data_b64"].(string); ok {
				sawB64 = d == "Ymlu/wAK" // "bin\xff\x00\n"
			} else if ev["data"] == "no newline" {
				sawPartial = true
			}
		case "end":
			if _, ok := ev["stdout"]; ok {
				t.Errorf("end event carries stdout: %v", ev)
			}
		}
	}
	if !sawB64 || !sawPartial {
		t.Errorf("sawB64 = %v, sawPartial = %v; want both", sawB64, sawPartial)
	}
}
