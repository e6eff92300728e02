package show

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/render"
)

// Mode is how a command's results are shown.
type Mode int

// The output modes.
const (
	ModeGather     Mode = iota // hosts with identical output folded into one block, at the end
	ModeStream                 // lines as they arrive, after a host column
	ModeJSON                   // one JSON object per host, at the end
	ModeJSONStream             // JSON events as they happen
)

var modeNames = [...]string{"gather", "stream", "json", "json-stream"}

func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// ParseMode returns the Mode named s: gather (or gathered), stream, json or json-stream.
func ParseMode(s string) (Mode, error) {
	if s == "gathered" {
		return ModeGather, nil
	}
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown output mode %q (want gather, stream or json)", s)
}

// View says how to show a command's results.
type View struct {
	Out  io.Writer
	Mode Mode
	// Color enables ANSI colours (see render.ColorEnabled).
	Color bool
	// Progress draws a live progress line while hosts answer; set it only when Out is a terminal.
	Progress bool
	// Width is the terminal's width in columns, for the progress line; 0 when unknown.
	Width int
	// Summary prints the summary line after the results (not in the JSON modes).
	Summary bool
	// SummaryTo receives the summary and the interrupt note, coloured when SummaryColor is set;
	// nil means Out (and Color).
	SummaryTo    io.Writer
	SummaryColor bool
	// Tick is how often the progress line is redrawn; 0 means 100ms.
	Tick time.Duration
	// MaxLines and MaxBytes cap what gather mode shows of each group's stdout and stderr (see
	// render.Options); 0 shows everything.
	MaxLines, MaxBytes int
	// OutDir, when set, receives each host's stdout in OutDir/HOST and its result in
	// OutDir/HOST.status as it arrives; its stderr goes to ErrDir/HOST.err (ErrDir empty:
	// OutDir). The directories must exist (MakeOutDirs).
	OutDir, ErrDir string
	// Diff writes, after the results of the text modes, each minority group's output as a
	// unified diff against the largest group's, or against the group of host DiffRef.
	Diff    bool
	DiffRef string
	// NoPrefix writes stream mode's lines without the host column.
	NoPrefix bool
}

// TerminalMaxLines is how many lines of each group's stdout and stderr the console shows on a
// terminal: enough for any listing a person reads, and it keeps `yes | head -c 200M` (16 MiB
// kept per host) from scrolling for minutes after a Ctrl-C.
const TerminalMaxLines = 2000

// TerminalMaxBytes does the same for bytes, for output in few long lines.
const TerminalMaxBytes = 512 << 10

// moreHint tells the person at the console how to see the lines gather mode left out.
const moreHint = "run it again with :output stream to see every line"

// Outcome is what a command did across its hosts.
type Outcome struct {
	// Results holds one result per host, in the order of the request's hosts.
	Results []proto.HostResult
	// Interrupted reports whether the command was cancelled by an interrupt.
	Interrupted bool
	// Abandoned reports whether a second interrupt stopped the wait for the hosts to confirm.
	Abandoned bool
	// Unfinished lists the hosts whose command the interrupt cancelled.
	Unfinished []string
	// PIDs maps each host to the pid its command started as.
	PIDs    map[string]int
	Elapsed time.Duration
}

// hostState is what Run knows of one host while the command runs.
type hostState struct {
	started, done bool
	seen          bool // an event of the host arrived
	// stdout and stderr hold the first keptOutput bytes of each as they arrived, joined only
	// when the final result lacks its output (the client normally fills it in, from its own
	// copy), so output is not copied twice. kept counts them; cut reports whether some were
	// dropped.
	stdout, stderr [][]byte
	kept           int
	cut            bool
	result         proto.HostResult
}

// keptOutput bounds the output Run keeps of one host for the case where the client cannot give
// the host's result (a second Ctrl-C stopped the wait). The client holds all of it anyway; a
// second full copy took a flood of 16 MiB from each of nine hosts to half a GiB.
const keptOutput = 1 << 20

// keep adds a chunk of output to *chunks unless the host's bound is reached.
func (st *hostState) keep(chunks *[][]byte, data []byte) {
	if st.kept+len(data) > keptOutput {
		st.cut = true
		return
	}
	st.kept += len(data)
	*chunks = append(*chunks, data)
}

