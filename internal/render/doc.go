// Package render turns command results into what the person at the shell reads:
// gathered blocks of identical output, host-prefixed streams, JSON lines, the
// summary line and the live progress line.
//
// Everything here is a pure function or a small printer over an io.Writer. It shows
// the per-host result every layer shares (proto.HostResult) and this package's Event;
// render imports nothing of shoal but hostlist and proto, so it can be tested with
// plain values and golden files.
package render
