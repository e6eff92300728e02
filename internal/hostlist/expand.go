// Package hostlist parses, expands and folds target expressions in the pdsh and ClusterShell syntax.
package hostlist

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultMaxHosts is the largest number of names one expression may expand to when Options.MaxHosts is 0.
const DefaultMaxHosts = 1_000_000

// maxDigits is the longest digit string read as a number; longer runs would overflow int64.
const maxDigits = 18

// maxDepth bounds how deeply tags and hosts files may nest.
const maxDepth = 32

// ErrUnknownTag is what a Tags function returns (wrapped or not) for a tag it does not know.
var ErrUnknownTag = errors.New("unknown tag")

// Options supplies what an expression may refer to beyond plain names; the zero value allows only names.
type Options struct {
	// Tags returns the target expression a tag stands for (name without '@').
	Tags func(name string) (string, error)
	// All returns every known host, for @all.
	All func() ([]string, error)
	// ReadFile reads a hosts file named by ^FILE; nil means os.ReadFile.
	ReadFile func(path string) ([]byte, error)
	// Stdin supplies names for the item "-".
	Stdin io.Reader
	// MaxHosts caps the size of any set built while expanding; 0 means DefaultMaxHosts.
	MaxHosts int
}

// SyntaxError reports a malformed expression and the 1-based column of the fault.
type SyntaxError struct {
	Expr string
	Col  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s: %s at column %d", e.Expr, e.Msg, e.Col)
}

// LimitError reports an expression that would expand to more names than allowed.
type LimitError struct {
	Expr  string
	Col   int
	Count uint64 // at least this many names (saturated at the limit + 1 when larger)
	Max   int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: expands to more than %d hosts (the limit) at column %d", e.Expr, e.Max, e.Col)
}

// CycleError reports tags that name each other in a loop; Tags runs from the first tag back to itself.
type CycleError struct {
	Tags []string
}

func (e *CycleError) Error() string {
	return "tag cycle: @" + strings.Join(e.Tags, " -> @")
}

// Expand evaluates a full target expression and returns its names, de-duplicated, in natural order.
//
// Items are separated by ',' or white space and combined left to right: ',' is union, '!' difference,
// '&' intersection and '^' symmetric difference (between two items). An item is a name pattern with
// bracketed ranges (web[01-20], n[1-9/2], rack[1-2]-n[01-04]), @tag, @all, ^FILE (a hosts file),
// "-" (names on stdin), or -ITEM (pdsh-style exclusion, the same as !ITEM). A pdsh regular
// expression /RE/ keeps only the names so far that match it, and -/RE/ removes them.
func Expand(expr string, opts *Options) ([]string, error) {
	e := newEvaluator(opts)
	if names, ok := e.single(expr); ok {
		return names, nil
	}
	s, err := e.eval(expr)
	if err != nil {
		return nil, err
	}
	return s.sorted(), nil
}

// Check reports what Expand would find wrong with expr's text and tags (syntax errors, ranges
// over the limit, unknown tags, tag cycles) without expanding ranges, reading hosts files or
// stdin, or calling opts.All; it costs time in the length of the text, not of the expansion.
func Check(expr string, opts *Options) error {
	e := newEvaluator(opts)
	e.check = true
	_, err := e.eval(expr)
	return err
}

type set map[string]struct{}

// sorted returns the names of s in natural order.
func (s set) sorted() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	Sort(out)
	return out
}

type evaluator struct {
	opts      Options
	max       int
	depth     int
	tagStack  []string
	tagCache  map[string]set
	stdin     []string // lines of stdin, read once
	stdinRead bool
	check     bool // only parse: names, files, stdin and @all give empty sets (see Check)
}

