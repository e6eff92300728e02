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
// version is Version; type is a value of the message tables below; key 4 is left out when a
// message has no body. shoal writes the keys in that order, each integer in its shortest form,
// so a ping with id 300 and an empty body is this frame (see Bodies for the bodies):
//
//	00 00 00 0b  a4  01 01  02 19 01 2c  03 02  04 a0
//	length 11    map of 4: version 1, id 300, type 2, body {}
//
// Bodies are CBOR maps whose keys are small integers too (Go structs with `keyasint` tags).
// Decoders forbid indefinite lengths, tags and duplicate map keys, and limit nesting, array and
// map sizes (DecOptions). Unknown keys in a body are ignored, so a field may be added without a
// version bump; its absence must mean the old behaviour. Times are int64 Unix nanoseconds,
// durations int64 nanoseconds.
//
// # Version rule
//
// Version is the protocol version: 1 (2026-11-25). A receiver rejects envelopes whose version differs from its
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
// Values 64–127 are client↔daemon messages (below); 128 and above are unused.
// Wire values are never reordered or reused; a retired type keeps its number.
//
// # Client↔daemon messages (wire values 64–127)
//
// A client (the console, a one-shot command, `shoal daemon status`) connects to the
// daemon's Unix socket (or an in-memory pipe with --no-daemon) and speaks the same
// frames and envelopes. Both sides send their hello first without waiting: the client
// ClientHello, the daemon DaemonHello. Besides the envelope's Version, hello carries
// ClientVersion; when either differs the daemon answers DaemonHello with Err set and
// closes, and the client tells the user to run `shoal daemon stop` (or restart the
// daemon) so that a daemon of the client's own version starts. Every client request
// has an id chosen by the client, unique on its connection; every reply carries that
// id, and replies to different requests interleave freely. A request that fails as a
// whole is answered with failed. Frames on a client connection may be up to 64 MiB.
//
//	value name           sender  body           meaning
//	 64   client-hello   client  ClientHello    first frame: versions, identity, pid
//	 65   daemon-hello   daemon  DaemonHello    first frame: versions, pid, start time; Err refuses
//	 66   run            client  RunRequest     run a command on hosts
//	 67   run-accepted   daemon  RunAccepted    the run started; its daemon-wide id
//	 68   run-event      daemon  RunEvent       state, started, stdout, stderr or done of one host
//	 69   run-end        daemon  RunEnd         every host of the run is done; no more frames for the id
//	 70   cancel         client  Cancel         kill the run with this id on every host still running
//	 71   ping-hosts     client  HostsRequest   ping each host's agent
//	 72   ping-results   daemon  PingResults    round trips, in request order
//	 73   info-hosts     client  HostsRequest   describe each host
//	 74   info-results   daemon  InfoResults    host facts, in request order
//	 75   time-hosts     client  HostsRequest   compare each host's clock with the daemon's
//	 76   time-results   daemon  TimeResults    offsets corrected for the round trip
//	 77   put            client  PutRequest     copy a local file to every host
//	 78   get            client  GetRequest     copy a file from every host into DestDir/<host>/
//	 79   file-results   daemon  FileResults    put or get outcome per host
//	 80   status         client  StatusRequest  describe the daemon and its host sessions
//	 81   status-result  daemon  DaemonStatus   pid, version, clients, hosts with state and rtt, goroutines, heap, fds
//	 82   last           client  LastRequest    the user's most recent runs from the history
//	 83   last-result    daemon  LastResult     runs, newest first
//	 84   stop           client  Stop           shut the daemon down cleanly
//	 85   stopping       daemon  Stopping       the daemon stops after this frame
//	 86   failed         daemon  Failed         request id failed as a whole (bad request, stopping)
//	 87   put-stream     client  PutStream      copy the bytes of the put-data frames that follow to every host
//	 88   put-data       client  PutData        a chunk of a put-stream's file; EOF on the last
//	 89   get-stream     client  GetStream      stream a file from every host back to the client
//	 90   get-data       daemon  GetData        a chunk of one host's file; End on its last
//	 91   reload         client  Reload         read every configuration file again at its next use
//	 92   reloaded       daemon  Reloaded       answers reload
//
// Run: the daemon answers run-accepted at once, then streams run-event frames as hosts
// answer, then run-end. A done event's result carries the output only when it is not
// what the stdout/stderr events carried (Output set: replace, do not append). If the
// client's connection closes, the daemon kills the client's running commands (unless
// configured to keep them; their results then go to the audit log and history). When
// the daemon itself stops, it ends its agents' input instead: running commands finish
// on the hosts and keep their results for the next daemon, and the client gets an
// error result for them. RunRequest.Fanout bounds how many of the run's hosts connect
// at once (hosts already connected do not count), under the daemon's own bound.
// RunRequest.Rollout paces the command itself: at most Batch hosts run it at once (a
// sliding window, or strict Waves), the Canary hosts first and alone, and once MaxFail
// hosts did not succeed (any status but ok and cancelled) no more start. Each host not
// started gets a done event with status skipped and an Err saying why (cancelled, when
// the client cancelled first). The daemon paces hosts behind gateways with the others,
// forwarding them one by one without a Rollout.
//
// Trees: put with Tree (or put-stream with Tree) copies a directory tree. The client packs
// it as one tar archive (PAX: directories, regular files and symbolic links with their
// modes and modification times, names relative to the top, "." the top itself; see
// fsutil.Pack), which travels like a file, once to each host, and the agent lays it out at
// Dest (fsutil.Unpack, after write-done): every file and link made under a temporary name
// and renamed into place, directories' modes and times set last, all through an os.Root on
// Dest so that no name or link in the archive reaches outside it. Get with Tree (or
// get-stream with Tree) asks each agent for the tree as a read with Tree (packed, then sent
// as a file's chunks), and the daemon (or, for get-stream, the client) lays each host's
// archive out at DestDir/<host>/<base> the same way.
//
// Put: the daemon itself reads LocalPath. This is safe because every client on the Unix
// socket is checked to be the daemon's own uid on the same machine (SO_PEERCRED), and
// the in-process listener is the same process. A client on the mutual-TLS listener is
// refused put, get and stop (failed, permission denied): it uses put-stream and
// get-stream instead.
//
// Get: the daemon writes DestDir/<host>/<base name of Src> itself, refusing host and
// file names that would leave DestDir (absolute, "..", separators, symlinks).
//
// Put-stream: the client sends put-stream and then the file in put-data frames of at
// most FileChunk bytes with the same id, the last with EOF; the total must be Size.
// The daemon spools the bytes to a private temporary file (mode 0600, unlinked at
// once), so memory stays bounded and the file is read once however many hosts get it,
// then copies it to every host and answers file-results. A cancel with the id before
// EOF drops the spool; the daemon answers nothing more for it.
//
// Get-stream: the daemon reads Src on every host and sends each host's bytes in
// get-data frames, the host's last one carrying End (its outcome and the file's mode),
// then file-results for all hosts in request order. The client writes
// DestDir/<host>/<base name of Src> itself, through an os.Root on DestDir, refusing
// host and file names that would leave it, and only renames a host's file into place
// when its End is ok. A cancel with the id stops the transfers.
//
// A daemon that takes put-stream and get-stream says CapFileStream in its hello's
// Caps; a client does not send them to a daemon that does not, and tells the user
// to upgrade it instead. Older clients never send them, so ClientVersion stays 1.
//
// Gateways: a daemon forwards the hosts its gateways reach by being a client of each
// gateway (over mutual TLS), with the same messages (put and get go as put-stream and
// get-stream). Its hello says Hops, one more than
// the hops of the client whose request it forwards; a daemon does not forward past
// MaxHops, so a loop of gateways ends with an error per host instead of running on.
//
// Capabilities (client↔daemon), dated as in Capabilities below:
//
//	2026-11-25  client version 1: the messages above
//	2026-11-25  ClientHello.Hops (key 7, optional: older daemons ignore it)
//	2026-11-26  DaemonHello.Caps (key 9) and capability "file-stream": put-stream,
//	            put-data, get-stream, get-data (87–90), FileResult.Mode (key 6)
//	2026-11-26  DaemonStatus.Goroutines, HeapLive, HeapInUse, FDs, GCCycles (keys 7–11,
//	            optional: an older daemon leaves them out, an older client ignores them)
//	2026-12-08  RunRequest.Dir (key 8; an older daemon ignores it)
//	2026-12-08  RunRequest.KillGrace (key 9) and Cancel.Now (key 1): an older daemon
//	            ignores them and kills at once, as before
//	2026-12-08  RunRequest.Rollout (key 10) and capability "rollout"; status "skipped". A
//	            client sends a Rollout only to a daemon whose Caps say "rollout" (an
//	            older one would start every host at once)
//	2026-12-08  PutRequest.Tree (key 5), PutStream.Tree (key 6) and capability "tree": a
//	            client sends them only to a daemon whose Caps say "tree" (an older one would
//	            write the archive itself at Dest). Write.Tree (key 6) goes only to an agent
//	            of the daemon's own build, which the daemon installs. GetRequest.Tree
//	            (key 4), GetStream.Tree (key 3) and Read.Tree (key 6) bring a tree back
//	            the same way
//	2026-12-08  RunRequest.Subst, Masked, Index, Count, RunID (keys 11–15): per-host %h and %i,
//	            secret variables, and a forwarded run's SHOAL_INDEX/COUNT/RUN_ID; an older
//	            daemon ignores them (no substitution, values logged as given)
//	2026-12-08  RunRequest.SudoUser, SudoPassword, SudoCheck (keys 16–18), HostResult.Sudo
//	            (key 16); a client sends them only to a daemon whose Caps say "sudo"
//	2026-12-08  ClientHello.Config (key 8), HostStatus.Config (key 9), reload and reloaded
//	            (91, 92): a client's --config, -F and --connect-timeout decide how the daemon
//	            reaches its hosts, whichever client started the daemon. An older daemon
//	            ignores Config and uses its own, as before; it answers reload with failed
//	            (unknown type)
//	2026-12-08  ClientConfig.User (key 4) and capability "login-user": a client sends -l only
//	            to a daemon whose Caps say so
//	2026-12-08  RunRequest.Script, ScriptName, Args, Login (keys 19–22), with capability
//	            "script": a client sends them only to a daemon whose Caps say so
//	2026-12-08  RunRequest.PTY (key 23), with capability "pty"
//	2026-12-08  HostResult.Reason (key 17): why a host did not run or report, finer than
//	            its Status (an auth failure and a changed host key are both unreachable);
//	            an older daemon sends none, an older client ignores it
//
// # Bodies
//
// Every body is a CBOR map keyed by the unsigned integers in the tables below, one table per
// Go type (the body column of the message tables above; a capitalised type in a table is a map
// laid out by its own table). Types: uint is a CBOR unsigned integer (major type 0); int an
// integer of either sign (major type 0 or 1); text a UTF-8 text string; bytes a byte string;
// bool true or false; float a floating-point number (shoal writes 64 bits and reads any
// width); []T an array of T; [3]float an array of three floats; {text:text} a map of text to
// text. A field marked "always" is always written; any other is left out when zero (0, "",
// false, empty, absent map). A receiver takes a missing key as zero and ignores keys it does
// not know; a key that comes twice is an error. shoal writes keys in increasing order; a
// receiver accepts any. A body with no fields is an empty map, or the envelope has no key 4.
// testdata/wire.golden holds one fully populated message of every type, byte by byte.
//
//	Hello: hello (1), both ways
//	   1  Protocol      uint      always  the sender's Version
//	   2  Program       text              program version, e.g. "v0.3.1" or "dev"
//	   3  BinarySHA256  text              hex SHA-256 of the sender's executable
//	   4  Capabilities  []text            see Capabilities
//	   5  AgentID       text              agent instance id: "<host>-<pid>-<random>"
//	   6  PID           int               the sender's process id
//	   7  Role          text              "agent", "daemon" or "client"
//	   8  Hostname      text              the sender's host name
//	   9  Clock         int               the sender's clock, Unix ns
//
//	Ping: ping (2), no fields
//
//	Pong: pong (3)
//	   1  Clock         int               the agent's clock, Unix ns
//
//	InfoRequest: info (4), no fields
//
//	Info: info-result (5)
//	   1  Hostname      text
//	   2  OS            text              Go's GOOS, e.g. "linux"
//	   3  Arch          text              Go's GOARCH, e.g. "amd64"
//	   4  Kernel        text              uname release, e.g. "6.8.0-45-generic"
//	   5  CPUs          int
//	   6  MemTotal      uint              bytes
//	   7  MemAvailable  uint              bytes
//	   8  Load          [3]float  always  1, 5 and 15 minute load averages
//	   9  Uptime        int               the host's uptime, ns
//	  10  Version       text              the agent's program version
//	  11  BinarySHA256  text              hex SHA-256 of the agent's executable
//	  12  Clock         int               the agent's clock, Unix ns
//	  13  AgentID       text
//	  14  PID           int               the agent's process id
//	  15  Running       int               commands running now
//	  16  Queued        int               commands waiting
//	  17  StateDir      text              the agent's state directory
//
//	Exec: exec (6)
//	   1  Cmd           text      always  the command, for bash -c (sh -c without bash)
//	   2  Env           []text            extra KEY=VALUE pairs on top of the agent's environment
//	   3  Stdin         bytes             the command's whole stdin; empty means /dev/null
//	   4  Timeout       int               ns; 0 means none. On expiry the group is stopped (KillGrace)
//	   5  Dir           text              working directory, absolute or relative to home; empty means home
//	   6  OutputCap     int               bytes of output to keep; 0 means the agent's default
//	   7  KillGrace     int               ns from SIGTERM to SIGKILL when the Timeout stops it; 0: SIGKILL at once
//	   8  SudoUser      text              run through sudo as this user
//	   9  SudoPassword  bytes             for sudo's askpass, where sudo asks; never written anywhere
//	  10  SudoCheck     bool              run nothing: exit says whether sudo would run a command
//	  11  Script        bytes             a program run instead of Cmd (then a description), removed after
//	  12  Args          []text            the Script's arguments
//	  13  Login         bool              run Cmd with a login shell (bash -l -c)
//	  14  PTY           PTY               a pseudo-terminal for stdin, stdout and stderr (all output is stdout)
//
//	PTY (in exec and run)
//	   1  Term          text              TERM; empty means "xterm"
//	   2  Rows          int               0 means 24
//	   3  Cols          int               0 means 80
//
//	Started: started (7)
//	   1  PID           int
//	   2  Dir           text              the result directory on the host
//	   3  Redelivered   bool              the result comes from an earlier agent
//	   4  Cmd           text              the command, when Redelivered
//	   5  AgentID       text              the agent that ran it, when Redelivered
//
//	Output: output (8)
//	   1  Stream        uint      always  1 stdout, 2 stderr
//	   2  Data          bytes     always
//	   3  Seq           uint              0, 1, 2... per request, across both streams
//
//	Exit: exit (9)
//	   1  Code          int       always  exit status; -1 when killed by Signal or never run
//	   2  Signal        int               the signal that killed the command
//	   3  Start         int               Unix ns
//	   4  End           int               Unix ns
//	   5  Duration      int               ns, from a monotonic clock
//	   6  UserCPU       int               ns
//	   7  SysCPU        int               ns
//	   8  MaxRSS        int               bytes
//	   9  Truncated     bool              output past the cap was dropped
//	  10  TimedOut      bool              killed at Exec.Timeout
//	  11  Canceled      bool              killed while still queued; never ran
//	  12  Redelivered   bool
//	  13  StdoutBytes   int               bytes the command wrote to stdout, kept or not
//	  14  StderrBytes   int
//	  15  Err           text              why the command could not be started or waited for
//	  16  Sudo          text              why sudo did not run it: password-required, password-incorrect, no-tty, refused, missing
//
//	Ack: ack (10), no fields
//
//	Read: read (11)
//	   1  Path          text      always
//	   2  Offset        int
//	   3  Length        int               bytes to read from Offset; 0 means to the end
//	   4  MaxSize       int               refuse to send more; 0 means the agent's default
//	   5  ChunkSize     int               0 means the agent's default
//	   6  Tree          bool              send the directory tree at Path as a tar archive
//
//	ReadChunk: read-chunk (12)
//	   1  Offset        int
//	   2  Data          bytes
//	   3  EOF           bool              the last chunk of the read (it may be empty)
//	   4  Size          int               the file's size when the read began
//	   5  Mode          uint              permission bits
//	   6  MTime         int               Unix ns
//
//	Write: write (13)
//	   1  Path          text      always
//	   2  Mode          uint              permission bits; 0 keeps an existing file's (or 0644)
//	   3  Size          int               expected size, checked at write-done when positive
//	   4  MkdirAll      bool              create missing parent directories (0755)
//	   5  Sum           bool              report the SHA-256 of the data in written
//	   6  Tree          bool              the data is a tar archive of a tree to lay out at Path
//
//	WriteChunk: write-chunk (14)
//	   1  Data          bytes     always
//
//	WriteDone: write-done (15), no fields
//
//	Written: written (16)
//	   1  Size          int       always
//	   2  SHA256        text              hex; only when Write.Sum asked for it
//
//	Kill: kill (17)
//	   1  Target        uint              the id of the request to kill
//	   2  All           bool              every request instead
//	   3  Signal        int               0 means SIGTERM
//	   4  Grace         int               ns after Signal to send SIGKILL if the command still runs
//
//	Killed: killed (18)
//	   1  Count         int       always  process groups signalled plus queued commands dropped
//
//	Busy: busy (19)
//	   1  Running       int
//	   2  Queued        int
//	   3  MaxRunning    int
//	   4  MaxQueued     int
//
//	Error: error (20)
//	   1  Code          uint      always  see Error codes
//	   2  Message       text
//
//	ClientHello: client-hello (64)
//	   1  Protocol      uint      always  the sender's Version
//	   2  Client        uint      always  the sender's ClientVersion
//	   3  Program       text              program version
//	   4  Identity      text              the person at the console, as she said
//	   5  PID           int
//	   6  BinarySHA256  text
//	   7  Hops          int               daemons that forwarded this client's requests
//	   8  Config        ClientConfig      the client's configuration; absent: the daemon's own
//
//	ClientConfig (in client-hello)
//	   1  ConfigFile    text              --config, absolute; empty: the default files
//	   2  SSHConfig     text              -F, absolute; empty: [ssh] ssh_config
//	   3  ConnectTimeout int              --connect-timeout, ns; 0: the configuration's
//	   4  User          text              -l: the login user on every host; empty: the configuration's
//
//	DaemonHello: daemon-hello (65)
//	   1  Protocol      uint      always
//	   2  Client        uint      always  the daemon's ClientVersion
//	   3  Program       text
//	   4  PID           int
//	   5  Started       int               Unix ns
//	   6  Socket        text
//	   7  BinarySHA256  text
//	   8  Err           text              set: the daemon refuses the client and closes
//	   9  Caps          []text            e.g. "file-stream"
//
//	RunRequest: run (66)
//	   1  Hosts         []text    always
//	   2  Command       text      always
//	   3  Timeout       int               ns per host; 0 means none
//	   4  Env           {text:text}
//	   5  Stdin         bytes
//	   6  Identity      text
//	   7  Fanout        int               hosts of this run connecting at once; 0: the daemon's bound
//	   8  Dir           text              working directory on each host; empty means home
//	   9  KillGrace     int               ns from SIGTERM to SIGKILL when the run is stopped; 0: SIGKILL at once
//	  10  Rollout       Rollout           pace the run; absent: every host at once
//	  11  Subst         bool              expand %h (host), %i (index) and %% in Command per host
//	  12  Masked        []text            names of Env whose values the audit log shows as ***
//	  13  Index         []int             a forwarding daemon's: the place of each of Hosts in the whole run
//	  14  Count         int               a forwarding daemon's: the size of the whole run
//	  15  RunID         uint              a forwarding daemon's: the whole run's id (SHOAL_RUN_ID)
//	  16  SudoUser      text              run through sudo as this user
//	  17  SudoPassword  bytes             for hosts whose sudo asks; never logged or recorded
//	  18  SudoCheck     bool              run nothing, record nothing: can sudo run a command?
//	  19  Script        bytes             a local program run on every host instead of Command
//	  20  ScriptName    text              its file's name, for the audit log (with its SHA-256)
//	  21  Args          []text            the Script's arguments
//	  22  Login         bool              run the command with a login shell
//	  23  PTY           PTY               a pseudo-terminal on every host (stdout and stderr merge)
//
//	Rollout (in run)
//	   1  Batch         int               hosts running the command at once; 0: all
//	   2  BatchPercent  int               or this percentage of the hosts, rounded up (when Batch is 0)
//	   3  Waves         bool              strict waves: a batch starts when the one before has ended
//	   4  Wait          int               ns between waves, or before a freed place is taken
//	   5  MaxFail       int               no host starts once this many did not succeed; 0: no limit
//	   6  MaxFailPercent int              or this percentage of the hosts, rounded up (when MaxFail is 0)
//	   7  Canary        int               run on this many hosts first; the rest only if all succeed
//	   8  Shuffle       bool              start the hosts in a random order, not request order
//	   9  Seed          int               the shuffle's seed; 0: a random one
//
//	RunAccepted: run-accepted (67)
//	   1  RunID         uint      always  unique within the daemon and across its restarts
//
//	RunEvent: run-event (68)
//	   1  Host          text      always
//	   2  Kind          uint      always  1 state, 2 start, 3 stdout, 4 stderr, 5 done
//	   3  State         text              state: the host session's state (connecting, ready...)
//	   4  PID           int               start: the command's process id
//	   5  Data          bytes             stdout, stderr: a chunk of output
//	   6  Result        HostResult        done: the host's outcome
//
//	HostResult (in run-event and last-result)
//	   1  Host          text      always
//	   2  Status        text      always  ok, failed, timeout, cancelled, unreachable, refused, error or skipped
//	   3  ExitCode      int
//	   4  Signal        text              the name of the signal that killed the command
//	   5  PID           int
//	   6  Stdout        bytes
//	   7  Stderr        bytes
//	   8  Truncated     bool
//	   9  Started       int               Unix ns
//	  10  Ended         int               Unix ns
//	  11  UserCPU       int               ns
//	  12  SysCPU        int               ns
//	  13  MaxRSS        int               bytes
//	  14  Err           text
//	  15  Output        bool              Stdout and Stderr are the whole output: replace, not append
//	  16  Sudo          text              why sudo did not run the command (as Exit.Sudo)
//	  17  Reason        text              why it did not run or report, finer than Status (the Reason values of reason.go)
//
//	RunEnd: run-end (69), no fields
//
//	Cancel: cancel (70)
//	   1  Now           bool              kill at once (SIGKILL), without the run's KillGrace
//
//	HostsRequest: ping-hosts (71), info-hosts (73), time-hosts (75)
//	   1  Hosts         []text    always
//
//	PingResults: ping-results (72)
//	   1  Results       []PingResult  always  one per host, in request order
//
//	PingResult (in ping-results)
//	   1  Host          text      always
//	   2  RTT           int               ns
//	   3  Status        text      always
//	   4  Err           text
//
//	InfoResults: info-results (74)
//	   1  Results       []InfoResult  always  one per host, in request order
//
//	InfoResult (in info-results)
//	   1  Host          text      always
//	   2  Status        text      always
//	   3  Err           text
//	   4  Hostname      text
//	   5  OS            text
//	   6  Arch          text
//	   7  Kernel        text
//	   8  CPUs          int
//	   9  MemTotal      int               bytes
//	  10  MemAvailable  int               bytes
//	  11  Load          [3]float  always
//	  12  Uptime        int               ns
//	  13  AgentVersion  text
//	  14  AgentHash     text
//	  15  Clock         int               Unix ns
//
//	TimeResults: time-results (76)
//	   1  Results       []TimeResult  always  one per host, in request order
//
//	TimeResult (in time-results)
//	   1  Host          text      always
//	   2  Status        text      always
//	   3  Err           text
//	   4  Offset        int               ns, the host's clock minus the daemon's
//	   5  RTT           int               ns
//
//	PutRequest: put (77)
//	   1  Hosts         []text    always
//	   2  LocalPath     text      always  absolute, read by the daemon
//	   3  Dest          text      always
//	   4  Mode          uint              0 keeps the local file's mode
//	   5  Tree          bool              LocalPath is a tar archive of a tree to lay out at Dest
//
//	GetRequest: get (78)
//	   1  Hosts         []text    always
//	   2  Src           text      always
//	   3  DestDir       text      always  absolute
//	   4  Tree          bool              Src is a directory: lay its tree out at DestDir/<host>/<base>
//
//	FileResults: file-results (79)
//	   1  Results       []FileResult  always  one per host, in request order
//
//	FileResult (in file-results and get-data)
//	   1  Host          text      always
//	   2  Status        text      always
//	   3  Err           text
//	   4  Bytes         int
//	   5  Path          text
//	   6  Mode          uint              get-stream: the file's mode on the host
//
//	StatusRequest: status (80), no fields
//
//	DaemonStatus: status-result (81)
//	   1  PID           int       always
//	   2  Version       text
//	   3  Started       int               Unix ns
//	   4  Clients       int
//	   5  Socket        text
//	   6  Hosts         []HostStatus
//	   7  Goroutines    int
//	   8  HeapLive      uint              bytes of heap marked live by the last GC
//	   9  HeapInUse     uint              bytes of heap spans in use, garbage included
//	  10  FDs           int               open file descriptors
//	  11  GCCycles      uint              GC cycles completed
//
//	HostStatus (in status-result)
//	   1  Host          text      always
//	   2  State         text      always  idle, connecting, installing, ready, unresponsive, lost, backoff or closed
//	   3  AgentVersion  text
//	   4  AgentPID      int
//	   5  LastRTT       int               ns
//	   6  LastSeen      int               Unix ns
//	   7  Running       int
//	   8  Err           text
//	   9  Config        text              the configuration the session was resolved from
//
//	LastRequest: last (82)
//	   1  N             int               runs wanted; 0 or less: one
//
//	LastResult: last-result (83)
//	   1  Runs          []RunRecord       newest first
//	   2  Problem       text              why the history could not be read whole
//
//	RunRecord (in last-result)
//	   1  ID            uint      always
//	   2  Command       text      always
//	   3  Started       int               Unix ns
//	   4  Ended         int               Unix ns
//	   5  Identity      text
//	   6  Results       []HostResult
//	   7  UID           int
//	   8  Cert          text              a network client's certificate name
//	   9  Unseen        bool              no client has received its results yet
//
//	Stop: stop (84), no fields
//
//	Stopping: stopping (85), no fields
//
//	Reload: reload (91), no fields
//
//	Reloaded: reloaded (92), no fields
//
//	Failed: failed (86)
//	   1  Code          uint      always  see Error codes
//	   2  Message       text
//
//	PutStream: put-stream (87)
//	   1  Hosts         []text    always
//	   2  Dest          text      always
//	   3  Mode          uint              0 means 0644
//	   4  Size          int       always
//	   5  Name          text              the local file's name, for the audit log
//	   6  Tree          bool              the bytes are a tar archive of a tree to lay out at Dest
//
//	PutData: put-data (88)
//	   1  Data          bytes             at most FileChunk (1 MiB) bytes
//	   2  EOF           bool              the last chunk
//
//	GetStream: get-stream (89)
//	   1  Hosts         []text    always
//	   2  Src           text      always
//	   3  Tree          bool              Src is a directory: each host's bytes are a tar archive of it
//
//	GetData: get-data (90)
//	   1  Host          text      always
//	   2  Data          bytes             at most FileChunk (1 MiB) bytes
//	   3  End           FileResult        on the host's last get-data: its outcome and mode
//
// # Error codes
//
// Error.Code and Failed.Code take these values, never reordered:
//
//	value name                 meaning
//	  1   "internal"           a bug or an unexpected failure
//	  2   "bad request"        the body did not decode or made no sense
//	  3   "unknown type"       the type is not known to the receiver
//	  4   "version mismatch"   protocol versions differ
//	  5   "duplicate id"       the id is already in use by a pending request
//	  6   "not found"          no such file or request
//	  7   "i/o error"          a file system or process error
//	  8   "too large"          a file or chunk exceeds a limit
//	  9   "stopping"           the agent takes no new work
//	 10   "permission denied"  permission denied
//	 11   "busy"               too many reads or writes in progress (2026-11-25)
//
// # Capabilities
//
// Hello lists capability strings; a peer uses a feature only when the other side announced it.
//
//	2026-11-25  exec, output-files, redeliver, ping, info, read, write, kill, busy  (protocol 1)
//	2026-12-08  Exec.KillGrace (key 7) and Kill.Grace (key 4): SIGTERM first, SIGKILL after the
//	            grace; an older agent ignores them and a stopped command gets the signal alone
//	2026-12-08  sudo: Exec.SudoUser, SudoPassword, SudoCheck (keys 8–10) and Exit.Sudo (key 16).
//	            The daemon sends them only to an agent announcing "sudo" (the agent it
//	            replicated always does); the password reaches sudo through the agent's
//	            askpass helper over a private socket, never argv, environment or a file
//	2026-12-08  script: Exec.Script, Args (keys 11–12) and Exec.Login (key 13)
//	2026-12-08  pty: Exec.PTY (key 14)
package proto
