package agent

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func pipeSize(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ferr error
	if err := rc.Control(func(fd uintptr) { n, ferr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		t.Fatalf("F_GETPIPE_SZ: %v", ferr)
	}
	return n
}

func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	before := pipeSize(t, r)
	growPipe(r)
	after := pipeSize(t, r)
	max, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if err == nil && string(bytes.TrimSpace(max)) == "1048576" && after < stdinPipeSize {
		t.Errorf("pipe size %d after growPipe (was %d); want %d", after, before, stdinPipeSize)
	}
	if after < before {
		t.Errorf("pipe size shrank from %d to %d", before, after)
	}
	growPipe(bytes.NewReader(nil)) // not a pipe: nothing to do, no panic
}

func TestStartWriteback(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("shoal"), 1<<10)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	startWriteback(f, 0, int64(len(data)))
	startWriteback(f, int64(len(data)), 1<<20) // past the end: nothing to do
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync after startWriteback: %v", err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file after startWriteback: %d bytes, %v; want the %d written", len(got), err, len(data))
	}
}
