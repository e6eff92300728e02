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
	w := newWatch(req, v, start)
	w.follow(ctx, run, interrupt)
	w.out.Elapsed = time.Since(start)
	w.progress.Clear()
	w.collect()
	w.printResults()
	w.printSummary()
	if w.writeErr != nil {
		return w.out, fmt.Errorf("writing results: %w", w.writeErr)
	}
	return w.out, nil
}

// watch is one Run while it follows its command: the printers, what it knows of each host,
// and the counts of the progress line.
type watch struct {
	v     View
	hosts []string // the request's hosts, and any other host the daemon reports, in order
	paced bool     // a rollout: hosts wait until their first event
	start time.Time
	opt   render.Options

	progress *render.Progress // nil unless a progress line is drawn
	stream   *render.Stream   // -o stream
	jstream  *render.JSONStream

	states    map[string]*hostState
	out       *Outcome
	counts    render.Counts
	cancelled bool // the command was cancelled (interrupt or ctx)
	// held counts the output bytes stream mode did not print after an interrupt: a person who
	// pressed Ctrl-C during a flood wants the prompt back, not the rest of the flood.
	held     int
	writeErr error // the first error writing to the view
}

// newWatch makes the printers v asks for and starts every host of req as unheard of.
func newWatch(req client.RunRequest, v View, start time.Time) *watch {
	w := &watch{v: v, hosts: req.Hosts, paced: req.Rollout != nil, start: start, opt: render.Options{Color: v.Color},
		states: make(map[string]*hostState, len(req.Hosts)), out: &Outcome{PIDs: make(map[string]int)}}
	if v.Progress && (v.Mode == ModeGather || v.Mode == ModeStream) {
		w.progress = render.NewProgress(v.Out, v.Width, w.opt)
	}
	switch v.Mode {
	case ModeStream:
		w.stream = render.NewStream(v.Out, req.Hosts, w.progress, render.Options{Color: v.Color, NoPrefix: v.NoPrefix})
	case ModeJSONStream:
		w.jstream = render.NewJSONStream(v.Out)
	}
	for _, h := range req.Hosts {
		w.states[h] = &hostState{}
	}
	w.counts.Total = len(req.Hosts)
	if w.paced {
		w.counts.Waiting = len(req.Hosts)
	}
	return w
}

// note keeps the first error writing to the view.
func (w *watch) note(err error) {
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
}

// emit passes e to the streaming printer, if there is one.
func (w *watch) emit(e render.Event) {
	switch {
	case w.stream != nil:
		w.note(w.stream.Event(e))
	case w.jstream != nil:
		w.note(w.jstream.Event(e))
	}
}

// follow takes run's events until the last, or until a second interrupt abandons the wait, and
// redraws the progress line meanwhile.
func (w *watch) follow(ctx context.Context, run *client.Run, interrupt <-chan struct{}) {
	var tickC <-chan time.Time
	if w.progress != nil {
		tick := w.v.Tick
		if tick <= 0 {
			tick = 100 * time.Millisecond
		}
		t := time.NewTicker(tick)
		defer t.Stop()
		tickC = t.C
		w.progress.Draw(w.counts, 0)
	}
	ctxDone := ctx.Done()
	events := run.Events
	for events != nil {
		select {
		case e, ok := <-events:
			if !ok {
				events = nil
				break
			}
			w.event(e)
		case <-interrupt:
			if w.out.Interrupted {
				// A second interrupt: kill at once, without the rest of the kill grace, and
				// stop waiting for the daemon to confirm the cancel. The client stops
				// delivering the abandoned run's events when it is closed.
				if run.KillNow != nil {
					run.KillNow()
				}
				events = nil
				w.out.Abandoned = true
				break
			}
			w.out.Interrupted = true
			w.cancel(run)
		case <-ctxDone:
			ctxDone = nil
			w.cancel(run)
		case <-tickC:
			w.progress.Draw(w.counts, time.Since(w.start))
		}
	}
}

// cancel cancels run once and says so on the progress line.
func (w *watch) cancel(run *client.Run) {
	if w.cancelled {
		return
	}
	w.cancelled = true
	run.Cancel()
	w.counts.Cancelling = true
	w.progress.Draw(w.counts, time.Since(w.start))
}

// host returns what is known of host, which an event of it just arrived for.
func (w *watch) host(host string) *hostState {
	st := w.states[host]
	if st == nil { // a host we did not ask for: show it anyway
		st = &hostState{seen: true}
		w.states[host] = st
		w.hosts = append(w.hosts, host)
		w.counts.Total++
	}
	if !st.seen {
		// A paced run's host waits until its first event.
		st.seen = true
		if w.paced {
			w.counts.Waiting--
		}
	}
	return st
}

