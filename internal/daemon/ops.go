package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/hostsess"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/state"
)

// minKeep is the least output the daemon keeps of each host of a run, however many hosts it has.
const minKeep = 64 << 10

// errCancelled is the cause of a run the client cancelled.
var errCancelled = errors.New("cancelled by the client")

// statusOf maps a session error to a client status: through its proto.Reason, or
// cancelled when ctx ended.
func statusOf(ctx context.Context, err error) proto.Status {
	if err == nil {
		return proto.StatusOK
	}
	if ctx.Err() != nil {
		return proto.StatusCancelled
	}
	return hostsess.ReasonOf(err).Status()
}

// hostResult turns a session's result and error into the wire result, without output.
func hostResult(host string, r hostsess.Result, err error, cancelled bool) proto.HostResult {
	hr := proto.HostResult{Host: host, ExitCode: r.ExitCode, Signal: r.Signal, PID: r.PID, Sudo: r.Sudo, Truncated: r.Truncated,
		Started: proto.UnixNanoOf(r.Started), Ended: proto.UnixNanoOf(r.Ended), UserCPU: r.UserCPU, SysCPU: r.SysCPU, MaxRSS: r.MaxRSS}
	switch {
	case err == nil && r.ExitCode == 0 && r.Signal == "":
		hr.Status = proto.StatusOK
	case err == nil:
		hr.Status = proto.StatusFailed
	case cancelled:
		hr.Status, hr.Err = proto.StatusCancelled, err.Error()
	default:
		hr.Reason = hostsess.ReasonOf(err)
		hr.Status, hr.Err = hr.Reason.Status(), err.Error()
	}
	return hr
}