// newEvaluator returns an evaluator for opts, with the defaults filled in.
func newEvaluator(opts *Options) *evaluator {
	e := &evaluator{tagCache: map[string]set{}}
	if opts != nil {
		e.opts = *opts
	}
	e.max = e.opts.MaxHosts
	if e.max <= 0 {
		e.max = DefaultMaxHosts
	}
	if e.opts.ReadFile == nil {
		e.opts.ReadFile = os.ReadFile
	}
	return e
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isStop reports whether c ends an item at bracket depth 0.
func isStop(c byte) bool {
	return c == ',' || c == '!' || c == '&' || c == '^' || isSpace(c)
}

// synErr returns a *SyntaxError for the 0-based position pos of expr.
func synErr(expr string, pos int, format string, args ...any) error {
	return &SyntaxError{Expr: expr, Col: pos + 1, Msg: fmt.Sprintf(format, args...)}
}

// eval evaluates expr left to right.
func (e *evaluator) eval(expr string) (set, error) {
	acc := set{}
	var op byte = ','
	opPos := -1 // position of a pending explicit operator
	afterItem := false
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case isSpace(c):
			afterItem = false
			i++
			continue
		case c == ',':
			if opPos >= 0 {
				return nil, synErr(expr, opPos, "missing operand after '%c'", expr[opPos])
			}
			afterItem = false
			i++
			continue
		case c == '!' || c == '&' || (c == '^' && (afterItem || i+1 == len(expr) || isStop(expr[i+1]))):
			if opPos >= 0 {
				return nil, synErr(expr, i, "unexpected '%c' after '%c'", c, expr[opPos])
			}
			op, opPos, afterItem = c, i, false
			i++
			continue
		case c == '-' && i+1 < len(expr) && !isStop(expr[i+1]):
			if opPos >= 0 {
				return nil, synErr(expr, i, "unexpected '-' after '%c'", expr[opPos])
			}
			op, opPos, afterItem = '!', i, false
			i++
			continue
		}
		if c == '/' {
			next, err := e.regex(acc, op, expr, i)
			if err != nil {
				return nil, err
			}
			op, opPos, afterItem, i = ',', -1, true, next
			continue
		}
		if c != '@' && c != '^' && c != '-' && (op == ',' || op == '!') {
			// A plain pattern is added or removed name by name, without a set of its own.
			next, err := e.patternInPlace(acc, op, expr, i)
			if err != nil {
				return nil, err
			}
			op, opPos, afterItem, i = ',', -1, true, next
			continue
		}
		item, owned, next, err := e.item(expr, i)
		if err != nil {
			return nil, err
		}
		acc, err = e.apply(acc, op, item, owned, expr, i)
		if err != nil {
			return nil, err
		}
		op, opPos, afterItem = ',', -1, true
		i = next
	}
	if opPos >= 0 {
		return nil, synErr(expr, opPos, "missing operand after '%c'", expr[opPos])
	}
	return acc, nil
}

// apply combines acc with item by op (',', '!', '&' or '^') and returns the result, which may be acc itself.
func (e *evaluator) apply(acc set, op byte, item set, owned bool, expr string, pos int) (set, error) {
	switch op {
	case ',':
		if len(acc) == 0 && owned {
			return item, nil
		}
		for k := range item {
			acc[k] = struct{}{}
		}
		if len(acc) > e.max {
			return nil, &LimitError{Expr: expr, Col: pos + 1, Count: uint64(len(acc)), Max: e.max}
		}
	case '!':
		for k := range item {
			delete(acc, k)
		}
	case '&':
		out := set{}
		for k := range acc {
			if _, ok := item[k]; ok {
				out[k] = struct{}{}
			}
		}
		return out, nil
	case '^':
		for k := range item {
			if _, ok := acc[k]; ok {
				delete(acc, k)
			} else {
				acc[k] = struct{}{}
			}
		}
		if len(acc) > e.max {
			return nil, &LimitError{Expr: expr, Col: pos + 1, Count: uint64(len(acc)), Max: e.max}
		}
	}
	return acc, nil
}

