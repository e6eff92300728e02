package render

import (
	"bytes"
	"hash/maphash"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/proto"
)

// Group is a set of hosts whose results are identical: same output on stdout and
// stderr, same status, exit code, signal, truncation and error message.
type Group struct {
	// Hosts are the members in natural order.
	Hosts []string
	// Result is the first member's result; its Host is Hosts[0].
	Result proto.HostResult
	// Ran reports whether the command ran on these hosts (false for unreachable,
	// refused and error results without output).
	Ran bool
	// Odd reports whether one other group holds the majority of the hosts that ran
	// and this group differs from it.
	Odd bool
	// Err is the group's error message with the host name replaced by "<host>".
	Err string
}

// Groups folds results into groups of identical results. Groups where the
// command ran come first, then groups of hosts it could not run on; within each
// part the largest group comes first, ties broken by the natural order of the
// groups' first hosts. Results are grouped by a hash of their content (checked
// for equality on a hit), so the cost is linear in the size of the output.
func Groups(results []proto.HostResult) []Group {
	if len(results) == 0 {
		return nil
	}
	// Visit results in natural host order, so each group's hosts come out
	// sorted and a group's first host decides ties.
	names := make([]string, len(results))
	for i := range results {
		names[i] = results[i].Host
	}
	hostlist.Sort(names)
	rank := make(map[string]int, len(names))
	for i, n := range names {
		if _, ok := rank[n]; !ok {
			rank[n] = i
		}
	}
	order := make([]int, len(results))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return rank[results[a].Host] - rank[results[b].Host]
	})

	type entry struct {
		g     *Group
		first int // rank of the first host
	}
	seed := maphash.MakeSeed()
	var h maphash.Hash
	h.SetSeed(seed)
	buckets := make(map[uint64][]*entry, 16)
	var entries []*entry
	for _, i := range order {
		r := &results[i]
		msg := errText(r.Host, r.Err)
		h.Reset()
		hashResult(&h, r, msg)
		sum := h.Sum64()
		var found *entry
		for _, e := range buckets[sum] {
			if sameResult(&e.g.Result, r, e.g.Err, msg) {
				found = e
				break
			}
		}
		if found == nil {
			found = &entry{g: &Group{Result: *r, Ran: ran(r), Err: msg}, first: rank[r.Host]}
			buckets[sum] = append(buckets[sum], found)
			entries = append(entries, found)
		}
		found.g.Hosts = append(found.g.Hosts, r.Host)
	}
	slices.SortStableFunc(entries, func(a, b *entry) int {
		if a.g.Ran != b.g.Ran {
			if a.g.Ran {
				return -1
			}
			return 1
		}
		if d := len(b.g.Hosts) - len(a.g.Hosts); d != 0 {
			return d
		}
		return a.first - b.first
	})
	groups := make([]Group, len(entries))
	ran, ranGroups := 0, 0
	for i, e := range entries {
		groups[i] = *e.g
		if e.g.Ran {
			ran += len(e.g.Hosts)
			ranGroups++
		}
	}
	// A majority exists when the largest group of hosts that ran holds more
	// than half of them; every other group that ran is then the odd one out.
	if ranGroups > 1 && 2*len(groups[0].Hosts) > ran {
		for i := 1; i < ranGroups; i++ {
			groups[i].Odd = true
		}
	}
	return groups
}

// hashResult feeds every field that decides grouping into h, length-prefixed so
// that field boundaries cannot shift.
func hashResult(h *maphash.Hash, r *proto.HostResult, msg string) {
	var buf [8]byte
	put := func(n int) {
		for i := range buf {
			buf[i] = byte(n >> (8 * i))
		}
		h.Write(buf[:])
	}
	put(len(r.Status))
	h.WriteString(string(r.Status))
	if hasExitCode(r) {
		put(r.ExitCode)
	} else {
		put(-1)
	}
	sig := signalName(r.Signal)
	put(len(sig))
	h.WriteString(sig)
	if r.Truncated {
		put(1)
	} else {
		put(0)
	}
	put(len(msg))
	h.WriteString(msg)
	put(len(r.Stdout))
	h.Write(r.Stdout)
	put(len(r.Stderr))
	h.Write(r.Stderr)
}

// sameResult reports whether a and b belong to one group.
func sameResult(a, b *proto.HostResult, amsg, bmsg string) bool {
	return a.Status == b.Status &&
		hasExitCode(a) == hasExitCode(b) &&
		(!hasExitCode(a) || a.ExitCode == b.ExitCode) &&
		signalName(a.Signal) == signalName(b.Signal) &&
		a.Truncated == b.Truncated &&
		amsg == bmsg &&
		bytes.Equal(a.Stdout, b.Stdout) &&
		bytes.Equal(a.Stderr, b.Stderr)
}

