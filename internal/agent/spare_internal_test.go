package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// benchServer is a server with a run directory and no connection, for file system benchmarks.
func benchServer(b *testing.B) *server {
	opts := Options{StateDir: b.TempDir(), BinarySHA256: "test"}
	if err := opts.setDefaults(); err != nil {
		b.Fatal(err)
	}
	s, err := newServer(opts, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.lock.Unlock() })
	return s
}

var (
	benchRecord = []byte("\xa2\x01\x64true\x02\x19\x30\x39")
	benchStatus = make([]byte, 48)
)

// BenchmarkResultDirSpare is the file system work of one command's result directory as the agent
// does it: a spare renamed into place, record and status rewritten in place, recycled after ack.
func BenchmarkResultDirSpare(b *testing.B) {
	s := benchServer(b)
	i := 0
	for b.Loop() {
		i++
		dir := filepath.Join(s.runDir, strconv.Itoa(i))
		if err := s.makeResultDir(dir); err != nil {
			b.Fatal(err)
		}
		overwrite(filepath.Join(dir, fileRequest), benchRecord)
		overwrite(filepath.Join(dir, fileStatus), benchStatus)
		if !s.recycle(dir) {
			b.Fatal("not recycled")
		}
	}
}

// BenchmarkResultDirFresh is the same work with a new directory and files every time, as the agent
// did before spares.
func BenchmarkResultDirFresh(b *testing.B) {
	s := benchServer(b)
	i := 0
	for b.Loop() {
		i++
		dir := filepath.Join(s.runDir, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, fileRequest), benchRecord, 0o600)
		os.WriteFile(filepath.Join(dir, fileStatus), benchStatus, 0o600)
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
}
