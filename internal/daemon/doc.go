// Package daemon is shoal's resident engine: it serves clients on a Unix socket (or
// in-process), holds one host session per host, fans commands out, routes each host's
// events back to the client that asked, and keeps the records (audit log, result
// history, state file).
//
// Serve takes its listener as an argument (Listen makes the Unix socket; MemListener
// is the in-process one), so --no-daemon runs exactly the same code.
package daemon
