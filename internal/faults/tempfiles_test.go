package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// partials lists the temporary files of writes to dest beside it.
func partials(dest string) []string {
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+".shoal-*"))
	return m
}

// TestDeadWriterTempFiles SIGKILLs a host's agent while a put of 256 MiB is being written:
// the target stays as it was, and the next agent on the host removes the partial temporary
// file the dead one left, while a partial file of a live writer is never touched.
func TestDeadWriterTempFiles(t *testing.T) {
	t.Parallel()
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	h := newHome(t, fleetConfig(f.SSHConfig, 1, ""))
	host := f.Hosts[0]
	c := h.dial()
	runOne(t, c, []string{"h001"}, "true", 2*time.Minute)
	dest := filepath.Join(host.Home, "big")
	old := []byte("old content\n")
	if err := os.WriteFile(dest, old, 0o644); err != nil {
		t.Fatal(err)
	}
	// A live writer's file: another process's partial file by the same name pattern, which no
	// journal names, must stay.
	live := filepath.Join(host.Home, ".big.shoal-livewriter")
	os.WriteFile(live, []byte("a live writer's partial file"), 0o600)
	src := filepath.Join(h.root, "big")
	if err := os.WriteFile(src, bytes.Repeat([]byte("p"), 256<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(src)
	pid := agentPIDs(t, c)["h001"]
	if pid == 0 {
		t.Fatal("no agent pid for h001")
	}
	done := make(chan string, 1)
	go func() {
		fr, err := c.Put(context.Background(), []string{"h001"}, client.PutRequest{LocalPath: src, Dest: dest})
		if err == nil && len(fr) == 1 {
			done <- string(fr[0].Status) + ": " + fr[0].Err
			return
		}
		done <- fmt.Sprint(fr, err)
	}()
	var tmp string
	if !waitFor(2*time.Minute, func() bool {
		for _, p := range partials(dest) {
			if st, err := os.Stat(p); p != live && err == nil && st.Size() > 4<<20 {
				tmp = p
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no partial file of the put appeared beside %s", dest)
	}
	nFaults.Add(1)
	syscall.Kill(pid, syscall.SIGKILL)
	st, _ := os.Stat(tmp)
	t.Logf("agent %d SIGKILLed with %d bytes in %s", pid, st.Size(), filepath.Base(tmp))
	select {
	case r := <-done:
		t.Logf("put after the kill: %s", r)
		if strings.HasPrefix(r, "ok") {
			t.Errorf("put whose agent was killed: %s", r)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("put did not end after its agent was killed")
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, old) {
		t.Errorf("target after the killed put: %d bytes; want the old content", len(got))
	}
	// The next command starts a new agent, which takes over the dead one's run directory.
	runOne(t, c, []string{"h001"}, "true", 2*time.Minute)
	nCommands.Add(1)
	gone := waitFor(30*time.Second, func() bool { _, err := os.Stat(tmp); return err != nil })
	left := partials(dest)
	t.Logf("after the next agent started: partial files %v", left)
	if !gone {
		t.Errorf("the dead writer's partial file %s (%d bytes) is still there", tmp, st.Size())
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a partial file no dead agent journalled was removed: %v", err)
	}
	if len(left) != 1 || !strings.HasSuffix(left[0], "livewriter") {
		t.Errorf("partial files left: %v; want only the live writer's", left)
	}
}