// single expands expr when it is one name pattern whose names come out of the brackets already
// in natural order and distinct, the common case (web[01-20], rack[1-4]-n[001-250]): it skips the
// set and the sort. ok is false for anything else, errors included, which eval then handles.
func (e *evaluator) single(expr string) (names []string, ok bool) {
	if expr == "" || strings.IndexByte("@^-/", expr[0]) >= 0 {
		return nil, false
	}
	end, err := itemEnd(expr, 0)
	if err != nil || end != len(expr) {
		return nil, false
	}
	p, err := parsePattern(expr, 0, end)
	if err != nil || p.count > uint64(e.max) {
		return nil, false
	}
	names = make([]string, 0, p.count)
	p.each(func(n string) { names = append(names, n) })
	for i := 1; i < len(names); i++ {
		if Compare(names[i-1], names[i]) >= 0 {
			return nil, false
		}
	}
	return names, true
}

// regex applies the pdsh filter /RE/ at expr[i:] to acc in place: it keeps the names that match,
// or with '!' or '-' before it removes them. The closing '/' may be left out at the end of the item.
func (e *evaluator) regex(acc set, op byte, expr string, i int) (int, error) {
	end := strings.IndexByte(expr[i+1:], '/')
	next := 0
	if end >= 0 {
		end += i + 1
		next = end + 1
	} else {
		end = strings.IndexByte(expr[i+1:], ',')
		if end < 0 {
			end = len(expr)
		} else {
			end += i + 1
		}
		next = end
	}
	if next < len(expr) && !isStop(expr[next]) {
		return 0, synErr(expr, next, "unexpected '%c' after regular expression", expr[next])
	}
	re, err := regexp.Compile(expr[i+1 : end])
	if err != nil {
		return 0, synErr(expr, i, "bad regular expression: %v", err)
	}
	switch op {
	case ',', '&':
		for k := range acc {
			if !re.MatchString(k) {
				delete(acc, k)
			}
		}
	case '!':
		for k := range acc {
			if re.MatchString(k) {
				delete(acc, k)
			}
		}
	default:
		return 0, synErr(expr, i, "a regular expression can only filter ('/RE/') or exclude ('-/RE/', '!/RE/')")
	}
	return next, nil
}

// patternInPlace adds (op ',') or removes (op '!') the names of the pattern at expr[i:] to or from acc.
func (e *evaluator) patternInPlace(acc set, op byte, expr string, i int) (int, error) {
	end, err := itemEnd(expr, i)
	if err != nil {
		return 0, err
	}
	p, err := parsePattern(expr, i, end)
	if err != nil {
		return 0, err
	}
	if p.count > uint64(e.max) {
		return 0, &LimitError{Expr: expr, Col: i + 1, Count: p.count, Max: e.max}
	}
	if e.check {
		return end, nil
	}
	if op == '!' {
		p.each(func(name string) { delete(acc, name) })
		return end, nil
	}
	if uint64(len(acc))+p.count > uint64(e.max) {
		// Duplicates may still bring it under the limit; count exactly before giving up.
		n := len(acc)
		p.each(func(name string) {
			if _, ok := acc[name]; !ok {
				n++
			}
		})
		if n > e.max {
			return 0, &LimitError{Expr: expr, Col: i + 1, Count: uint64(n), Max: e.max}
		}
	}
	p.each(func(name string) { acc[name] = struct{}{} })
	return end, nil
}

// itemEnd returns the end of the item starting at i, checking brackets.
func itemEnd(expr string, i int) (int, error) {
	for i < len(expr) {
		c := expr[i]
		if isStop(c) {
			return i, nil
		}
		switch c {
		case ']':
			return 0, synErr(expr, i, "unexpected ']'")
		case '[':
			open := i
			i++
			for {
				if i == len(expr) {
					return 0, synErr(expr, open, "unclosed '['")
				}
				if expr[i] == ']' {
					break
				}
				if expr[i] == '[' {
					return 0, synErr(expr, i, "nested '['")
				}
				i++
			}
		}
		i++
	}
	return i, nil
}

