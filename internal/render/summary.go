package render

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/proto"
)

// Summary counts a command's results by status.
type Summary struct {
	Total int
	Wall  time.Duration
	// Hosts maps each status to its hosts, in natural order.
	Hosts map[proto.Status][]string
	// Failures splits the failed hosts by how they failed ("exit 1",
	// "killed by SIGSEGV"), each list in natural order.
	Failures map[string][]string
}

// summaryOrder is the order in which classes appear in the summary line.
var summaryOrder = proto.Statuses

// Summarize counts results; wall is the command's wall-clock time.
func Summarize(results []proto.HostResult, wall time.Duration) Summary {
	s := Summary{Total: len(results), Wall: wall, Hosts: map[proto.Status][]string{}, Failures: map[string][]string{}}
	for i := range results {
		r := &results[i]
		st := r.Status
		if st == "" {
			st = proto.StatusError
		}
		s.Hosts[st] = append(s.Hosts[st], r.Host)
		if st == proto.StatusFailed {
			o := outcome(r)
			s.Failures[o] = append(s.Failures[o], r.Host)
		}
	}
	for _, hs := range s.Hosts {
		hostlist.Sort(hs)
	}
	for _, hs := range s.Failures {
		hostlist.Sort(hs)
	}
	return s
}

// OK reports whether every host ran the command and exited 0.
func (s Summary) OK() bool {
	return len(s.Hosts[proto.StatusOK]) == s.Total
}

// WriteSummary writes the summary: one line of counts, then for each class
// other than ok one indented line with its hosts folded:
//
//	20 hosts in 1.23s: 17 ok, 2 failed, 1 unreachable
//	  failed:      web[03,07] (exit 1: web03; killed by SIGKILL: web07)
//	  unreachable: db3
func WriteSummary(w io.Writer, s Summary, opt Options) error {
	var b bytes.Buffer
	hosts := "hosts"
	if s.Total == 1 {
		hosts = "host"
	}
	b.WriteString(itoa(s.Total) + " " + hosts + " in " + FormatDuration(s.Wall) + ": ")
	var parts []string
	var classes []proto.Status
	for _, st := range s.classes() {
		n := len(s.Hosts[st])
		part := itoa(n) + " " + string(st)
		switch {
		case st == proto.StatusOK && n == s.Total:
			part = opt.paint(SGRBold, part)
		case st != proto.StatusOK:
			part = opt.paint(SGRRed, part)
			classes = append(classes, st)
		}
		parts = append(parts, part)
	}
	if s.Total == 0 {
		parts = append(parts, "nothing ran")
	}
	b.WriteString(strings.Join(parts, ", "))
	b.WriteByte('\n')
	width := 0
	for _, st := range classes {
		width = max(width, len(st))
	}
	for _, st := range classes {
		b.WriteString("  " + string(st) + ":" + strings.Repeat(" ", width-len(st)+1))
		b.WriteString(opt.paint(SGRBold, hostlist.Fold(s.Hosts[st])))
		if st == proto.StatusFailed && len(s.Failures) > 0 {
			b.WriteString(" (" + s.failureList() + ")")
		}
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// classes returns the statuses present, in summary order; ok is always there
// when any host ran, and statuses outside the known set come last.
func (s Summary) classes() []proto.Status {
	var out []proto.Status
	for _, st := range summaryOrder {
		if len(s.Hosts[st]) > 0 || st == proto.StatusOK && s.Total > 0 {
			out = append(out, st)
		}
	}
	var other []proto.Status
	for st := range s.Hosts {
		if !slices.Contains(summaryOrder, st) {
			other = append(other, st)
		}
	}
	slices.Sort(other)
	return append(out, other...)
}

// failureList returns "exit 1: web03; exit 2: web07", the exit codes in
// numeric order and signals after them, or just "exit 1" when all failed alike.
func (s Summary) failureList() string {
	keys := make([]string, 0, len(s.Failures))
	for k := range s.Failures {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ca, ea := exitOf(a)
		cb, eb := exitOf(b)
		switch {
		case ea && eb:
			return ca - cb
		case ea:
			return -1
		case eb:
			return 1
		}
		return strings.Compare(a, b)
	})
	if len(keys) == 1 {
		return keys[0] // all failed alike: the host list is on the line already
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + hostlist.Fold(s.Failures[k])
	}
	return strings.Join(parts, "; ")
}

// exitOf parses "exit N".
func exitOf(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "exit "))
	return n, err == nil && strings.HasPrefix(s, "exit ")
}

// FormatDuration writes d for people: "312ms", "1.23s", "2m03s", "1h02m".
func FormatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + FormatDuration(-d)
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	case d < time.Second:
		return itoa(int(d/time.Millisecond)) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	case d < time.Hour:
		m := d / time.Minute
		sec := (d - m*time.Minute) / time.Second
		return itoa(int(m)) + "m" + pad2(int(sec)) + "s"
	}
	h := d / time.Hour
	m := (d - h*time.Hour) / time.Minute
	return itoa(int(h)) + "h" + pad2(int(m)) + "m"
}

func pad2(n int) string {
	if n < 10 {
		return "0" + itoa(n)
	}
	return itoa(n)
}
