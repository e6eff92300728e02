// Package install puts the shoal agent on a host: the one-round-trip bootstrap command that
// either starts the installed agent or reports the host's platform and waits for an upload
// script, the upload script that writes a new binary atomically and starts it, and the choice
// of binary per platform. Nothing here opens a connection or knows of transports:
// transport.Replicate drives these steps over the stdio of a command that a transport (ssh,
// openssh) runs on the host.
//
// # Layout on the host
//
// The agent lives at <dir>/agent-<first 16 hex digits of its SHA-256>, dir defaulting to
// ~/.cache/shoal (mode 0700). Binaries of different versions sit side by side, so daemons of
// different versions sharing a home do not fight; the agent is started with
// `agent --state-dir <dir> <extra args>`.
//
// # Connect, in one round trip
//
// The caller runs Bootstrap's command (POSIX sh under /bin/sh, whatever the login shell). It
// maps `uname -sm` to the binary this side would install for that platform, and execs it when it
// is a regular file, executable, not writable by group or others, in a directory of mode 0700.
// Before exec it prints one line, then the agent's frames follow on stdout:
//
//	SHOAL-EXEC <uname -sm>\t<agent path>
//
// Otherwise it prints the line below and reads one line from stdin, an upload script, which it
// runs (see Install); at end of input it exits instead:
//
//	SHOAL-MISSING <uname -sm>\t<"gzip" and "zstd": those `command -v` finds>
//
// With one binary to offer (no platform directory, the usual case) the command skips uname on
// the way to the agent: it checks that binary's install name and reports the binary's platform
// in SHOAL-EXEC; only a host without the agent runs uname. A file of that name on a host of
// another platform (a home shared across platforms) fails to exec, the agent never says hello,
// and the reinstall that follows offers no binary, so the host reports its real platform.
//
// Login scripts may print before either line; ReadMarker skips such lines (at most
// MaxMarkerBytes) and reads byte by byte, so nothing after the marker is consumed.
//
// # Install
//
// On SHOAL-MISSING the caller (transport.Replicate) picks the binary for the platform
// (Source.For: its own executable when the platform matches, else shoal-<os>-<arch> from the
// platform directory; a *NoBinaryError names the platform and how to provide it). A running
// executable that is dynamically linked (a cgo build, IsDynamic) and carries no agent is never
// offered, since a host with an older C library could not run it: the platform directory's
// binary is used, or the error says to install a static build. An executable built by
// scripts/build carries the agent-only build of itself (cmd/shoal-agent, 4.0 MB against shoal's
// 15.8 MB) after its own bytes, found by a trailer (AppendAgent, ReadEmbedded); Source.For then
// unpacks that into HashCacheDir/agents, checked against the trailer's hash, and offers it
// instead of the whole executable. The caller then calls Install on the bootstrap's session:
// it sends Upload's script as one line, which the waiting bootstrap runs. The script makes the
// install directory and prints
//
//	SHOAL-READY
//
// and only then does Install write the bytes (exactly Size of them): bytes that reach sshd
// before anything reads them wait in its channel buffer, which it grows by copying at every
// packet, and that cost a host more CPU than the rest of the install. On Linux the script first
// has perl, where there is one, enlarge the pipe sshd writes into from 64 KiB to 2 or 1 MiB, so
// that sshd hands the upload on instead of holding it. One session does it all: a second one
// (the way it was done before) cost each host another sshd fork and login shell.
//
// The script creates a temp file of a random name in the install directory (with noclobber),
// copies the bytes with head -c, checks the size, chmods it 0700 and renames it into place:
// atomic, so concurrent installs to one shared home never expose a partial file. It then
// prints SHOAL-EXEC and execs the agent, whose stdin is the rest of the session. On any
// failure it removes the temp file and prints SHOAL-FAIL <reason>.
//
// Source.UploadFor picks the script. The bootstrap's SHOAL-MISSING marker lists the
// decompressors the host has (`gzip`, `zstd`); when the mode (Source.Compression) allows it,
// the binary is sent compressed: with zstd where the host has it (UploadZstd, Source.Zstded:
// 3.2 to 1.34 MB for the agent-only build, and `zstd -dc` costs a host less than half of what
// `gzip -dc` does), else with gzip (UploadGzip, Source.Gzipped: 3.2 to 1.42 MB). Each binary is
// compressed once per Source, kept in memory and in HashCacheDir/upload, where the next process
// reuses it after checking it against the binary (gzip: its trailer's CRC-32 and size; zstd:
// decompressed and hashed). The script reads exactly that many bytes with head -c, pipes them
// through the decompressor into the temp file, which checks the stream's own checksum and
// length, and goes on as Upload does: chmod, rename, exec. The default mode, "auto", compresses for loopback addresses too: sshd's CPU
// grows faster than the bytes it receives (see CompressAuto). Without either tool, with mode
// "none", or when the binary cannot be compressed, the raw upload is used.
//
// The upload starts the agent with SHOAL_AGENT_HASH set to the hash of the bytes it sent; the
// agent (agent.InstalledHash) reports that hash in hello instead of reading its new binary, when
// the hash names its executable, and records it for the file's identity.
//
// # Trust
//
// The file name carries a hash prefix only; the agent proves what it is by the full hash of its
// own executable in its hello. Both sides cache that hash by the file's identity (device, inode,
// size, mtime and ctime: fsutil.CachedHash; the agent in its state directory, Source in
// HashCacheDir), so neither reads the whole binary on every start; a modified or replaced
// binary has a new ctime, which cannot be set back, so it is hashed afresh and a tampered agent
// still reports a hash that does not match. The daemon's host session compares it with the
// Binary.Hash installed or found (transport.ConnInfo.CheckHash) and, on a mismatch, reconnects
// once with a reinstall, which offers no binary to the bootstrap and so forces an upload; a
// second mismatch is reported.
package install