// item evaluates the item at expr[i:]; owned reports whether the caller may keep or modify the set.
func (e *evaluator) item(expr string, i int) (s set, owned bool, next int, err error) {
	switch expr[i] {
	case '-':
		if e.check {
			return set{}, true, i + 1, nil
		}
		s, err := e.readStdin()
		return s, true, i + 1, err
	case '@':
		end, err := itemEnd(expr, i+1)
		if err != nil {
			return nil, false, 0, err
		}
		if end == i+1 {
			return nil, false, 0, synErr(expr, i, "missing tag name after '@'")
		}
		s, err := e.tags(expr, i, end)
		return s, false, end, err
	case '^':
		end := i + 1
		for end < len(expr) && !isStop(expr[end]) {
			end++
		}
		if e.check {
			return set{}, true, end, nil
		}
		s, err := e.readFile(expr[i+1 : end])
		return s, true, end, err
	}
	end, err := itemEnd(expr, i)
	if err != nil {
		return nil, false, 0, err
	}
	p, err := parsePattern(expr, i, end)
	if err != nil {
		return nil, false, 0, err
	}
	if p.count > uint64(e.max) {
		return nil, false, 0, &LimitError{Expr: expr, Col: i + 1, Count: p.count, Max: e.max}
	}
	if e.check {
		return set{}, true, end, nil
	}
	s = make(set, p.count)
	p.each(func(name string) { s[name] = struct{}{} })
	return s, true, end, nil
}

// tags evaluates the tag item expr[at:end] (@name, or @name[1-3] for several tags) and unites the tags' sets.
func (e *evaluator) tags(expr string, at, end int) (set, error) {
	p, err := parsePattern(expr, at+1, end)
	if err != nil {
		return nil, err
	}
	if p.count > 4096 {
		return nil, &LimitError{Expr: expr, Col: at + 1, Count: p.count, Max: 4096}
	}
	var names []string
	p.each(func(n string) { names = append(names, n) })
	if len(names) == 1 {
		return e.tag(names[0])
	}
	out := set{}
	for _, n := range names {
		s, err := e.tag(n)
		if err != nil {
			return nil, err
		}
		for k := range s {
			out[k] = struct{}{}
		}
		if len(out) > e.max {
			return nil, &LimitError{Expr: expr, Col: at + 1, Count: uint64(len(out)), Max: e.max}
		}
	}
	return out, nil
}

// tag returns the cached or freshly evaluated set of one tag; callers must not modify it.
func (e *evaluator) tag(name string) (set, error) {
	if s, ok := e.tagCache[name]; ok {
		return s, nil
	}
	for i, t := range e.tagStack {
		if t == name {
			return nil, &CycleError{Tags: append(append([]string{}, e.tagStack[i:]...), name)}
		}
	}
	if len(e.tagStack) >= maxDepth {
		return nil, fmt.Errorf("expanding @%s: tags nest more than %d deep", name, maxDepth)
	}
	var s set
	if name == "all" || name == "*" {
		if e.check {
			return set{}, nil
		}
		if e.opts.All == nil {
			return nil, errors.New("expanding @all: no host list configured")
		}
		names, err := e.opts.All()
		if err != nil {
			return nil, fmt.Errorf("expanding @all: %w", err)
		}
		if len(names) > e.max {
			return nil, &LimitError{Expr: "@all", Col: 1, Count: uint64(len(names)), Max: e.max}
		}
		s = make(set, len(names))
		for _, n := range names {
			s[n] = struct{}{}
		}
	} else {
		if e.opts.Tags == nil {
			return nil, fmt.Errorf("expanding @%s: %w", name, ErrUnknownTag)
		}
		x, err := e.opts.Tags(name)
		if err != nil {
			return nil, fmt.Errorf("expanding @%s: %w", name, err)
		}
		e.tagStack = append(e.tagStack, name)
		s, err = e.eval(x)
		e.tagStack = e.tagStack[:len(e.tagStack)-1]
		if err != nil {
			var ce *CycleError
			if errors.As(err, &ce) {
				return nil, err
			}
			return nil, fmt.Errorf("expanding @%s: %w", name, err)
		}
	}
	e.tagCache[name] = s
	return s, nil
}

