package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/proto"
)

// deadAgent is the run directory of an earlier agent on this host whose lock we now hold.
type deadAgent struct {
	id         string
	dir        string
	lock       *fsutil.Lock
	pending    int  // results offered and not yet acknowledged; guarded by server.mu
	incomplete bool // it holds results we could not offer (a command may still be running)
}

// adoptedResult is one result of a dead agent, offered under its original request id.
type adoptedResult struct {
	id    uint64
	dir   string
	owner *deadAgent
}

// redeliver finds the run directories of dead agents on this host, takes their locks, and offers
// their unacknowledged results. The lock held by every live agent on its own run directory keeps
// agents sharing a home directory from taking each other's results; the host name in the agent id
// keeps agents on other hosts (NFS homes) out of the way even where remote locks are unreliable.
func (s *server) redeliver() {
	base := filepath.Join(s.opts.StateDir, "run")
	ents, err := os.ReadDir(base)
	if err != nil {
		s.log.Warn("listing earlier agents", "err", err)
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || name == s.opts.AgentID {
			continue
		}
		if name[0] == '.' {
			s.removeAbandoned(filepath.Join(base, name))
			continue
		}
		pid, ok := sameHostAgent(name)
		if !ok {
			continue // another host's agent, or not an agent's directory
		}
		dir := filepath.Join(base, name)
		lock, err := fsutil.TryLock(filepath.Join(dir, lockName))
		if errors.Is(err, fsutil.ErrLocked) {
			continue // alive, or being taken over by another agent
		}
		if err != nil {
			// No locks on this file system: fall back to the pid alone, and take only agents
			// that ran without a lock either (those with one would have been lockable).
			s.log.Debug("locking earlier agent", "dir", dir, "err", err)
			lock = nil
		}
		// A second guard, for agents that ran without a lock: a live process with the agent's
		// pid may be the agent itself. A zombie is dead; a reused pid only delays the take-over.
		if pid != os.Getpid() && procAlive(pid) {
			lock.Unlock()
			continue
		}
		if lock == nil {
			continue // without a lock two new agents could take the same results: leave them
		}
		s.adopt(&deadAgent{id: name, dir: dir, lock: lock})
	}
}

func (s *server) adopt(d *deadAgent) {
	s.removeDeadWrites(d.dir)
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		d.lock.Unlock()
		return
	}
	var ids []uint64
	for _, e := range ents {
		if id, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && e.IsDir() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		rdir := filepath.Join(d.dir, strconv.FormatUint(id, 10))
		ex, ok := s.readResult(rdir)
		if !ok {
			d.incomplete = true
			continue
		}
		s.mu.Lock()
		if s.idInUseLocked(id) {
			s.mu.Unlock()
			d.incomplete = true // another dead agent's result with the same id: leave it for later
			continue
		}
		s.adopted[id] = &adoptedResult{id: id, dir: rdir, owner: d}
		d.pending++
		s.mu.Unlock()
		s.offer(id, rdir, d.id, ex)
	}
	s.mu.Lock()
	done := d.pending == 0 && !d.incomplete
	s.mu.Unlock()
	if done {
		removeRunDir(d.dir)
		d.lock.Unlock()
	} else if d.pending == 0 {
		d.lock.Unlock()
	}
	s.log.Info("took over results of an earlier agent", "agent", d.id, "offered", len(ids))
}

// readResult returns the exit status of a dead agent's result directory. A command whose process
// group is still alive is not ready (ok false); one that never finished gets a synthetic status.
func (s *server) readResult(rdir string) (ex *proto.Exit, ok bool) {
	ex = new(proto.Exit)
	// The status and the record are one CBOR item each, maybe followed by stale bytes (spare.go).
	if b, err := os.ReadFile(filepath.Join(rdir, fileStatus)); err == nil {
		if _, err := proto.UnmarshalFirst(b, ex); err == nil {
			return ex, true
		}
	}
	rec := readRecord(rdir)
	if rec.PID == 0 {
		return &proto.Exit{Code: -1, Canceled: true, Err: "the agent ended before the command started"}, true
	}
	if groupAlive(rec.PID) {
		return nil, false // still running
	}
	return &proto.Exit{Code: -1, Err: "the agent ended while the command ran; its status is unknown"}, true
}

func readRecord(rdir string) jobRecord {
	var rec jobRecord
	if b, err := os.ReadFile(filepath.Join(rdir, fileRequest)); err == nil {
		if _, err := proto.UnmarshalFirst(b, &rec); err != nil {
			rec = jobRecord{}
		}
	}
	return rec
}

