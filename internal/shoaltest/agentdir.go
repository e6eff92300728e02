package shoaltest

import (
	"os"
	"testing"
	"time"
)

// AgentDir returns a temporary directory for agents started by the test (the local transport's
// BaseDir), removed when the test ends. Unlike testing.TB.TempDir, its removal waits, up to 10 s,
// for agents that are still stopping: an agent whose input was closed parks its run directory
// (renames it to .idle-N) on its way out, which would make a single RemoveAll find the directory
// not empty.
func AgentDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "shoal-agents-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				tb.Errorf("removing agent directory: %v", err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return dir
}
