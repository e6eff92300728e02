package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/proto"
)

// inode returns the inode number of path.
func inode(t testing.TB, path string) uint64 {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// runEntries returns the names in the state directory's run directory.
func runEntries(t testing.TB, state string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(state, "run"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestEmptyStreamRedelivered checks that a stream a command never writes to has no file, and
// that a result with such a stream is re-delivered intact by the next agent after the first
// was killed before the daemon acknowledged it.
func TestEmptyStreamRedelivered(t *testing.T) {
	state := t.TempDir()
	a := startBinary(t, agent.Options{StateDir: state})
	cmds := []struct {
		cmd            string
		stdout, stderr string
		code           int
	}{
		{"echo out", "out\n", "", 0},
		{"echo err >&2; exit 3", "", "err\n", 3},
		{"true", "", "", 0},
	}
	ids := make([]uint64, len(cmds))
	for i, c := range cmds {
		ids[i] = a.id()
		a.send(ids[i], proto.TypeExec, &proto.Exec{Cmd: c.cmd})
		st := expect[proto.Started](a, ids[i], proto.TypeStarted)
		a.collect(ids[i], &result{started: st})
		for name, want := range map[string]string{"out": c.stdout, "err": c.stderr} {
			_, err := os.Lstat(filepath.Join(st.Dir, name))
			if want == "" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%q: %s file of a silent stream: %v; want none", c.cmd, name, err)
			}
			if want != "" && err != nil {
				t.Errorf("%q: %s file: %v", c.cmd, name, err)
			}
		}
	}
	if err := syscall.Kill(a.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.drainToEnd()

	b := startBinary(t, agent.Options{StateDir: state})
	for i, c := range cmds {
		st := expect[proto.Started](b, ids[i], proto.TypeStarted)
		r := b.collect(ids[i], &result{started: st})
		if string(r.stdout) != c.stdout || string(r.stderr) != c.stderr || r.exit.Code != c.code || !r.exit.Redelivered {
			t.Errorf("%q re-delivered: stdout %q stderr %q exit %+v; want %q, %q, code %d", c.cmd, r.stdout, r.stderr, r.exit, c.stdout, c.stderr, c.code)
		}
		b.send(ids[i], proto.TypeAck, nil)
	}
	waitGone(t, filepath.Join(state, "run", a.hello.AgentID))
}

// TestRunDirReused stops an agent with no results pending and starts another on the same state
// directory: the second takes over the first's run directory, lock file and spare result
// directories instead of making new ones.
func TestRunDirReused(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		state := t.TempDir()
		a := start(t, agent.Options{StateDir: state})
		aDir := filepath.Join(state, "run", a.hello.AgentID)
		id := a.id()
		a.send(id, proto.TypeExec, &proto.Exec{Cmd: "echo hi"})
		st := expect[proto.Started](a, id, proto.TypeStarted)
		a.collect(id, &result{started: st})
		// Before the ack, which recycles the result directory.
		dirIno, lockIno, resultIno := inode(t, aDir), inode(t, filepath.Join(aDir, ".lock")), inode(t, st.Dir)
		a.send(id, proto.TypeAck, nil)
		a.closeIn()
		a.drainToEnd()
		if got := runEntries(t, state); len(got) != 1 || got[0] != ".idle-0" {
			t.Fatalf("run directory after a clean stop: %q; want [.idle-0]", got)
		}

		b := start(t, agent.Options{StateDir: state})
		bDir := filepath.Join(state, "run", b.hello.AgentID)
		if got := inode(t, bDir); got != dirIno {
			t.Errorf("second agent's run directory is inode %d; want the first's, %d", got, dirIno)
		}
		if got := inode(t, filepath.Join(bDir, ".lock")); got != lockIno {
			t.Errorf("second agent's lock file is inode %d; want the first's, %d", got, lockIno)
		}
		if got := runEntries(t, state); len(got) != 1 || got[0] != b.hello.AgentID {
			t.Errorf("run directory with the second agent: %q; want only its own", got)
		}
		// The lock is held again: a third agent may not take the directory as a dead agent's.
		if l, err := fsutil.TryLock(filepath.Join(bDir, ".lock")); !errors.Is(err, fsutil.ErrLocked) {
			l.Unlock()
			t.Errorf("locking the reused run directory: %v; want it locked by the agent", err)
		}
		id = b.id()
		b.send(id, proto.TypeExec, &proto.Exec{Cmd: `cd "$SHOAL_RUN_DIR" && ls -A; echo err >&2`})
		st = expect[proto.Started](b, id, proto.TypeStarted)
		r := b.collect(id, &result{started: st})
		if got := inode(t, st.Dir); got != resultIno {
			t.Errorf("result directory is inode %d; want the recycled one, %d", got, resultIno)
		}
		b.send(id, proto.TypeAck, nil)
		// A spare keeps only its voided record and status files, and the output file of a
		// stream the earlier command wrote to, cut back to its header.
		if string(r.stdout) != "out\nrequest\nstatus\n" || string(r.stderr) != "err\n" || r.exit.Code != 0 {
			t.Errorf("command in a reused result directory: stdout %q stderr %q exit %+v; want only out, request and status there", r.stdout, r.stderr, r.exit)
		}
		b.closeIn()
		b.drainToEnd()
		if got := runEntries(t, state); len(got) != 1 || got[0] != ".idle-0" {
			t.Fatalf("run directory after the second clean stop: %q; want [.idle-0]", got)
		}
	})
}

// TestIdleRunDirLocked checks that an idle run directory whose lock is held (another agent is
// claiming it) is left alone: a starting agent makes its own, offers nothing from it, and parks
// its own in the next free slot when it stops.
func TestIdleRunDirLocked(t *testing.T) {
	state := t.TempDir()
	a := startPipe(t, agent.Options{StateDir: state})
	a.run(&proto.Exec{Cmd: "true"})
	a.closeIn()
	a.drainToEnd()
	idle := filepath.Join(state, "run", ".idle-0")
	idleIno := inode(t, idle)
	l, err := fsutil.TryLock(filepath.Join(idle, ".lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()

	b := startPipe(t, agent.Options{StateDir: state})
	b.ping()
	if len(b.stash) != 0 {
		t.Errorf("an idle run directory was offered as results: %v", b.stash)
	}
	if got := inode(t, filepath.Join(state, "run", b.hello.AgentID)); got == idleIno {
		t.Errorf("the agent claimed an idle run directory whose lock was held")
	}
	b.closeIn()
	b.drainToEnd()
	if got := inode(t, idle); got != idleIno {
		t.Errorf(".idle-0 is inode %d; want it untouched, %d", got, idleIno)
	}
	if _, err := os.Stat(filepath.Join(state, "run", ".idle-1")); err != nil {
		t.Errorf("the second agent's run directory was not parked: %v", err)
	}
}

// TestIdleRunDirsBounded stops more agents at once than there are idle slots: the extra run
// directories are removed, and nothing but idle directories is left.
func TestIdleRunDirsBounded(t *testing.T) {
	state := t.TempDir()
	var peers []*peer
	for range agent.IdleMax + 2 {
		p := startPipe(t, agent.Options{StateDir: state})
		p.run(&proto.Exec{Cmd: "true"})
		peers = append(peers, p)
	}
	for _, p := range peers {
		p.closeIn()
		p.drainToEnd()
	}
	got := runEntries(t, state)
	for _, n := range got {
		if !strings.HasPrefix(n, ".idle-") {
			t.Errorf("left in the run directory: %s", n)
		}
	}
	if len(got) != agent.IdleMax {
		t.Errorf("run directory after %d clean stops: %q; want %d idle directories", len(peers), got, agent.IdleMax)
	}
}

// TestRedeliverLegacyOutput checks that results an agent of an earlier version left, with bare
// stdout and stderr files, and results with header-only output files (a recycled directory
// whose command wrote nothing) are re-delivered with the right output.
func TestRedeliverLegacyOutput(t *testing.T) {
	state := t.TempDir()
	dead := filepath.Join(state, "run", agentIDWithPID(zombie(t)))
	status, _ := proto.Marshal(&proto.Exit{Code: 5})
	files := map[string]map[string]string{
		"51": {"stdout": "legacy out\n", "stderr": "legacy err\n", "status": string(status)},
		"52": {"out": "\n", "err": "\nnew err\n", "status": string(status)},
	}
	for id, fs := range files {
		for name, data := range fs {
			if err := os.MkdirAll(filepath.Join(dead, id), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dead, id, name), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := startPipe(t, agent.Options{StateDir: state})
	for id, want := range map[uint64][2]string{51: {"legacy out\n", "legacy err\n"}, 52: {"", "new err\n"}} {
		st := expect[proto.Started](p, id, proto.TypeStarted)
		r := p.collect(id, &result{started: st})
		if string(r.stdout) != want[0] || string(r.stderr) != want[1] || r.exit.Code != 5 {
			t.Errorf("result %d: stdout %q stderr %q exit %+v; want %q, %q, code 5", id, r.stdout, r.stderr, r.exit, want[0], want[1])
		}
	}
}