// offer sends one re-delivered result: started, the output files, exit.
func (s *server) offer(id uint64, rdir, agentID string, ex *proto.Exit) {
	rec := readRecord(rdir)
	s.send(id, proto.TypeStarted, &proto.Started{PID: rec.PID, Dir: rdir, Redelivered: true, Cmd: rec.Cmd, AgentID: agentID})
	var seq uint64
	buf := make([]byte, s.opts.ChunkSize)
	for _, st := range []struct {
		name, legacy string
		stream       uint8
	}{{fileOut, fileStdout, proto.Stdout}, {fileErr, fileStderr, proto.Stderr}} {
		// A missing file is an empty stream (output files are made at the first byte).
		f, err := openOutput(rdir, st.name, st.legacy)
		if err != nil {
			continue
		}
		for {
			n, err := io.ReadFull(f, buf)
			if n > 0 {
				s.send(id, proto.TypeOutput, &proto.Output{Stream: st.stream, Data: buf[:n], Seq: seq})
				seq++
			}
			if err != nil {
				break
			}
		}
		f.Close()
	}
	ex.Redelivered = true
	s.send(id, proto.TypeExit, ex)
}

// openOutput opens the output file name in rdir positioned at its first byte of output, or,
// where there is none, the file legacy that an older agent wrote without a header.
func openOutput(rdir, name, legacy string) (*os.File, error) {
	f, err := os.Open(filepath.Join(rdir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return os.Open(filepath.Join(rdir, legacy))
	}
	if err != nil {
		return nil, err
	}
	var h [1]byte
	if _, err := io.ReadFull(f, h[:]); err != nil || h[0] != outHeader {
		f.Close()
		return nil, fmt.Errorf("output file %s has no header", name)
	}
	return f, nil
}

// removeAdopted deletes an acknowledged adopted result and, with its last one, the dead agent's directory.
func (s *server) removeAdopted(a *adoptedResult) {
	if err := os.RemoveAll(a.dir); err != nil {
		s.log.Warn("removing result", "id", a.id, "err", err)
	}
	s.mu.Lock()
	a.owner.pending--
	last := a.owner.pending == 0
	s.mu.Unlock()
	if last {
		if !a.owner.incomplete {
			removeRunDir(a.owner.dir)
		}
		a.owner.lock.Unlock()
	}
}

// releaseAdopted lets go of dead agents' directories whose results were not all acknowledged, so
// the next agent offers them again.
func (s *server) releaseAdopted() {
	s.mu.Lock()
	owners := map[*deadAgent]bool{}
	for id, a := range s.adopted {
		owners[a.owner] = true
		delete(s.adopted, id)
	}
	s.mu.Unlock()
	for d := range owners {
		d.lock.Unlock()
	}
}

// abandonedGrace is how old a hidden run directory must be before it is removed although its
// creator cannot be shown dead (another host's agent on a shared home, or a reused pid).
const abandonedGrace = 10 * time.Minute

// removeAbandoned removes a run directory an agent died while creating (".<id>.new") or while
// removing (".<id>.gone"). A ".new" directory is removed only when its creator is provably dead
// or it is older than abandonedGrace: a starting agent creates it, locks it and renames it into
// place, and must not lose it halfway because another agent started at the same moment.
func (s *server) removeAbandoned(dir string) {
	name := filepath.Base(dir)
	switch {
	case strings.HasSuffix(name, goneSuffix):
		os.RemoveAll(dir) // nobody needs it; racing another remover is harmless
		return
	case !strings.HasSuffix(name, ".new"):
		return
	}
	dead := false
	if pid, ok := sameHostAgent(strings.TrimSuffix(name[1:], ".new")); ok {
		dead = pid != os.Getpid() && !procAlive(pid)
	}
	if !dead {
		st, err := os.Lstat(dir)
		if err != nil || s.now().Sub(st.ModTime()) < abandonedGrace {
			return
		}
	}
	lock, err := fsutil.TryLock(filepath.Join(dir, lockName))
	if err != nil {
		return
	}
	os.RemoveAll(dir)
	lock.Unlock()
}

const goneSuffix = ".gone"

// removeRunDir removes a run directory whose lock this agent holds. It first renames it to a
// hidden name, so no other agent can create and lock a fresh lock file in it while it is being
// emptied and take the half-removed results for a dead agent's.
func removeRunDir(dir string) error {
	gone := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+goneSuffix)
	if err := os.Rename(dir, gone); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}