// startRun accepts a run and fans it out; events and the results go to the client.
func (c *clientConn) startRun(id uint64, req *proto.RunRequest) {
	s := c.s
	hosts := dedupe(req.Hosts)
	if len(hosts) == 0 {
		c.fail(id, proto.CodeBadRequest, "run: no hosts")
		return
	}
	if req.Command == "" {
		c.fail(id, proto.CodeBadRequest, "run: empty command")
		return
	}
	pc, err := resolvePace(req.Rollout, len(hosts))
	if err != nil {
		c.fail(id, proto.CodeBadRequest, "run: "+err.Error())
		return
	}
	c.mu.Lock()
	if _, dup := c.runs[id]; dup {
		c.mu.Unlock()
		c.fail(id, proto.CodeDuplicateID, fmt.Sprintf("run: request id %d is in use", id))
		return
	}
	base := c.ctx
	if s.opts.KeepOnDisconnect {
		base = s.ctx
	}
	ctx, cancel := context.WithCancelCause(withClientConfig(withHops(base, c.hops), c.config))
	c.runs[id] = cancel
	killNow := make(chan struct{})
	c.killNow[id] = killNow
	c.mu.Unlock()

	runID := s.nextRun.Add(1)
	identity := req.Identity
	if identity == "" {
		identity = c.who.Identity
	}
	who := c.who
	who.Identity = identity
	var extra []slog.Attr
	if len(req.Env) > 0 {
		extra = append(extra, envAttr(req.Env, req.Masked))
	}
	if req.Subst {
		extra = append(extra, slog.Bool("subst", true))
	}
	op := "run"
	if req.SudoUser != "" {
		// That sudo was used and as whom; never the password.
		extra = append(extra, slog.String("sudo", req.SudoUser))
		if req.SudoCheck {
			op = "sudo-check"
		}
	}
	if req.Script != nil {
		sum := sha256.Sum256(req.Script)
		extra = append(extra, slog.String("script", req.ScriptName), slog.String("script_sha256", hex.EncodeToString(sum[:])))
	}
	if req.Login {
		extra = append(extra, slog.Bool("login", true))
	}
	s.noteRequest(who, runID, op, hosts, req.Command, extra...)
	place := placeRun(req, hosts, runID)
	c.send(id, proto.TypeRunAccepted, &proto.RunAccepted{RunID: runID})

	c.goHandle(func() {
		defer func() {
			c.mu.Lock()
			delete(c.runs, id)
			delete(c.killNow, id)
			c.mu.Unlock()
			cancel(nil)
		}()
		started := s.opts.Now()
		if !req.SudoCheck {
			run := state.Run{Command: req.Command, Started: started, Identity: identity, UID: c.who.UID, Cert: c.who.Cert,
				Hosts: make(map[string]state.RunHost, len(hosts))}
			for _, h := range hosts {
				run.Hosts[h] = state.RunHost{}
			}
			s.beginRun(runID, run, c.config)
		}
		// Each host's output streams through up to the agent's cap; the hosts of
		// a run together keep no more of it in memory than the history holds.
		ereq := hostsess.ExecRequest{Command: req.Command, Dir: req.Dir, Env: req.Env, Stdin: req.Stdin, Timeout: time.Duration(req.Timeout),
			OutputCap: s.opts.OutputCap, KeepCap: max(s.hist.maxBytes/int64(len(hosts)), minKeep),
			KillGrace: time.Duration(req.KillGrace), KillNow: killNow,
			SudoUser: req.SudoUser, SudoPassword: req.SudoPassword, SudoCheck: req.SudoCheck,
			Script: req.Script, Args: req.Args, Login: req.Login, PTY: req.PTY}
		results := make([]proto.HostResult, len(hosts))
		// A request's own fan-out bounds how many of its hosts connect at once, under
		// the daemon-wide bound; hosts already connected do not count.
		var slots chan struct{}
		if req.Fanout > 0 && req.Fanout < len(hosts) {
			slots = make(chan struct{}, req.Fanout)
		}
		if req.Rollout != nil {
			c.runPaced(ctx, id, runID, who, hosts, req, ereq, place, slots, pc, results)
		} else {
			s.forShares(hosts, func(sh share) {
				if sh.gw != nil {
					for k, hr := range c.runGateway(ctx, id, runID, who, sh.gw, sh.hosts, req, place) {
						results[sh.pos[k]] = hr
					}
					return
				}
				var wg sync.WaitGroup
				for k, host := range sh.hosts {
					wg.Add(1)
					go func() {
						defer wg.Done()
						results[sh.pos[k]] = c.runHost(ctx, id, runID, who, host, ereq, place, slots)
					}()
				}
				wg.Wait()
			})
		}
		// Record the run before telling the client it ended, so a `last` sent
		// right after the end sees this run and not the one before.
		rec := proto.RunRecord{ID: runID, Command: req.Command, Started: proto.UnixNanoOf(started),
			Ended: proto.UnixNanoOf(s.opts.Now()), Identity: identity, Results: results, UID: c.who.UID, Cert: c.who.Cert,
			Unseen: c.ctx.Err() != nil} // the client left before the end: it saw only part
		s.metrics.fanout.Observe(time.Duration(rec.Ended - rec.Started).Seconds())
		s.metrics.bytes.WithLabelValues("out").Add(float64(len(req.Stdin) * len(hosts)))
		if req.SudoCheck {
			// A check ran nothing: the history is for commands.
		} else if err := s.hist.add(rec); err != nil {
			s.log.Warn("recording a run in the history", "err", err)
		}
		s.endRun(runID)
		c.send(id, proto.TypeRunEnd, &proto.RunEnd{})
	})
}

// runHost runs one host's share of a run and returns its full result (with output).
func (c *clientConn) runHost(ctx context.Context, id, runID uint64, who audit.Client, host string, req hostsess.ExecRequest, place *placement, slots chan struct{}) proto.HostResult {
	hr := c.runHostOnce(ctx, id, runID, who, host, req, place, slots)
	c.s.runReported(runID, host, hr.Status)
	return hr
}