// readFile evaluates the hosts file named by ^path, one expression a line.
func (e *evaluator) readFile(path string) (set, error) {
	if e.depth >= maxDepth {
		return nil, fmt.Errorf("reading hosts file %s: files nest more than %d deep", path, maxDepth)
	}
	data, err := e.opts.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading hosts file: %w", err)
	}
	return e.lines(path, splitLines(data))
}

// readStdin evaluates the names on stdin, reading it on first use only.
func (e *evaluator) readStdin() (set, error) {
	if !e.stdinRead {
		if e.opts.Stdin == nil {
			return nil, errors.New("reading names from stdin: no stdin")
		}
		data, err := io.ReadAll(io.LimitReader(e.opts.Stdin, 256<<20))
		if err != nil {
			return nil, fmt.Errorf("reading names from stdin: %w", err)
		}
		e.stdin, e.stdinRead = splitLines(data), true
	}
	return e.lines("stdin", e.stdin)
}

// splitLines splits data into lines with '#' comments and surrounding blanks removed.
func splitLines(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		out = append(out, strings.TrimSpace(line))
	}
	return out
}

// lines evaluates each line as an expression and unites the results.
func (e *evaluator) lines(name string, lines []string) (set, error) {
	e.depth++
	defer func() { e.depth-- }()
	out := set{}
	for n, line := range lines {
		if line == "" {
			continue
		}
		if line == "-" {
			return nil, fmt.Errorf("%s:%d: stdin cannot be read from a hosts file", name, n+1)
		}
		s, err := e.eval(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n+1, err)
		}
		for k := range s {
			out[k] = struct{}{}
		}
		if len(out) > e.max {
			return nil, &LimitError{Expr: name, Col: 1, Count: uint64(len(out)), Max: e.max}
		}
	}
	return out, nil
}

// segment is a literal or a bracketed range set in a pattern.
type segment struct {
	lit    string
	ranges []rng // nil for a literal
	count  uint64
}

type rng struct {
	lo, hi, step int64
	pad          int
}

type pattern struct {
	segs  []segment
	count uint64
}

