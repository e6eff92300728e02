//go:build !linux

package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes what is written to disk where there is no syncfs(2): sync(2), best effort.
func syncFS(*os.File) { unix.Sync() }
