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
	slices.SortFunc(names, Compare)
}

func trimZeros(s string) string {
	k := 0
	for k < len(s) && s[k] == '0' {
		k++
	}
	return s[k:]
}
