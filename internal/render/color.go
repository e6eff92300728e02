package render

import (
	"hash/fnv"
	"io"
	"strconv"

	"golang.org/x/term"
)

// ANSI SGR sequences: the colours and weights of shoal's output, for Paint.
const (
	SGRReset  = "\x1b[0m"
	SGRBold   = "\x1b[1m"
	SGRDim    = "\x1b[2m"
	SGRRed    = "\x1b[31m"
	SGRGreen  = "\x1b[32m"
	SGRYellow = "\x1b[33m"
	SGRCyan   = "\x1b[36m"
)

// hostPalette holds the colours hosts are given in stream mode. Red is left
// out: it marks errors.
var hostPalette = [...]string{
	"\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m",
	"\x1b[92m", "\x1b[93m", "\x1b[94m", "\x1b[95m", "\x1b[96m",
}

// fder is what *os.File offers to find the terminal behind a writer.
type fder interface{ Fd() uintptr }

// IsTerminal reports whether w is a terminal (an *os.File, or anything with an
// Fd method, whose descriptor is a TTY).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(fder)
	return ok && term.IsTerminal(int(f.Fd()))
}

// TerminalWidth returns the width in columns of the terminal behind w, or 0
// when w is not a terminal or its size is unknown.
func TerminalWidth(w io.Writer) int {
	f, ok := w.(fder)
	if !ok {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width < 0 {
		return 0
	}
	return width
}

// ColorEnabled reports whether output to w should be coloured: only when w is a
// terminal, NO_COLOR is unset or empty, and TERM is not "dumb". env looks up an
// environment variable (os.Getenv in production).
func ColorEnabled(w io.Writer, env func(string) string) bool {
	if env != nil && (env("NO_COLOR") != "" || env("TERM") == "dumb") {
		return false
	}
	return IsTerminal(w)
}

// Paint wraps s in the SGR sequence sgr (SGRBold, SGRRed, ...) when color is set.
func Paint(color bool, sgr, s string) string {
	if !color || s == "" {
		return s
	}
	return sgr + s + SGRReset
}

// paint is Paint with o's colour setting.
func (o Options) paint(sgr, s string) string { return Paint(o.Color, sgr, s) }

// hostColor returns the stable palette colour for host.
func hostColor(host string) string {
	h := fnv.New32a()
	io.WriteString(h, host)
	return hostPalette[h.Sum32()%uint32(len(hostPalette))]
}

func itoa(n int) string { return strconv.Itoa(n) }
