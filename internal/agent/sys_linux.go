package agent

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// stdinPipeSize is the capacity asked of the agent's stdin pipe: sshd copies a file
// push into it, and a 64 KiB pipe makes sshd and the agent wake each other every
// 64 KiB, with sshd holding the rest in a buffer it keeps compacting.
const stdinPipeSize = 1 << 20

// growPipe asks for a stdinPipeSize pipe behind r when r is a pipe; anything else
// (a socket, a terminal, a pipe the system will not grow) is left as it is.
func growPipe(r io.Reader) {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if n, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil && n < stdinPipeSize {
			unix.FcntlInt(fd, unix.F_SETPIPE_SZ, stdinPipeSize)
		}
	})
}

// startWriteback asks the kernel to start writing n bytes of f at off to disk,
// without waiting: the fsync that ends a file push then finds most of the file
// already written instead of starting on all of it. Errors are left to that fsync.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
