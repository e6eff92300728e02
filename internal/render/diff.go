package render

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/shoal-sh/shoal/internal/hostlist"
)

// diffContext is how many unchanged lines surround each hunk, as diff -u shows.
const diffContext = 3

// WriteDiffs writes, for each group of groups that ran other than the reference group, a
// unified diff from the reference group's stdout to its own (and of stderr, when that
// differs), which patch applies to a file holding the reference output. The reference is
// the group holding host ref, or when ref is empty the largest group that ran (the first,
// as Groups orders them). Each diff follows a comment line naming both groups; the file
// labels are the groups' folded hosts. Lines are coloured when opt.Color is set.
func WriteDiffs(w io.Writer, groups []Group, ref string, opt Options) error {
	refAt := -1
	for i := range groups {
		if !groups[i].Ran {
			continue
		}
		if ref == "" && refAt < 0 || ref != "" && slices.Contains(groups[i].Hosts, ref) {
			refAt = i
		}
	}
	if ref != "" && refAt < 0 {
		return fmt.Errorf("diff against %s: no such host among those that ran the command", ref)
	}
	if refAt < 0 {
		return nil
	}
	base := &groups[refAt]
	baseName := hostlist.Fold(base.Hosts)
	var b bytes.Buffer
	for i := range groups {
		g := &groups[i]
		if i == refAt || !g.Ran {
			continue
		}
		name := hostlist.Fold(g.Hosts)
		b.WriteString(opt.paint(SGRBold, fmt.Sprintf("# diff %s (%d) → %s (%d)", baseName, len(base.Hosts), name, len(g.Hosts))))
		b.WriteByte('\n')
		wrote := false
		for _, part := range []struct {
			suffix   string
			from, to []byte
		}{{"", base.Result.Stdout, g.Result.Stdout}, {" (stderr)", base.Result.Stderr, g.Result.Stderr}} {
			if bytes.Equal(part.from, part.to) {
				continue
			}
			wrote = true
			if isBinary(part.from) || isBinary(part.to) {
				b.WriteString("# binary output" + part.suffix + " differs\n")
				continue
			}
			from, to := string(part.from), string(part.to)
			d, err := udiff.ToUnified(baseName+part.suffix, name+part.suffix, from, udiff.Lines(from, to), diffContext)
			if err != nil {
				return fmt.Errorf("diffing %s with %s: %w", baseName, name, err)
			}
			writeDiffLines(&b, d, opt)
		}
		if !wrote {
			b.WriteString("# the same output; the results differ in status, exit code or error\n")
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// writeDiffLines writes a unified diff, its lines coloured by kind when opt.Color is set.
func writeDiffLines(b *bytes.Buffer, d string, opt Options) {
	if !opt.Color {
		b.WriteString(d)
		return
	}
	for line := range strings.Lines(d) {
		text, nl := strings.CutSuffix(line, "\n")
		switch {
		case strings.HasPrefix(text, "---"), strings.HasPrefix(text, "+++"):
			text = opt.paint(SGRBold, text)
		case strings.HasPrefix(text, "@@"):
			text = opt.paint(SGRCyan, text)
		case strings.HasPrefix(text, "-"):
			text = opt.paint(SGRRed, text)
		case strings.HasPrefix(text, "+"):
			text = opt.paint(SGRGreen, text)
		}
		b.WriteString(text)
		if nl {
			b.WriteByte('\n')
		}
	}
}
