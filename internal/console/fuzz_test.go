package console

import (
	"slices"
	"strings"
	"testing"
)

// quote writes s as one single-quoted shell word.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// FuzzSplitArgs checks that splitting never panics and that words quoted back split to themselves.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"put a b", `put "a b" 'c d'`, `a\ b`, `x ""`, `'unterminated`, "tab\there"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := splitArgs(s)
		if err != nil {
			return
		}
		var q []string
		for _, a := range args {
			q = append(q, quote(a))
		}
		again, err := splitArgs(strings.Join(q, " "))
		if err != nil || !slices.Equal(again, args) {
			t.Errorf("splitArgs(%q) = %q; quoted back and split: %q, %v", s, args, again, err)
		}
	})
}

// FuzzComplete checks that completion never panics, whatever the line and cursor.
func FuzzComplete(f *testing.F) {
	for _, s := range []string{":target web0", ":add @", ":put ./", "!cat /", "ls ~/", ":", ":help p"} {
		f.Add(s, len(s))
	}
	c := &console{opt: Options{
		HostNames: func() []string { return []string{"web01", "web02", "db1"} },
		TagNames:  func() []string { return []string{"web"} },
	}}
	f.Fuzz(func(t *testing.T, line string, pos int) {
		if pos < 0 {
			pos = -pos
		}
		word, _ := c.complete(line, pos)
		if !strings.HasSuffix(line[:min(pos, len(line))], word) {
			t.Errorf("complete(%q, %d): word %q is not before the cursor", line, pos, word)
		}
	})
}
