package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/hostsess"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/state"
)

// Runs in flight are in the state file (state.File.Runs) from their start to their record
// in the result history. A daemon that starts after a crash finds the runs its predecessor
// left there, reconnects to their hosts, and files the results the agents kept under the
// original run: its id, command, client and start. Each result is acknowledged to the agent
// only once its line in the history is synced (hostsess.Options.Orphan). A result the daemon
// already reported (a host that was an error, whose agent later offers the kept result) is
// acknowledged and not filed again.

// recoverWait bounds how long a restarted daemon keeps collecting a run's kept results;
// the hosts that have offered none by then are filed as errors.
const recoverWait = 2 * time.Minute

// recoverRetry is how often a host whose kept result has not come yet is reconnected:
// the previous agent keeps its running commands' results until they end, and a new agent
// offers a dead agent's results when it starts.
const recoverRetry = 5 * time.Second

// reportedFor is how long the daemon remembers a result it reported, to refuse it when an
// agent offers it again.
const reportedFor = time.Hour

func reportedKey(host string, reqID uint64) string {
	return host + "\x00" + strconv.FormatUint(reqID, 10)
}

// beginRun records a run in flight and writes the state file before the run fans out.
func (s *server) beginRun(runID uint64, r state.Run, cfg *proto.ClientConfig) {
	if cfg != nil {
		r.Config, _ = json.Marshal(cfg)
	}
	s.mu.Lock()
	if s.st.Runs == nil {
		s.st.Runs = map[uint64]state.Run{}
	}
	s.st.Runs[runID] = r
	s.dirty = true
	s.mu.Unlock()
	s.flushState()
}

// runStarted notes the agent's id of host's command in run runID.
func (s *server) runStarted(runID uint64, host string, reqID uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.st.Runs[runID]; ok {
		h := r.Hosts[host]
		h.RequestID = reqID
		r.Hosts[host] = h
		s.dirty = true
		s.kickStateLocked()
	}
}

// runReported notes that host's result in run runID, of status status, went to its client.
// A result the agent may still offer (any but ok and failed, which it delivered and was
// acknowledged for) is remembered for reportedFor, so it is not filed again.
func (s *server) runReported(runID uint64, host string, status proto.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.st.Runs[runID]
	if !ok {
		return
	}
	h := r.Hosts[host]
	h.Reported = true
	r.Hosts[host] = h
	if h.RequestID != 0 && status != proto.StatusOK && status != proto.StatusFailed {
		if s.reported == nil {
			s.reported = map[string]time.Time{}
		}
		s.reported[reportedKey(host, h.RequestID)] = s.opts.Now()
	}
	s.dirty = true
	s.kickStateLocked()
}

// endRun forgets a run once it is in the history.
func (s *server) endRun(runID uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.st.Runs, runID)
	s.dirty = true
	s.kickStateLocked()
	now := s.opts.Now()
	for k, at := range s.reported {
		if now.Sub(at) > reportedFor {
			delete(s.reported, k)
		}
	}
}

func (s *server) kickStateLocked() {
	select {
	case s.stateKick <- struct{}{}:
	default:
	}
}

// orphan files a result an agent offered that no request waits for, and reports whether
// it is kept (so the agent may delete it): under its run when a run in flight (most often
// one a crashed daemon left) names it, not at all when it was reported already, else as a
// run of its own.
func (s *server) orphan(host string, r hostsess.Result) bool {
	hr := hostResult(host, r, nil, false)
	hr.Stdout, hr.Stderr = r.Stdout, r.Stderr
	s.mu.Lock()
	if _, dup := s.reported[reportedKey(host, r.RequestID)]; dup {
		s.mu.Unlock()
		s.log.Info("an agent offered a result already reported; not filed again", "host", host, "request", r.RequestID)
		return true
	}
	runID, run, found := uint64(0), state.Run{}, false
	for id, x := range s.st.Runs {
		if h, ok := x.Hosts[host]; ok && !h.Reported && (h.RequestID == r.RequestID || h.RequestID == 0 && s.recovering[id]) {
			runID, run, found = id, x.Clone(), true
			break
		}
	}
	s.mu.Unlock()
	if !found {
		s.noteOutcome(audit.Client{UID: -1}, r.RequestID, &hr)
		err := s.hist.add(proto.RunRecord{ID: r.RequestID, Command: "(result re-delivered after a reconnect)",
			Started: hr.Started, Ended: hr.Ended, Results: []proto.HostResult{hr}, UID: s.uid, Unseen: true})
		return err == nil
	}
	s.noteOutcome(audit.Client{UID: run.UID, Identity: run.Identity}, runID, &hr)
	if err := s.fileRecovered(runID, run, hr); err != nil {
		s.log.Warn("filing a kept result", "host", host, "err", err)
		return false
	}
	return true
}

