package proto

// # Client↔daemon messages (wire values 64–127, client.go)
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
// Capabilities (client↔daemon):
//
//	2026-11-25  client version 1: the messages above
//	2026-11-25  ClientHello.Hops (key 7, optional: older daemons ignore it)
//	2026-11-26  DaemonHello.Caps (key 9) and capability "file-stream": put-stream,
//	            put-data, get-stream, get-data (87–90), FileResult.Mode (key 6)
//	2026-11-26  DaemonStatus.Goroutines, HeapLive, HeapInUse, FDs, GCCycles (keys 7–11,
//	            optional: an older daemon leaves them out, an older client ignores them)
