// Package proto is shoal's wire protocol: length-prefixed frames carrying CBOR envelopes.
//
// # Frames
//
// A stream (an agent's stdin or stdout, a client's socket) is a sequence of frames:
//
//	+----------------------+---------------------------+
//	| length: uint32, BE   | payload: length bytes     |
//	+----------------------+---------------------------+
//
// The length counts the payload only. A receiver checks it against its maximum frame size
// (DefaultMaxFrame, 16 MiB, configurable) BEFORE allocating, and fails with ErrFrameTooLarge.
// A stream that ends inside a frame is io.ErrUnexpectedEOF; one that ends between frames is io.EOF.
//
// # Envelope
//
// Each payload is one CBOR map with small integer keys (the layout is frozen forever, so that any
// two versions can at least read each other's hello and say why they disagree):
//
//	{1: version (uint), 2: id (uint), 3: type (uint), 4: body (any CBOR item, usually a map)}
//
// Bodies are CBOR maps whose keys are small integers too (Go structs with `keyasint` tags).
// Decoders forbid indefinite lengths, tags and duplicate map keys, and limit nesting, array and
// map sizes (DecOptions). Unknown keys in a body are ignored, so a field may be added without a
// version bump; its absence must mean the old behaviour. Times are int64 Unix nanoseconds,
// durations int64 nanoseconds.
//
// # Version rule
//
// Version is the protocol version. A receiver rejects envelopes whose version differs from its
// own with a *VersionError, after decoding the envelope (so the peer's hello is still readable
// and the mismatch reported clearly). Incompatible changes (a field changing meaning, a message
// changing its replies) bump Version; compatible additions (a new optional field, a new message
// type announced by a capability) do not, and add a dated line to the capability list below.
// The daemon answers a mismatch with the agent by reinstalling the agent, never by waiting.
//
// # Ids
//
// Every request carries an id chosen by its sender, unique per sender for the life of the stream;
// replies and every message about that request (started, output, exit, chunks, error, busy) carry
// the same id and may arrive in any order relative to other requests. A daemon should draw ids
// that stay unique across its own restarts (for example starting from the clock), because an agent
// re-delivers unacknowledged results from an earlier connection under their original ids.
// Messages that answer nothing (hello) use id 0.
//
// # Session
//
// Both sides send hello first, without waiting for the other's. The agent then re-offers any
// results left unacknowledged by earlier agents on the same host (started with Redelivered set,
// output, exit), before answering anything else. After that the daemon sends requests at will.
// When the agent's input ends it accepts no more work, lets running commands finish into their
// result directories and exits; the daemon sees the end of the agent's output.
//
// # Message types (daemon↔agent, wire values 1–63)
//
//	value name         sender  body          meaning
//	  1   hello        both    Hello         first frame each way: versions, hash, capabilities
//	  2   ping         daemon  Ping          liveness; answered from the reader loop at once
//	  3   pong         agent   Pong          answer to ping, with the agent's clock
//	  4   info         daemon  InfoRequest   ask for host facts
//	  5   info-result  agent   Info          hostname, OS, kernel, CPUs, memory, load, clock...
//	  6   exec         daemon  Exec          run bash -c CMD; replies started, output*, exit
//	  7   started      agent   Started       the process exists (pid), or a re-delivered result begins
//	  8   output       agent   Output        a chunk of stdout or stderr, seq increasing per request
//	  9   exit         agent   Exit          the command ended: status, times, CPU, RSS, truncated
//	 10   ack          daemon  Ack           the result of request id is safe; the agent removes it
//	 11   read         daemon  Read          read a file; replies read-chunk* (last has EOF) or error
//	 12   read-chunk   agent   ReadChunk     part of a file, with its size, mode and mtime
//	 13   write        daemon  Write         start writing a file (to a temp file beside it)
//	 14   write-chunk  daemon  WriteChunk    data for the write with the same id
//	 15   write-done   daemon  WriteDone     end of data: fsync, chmod, rename; replies written
//	 16   written      agent   Written       the file is in place: size (and SHA-256 if asked)
//	 17   kill         daemon  Kill          signal one request's process group, or all of them
//	 18   killed       agent   Killed        how many process groups were signalled
//	 19   busy         agent   Busy          exec refused: the queue is full
//	 20   error        either  Error         request id failed (code, message)
//
// # Requests in detail
//
// exec: the command starts in Dir (absolute, or relative to the agent's home directory, as are
// "~/" paths), or in the home directory when Dir is empty, as ssh starts a command; never in its
// result directory, which is the agent's bookkeeping (SHOAL_RUN_DIR names it).
// The agent replies started (pid) as soon as the process exists, then output chunks in
// order (seq 0, 1, 2... across both streams), then exit. A process that cannot be started (say,
// a missing Dir) gets exit{Code -1, Err} without started; a command killed while queued gets
// exit{Canceled}. Output beyond the request's or the
// agent's cap is not sent and not kept (exit.Truncated). Exit is sent only after the status is on
// disk, so a daemon holding an exit knows the result survives; the daemon then sends ack with the
// same id and the agent removes the result directory. An ack for an unknown id is ignored. A full
// queue answers busy at once; an id still pending answers error (duplicate id).
//
// Re-delivery: a result whose agent died (its run directory is unlocked) is offered by the next
// agent on the same host as started{Redelivered, Cmd, AgentID}, the kept stdout then stderr, and
// exit{Redelivered}. A command that was still queued when its agent died comes back as
// exit{Canceled}; one whose status was never written, as exit{Code -1, Err}.
//
// read: chunks of the file in order, each with the size, mode and mtime seen when the read began;
// the last has EOF set. write: write, write-chunk*, write-done with one id; the agent writes to a
// temporary file in the target directory, then chmods, fsyncs and renames it, and answers written
// (size; the SHA-256 of the data too when write set Sum: hashing costs the agent a tenth of its
// CPU on a large write, and SSH already protects the bytes in transit) or error. A write that is killed, fails, or whose input ends before write-done
// leaves the target untouched. Mode 0 keeps an existing file's mode (or 0644). Relative paths and
// "~/" are taken from the agent's home directory.
//
// kill: signals the process group of one exec (children included), drops it if still queued,
// cancels a read or abandons a write; with All, every exec. Answered by killed{Count}.
//
// Values 64–127 are reserved for client↔daemon messages (client.go); 128 and above are unused.
// Wire values are never reordered or reused; a retired type keeps its number.
//
// # Capabilities
//
// Hello lists capability strings; a peer uses a feature only when the other side announced it.
//
//	2026-11-25  exec, output-files, redeliver, ping, info, read, write, kill, busy  (protocol 1)
package proto
