package hostlist

import (
	"slices"
	"strings"
)

// Compare orders two names naturally: digit runs compare by value, so n2 sorts before n10.
// Names equal in value (n1, n01) put the shorter digits first, then fall back to byte order,
// so the order is total.
func Compare(a, b string) int {
	// Skip the common prefix, backing up to the start of a digit run it may end inside.
	k := 0
	for k < len(a) && k < len(b) && a[k] == b[k] {
		k++
	}
	for k > 0 && isDigit(a[k-1]) {
		k--
	}
	i, j := k, k
	pad := 0 // the first difference in digit-run length between runs of equal value
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si := i
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			sj := j
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			da := trimZeros(a[si:i])
			db := trimZeros(b[sj:j])
			if len(da) != len(db) {
				return cmpInt(len(da), len(db))
			}
			if c := strings.Compare(da, db); c != 0 {
				return c
			}
			if pad == 0 {
				pad = cmpInt(i-si, j-sj)
			}
			continue
		}
		if ca != cb {
			return cmpInt(int(ca), int(cb))
		}
		i++
		j++
	}
	if c := cmpInt(len(a)-i, len(b)-j); c != 0 {
		return c
	}
	if pad != 0 {
		return pad
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Sort sorts names in place in natural order (see Compare).
func Sort(names []string) {
	if len(names) < 256 {
		slices.SortFunc(names, Compare)
		return
	}
	// Large inputs sort on byte keys that order like Compare, built once, with Compare
	// breaking ties; this avoids re-parsing digit runs in every comparison.
	type keyed struct{ key, name string }
	keys := make([]keyed, len(names))
	size := 0
	for _, n := range names {
		size += len(n) + 8
	}
	buf := make([]byte, 0, size)
	ends := make([]int, len(names))
	for i, n := range names {
		var ok bool
		if buf, ok = appendSortKey(buf, n); !ok {
			slices.SortFunc(names, Compare)
			return
		}
		ends[i] = len(buf)
	}
	all := string(buf)
	start := 0
	for i, n := range names {
		keys[i] = keyed{all[start:ends[i]], n}
		start = ends[i]
	}
	slices.SortFunc(keys, func(a, b keyed) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return Compare(a.name, b.name)
	})
	for i := range keys {
		names[i] = keys[i].name
	}
}

// appendSortKey appends a key for name whose byte order is Compare's order up to its tie-breaks:
// other bytes as they are, and each digit run as '0', its length without leading zeros, and those
// digits. It reports false for a digit run too long to encode.
func appendSortKey(b []byte, name string) ([]byte, bool) {
	for i := 0; i < len(name); {
		if !isDigit(name[i]) {
			b = append(b, name[i])
			i++
			continue
		}
		j := i
		for j < len(name) && isDigit(name[j]) {
			j++
		}
		d := trimZeros(name[i:j])
		if len(d) > 255 {
			return b, false
		}
		b = append(b, '0', byte(len(d)))
		b = append(b, d...)
		i = j
	}
	return b, true
}

func trimZeros(s string) string {
	k := 0
	for k < len(s) && s[k] == '0' {
		k++
	}
	return s[k:]
}
