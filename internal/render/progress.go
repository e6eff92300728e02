package render

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Counts is where a command stands across its hosts, for the progress line.
type Counts struct {
	Total       int // hosts targeted
	Done        int // hosts finished, whatever the outcome (includes Failed and Unreachable)
	Running     int // hosts running the command now
	Failed      int // hosts finished with a status other than ok, unreachable, refused and skipped
	Unreachable int // hosts that could not be reached or refused
	// Waiting counts the hosts a paced run (--batch, --canary) has not started yet, and
	// Skipped those it will not start (--max-fail); they show only when not zero.
	Waiting, Skipped int
	// Cancelling reports whether the command is being cancelled (Ctrl-C), so the person who
	// pressed it sees that it was heard while the hosts confirm.
	Cancelling bool
}

// Erase sequences: carriage return, then erase the whole line.
const eraseLine = "\r\x1b[2K"

// Progress is the live progress line for a terminal:
//
//	[12/20] running 8 · failed 1 · unreachable 0 · 3.2s
//
// or, for a paced run (--batch), [12/20] running 4 · waiting 4 · failed 1 · unreachable 0 · 3.2s.
//
// Draw redraws it in place (carriage return and erase line); Clear removes it
// before the result prints. It writes nothing but these lines, so make one
// only when IsTerminal(w); the methods of a nil *Progress do nothing, so a
// caller can hold a nil one for pipes. A Progress is safe for concurrent use.
type Progress struct {
	opt   Options
	width int // terminal columns; 0 means unknown (no truncation)

	// mu protects the following and serialises writes to w.
	mu    sync.Mutex
	w     io.Writer
	line  string // the line on screen, without erase sequences; "" when none
	shown bool
}

// NewProgress returns a Progress drawing on w, a terminal width columns wide
// (0 when unknown; see TerminalWidth). The line is kept shorter than width so
// it never wraps, which would defeat redrawing in place.
func NewProgress(w io.Writer, width int, opt Options) *Progress {
	return &Progress{w: w, width: width, opt: opt}
}

// ProgressLine returns the text of the progress line for c after elapsed,
// without escape sequences for moving the cursor.
func ProgressLine(c Counts, elapsed time.Duration, opt Options) string {
	var b strings.Builder
	b.WriteString("[" + itoa(c.Done) + "/" + itoa(c.Total) + "] ")
	if c.Cancelling {
		b.WriteString(opt.paint(SGRYellow, "cancelling") + " · ")
	}
	b.WriteString("running " + itoa(c.Running))
	if c.Waiting > 0 {
		b.WriteString(" · waiting " + itoa(c.Waiting))
	}
	b.WriteString(" · failed ")
	if c.Failed > 0 {
		b.WriteString(opt.paint(SGRRed, itoa(c.Failed)))
	} else {
		b.WriteString("0")
	}
	b.WriteString(" · unreachable ")
	if c.Unreachable > 0 {
		b.WriteString(opt.paint(SGRRed, itoa(c.Unreachable)))
	} else {
		b.WriteString("0")
	}
	if c.Skipped > 0 {
		b.WriteString(" · skipped " + opt.paint(SGRYellow, itoa(c.Skipped)))
	}
	if elapsed < time.Minute {
		b.WriteString(" · " + strconv.FormatFloat(elapsed.Seconds(), 'f', 1, 64) + "s")
	} else {
		b.WriteString(" · " + FormatDuration(elapsed))
	}
	return b.String()
}

// Draw replaces the progress line with the state in c after elapsed.
func (p *Progress) Draw(c Counts, elapsed time.Duration) error {
	if p == nil {
		return nil
	}
	line := ProgressLine(c, elapsed, p.opt)
	if p.width > 1 && visibleLen(line) >= p.width {
		line = ProgressLine(c, elapsed, Options{}) // drop colour before cutting
		line = truncateRunes(line, p.width-1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line, p.shown = line, true
	_, err := io.WriteString(p.w, eraseLine+line)
	return err
}

// Clear erases the progress line, if one is shown, so the result can print on
// a clean line. A later Draw shows it again.
func (p *Progress) Clear() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.shown {
		return nil
	}
	p.shown, p.line = false, ""
	_, err := io.WriteString(p.w, eraseLine)
	return err
}

// writeAround writes out to w preceded by an erase of the progress line and
// followed by the progress line again, so output printed while the line is
// shown does not mix with it. It holds the lock across the Write so a Draw
// cannot land in the middle.
func (p *Progress) writeAround(w io.Writer, out []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.shown {
		_, err := w.Write(out)
		return err
	}
	b := make([]byte, 0, len(eraseLine)+len(out)+len(eraseLine)+len(p.line))
	b = append(b, eraseLine...)
	b = append(b, out...)
	b = append(b, eraseLine...)
	b = append(b, p.line...)
	_, err := w.Write(b)
	return err
}

// visibleLen returns the number of runes of s outside ANSI escape sequences.
func visibleLen(s string) int {
	n, esc := 0, false
	for _, r := range s {
		switch {
		case esc:
			esc = r != 'm'
		case r == 0x1b:
			esc = true
		default:
			n++
		}
	}
	return n
}

// truncateRunes cuts s to at most n runes.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