// event takes one event of the run.
func (w *watch) event(e proto.RunEvent) {
	st := w.host(e.Host)
	switch e.Kind {
	case proto.EventStart:
		if !st.started && !st.done {
			st.started = true
			w.counts.Running++
		}
		w.out.PIDs[e.Host] = e.PID
		w.emit(render.Event{Kind: proto.EventStart, Host: e.Host, Time: time.Now(), PID: e.PID})
	case proto.EventStdout, proto.EventStderr:
		chunks := &st.stdout
		if e.Kind == proto.EventStderr {
			chunks = &st.stderr
		}
		st.keep(chunks, e.Data)
		if w.out.Interrupted && w.stream != nil {
			w.held += len(e.Data)
			return
		}
		w.emit(render.Event{Kind: e.Kind, Host: e.Host, Time: time.Now(), Data: e.Data})
	case proto.EventDone:
		if !st.done && e.Result != nil {
			w.done(st, e.Host, *e.Result)
		}
	}
}

// done takes host's result r: it fills in the output the result lacks from what arrived,
// counts it, writes its --outdir files and shows it.
func (w *watch) done(st *hostState, host string, r proto.HostResult) {
	st.done = true
	if st.started {
		w.counts.Running--
	}
	w.counts.Done++
	r.Host = host
	if len(r.Stdout) == 0 && len(st.stdout) > 0 {
		r.Stdout, r.Truncated = bytes.Join(st.stdout, nil), r.Truncated || st.cut
	}
	if len(r.Stderr) == 0 && len(st.stderr) > 0 {
		r.Stderr, r.Truncated = bytes.Join(st.stderr, nil), r.Truncated || st.cut
	}
	st.stdout, st.stderr = nil, nil
	if r.PID != 0 {
		w.out.PIDs[host] = r.PID
	}
	st.result = r
	switch r.Status {
	case proto.StatusOK:
	case proto.StatusUnreachable, proto.StatusRefused:
		w.counts.Unreachable++
	case proto.StatusSkipped:
		w.counts.Skipped++
	default:
		w.counts.Failed++
	}
	w.note(w.v.writeHostFiles(r))
	w.emit(render.Event{Kind: proto.EventDone, Host: host, Time: time.Now(), Result: r})
}

// collect puts every host's result in the outcome, in order, making one up (cancelled, or no
// result) for a host that never reported.
func (w *watch) collect() {
	w.out.Results = make([]proto.HostResult, 0, len(w.hosts))
	for _, h := range w.hosts {
		st := w.states[h]
		if !st.done {
			st.result = proto.HostResult{Host: h, Status: proto.StatusError, Err: "no result from the daemon",
				Stdout: bytes.Join(st.stdout, nil), Stderr: bytes.Join(st.stderr, nil), PID: w.out.PIDs[h], Truncated: st.cut}
			if w.cancelled {
				st.result.Status = proto.StatusCancelled
				st.result.Err = ""
				if w.out.Abandoned {
					st.result.Err = "the cancel was not confirmed before a second interrupt"
				}
			}
			w.note(w.v.writeHostFiles(st.result))
		}
		w.out.Results = append(w.out.Results, st.result)
		if w.out.Interrupted && st.result.Status == proto.StatusCancelled {
			w.out.Unfinished = append(w.out.Unfinished, h)
		}
	}
}

// printResults writes what the modes show at the end: the gathered groups, their diffs, or
// the JSON results.
func (w *watch) printResults() {
	v, rs := w.v, w.out.Results
	switch v.Mode {
	case ModeGather:
		groups := render.Groups(rs)
		w.note(render.WriteGroups(v.Out, groups, render.Options{Color: v.Color, MaxLines: v.MaxLines, MaxBytes: v.MaxBytes, MoreHint: moreHint}))
		if v.Diff {
			w.note(render.WriteDiffs(v.Out, groups, v.DiffRef, w.opt))
		}
	case ModeStream:
		if v.Diff {
			w.note(render.WriteDiffs(v.Out, render.Groups(rs), v.DiffRef, w.opt))
		}
	case ModeJSON:
		w.note(render.WriteJSON(v.Out, rs))
	}
}

// printSummary writes, in the text modes when v asks for it, the output held back after an
// interrupt, the summary and what the interrupt left unfinished.
func (w *watch) printSummary() {
	v, out := w.v, w.out
	if !v.Summary || (v.Mode != ModeGather && v.Mode != ModeStream) {
		return
	}
	sw, sopt := v.SummaryTo, render.Options{Color: v.SummaryColor}
	if sw == nil {
		sw, sopt = v.Out, w.opt
	}
	if w.held > 0 {
		_, err := fmt.Fprintln(sw, render.Paint(sopt.Color, render.SGRDim, "("+render.Size(w.held)+" of output that arrived after the interrupt not shown)"))
		w.note(err)
	}
	w.note(render.WriteSummary(sw, render.Summarize(out.Results, out.Elapsed), sopt))
	if out.Interrupted {
		msg := "interrupted: every host finished before the cancel arrived"
		if len(out.Unfinished) > 0 {
			msg = fmt.Sprintf("interrupted: %d not finished: %s", len(out.Unfinished), hostlist.Fold(out.Unfinished))
		}
		_, err := fmt.Fprintln(sw, render.Paint(sopt.Color, render.SGRYellow, msg))
		w.note(err)
	}
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
