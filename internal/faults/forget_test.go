package faults_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// closedPort returns a loopback TCP port nothing listens on (one just closed).
func closedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

// TestHostSessionsReleased checks that the daemon lets go of hosts: an sshd host's idle
// session closes after [daemon] idle_host_timeout (its agent exits), and after a run over
// 5,000 unreachable names (50,000 under SHOAL_LONG; ssh_config sends them all to a closed
// loopback port, so none reaches DNS) the daemon's sessions, goroutines, live heap and status
// time return to their baseline.
func TestHostSessionsReleased(t *testing.T) {
	t.Parallel()
	n := 5_000
	if long() {
		n = 50_000
	}
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	sshConfig, err := os.ReadFile(f.SSHConfig)
	if err != nil {
		t.Fatal(err)
	}
	h := newHome(t, "")
	cfgPath := filepath.Join(h.root, "ssh_config")
	os.WriteFile(cfgPath, fmt.Appendf(nil, "Host u*\n  HostName 127.0.0.1\n  Port %d\n  ConnectTimeout 5\n\n%s", closedPort(t), sshConfig), 0o600)
	h.writeConfig(fmt.Sprintf("fanout = 256\n[ssh]\nssh_config = %q\nconnect_timeout = \"5s\"\n[[host]]\nname = \"h001\"\n"+
		"[daemon]\nidle_host_timeout = \"3s\"\n", cfgPath))
	c := h.dial()
	status := func() (*client.DaemonStatus, time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		return st, time.Since(start)
	}

	// 1. An idle session of an sshd host closes after idle_host_timeout.
	runOne(t, c, []string{"h001"}, "true", 2*time.Minute)
	pid := agentPIDs(t, c)["h001"]
	if pid == 0 || !alive(pid) {
		t.Fatalf("no live agent on h001 (pid %d)", pid)
	}
	closed := waitFor(time.Minute, func() bool { st, _ := status(); return len(st.Hosts) == 0 })
	gone := waitFor(30*time.Second, func() bool { return !alive(pid) })
	t.Logf("h001 idle for idle_host_timeout (3s): session closed %v, agent %d exited %v", closed, pid, gone)
	if !closed || !gone {
		t.Errorf("an idle host session was kept: session closed %v, agent exited %v", closed, gone)
	}
	if r := runOne(t, c, []string{"h001"}, "echo again", 2*time.Minute)["h001"]; r.Status != proto.StatusOK {
		t.Errorf("h001 after its idle session closed: %s %q", r.Status, r.Err)
	}

	// 2. Unreachable names are forgotten after their run. The baseline: h001's session.
	waitFor(time.Minute, func() bool { st, _ := status(); return len(st.Hosts) == 0 })
	runOne(t, c, []string{"h001"}, "true", 2*time.Minute)
	base, baseTook := status()
	for range 3 { // the fastest of a few, as the bound is on the figure, not on noise
		if _, d := status(); d < baseTook {
			baseTook = d
		}
	}
	nFaults.Add(1)
	expr := fmt.Sprintf("u[%05d-%05d]", 1, n)
	start := time.Now()
	r := h.shoal(10*time.Minute, "--json", "run", expr, "--", "true")
	res := parseResults(t, r.stdout)
	unreachable := 0
	for _, x := range res {
		if x.Status == "unreachable" {
			unreachable++
		}
	}
	t.Logf("%d unreachable names: %d results unreachable in %v", n, unreachable, time.Since(start))
	if unreachable != n {
		t.Errorf("%d of %d names unreachable; want all", unreachable, n)
	}
	during, duringTook := status()
	t.Logf("right after the run: %d sessions, live heap %.1f MiB, %d goroutines, status in %v",
		len(during.Hosts), float64(during.HeapLive)/(1<<20), during.Goroutines, duringTook)
	// The bound: 16 MiB (the baseline's heap varies with the garbage of the agent's install,
	// which no GC may have collected yet), plus 1 KiB a name: the run's record in the result
	// history (about 330 bytes a host) and the runtime's goroutine descriptors, which Go
	// keeps for reuse after the goroutines end (about 400 bytes for each of the run's
	// goroutines at its peak: 19 MB at 50,000 names, measured with a heap profile).
	heapBound := uint64(16<<20) + uint64(n)<<10
	// Two GCs after the run: encoding/json keeps its last buffers (the run's history line)
	// in a sync.Pool for one more cycle. An idle daemon may wait for the runtime's periodic
	// GC (every 2 minutes).
	var st *client.DaemonStatus
	var took time.Duration
	back := waitFor(5*time.Minute, func() bool {
		st, took = status()
		return len(st.Hosts) <= len(base.Hosts) && st.Goroutines <= base.Goroutines+4 && st.HeapLive <= heapBound &&
			st.GCCycles >= during.GCCycles+2
	})
	t.Logf("baseline: %d sessions, live heap %.1f MiB, %d goroutines, status in %v; after: %d sessions, "+
		"live heap %.1f MiB (bound %.1f), %d goroutines, status in %v", len(base.Hosts), float64(base.HeapLive)/(1<<20),
		base.Goroutines, baseTook, len(st.Hosts), float64(st.HeapLive)/(1<<20), float64(heapBound)/(1<<20), st.Goroutines, took)
	if !back {
		var names []string
		for _, hs := range st.Hosts[:min(len(st.Hosts), 3)] {
			names = append(names, hs.Host+" "+hs.State)
		}
		t.Errorf("the daemon did not return to its baseline after the unreachable run: %d sessions (%s), live heap %d, %d goroutines",
			len(st.Hosts), strings.Join(names, ", "), st.HeapLive, st.Goroutines)
	}
	if took > 10*baseTook+500*time.Millisecond {
		t.Errorf("status takes %v after the run; %v before", took, baseTook)
	}
	sf, _ := os.ReadFile(filepath.Join(h.state, "state.json"))
	if strings.Contains(string(sf), `"u00001"`) {
		t.Errorf("the state file keeps the unreachable names (%d bytes)", len(sf))
	}
}