// fileRecovered adds hr to run runID's record in the history and marks the host done;
// the run leaves the state file once every host is.
func (s *server) fileRecovered(runID uint64, run state.Run, hr proto.HostResult) error {
	err := s.hist.add(proto.RunRecord{ID: runID, Command: run.Command, Started: proto.UnixNanoOf(run.Started),
		Ended: max(hr.Ended, proto.UnixNanoOf(run.Started)), Identity: run.Identity, Results: []proto.HostResult{hr},
		UID: run.UID, Cert: run.Cert, Unseen: true})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.st.Runs[runID]
	if !ok {
		return nil
	}
	h := x.Hosts[hr.Host]
	h.Reported = true
	x.Hosts[hr.Host] = h
	done := true
	for _, h := range x.Hosts {
		done = done && h.Reported
	}
	if done {
		delete(s.st.Runs, runID)
		delete(s.recovering, runID)
	}
	s.dirty = true
	s.kickStateLocked()
	return nil
}

// pendingHosts returns the hosts of run runID whose results are not filed yet.
func (s *server) pendingHosts(runID uint64) ([]string, state.Run, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.st.Runs[runID]
	if !ok {
		return nil, state.Run{}, false
	}
	var out []string
	for h, st := range x.Hosts {
		if !st.Reported {
			out = append(out, h)
		}
	}
	return out, x.Clone(), true
}

// recoverRuns collects the kept results of the runs a previous daemon left in flight; it
// runs in the background from Serve, owned by s.wg.
func (s *server) recoverRuns() {
	defer s.wg.Done()
	s.mu.Lock()
	var ids []uint64
	for id := range s.st.Runs {
		ids = append(ids, id)
		s.recovering[id] = true
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.recoverRun(id)
		}()
	}
	wg.Wait()
}

func (s *server) recoverRun(runID uint64) {
	deadline := s.opts.Now().Add(recoverWait)
	hosts, run, ok := s.pendingHosts(runID)
	if !ok {
		return
	}
	s.log.Info("collecting the kept results of a run in flight when the daemon stopped",
		"run", runID, "command", run.Command, "hosts", len(hosts))
	var cfg *proto.ClientConfig
	if len(run.Config) > 0 {
		cfg = new(proto.ClientConfig)
		if json.Unmarshal(run.Config, cfg) != nil {
			cfg = nil
		}
	}
	ctx := withClientConfig(s.ctx, cfg)
	lastErr := map[string]error{}
	for first := true; ; first = false {
		if !first {
			t := time.NewTimer(recoverRetry)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if hosts, _, ok = s.pendingHosts(runID); !ok || len(hosts) == 0 {
			return
		}
		if s.opts.Now().After(deadline) {
			break
		}
		// Connect to each pending host; from the second round on with a fresh agent,
		// which offers what a dead one kept.
		forHosts(hosts, func(_ int, host string) {
			hs, unpin, err := s.session(ctx, host)
			if err == nil && !first {
				s.dropSession(hs)
				unpin()
				hs, unpin, err = s.session(ctx, host)
			}
			defer unpin()
			if err == nil {
				pctx, cancel := context.WithTimeout(ctx, time.Minute)
				_, err = hs.Ping(pctx)
				cancel()
			}
			s.mu.Lock()
			lastErr[host] = err
			s.mu.Unlock()
		})
	}
	for _, host := range hosts {
		msg := "the daemon stopped while the command ran, and the agent offered no kept result within " + recoverWait.String()
		s.mu.Lock()
		err := lastErr[host]
		s.mu.Unlock()
		if err != nil {
			msg = fmt.Sprintf("the daemon stopped while the command ran, and reconnecting to collect the result failed: %v", err)
		}
		hr := proto.HostResult{Host: host, Status: proto.StatusError, Err: msg}
		if err := s.fileRecovered(runID, run, hr); err != nil {
			s.log.Warn("filing a run in flight", "run", runID, "err", err)
		}
	}
}

// dropSession closes hs (its agent exits) and forgets it, so the next request starts a
// fresh agent; it waits for no pin (the caller holds its own).
func (s *server) dropSession(hs *hostSess) {
	s.mu.Lock()
	for k, x := range s.sessions {
		if x == hs {
			delete(s.sessions, k)
		}
	}
	s.mu.Unlock()
	hs.Close()
}