// Gather writes results folded into groups (see Groups), one block per group:
//
//	---------------------------
//	web[01-17,19-20] (19)
//	---------------------------
//	Wed Nov 25 22:17:50 UTC 2026
//	---------------------------
//	web18 (1) · differs from majority
//	---------------------------
//	Wed Nov 25 22:17:51 UTC 2026
//
// The header names the hosts, folded, with their count, and tags for a non-zero
// exit, a signal, a timeout, truncated output and the odd one out. Stderr lines
// follow stdout lines, each marked "stderr: ". Hosts the command could not run
// on show their error as the block's body.
func Gather(w io.Writer, results []proto.HostResult, opt Options) error {
	return WriteGroups(w, Groups(results), opt)
}

// WriteGroups writes groups as Gather does.
func WriteGroups(w io.Writer, groups []Group, opt Options) error {
	headers := make([]string, len(groups))
	width := 15
	for i := range groups {
		var n int
		headers[i], n = groupHeader(&groups[i], opt)
		width = max(width, n)
	}
	rule := opt.paint(SGRDim, strings.Repeat("-", min(width, maxRule)))
	var b bytes.Buffer
	for i := range groups {
		if b.Len() >= 64<<10 { // write as we go: one buffer for all groups would copy all output
			if _, err := w.Write(b.Bytes()); err != nil {
				return err
			}
			b.Reset()
		}
		b.WriteString(rule)
		b.WriteByte('\n')
		b.WriteString(headers[i])
		b.WriteByte('\n')
		b.WriteString(rule)
		b.WriteByte('\n')
		writeGroupBody(&b, &groups[i], opt)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// maxRule caps the width of the rules around group headers.
const maxRule = 79

// groupHeader returns the header line of g and its width in runes without
// escape sequences.
func groupHeader(g *Group, opt Options) (string, int) {
	r := &g.Result
	folded := hostlist.Fold(g.Hosts)
	count := " (" + itoa(len(g.Hosts)) + ")"
	header := opt.paint(SGRBold+SGRCyan, folded) + count
	width := utf8.RuneCountInString(folded + count)
	tag := func(sgr, s string) {
		header += " · " + opt.paint(sgr, s)
		width += 3 + utf8.RuneCountInString(s)
	}
	if g.Ran {
		if s := outcome(r); s != "" {
			tag(SGRRed, s)
		}
	} else {
		s := string(r.Status)
		if s == "" {
			s = "no status"
		}
		tag(SGRRed, s)
	}
	if r.Truncated {
		tag(SGRYellow, "output truncated")
	}
	if g.Odd {
		tag(SGRYellow+SGRBold, "differs from majority")
	}
	return header, width
}

// writeGroupBody appends the body of g's block to b.
func writeGroupBody(b *bytes.Buffer, g *Group, opt Options) {
	r := &g.Result
	shown := ShowError(g.Err, g.Hosts)
	if !g.Ran {
		msg := shown
		if msg == "" {
			msg = "(no error message)"
		}
		for _, line := range strings.Split(msg, "\n") {
			b.WriteString(opt.paint(SGRRed, line))
			b.WriteByte('\n')
		}
		return
	}
	if len(r.Stdout) == 0 && len(r.Stderr) == 0 {
		b.WriteString(opt.paint(SGRDim, "(no output)"))
		b.WriteByte('\n')
	}
	writeBody(b, r.Stdout, "", opt)
	writeBody(b, r.Stderr, opt.paint(SGRRed, "stderr: "), opt)
	if shown != "" {
		b.WriteString(opt.paint(SGRRed, "error: "+shown))
		b.WriteByte('\n')
	}
}

// writeBody appends output lines to b, each after prefix. Binary output (not
// UTF-8, or holding NUL bytes) is announced and shown with \xNN escapes; output
// without a final newline is noted, since that alone can split two groups.
func writeBody(b *bytes.Buffer, out []byte, prefix string, opt Options) {
	if len(out) == 0 {
		return
	}
	binary := isBinary(out)
	if binary {
		b.WriteString(prefix)
		b.WriteString(opt.paint(SGRDim, "(binary output, "+itoa(len(out))+" bytes; shown with \\xNN escapes)"))
		b.WriteByte('\n')
	}
	rest := out
	shown := 0 // bytes of out shown so far
	for n := 0; len(rest) > 0; n++ {
		if opt.MaxLines > 0 && n == opt.MaxLines && writeMore(b, rest, prefix, opt) {
			return
		}
		if opt.MaxBytes > 0 && shown >= opt.MaxBytes && writeMore(b, rest, prefix, opt) {
			return
		}
		whole := rest
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if keep := opt.MaxBytes - shown; opt.MaxBytes > 0 && len(line) > keep && len(line) > opt.MaxBytes/4 {
			// One line holds far more than is left to show: show its start, then the note.
			keep = max(keep, 0)
			for keep > 0 && !utf8.RuneStart(line[keep]) {
				keep--
			}
			b.WriteString(prefix)
			if binary {
				writeEscaped(b, line[:keep])
			} else {
				writeText(b, line[:keep], opt.Color)
			}
			b.WriteByte('\n')
			writeCut(b, whole[keep:], prefix, opt)
			return
		}
		shown += len(line) + 1
		b.WriteString(prefix)
		if binary {
			writeEscaped(b, line)
		} else {
			writeText(b, displayLine(line), opt.Color)
		}
		b.WriteByte('\n')
	}
	if out[len(out)-1] != '\n' {
		b.WriteString(prefix)
		b.WriteString(opt.paint(SGRDim, "(no newline at end)"))
		b.WriteByte('\n')
	}
}

// writeCut appends the note that stands for rest, which starts in the middle of a line.
func writeCut(b *bytes.Buffer, rest []byte, prefix string, opt Options) {
	note := "(… line cut: " + Size(len(rest)) + " more"
	if lines := bytes.Count(rest[:len(rest)-1], []byte{'\n'}); lines > 0 {
		note += " in " + itoa(lines+1) + " lines"
	}
	note += ", not shown"
	if opt.MoreHint != "" {
		note += "; " + opt.MoreHint
	}
	b.WriteString(prefix)
	b.WriteString(opt.paint(SGRDim, note+")"))
	b.WriteByte('\n')
}

// writeMore appends the note that stands for the lines of rest, and reports whether it did:
// a single line is worth showing rather than a note in its place.
func writeMore(b *bytes.Buffer, rest []byte, prefix string, opt Options) bool {
	lines := bytes.Count(rest, []byte{'\n'})
	if rest[len(rest)-1] != '\n' {
		lines++
	}
	if lines <= 1 {
		return false
	}
	note := "(… " + itoa(lines) + " more line"
	if lines != 1 {
		note += "s"
	}
	note += ", " + Size(len(rest)) + ", not shown"
	if opt.MoreHint != "" {
		note += "; " + opt.MoreHint
	}
	b.WriteString(prefix)
	b.WriteString(opt.paint(SGRDim, note+")"))
	b.WriteByte('\n')
	return true
}

// Size returns n bytes in the largest binary unit that keeps a number ≥ 1: "512 B", "3.4 KiB".
func Size(n int) string {
	if n < 1024 {
		return itoa(n) + " B"
	}
	f, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB"} {
		if f < 1024 {
			break
		}
		f, unit = f/1024, u
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + unit
}

// displayLine returns what a terminal would end up showing of a text line:
// without a CRLF's carriage return, and after the last carriage return when
// the line redraws itself (progress meters), so it cannot overwrite the host
// column or leave a stray \r in a file.
func displayLine(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
		return line[i+1:]
	}
	return line
}

// writeText appends a line of text output to b so that it cannot act on the terminal: control
// characters other than tab, escape sequences that move the cursor, erase or set the title, and
// C1 controls are written as \xNN. Colour sequences (SGR, ESC [ ... m) are kept when color is
// on, and then closed at the end of the line if left open; otherwise they are dropped, so piped
// output carries no escape codes.
func writeText(b *bytes.Buffer, line []byte, color bool) {
	const hex = "0123456789abcdef"
	esc := func(c byte) {
		b.WriteString(`\x`)
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	open := false
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == 0x1b:
			if n := sgrLen(line[i:]); n > 0 {
				if color {
					b.Write(line[i : i+n])
					seq := string(line[i : i+n])
					open = seq != "\x1b[m" && seq != "\x1b[0m"
				}
				i += n
				continue
			}
			esc(c)
		case c < 0x20 && c != '\t', c == 0x7f:
			esc(c)
		case c == 0xc2 && i+1 < len(line) && line[i+1] >= 0x80 && line[i+1] <= 0x9f: // C1 control
			esc(c)
			esc(line[i+1])
			i++
		default:
			j := i + 1
			for j < len(line) && line[j] >= 0x20 && line[j] != 0x7f && line[j] != 0xc2 {
				j++
			}
			b.Write(line[i:j])
			i = j
			continue
		}
		i++
	}
	if open {
		b.WriteString(SGRReset)
	}
}

// sgrLen returns the length of the SGR sequence (ESC [ digits and semicolons m) at the start
// of s, or 0 when s does not start with one.
func sgrLen(s []byte) int {
	if len(s) < 3 || s[0] != 0x1b || s[1] != '[' {
		return 0
	}
	for i := 2; i < len(s); i++ {
		switch c := s[i]; {
		case c == 'm':
			return i + 1
		case c != ';' && (c < '0' || c > '9'):
			return 0
		}
	}
	return 0
}

// isBinary reports whether out should not be written to a terminal as it is.
func isBinary(out []byte) bool {
	return !utf8.Valid(out) || bytes.IndexByte(out, 0) >= 0
}

// writeEscaped appends line to b with invalid UTF-8 and control characters
// other than tab written as \xNN, and backslashes doubled.
func writeEscaped(b *bytes.Buffer, line []byte) {
	const hex = "0123456789abcdef"
	for len(line) > 0 {
		r, size := utf8.DecodeRune(line)
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x20 && r != '\t', r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hex[line[0]>>4])
			b.WriteByte(hex[line[0]&0xf])
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.Write(line[:size])
		}
		line = line[size:]
	}
}