// parsePattern parses expr[start:end], a name with bracketed ranges.
func parsePattern(expr string, start, end int) (*pattern, error) {
	p := &pattern{count: 1}
	const sat = uint64(1) << 62
	mul := func(n uint64) {
		if n != 0 && p.count > sat/n {
			p.count = sat
		} else {
			p.count *= n
		}
	}
	lit := start
	i := start
	for i < end {
		c := expr[i]
		switch {
		case c == '[':
			if lit < i {
				p.segs = append(p.segs, segment{lit: expr[lit:i], count: 1})
			}
			close := strings.IndexByte(expr[i:end], ']') + i
			seg, err := parseRanges(expr, i+1, close)
			if err != nil {
				return nil, err
			}
			p.segs = append(p.segs, seg)
			mul(seg.count)
			i = close + 1
			lit = i
			continue
		case c == '@':
			return nil, synErr(expr, i, "'@' may only start a tag")
		case c < 0x20 || c == 0x7f:
			return nil, synErr(expr, i, "control character in name")
		case c >= 0x80:
			// Names travel as UTF-8 strings (CBOR, JSON): refuse here what could not be sent.
			r, size := utf8.DecodeRuneInString(expr[i:end])
			if r == utf8.RuneError && size <= 1 {
				return nil, synErr(expr, i, "invalid UTF-8 in name")
			}
			i += size
			continue
		}
		i++
	}
	if lit < end {
		p.segs = append(p.segs, segment{lit: expr[lit:end], count: 1})
	}
	return p, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseRanges parses the inside of a bracket, expr[start:end].
func parseRanges(expr string, start, end int) (segment, error) {
	seg := segment{ranges: []rng{}}
	if start == end {
		return seg, synErr(expr, start-1, "empty '[]'")
	}
	num := func(i int) (int64, string, int, error) {
		j := i
		for j < end && isDigit(expr[j]) {
			j++
		}
		if j == i {
			if i == end || expr[i] == ',' {
				return 0, "", 0, synErr(expr, i, "missing number")
			}
			return 0, "", 0, synErr(expr, i, "unexpected '%c' in range", expr[i])
		}
		if j-i > maxDigits {
			return 0, "", 0, synErr(expr, i, "number longer than %d digits", maxDigits)
		}
		n, _ := strconv.ParseInt(expr[i:j], 10, 64)
		return n, expr[i:j], j, nil
	}
	i := start
	for {
		elemPos := i
		lo, loS, j, err := num(i)
		if err != nil {
			return seg, err
		}
		r := rng{lo: lo, hi: lo, step: 1}
		if loS[0] == '0' && len(loS) > 1 {
			r.pad = len(loS)
		}
		i = j
		if i < end && expr[i] == '-' {
			hi, hiS, j, err := num(i + 1)
			if err != nil {
				return seg, err
			}
			if hiS[0] == '0' && len(hiS) > 1 && len(hiS) != len(loS) {
				return seg, synErr(expr, i+1, "zero padding of %s does not match %s", hiS, loS)
			}
			if hi < lo {
				return seg, synErr(expr, elemPos, "range %s-%s goes backwards", loS, hiS)
			}
			r.hi = hi
			i = j
			if i < end && expr[i] == '/' {
				step, _, j, err := num(i + 1)
				if err != nil {
					return seg, err
				}
				if step == 0 {
					return seg, synErr(expr, i+1, "step must be at least 1")
				}
				r.step = step
				i = j
			}
		}
		seg.ranges = append(seg.ranges, r)
		seg.count += uint64((r.hi-r.lo)/r.step) + 1
		if seg.count > 1<<62 {
			seg.count = 1 << 62
		}
		if i == end {
			return seg, nil
		}
		if expr[i] != ',' {
			return seg, synErr(expr, i, "unexpected '%c' in range", expr[i])
		}
		i++
	}
}

// appendPadded appends n in decimal, zero-padded to width pad.
func appendPadded(b []byte, n int64, pad int) []byte {
	var tmp [24]byte
	d := strconv.AppendInt(tmp[:0], n, 10)
	for k := len(d); k < pad; k++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// each calls f with every name of the pattern, in bracket order.
func (p *pattern) each(f func(string)) {
	if len(p.segs) == 1 && p.segs[0].ranges == nil {
		f(p.segs[0].lit)
		return
	}
	vals := make([][]string, len(p.segs))
	for k, s := range p.segs {
		if s.ranges == nil {
			vals[k] = []string{s.lit}
			continue
		}
		v := make([]string, 0, s.count)
		var buf []byte
		for _, r := range s.ranges {
			for n := r.lo; n <= r.hi; n += r.step {
				buf = appendPadded(buf[:0], n, r.pad)
				v = append(v, string(buf))
				if r.hi-n < r.step {
					break
				}
			}
		}
		vals[k] = v
	}
	idx := make([]int, len(vals))
	var buf []byte
	for {
		buf = buf[:0]
		for k, v := range vals {
			buf = append(buf, v[idx[k]]...)
		}
		f(string(buf))
		k := len(idx) - 1
		for ; k >= 0; k-- {
			idx[k]++
			if idx[k] < len(vals[k]) {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}
