package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Result directories are recycled. On some disks creating an inode or a directory block, and
// freeing one, costs milliseconds, while rewriting a few bytes of an existing file costs tens of
// microseconds; a command's directory and its record and status files would pay that cost on
// every command. So an acknowledged result directory is emptied, its record and status files
// are marked void in place, and it is renamed to ".spare-N" in the agent's run directory; the
// next command renames a spare to its request id instead of making a new directory.
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
	full := len(s.spares) >= min(spareMax, s.opts.MaxRunning+s.opts.MaxQueued) || s.stopping
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
		case fileStdout, fileStderr, fileStdin:
		default:
			return false
		}
	}
	if !record || !status {
		return false
	}
	for _, n := range names {
		switch n {
		case fileStdout, fileStderr, fileStdin:
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return false
			}
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
	if s.stopping {
		s.mu.Unlock()
		os.RemoveAll(spare)
		return true
	}
	s.spares = append(s.spares, spare)
	s.mu.Unlock()
	return true
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