// Run runs req on sess and shows it as v says. A receive on interrupt cancels the command on every
// host that has not finished; Run then waits for every host to report, prints what arrived and
// returns. Cancelling ctx does the same without the interrupt note.
func Run(ctx context.Context, sess client.Session, req client.RunRequest, v View, interrupt <-chan struct{}) (*Outcome, error) {
	start := time.Now()
	run, err := sess.Run(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("starting %q: %w", req.Command, err)
	}
	opt := render.Options{Color: v.Color}
	sopt := render.Options{Color: v.Color, NoPrefix: v.NoPrefix}
	gopt := render.Options{Color: v.Color, MaxLines: v.MaxLines, MaxBytes: v.MaxBytes, MoreHint: moreHint}
	var progress *render.Progress
	if v.Progress && (v.Mode == ModeGather || v.Mode == ModeStream) {
		progress = render.NewProgress(v.Out, v.Width, opt)
	}
	var stream *render.Stream
	var jstream *render.JSONStream
	switch v.Mode {
	case ModeStream:
		stream = render.NewStream(v.Out, req.Hosts, progress, sopt)
	case ModeJSONStream:
		jstream = render.NewJSONStream(v.Out)
	}
	emit := func(e render.Event) error {
		switch {
		case stream != nil:
			return stream.Event(e)
		case jstream != nil:
			return jstream.Event(e)
		}
		return nil
	}

	states := make(map[string]*hostState, len(req.Hosts))
	for _, h := range req.Hosts {
		states[h] = &hostState{}
	}
	out := &Outcome{PIDs: make(map[string]int)}
	var counts render.Counts
	counts.Total = len(req.Hosts)
	if req.Rollout != nil {
		counts.Waiting = len(req.Hosts)
	}

	var tickC <-chan time.Time
	if progress != nil {
		tick := v.Tick
		if tick <= 0 {
			tick = 100 * time.Millisecond
		}
		t := time.NewTicker(tick)
		defer t.Stop()
		tickC = t.C
		progress.Draw(counts, 0)
	}
	var writeErr error
	note := func(err error) {
		if err != nil && writeErr == nil {
			writeErr = err
		}
	}
	cancelled := false
	// held counts the output bytes stream mode did not print after an interrupt: a person who
	// pressed Ctrl-C during a flood wants the prompt back, not the rest of the flood.
	held := 0
	ctxDone := ctx.Done()
	events := run.Events
	for events != nil {
		select {
		case e, ok := <-events:
			if !ok {
				events = nil
				break
			}
			st := states[e.Host]
			if st == nil { // a host we did not ask for: show it anyway
				st = &hostState{seen: true}
				states[e.Host] = st
				req.Hosts = append(req.Hosts, e.Host)
				counts.Total++
			}
			if !st.seen {
				// A paced run's host waits until its first event.
				st.seen = true
				if req.Rollout != nil {
					counts.Waiting--
				}
			}
			switch e.Kind {
			case proto.EventStart:
				if !st.started && !st.done {
					st.started = true
					counts.Running++
				}
				out.PIDs[e.Host] = e.PID
				note(emit(render.Event{Kind: proto.EventStart, Host: e.Host, Time: time.Now(), PID: e.PID}))
			case proto.EventStdout:
				st.keep(&st.stdout, e.Data)
				if out.Interrupted && stream != nil {
					held += len(e.Data)
					break
				}
				note(emit(render.Event{Kind: proto.EventStdout, Host: e.Host, Time: time.Now(), Data: e.Data}))
			case proto.EventStderr:
				st.keep(&st.stderr, e.Data)
				if out.Interrupted && stream != nil {
					held += len(e.Data)
					break
				}
				note(emit(render.Event{Kind: proto.EventStderr, Host: e.Host, Time: time.Now(), Data: e.Data}))
			case proto.EventDone:
				if st.done || e.Result == nil {
					break
				}
				st.done = true
				if st.started {
					counts.Running--
				}
				counts.Done++
				r := *e.Result
				r.Host = e.Host
				if len(r.Stdout) == 0 && len(st.stdout) > 0 {
					r.Stdout, r.Truncated = bytes.Join(st.stdout, nil), r.Truncated || st.cut
				}
				if len(r.Stderr) == 0 && len(st.stderr) > 0 {
					r.Stderr, r.Truncated = bytes.Join(st.stderr, nil), r.Truncated || st.cut
				}
				st.stdout, st.stderr = nil, nil
				if r.PID != 0 {
					out.PIDs[e.Host] = r.PID
				}
				st.result = r
				switch r.Status {
				case proto.StatusOK:
				case proto.StatusUnreachable, proto.StatusRefused:
					counts.Unreachable++
				case proto.StatusSkipped:
					counts.Skipped++
				default:
					counts.Failed++
				}
				note(v.writeHostFiles(r))
				note(emit(render.Event{Kind: proto.EventDone, Host: e.Host, Time: time.Now(), Result: r}))
			}
		case <-interrupt:
			if out.Interrupted {
				// A second interrupt: kill at once, without the rest of the kill grace, and
				// stop waiting for the daemon to confirm the cancel. The client stops
				// delivering the abandoned run's events when it is closed.
				if run.KillNow != nil {
					run.KillNow()
				}
				events = nil
				out.Abandoned = true
				break
			}
			out.Interrupted = true
			if !cancelled {
				cancelled = true
				run.Cancel()
				counts.Cancelling = true
				progress.Draw(counts, time.Since(start))
			}
		case <-ctxDone:
			ctxDone = nil
			if !cancelled {
				cancelled = true
				run.Cancel()
				counts.Cancelling = true
				progress.Draw(counts, time.Since(start))
			}
		case <-tickC:
			progress.Draw(counts, time.Since(start))
		}
	}
	out.Elapsed = time.Since(start)
	if progress != nil {
		progress.Clear()
	}
	out.Results = make([]proto.HostResult, 0, len(req.Hosts))
	for _, h := range req.Hosts {
		st := states[h]
		if !st.done {
			st.result = proto.HostResult{Host: h, Status: proto.StatusError, Err: "no result from the daemon",
				Stdout: bytes.Join(st.stdout, nil), Stderr: bytes.Join(st.stderr, nil), PID: out.PIDs[h], Truncated: st.cut}
			if cancelled {
				st.result.Status = proto.StatusCancelled
				st.result.Err = ""
				if out.Abandoned {
					st.result.Err = "the cancel was not confirmed before a second interrupt"
				}
			}
		}
		if !st.done {
			note(v.writeHostFiles(st.result))
		}
		out.Results = append(out.Results, st.result)
		if out.Interrupted && st.result.Status == proto.StatusCancelled {
			out.Unfinished = append(out.Unfinished, h)
		}
	}
	switch v.Mode {
	case ModeGather:
		groups := render.Groups(out.Results)
		note(render.WriteGroups(v.Out, groups, gopt))
		if v.Diff {
			note(render.WriteDiffs(v.Out, groups, v.DiffRef, opt))
		}
	case ModeStream:
		if v.Diff {
			note(render.WriteDiffs(v.Out, render.Groups(out.Results), v.DiffRef, opt))
		}
	case ModeJSON:
		note(render.WriteJSON(v.Out, out.Results))
	}
	if v.Summary && (v.Mode == ModeGather || v.Mode == ModeStream) {
		sw, sopt := v.SummaryTo, render.Options{Color: v.SummaryColor}
		if sw == nil {
			sw, sopt = v.Out, opt
		}
		if held > 0 {
			_, err := fmt.Fprintln(sw, render.Paint(sopt.Color, render.SGRDim, "("+render.Size(held)+" of output that arrived after the interrupt not shown)"))
			note(err)
		}
		note(render.WriteSummary(sw, render.Summarize(out.Results, out.Elapsed), sopt))
		if out.Interrupted {
			msg := "interrupted: every host finished before the cancel arrived"
			if len(out.Unfinished) > 0 {
				msg = fmt.Sprintf("interrupted: %d not finished: %s", len(out.Unfinished), hostlist.Fold(out.Unfinished))
			}
			_, err := fmt.Fprintln(sw, render.Paint(sopt.Color, render.SGRYellow, msg))
			note(err)
		}
	}
	if writeErr != nil {
		return out, fmt.Errorf("writing results: %w", writeErr)
	}
	return out, nil
}

// Exit statuses with a meaning of their own.
const (
	ExitInterrupted = 130 // a command was cancelled from the keyboard
	ExitNotRun      = 255 // some host could not run the command at all
)

// ExitStatus is the process exit status for results: 0 when every host exited 0, else the highest
// remote exit code (128+n for a signal n, 130 for a cancelled command), and 255 when any host could
// not run the command at all (unreachable, refused, timed out or error).
func ExitStatus(rs []proto.HostResult) int {
	code := 0
	for _, r := range rs {
		switch r.Status {
		case proto.StatusOK:
		case proto.StatusFailed:
			c := r.ExitCode
			if r.Signal != "" {
				c = 128 + signalNumber(r.Signal)
			}
			if c <= 0 {
				c = 1
			}
			code = max(code, min(c, 255))
		case proto.StatusCancelled:
			code = max(code, ExitInterrupted)
		default:
			return ExitNotRun
		}
	}
	return code
}

// signalNumber returns the number of a signal named like "KILL", "SIGKILL" or "9"; 0 when unknown.
func signalNumber(s string) int {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil {
		return n
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	return int(unix.SignalNum(s))
}