func (c *clientConn) runHostOnce(ctx context.Context, id, runID uint64, who audit.Client, host string, req hostsess.ExecRequest, place *placement, slots chan struct{}) proto.HostResult {
	s := c.s
	req.Env = place.env(req.Env, host)
	if place.subst {
		req.Command = place.substitute(req.Command, host)
	}
	var r hostsess.Result
	hs, unpin, err := s.session(ctx, host)
	defer unpin()
	cut := false // output was left unsent after a cancel
	release := func() {}
	if err == nil && slots != nil && hs.Status().State != hostsess.StateReady {
		select {
		case slots <- struct{}{}:
			var once sync.Once
			release = func() { once.Do(func() { <-slots }) }
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
	}
	if err == nil {
		r, err = hs.Exec(ctx, req, func(ev hostsess.Event) {
			if ev.Kind == proto.EventStart || (ev.Kind == proto.EventState && ev.State == hostsess.StateReady) {
				release()
			}
			if ev.Kind == proto.EventStart {
				s.runStarted(runID, host, ev.RequestID)
			}
			if (ev.Kind == proto.EventStdout || ev.Kind == proto.EventStderr) && ctx.Err() != nil {
				// Cancelled: the client wants the results now, not the
				// output still queued for it.
				cut = true
				return
			}
			c.send(id, proto.TypeRunEvent, &proto.RunEvent{Host: host, Kind: ev.Kind, State: string(ev.State), PID: ev.PID, Data: ev.Data})
		})
	}
	release()
	cancelled := err != nil && ctx.Err() != nil
	hr := hostResult(host, r, err, cancelled)
	// Every byte kept went out as an event (the client collects them), and on a
	// cancel what was not sent stays unsent: the result carries no output.
	hr.Truncated = hr.Truncated || cut
	c.send(id, proto.TypeRunEvent, &proto.RunEvent{Host: host, Kind: proto.EventDone, Result: &hr})
	hr.Stdout, hr.Stderr, hr.Output = r.Stdout, r.Stderr, false
	hr.Truncated = hr.Truncated || r.Dropped > 0
	s.noteOutcome(who, runID, &hr)
	return hr
}

// forHosts calls fn for every host in parallel and waits.
func forHosts(hosts []string, fn func(i int, host string)) {
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i, h)
		}()
	}
	wg.Wait()
}

// perShare answers a per-host request: the hosts behind each gateway through gw, the others
// through local, concurrently, with each result back at its host's place in hosts.
func perShare[T any](ctx context.Context, s *server, hosts []string,
	gw func(context.Context, *gateway, []string) []T, local func(context.Context, []string) []T) []T {
	out := make([]T, len(hosts))
	s.forShares(hosts, func(sh share) {
		var res []T
		if sh.gw != nil {
			res = gw(ctx, sh.gw, sh.hosts)
		} else {
			res = local(ctx, sh.hosts)
		}
		for k, r := range res {
			out[sh.pos[k]] = r
		}
	})
	return out
}

func (s *server) ping(ctx context.Context, hosts []string) []proto.PingResult {
	return perShare(ctx, s, hosts, s.pingGateway, s.pingLocal)
}

func (s *server) pingLocal(ctx context.Context, hosts []string) []proto.PingResult {
	out := make([]proto.PingResult, len(hosts))
	forHosts(hosts, func(i int, host string) {
		out[i] = proto.PingResult{Host: host}
		hs, unpin, err := s.session(ctx, host)
		defer unpin()
		var rtt time.Duration
		if err == nil {
			rtt, err = hs.Ping(ctx)
		}
		out[i].Status, out[i].RTT = statusOf(ctx, err), int64(rtt)
		if err != nil {
			out[i].Err = err.Error()
		}
	})
	return out
}

// infoer is the host session's Info call (see the hostsess API).
type infoer interface {
	Info(ctx context.Context) (proto.Info, time.Duration, error)
}

// hostInfo asks host's agent for its info and measures the call on the daemon's clock.
func (s *server) hostInfo(ctx context.Context, host string) (info proto.Info, rtt time.Duration, mid time.Time, err error) {
	hs, unpin, err := s.session(ctx, host)
	defer unpin()
	if err != nil {
		return info, 0, mid, err
	}
	ic, ok := any(hs.Session).(infoer)
	if !ok {
		return info, 0, mid, errors.New("info is not supported by this build's host sessions")
	}
	// Connect first, so that the measured call is one round trip and not a handshake.
	if _, err := hs.Ping(ctx); err != nil {
		return info, 0, mid, err
	}
	t0 := time.Now()
	info, rtt, err = ic.Info(ctx)
	t1 := time.Now()
	if rtt <= 0 {
		rtt = t1.Sub(t0)
	}
	return info, rtt, t0.Add(t1.Sub(t0) / 2), err
}

