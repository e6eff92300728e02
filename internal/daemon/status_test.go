package daemon_test

import (
	"context"
	"os"
	"runtime"
	"testing"
)

// TestStatusResources checks that the status answer carries the daemon's goroutines, heap and
// open file descriptors, measured in this process (the daemon runs in-process here).
func TestStatusResources(t *testing.T) {
	tr := newPipeTransport(t)
	d := startDaemon(t, tr, nil)
	c := d.dial(t, "")
	runtime.GC() // so the live heap has been measured at least once
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Goroutines <= 0 {
		t.Errorf("Goroutines = %d; want > 0", st.Goroutines)
	}
	if st.HeapLive == 0 || st.HeapInUse == 0 || st.HeapLive > 1<<30 || st.HeapInUse > 1<<30 {
		t.Errorf("HeapLive = %d, HeapInUse = %d; want both in (0, 1 GiB]", st.HeapLive, st.HeapInUse)
	}
	if st.GCCycles == 0 {
		t.Errorf("GCCycles = 0 after runtime.GC")
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Other tests' goroutines open and close files meanwhile: the count only has to be plausible.
	if st.FDs <= 3 || st.FDs > len(ents)+64 {
		t.Errorf("FDs = %d; this process has about %d open", st.FDs, len(ents)-1)
	}
}
