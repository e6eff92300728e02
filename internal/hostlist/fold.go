package hostlist

import (
	"slices"
	"strconv"
	"strings"
)

// field is one numeric field of a name: its value and its digits as written.
type field struct {
	n int64
	s string
}

// rset is a set of numeric fields sorted by value then text, without duplicates.
type rset []field

func cmpField(a, b field) int {
	if a.n != b.n {
		if a.n < b.n {
			return -1
		}
		return 1
	}
	return strings.Compare(a.s, b.s)
}

// normalize sorts r and drops repeated digit strings.
func (r rset) normalize() rset {
	slices.SortFunc(r, cmpField)
	return slices.CompactFunc(r, func(a, b field) bool { return a.s == b.s })
}

// splitName splits a name into a template (literal text with a NUL where each field was) and its fields.
func splitName(name string) (string, []field) {
	var tmpl strings.Builder
	var fields []field
	lit := 0
	for i := 0; i < len(name); {
		if !isDigit(name[i]) {
			i++
			continue
		}
		j := i
		for j < len(name) && isDigit(name[j]) {
			j++
		}
		if j-i <= maxDigits {
			n, _ := strconv.ParseInt(name[i:j], 10, 64)
			tmpl.WriteString(name[lit:i])
			tmpl.WriteByte(0)
			fields = append(fields, field{n: n, s: name[i:j]})
			lit = j
		}
		i = j
	}
	if fields == nil {
		return name, nil
	}
	tmpl.WriteString(name[lit:])
	return tmpl.String(), fields
}

// hasLeadingZero reports whether a digit string is zero-padded.
func hasLeadingZero(s string) bool { return len(s) > 1 && s[0] == '0' }

type run struct {
	lo, hi int64
	pad    int
}

// format writes the set as a bracket expression, or as the bare digits of its only member.
// Members written with zero padding keep it; members without leading zeros join the widest
// padded class they fit, so the text expands back to exactly the same digit strings.
func (r rset) format() string {
	if len(r) == 1 {
		return r[0].s
	}
	var widths []int
	for _, f := range r {
		if hasLeadingZero(f.s) && !slices.Contains(widths, len(f.s)) {
			widths = append(widths, len(f.s))
		}
	}
	classOf := func(s string) int {
		if hasLeadingZero(s) {
			return len(s)
		}
		best := 0
		for _, w := range widths {
			if w <= len(s) && w > best {
				best = w
			}
		}
		return best
	}
	var runs []run
	open := map[int]int{} // pad → index in runs of the run still growing
	for _, f := range r {
		p := classOf(f.s)
		if k, ok := open[p]; ok && runs[k].hi == f.n-1 {
			runs[k].hi = f.n
			continue
		}
		open[p] = len(runs)
		runs = append(runs, run{lo: f.n, hi: f.n, pad: p})
	}
	slices.SortStableFunc(runs, func(a, b run) int {
		if a.lo != b.lo {
			if a.lo < b.lo {
				return -1
			}
			return 1
		}
		return cmpInt(a.pad, b.pad)
	})
	b := make([]byte, 0, 8*len(runs)+2)
	b = append(b, '[')
	for k, rn := range runs {
		if k > 0 {
			b = append(b, ',')
		}
		b = appendPadded(b, rn.lo, rn.pad)
		if rn.hi != rn.lo {
			b = append(b, '-')
			b = appendPadded(b, rn.hi, rn.pad)
		}
	}
	return string(append(b, ']'))
}

// entry is a box of names: the cartesian product of one set per field.
type entry struct {
	sets []rset
	keys []string // keys[d] is sets[d].format()
}

// Fold returns the shortest expression it finds that expands to exactly the given names.
// Names sharing their text outside digit runs are grouped, and their numeric fields folded
// dimension by dimension (last first, repeated while boxes still merge), as ClusterShell does.
// Names must be plain host names (no brackets, operators or white space), as Expand returns.
func Fold(names []string) string {
	if len(names) == 0 {
		return ""
	}
	sorted := slices.Clone(names)
	Sort(sorted)
	sorted = slices.Compact(sorted)
	groups := map[string][][]field{}
	var order []string
	for _, n := range sorted {
		tmpl, fields := splitName(n)
		if _, ok := groups[tmpl]; !ok {
			order = append(order, tmpl)
		}
		groups[tmpl] = append(groups[tmpl], fields)
	}
	parts := make([]string, 0, len(order))
	for _, tmpl := range order {
		pts := groups[tmpl]
		lits := strings.Split(tmpl, "\x00")
		if len(lits) == 1 {
			parts = append(parts, tmpl)
			continue
		}
		for _, e := range foldPoints(pts, len(lits)-1) {
			var b strings.Builder
			for d, l := range lits {
				b.WriteString(l)
				if d < len(e.keys) {
					b.WriteString(e.keys[d])
				}
			}
			parts = append(parts, b.String())
		}
	}
	Sort(parts)
	return strings.Join(parts, ",")
}

// foldPoints merges points of k fields into as few boxes as the greedy sweep finds.
func foldPoints(pts [][]field, k int) []entry {
	if k == 1 {
		r := make(rset, len(pts))
		for i, p := range pts {
			r[i] = p[0]
		}
		r = r.normalize()
		return []entry{{sets: []rset{r}, keys: []string{r.format()}}}
	}
	// The first pass folds the last field straight from the points, one box per prefix.
	var key strings.Builder
	idx := make(map[string]int)
	var entries []entry
	for _, p := range pts {
		key.Reset()
		for _, f := range p[:k-1] {
			key.WriteString(f.s)
			key.WriteByte(0)
		}
		if j, ok := idx[key.String()]; ok {
			entries[j].sets[k-1] = append(entries[j].sets[k-1], p[k-1])
			continue
		}
		idx[key.String()] = len(entries)
		e := entry{sets: make([]rset, k), keys: make([]string, k)}
		for d, f := range p {
			e.sets[d] = rset{f}
			e.keys[d] = f.s
		}
		entries = append(entries, e)
	}
	for j := range entries {
		if len(entries[j].sets[k-1]) > 1 {
			entries[j].sets[k-1] = entries[j].sets[k-1].normalize()
			entries[j].keys[k-1] = entries[j].sets[k-1].format()
		}
	}
	for sweep := 0; sweep <= k+1; sweep++ {
		before := len(entries)
		for d := k - 1; d >= 0 && len(entries) > 1; d-- {
			idx := make(map[string]int, len(entries))
			var out []entry
			merged := map[int]bool{}
			for _, e := range entries {
				key.Reset()
				for dd, s := range e.keys {
					if dd != d {
						key.WriteString(s)
					}
					key.WriteByte(0)
				}
				if j, ok := idx[key.String()]; ok {
					out[j].sets[d] = append(out[j].sets[d], e.sets[d]...)
					merged[j] = true
					continue
				}
				idx[key.String()] = len(out)
				ne := entry{sets: slices.Clone(e.sets), keys: slices.Clone(e.keys)}
				ne.sets[d] = slices.Clone(e.sets[d])
				out = append(out, ne)
			}
			for j := range merged {
				out[j].sets[d] = out[j].sets[d].normalize()
				out[j].keys[d] = out[j].sets[d].format()
			}
			entries = out
		}
		if len(entries) == before || len(entries) == 1 {
			break
		}
	}
	return entries
}
