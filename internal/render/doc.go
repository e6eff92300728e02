// Package render turns command results into what the person at the shell reads:
// gathered blocks of identical output, host-prefixed streams, JSON lines, the
// summary line and the live progress line.
//
// Everything here is a pure function or a small printer over an io.Writer. Other
// packages convert their results to the Result and Event types of this package;
// render imports nothing of shoal but hostlist and proto (for the host statuses,
// which are the wire's), so it can be tested with plain values and golden files.
package render
