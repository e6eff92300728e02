package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the whole file system f is on (syncfs(2)), best effort.
func syncFS(f *os.File) { unix.Syncfs(int(f.Fd())) }