func (s *server) info(ctx context.Context, hosts []string) []proto.InfoResult {
	return perShare(ctx, s, hosts, s.infoGateway, s.infoLocal)
}

func (s *server) infoLocal(ctx context.Context, hosts []string) []proto.InfoResult {
	out := make([]proto.InfoResult, len(hosts))
	forHosts(hosts, func(i int, host string) {
		info, _, _, err := s.hostInfo(ctx, host)
		r := proto.InfoResult{Host: host, Status: statusOf(ctx, err)}
		if err != nil {
			r.Err = err.Error()
		} else {
			r.Hostname, r.OS, r.Arch, r.Kernel, r.CPUs = info.Hostname, info.OS, info.Arch, info.Kernel, info.CPUs
			r.MemTotal, r.MemAvailable, r.Load, r.Uptime = int64(info.MemTotal), int64(info.MemAvailable), info.Load, info.Uptime
			r.AgentVersion, r.AgentHash, r.Clock = info.Version, info.BinarySHA256, info.Clock
			s.noteAgent(host, info.Version, info.BinarySHA256)
		}
		out[i] = r
	})
	return out
}

func (s *server) time(ctx context.Context, hosts []string) []proto.TimeResult {
	return perShare(ctx, s, hosts, s.timeGateway, s.timeLocal)
}

func (s *server) timeLocal(ctx context.Context, hosts []string) []proto.TimeResult {
	out := make([]proto.TimeResult, len(hosts))
	forHosts(hosts, func(i int, host string) {
		info, rtt, mid, err := s.hostInfo(ctx, host)
		r := proto.TimeResult{Host: host, Status: statusOf(ctx, err), RTT: int64(rtt)}
		switch {
		case err != nil:
			r.Err = err.Error()
		case info.Clock == 0:
			r.Status, r.Err = proto.StatusError, "the agent did not report its clock"
		default:
			r.Offset = int64(time.Unix(0, info.Clock).Sub(mid))
		}
		out[i] = r
	})
	return out
}

// put copies the local file req.LocalPath to every host. The daemon reads the file
// itself: its clients are its own user on its own machine (see the protocol doc).
func (s *server) put(ctx context.Context, hosts []string, req *proto.PutRequest) ([]proto.FileResult, error) {
	if !filepath.IsAbs(req.LocalPath) {
		return nil, fmt.Errorf("put: local path %q is not absolute", req.LocalPath)
	}
	if req.Dest == "" {
		return nil, errors.New("put: empty destination")
	}
	f, err := os.Open(req.LocalPath)
	if err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("put: %s is not a regular file", req.LocalPath)
	}
	mode := st.Mode().Perm()
	if req.Mode != 0 {
		mode = fs.FileMode(req.Mode).Perm()
	}
	if req.Tree {
		mode |= fs.ModeDir // a tree, down to the agent's write (see putFile)
	}
	return s.putFile(ctx, hosts, f, st.Size(), req.Dest, mode, req.LocalPath), nil
}

// localName reports whether name is safe as one path element under a directory.
func localName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00") && filepath.IsLocal(name)
}

