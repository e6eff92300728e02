package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shoal-sh/shoal/internal/fsutil"
)

// Result directories are recycled. On some disks creating an inode or a directory block, and
// freeing one, costs milliseconds, while rewriting a few bytes of an existing file costs tens of
// microseconds; a command's directory and its record and status files would pay that cost on
// every command. So an acknowledged result directory is emptied, its record and status files
// are marked void in place, and it is renamed to ".spare-N" in the agent's run directory; the
// next command renames a spare to its request id instead of making a new directory. A stream's
// output file is created at its first byte, so in a new directory a command that writes nothing
// to a stream has no file for it; readers take a missing file for empty output. An output file
// that exists is kept in the spare, cut back to its one header byte (see outHeader), which is
// empty output too, and the next command to write to that stream writes over it.
//
// Run directories are recycled too, for the same reason at every agent start. An agent that
// stops with no unacknowledged result in its run directory renames it, lock file and spares
// included, to one of idleMax fixed names "run/.idle-K" that is free, and only then lets go of
// its lock; when none is free it removes it. A starting agent takes the lock of an
// idle directory's existing lock file, checks that the lock file still has that name (the
// directory may have been claimed and parked again meanwhile), and renames the directory to its
// own id while holding the lock, so two agents never claim the same one and no agent ever sees
// it unlocked under an agent's name. Idle directories start with a dot, which the search for
// dead agents' results skips unless the name ends in ".new" or ".gone". Agents of other
// versions share the state directory and claim the same idle directories: a change to what a
// spare holds must come with a new idlePrefix.
//
// The record and status files are rewritten in place, never truncated: each holds one CBOR item
// at offset 0, possibly followed by stale bytes of an earlier item, which readers ignore. A void
// file starts with voidByte, which no CBOR item starts with.

// voidByte marks a record or status file as holding nothing (a lone CBOR "break" is invalid).
const voidByte = 0xff

// spareMax bounds how many spare directories an agent keeps.
const spareMax = 64

const sparePrefix = ".spare-"

// makeResultDir makes dir from a spare, or creates it.
func (s *server) makeResultDir(dir string) error {
	s.mu.Lock()
	var spare string
	if n := len(s.spares); n > 0 {
		spare = s.spares[n-1]
		s.spares = s.spares[:n-1]
	}
	s.mu.Unlock()
	if spare != "" {
		if err := os.Rename(spare, dir); err == nil {
			return nil
		}
		os.RemoveAll(spare)
	}
	return os.Mkdir(dir, 0o700)
}

// recycle empties an acknowledged result directory and keeps it as a spare. It reports false,
// leaving dir for the caller to remove, when there are spares enough or dir holds anything the
// agent did not put there (the command's own files: it ran in dir).
func (s *server) recycle(dir string) bool {
	s.mu.Lock()
	full := len(s.spares) >= min(spareMax, s.opts.MaxRunning+s.opts.MaxQueued)
	s.mu.Unlock()
	if full {
		return false
	}
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return false
	}
	var record, status bool
	for _, n := range names {
		switch n {
		case fileRequest:
			record = true
		case fileStatus:
			status = true
		case fileOut, fileErr, fileStdin:
		default:
			return false
		}
	}
	if !record || !status {
		return false
	}
	for _, n := range names {
		var err error
		switch n {
		case fileOut, fileErr:
			err = os.Truncate(filepath.Join(dir, n), 1) // back to its header (see exec.go)
		case fileStdin:
			err = os.Remove(filepath.Join(dir, n))
		}
		if err != nil {
			return false
		}
	}
	if overwrite(filepath.Join(dir, fileRequest), []byte{voidByte}) != nil ||
		overwrite(filepath.Join(dir, fileStatus), []byte{voidByte}) != nil {
		return false
	}
	s.mu.Lock()
	s.spareSeq++
	spare := filepath.Join(s.runDir, sparePrefix+strconv.FormatUint(s.spareSeq, 10))
	s.mu.Unlock()
	if err := os.Rename(dir, spare); err != nil {
		return false
	}
	s.mu.Lock()
	s.spares = append(s.spares, spare)
	s.mu.Unlock()
	return true
}

// idleMax is how many idle run directories a state directory keeps for later agents.
const idleMax = 4

const idlePrefix = ".idle-"

func idleDir(base string, k int) string {
	return filepath.Join(base, idlePrefix+strconv.Itoa(k))
}

// claimIdle takes over an idle run directory under base and renames it to final, keeping its
// lock file and spares. It reports false when there is none it could take.
func (s *server) claimIdle(base, final string) bool {
	for k := range idleMax {
		dir := idleDir(base, k)
		lockPath := filepath.Join(dir, lockName)
		lock, err := fsutil.TryLock(lockPath)
		switch {
		case errors.Is(err, fsutil.ErrLocked), errors.Is(err, fs.ErrNotExist):
			continue // being claimed or parked by another agent, or not there
		case err != nil:
			return false // no locks on this file system: claiming could race
		}
		if !lock.Holds(lockPath) || os.Rename(dir, final) != nil {
			lock.Unlock()
			continue
		}
		s.runDir, s.lock = final, lock
		s.takeSpares()
		return true
	}
	return false
}

// takeSpares lists the spare directories of a claimed run directory.
func (s *server) takeSpares() {
	d, err := os.Open(s.runDir)
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		seq, err := strconv.ParseUint(strings.TrimPrefix(n, sparePrefix), 10, 64)
		if err != nil || !strings.HasPrefix(n, sparePrefix) {
			continue
		}
		s.spares = append(s.spares, filepath.Join(s.runDir, n))
		s.spareSeq = max(s.spareSeq, seq)
	}
}

// retireRunDir parks the run directory for a later agent when it holds no results, or removes
// it; a run directory with results stays for the next agent to offer them. The lock is still
// held; the caller releases it afterwards.
func (s *server) retireRunDir() {
	d, err := os.Open(s.runDir)
	if err != nil {
		return
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return
	}
	empty := true
	for _, n := range names {
		if n != lockName && !strings.HasPrefix(n, sparePrefix) {
			empty = false
			break
		}
	}
	if empty && s.lock != nil {
		base := filepath.Dir(s.runDir)
		for k := range idleMax {
			if fsutil.RenameNoReplace(s.runDir, idleDir(base, k)) == nil {
				return
			}
		}
	}
	s.removeSpares()
	if empty {
		removeRunDir(s.runDir)
	}
}

// removeSpares deletes the spare directories, when the agent stops.
func (s *server) removeSpares() {
	ents, err := os.ReadDir(s.runDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), sparePrefix) {
			os.RemoveAll(filepath.Join(s.runDir, e.Name()))
		}
	}
	s.mu.Lock()
	s.spares = nil
	s.mu.Unlock()
}

// overwrite writes data at the start of path, creating it if needed, without truncating it and
// without fsync (see the comment at the top of this file).
func overwrite(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