// get copies req.Src from every host to DestDir/<host>/<base name of Src>. Files are
// written through an os.Root on DestDir, so no host or file name (nor a symlink placed
// inside DestDir) can make it write outside DestDir.
func (s *server) get(ctx context.Context, hosts []string, req *proto.GetRequest) ([]proto.FileResult, error) {
	if !filepath.IsAbs(req.DestDir) {
		return nil, fmt.Errorf("get: destination %q is not absolute", req.DestDir)
	}
	base := path.Base(req.Src)
	if req.Src == "" || !localName(base) {
		return nil, fmt.Errorf("get: %q does not name a file", req.Src)
	}
	if err := os.MkdirAll(req.DestDir, 0o755); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	root, err := os.OpenRoot(req.DestDir)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	defer root.Close()
	out := make([]proto.FileResult, len(hosts))
	s.forShares(hosts, func(sh share) {
		if sh.gw != nil {
			for k, r := range s.getGatewayLocal(ctx, sh.gw, sh.hosts, req) {
				out[sh.pos[k]] = r
			}
			return
		}
		forHosts(sh.hosts, func(k int, host string) {
			r := proto.FileResult{Host: host}
			n, p, err := s.getOne(ctx, root, host, req.Src, base, req.Tree)
			r.Status = statusOf(ctx, err)
			if err != nil {
				r.Err = err.Error()
			} else {
				r.Bytes, r.Path = n, filepath.Join(req.DestDir, p)
			}
			out[sh.pos[k]] = r
		})
	})
	return out, nil
}

// getGatewayLocal gets req.Src from gw's hosts into req.DestDir for a local client.
func (s *server) getGatewayLocal(ctx context.Context, gw *gateway, hosts []string, req *proto.GetRequest) []proto.FileResult {
	sv, err := client.NewSaver(req.DestDir, req.Src, req.Tree)
	if err != nil {
		out := make([]proto.FileResult, len(hosts))
		for i, h := range hosts {
			out[i] = proto.FileResult{Host: h, Status: proto.StatusError, Err: err.Error()}
		}
		return out
	}
	defer sv.Close()
	return s.getGateway(ctx, gw, hosts, req.Src, req.Tree, saverSink{sv: sv})
}

// getOne copies src from host to host/base under root: a file, or the directory tree src when tree is set.
func (s *server) getOne(ctx context.Context, root *os.Root, host, src, base string, tree bool) (int64, string, error) {
	if !localName(host) {
		return 0, "", fmt.Errorf("host name %q cannot be a directory name", host)
	}
	hs, unpin, err := s.session(ctx, host)
	defer unpin()
	if err != nil {
		return 0, "", err
	}
	_, statErr := root.Lstat(host)
	if err := root.MkdirAll(host, 0o755); err != nil {
		return 0, "", fmt.Errorf("creating %s: %w", host, err)
	}
	// A failed get leaves no directory of its own making (an unreachable host's, say).
	unmake := func() {}
	if errors.Is(statErr, fs.ErrNotExist) {
		unmake = func() { root.Remove(host) } // only when empty
	}
	final := host + "/" + base
	tmp := host + "/." + base + ".shoal-tmp"
	f, err := root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		unmake()
		return 0, "", fmt.Errorf("creating %s: %w", final, err)
	}
	if tree {
		n, err := getTree(ctx, hs, root, f, src, final)
		f.Close()
		root.Remove(tmp)
		if err != nil {
			unmake()
			return 0, "", err
		}
		return n, final, nil
	}
	n, mode, err := hs.ReadFile(ctx, src, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		root.Remove(tmp)
		unmake()
		return 0, "", err
	}
	if mode == 0 {
		mode = 0o644
	}
	if err := root.Chmod(tmp, mode.Perm()); err != nil {
		root.Remove(tmp)
		return 0, "", fmt.Errorf("setting mode of %s: %w", final, err)
	}
	if err := root.Rename(tmp, final); err != nil {
		root.Remove(tmp)
		return 0, "", fmt.Errorf("renaming into %s: %w", final, err)
	}
	return n, final, nil
}

// getTree reads the tree src from hs into the spool f and lays it out at final under root.
func getTree(ctx context.Context, hs *hostSess, root *os.Root, f *os.File, src, final string) (int64, error) {
	n, _, err := hs.ReadTree(ctx, src, f)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if err := root.MkdirAll(final, 0o755); err != nil {
		return 0, fmt.Errorf("creating %s: %w", final, err)
	}
	sub, err := root.OpenRoot(final)
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	if _, err := fsutil.UnpackIn(f, sub); err != nil {
		return 0, fmt.Errorf("laying out %s: %w", final, err)
	}
	return n, nil
}
