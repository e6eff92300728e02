package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// silentListener accepts TCP connections on loopback and never says a word; it closes them
// when t ends.
func silentListener(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// TestHostAwayAndSilent fans a command out to sshd hosts and one host that accepts TCP but never
// speaks SSH, then stops a host's sshd mid-command and starts it again.
func TestHostAwayAndSilent(t *testing.T) {
	t.Parallel()
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 4})
	port := silentListener(t)
	conf := fleetConfig(f.SSHConfig, 4, fmt.Sprintf("[[host]]\nname = \"silent\"\naddress = \"127.0.0.1\"\nport = %d\n", port))
	h := newHome(t, conf)
	c := h.dial()
	ctx := context.Background()
	all := append(f.Names(), "silent")

	// Agents installed and running first: only the silent host has to connect.
	runOne(t, c, f.Names(), "true", 2*time.Minute)
	// The silent host must not hold the others back, and must end by the connect timeout.
	nFaults.Add(1)
	start := time.Now()
	r, err := c.Run(ctx, client.RunRequest{Hosts: all, Command: "echo hi"})
	if err != nil {
		t.Fatal(err)
	}
	doneAt := map[string]time.Duration{}
	res := map[string]*client.HostResult{}
	timer := time.After(60 * time.Second)
loop:
	for {
		select {
		case ev, ok := <-r.Events:
			if !ok {
				break loop
			}
			if ev.Kind == client.EventDone {
				doneAt[ev.Host] = time.Since(start)
				res[ev.Host] = ev.Result
			}
		case <-timer:
			t.Fatal("run did not end within 60s")
		}
	}
	checkClientResults(t, res, all)
	t.Logf("done after: %v; silent: %s %q", doneAt, res["silent"].Status, res["silent"].Err)
	if s := res["silent"]; s.Status == client.StatusOK || s.Err == "" {
		t.Errorf("silent host: %s %q; want unreachable or timeout with a reason", s.Status, s.Err)
	}
	if d := doneAt["silent"]; d > 15*time.Second {
		t.Errorf("silent host took %v; want about the 3s connect timeout (sshd config says 5s)", d)
	}
	for _, hn := range f.Names() {
		if res[hn].Status != client.StatusOK {
			t.Errorf("%s: %s %q", hn, res[hn].Status, res[hn].Err)
		}
		if doneAt[hn] > doneAt["silent"] && doneAt[hn] > 3*time.Second {
			t.Errorf("%s finished after the silent host (%v): held back", hn, doneAt[hn])
		}
	}

	// A host goes away mid-command and comes back.
	hosts := f.Names()
	nap := fmt.Sprintf("6.%06d", time.Now().Nanosecond()/1000)
	r, err = c.Run(ctx, client.RunRequest{Hosts: hosts, Command: "sleep " + nap + "; echo done"})
	if err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { return countProcs("sleep", nap) == len(hosts) }) {
		t.Fatalf("commands did not start")
	}
	nFaults.Add(1)
	f.Hosts[1].Stop()
	res = collect(t, r, 60*time.Second)
	checkClientResults(t, res, hosts)
	gone := res[hosts[1]]
	t.Logf("host stopped mid-command: %s %q", gone.Status, gone.Err)
	if gone.Status == client.StatusOK {
		t.Errorf("a host whose sshd and agent were killed reports ok")
	}
	for _, hn := range []string{hosts[0], hosts[2], hosts[3]} {
		if res[hn].Status != client.StatusOK {
			t.Errorf("%s while another host went away: %s %q", hn, res[hn].Status, res[hn].Err)
		}
	}
	if err := f.Hosts[1].Start(); err != nil {
		t.Fatal(err)
	}
	var back *client.HostResult
	ok := waitFor(60*time.Second, func() bool {
		back = runOne(t, c, hosts[1:2], "echo back", time.Minute)[hosts[1]]
		return back.Status == client.StatusOK
	})
	if !ok {
		t.Errorf("host did not come back within 60s: %s %q", back.Status, back.Err)
	}
}

// procStatus reads a field (e.g. "VmRSS", "Threads") of /proc/pid/status, in its own units.
func procStatus(pid int, field string) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

func fdCount(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// TestSoak runs commands in a row through one daemon while killing random agents: every command
// gets a result or a clear error on every host, and the daemon's threads, memory and file
// descriptors come back to their baseline. SHOAL_LONG=1 runs 200 hosts × 1,000 commands.
func TestSoak(t *testing.T) {
	t.Parallel()
	hostsN, commands := 20, 100
	if long() {
		hostsN, commands = 200, 1000
	}
	h := newHome(t, localConfig(hostsN, ""))
	c := h.dial()
	hosts := hostNames("lab", hostsN, 0)
	runOne(t, c, hosts, "true", 2*time.Minute)
	runOne(t, c, hosts, "true", 2*time.Minute)
	pid := h.daemonPID()
	fd0, thr0, rss0 := fdCount(pid), procStatus(pid, "Threads"), procStatus(pid, "VmRSS")
	rng := rand.New(rand.NewPCG(1, 2))
	kills, errs := 0, 0
	for i := range commands {
		if i%5 == 4 {
			pids := agentPIDs(t, c)
			victim := hosts[rng.IntN(len(hosts))]
			if p := pids[victim]; p > 0 {
				syscall.Kill(p, syscall.SIGKILL)
				kills++
				nFaults.Add(1)
			}
		}
		want := fmt.Sprintf("c%d", i)
		res := runOne(t, c, hosts, "echo "+want, 2*time.Minute)
		for _, hn := range hosts {
			r := res[hn]
			if r == nil {
				continue // counted as lost by runOne
			}
			if r.Status == client.StatusOK && string(r.Stdout) != want+"\n" {
				t.Errorf("command %d on %s: output %q; want %q", i, hn, r.Stdout, want)
			}
			if r.Status != client.StatusOK {
				errs++
			}
		}
	}
	// Let the sessions settle, then compare with the baseline.
	var fd1, thr1, rss1 int
	waitFor(20*time.Second, func() bool {
		fd1, thr1, rss1 = fdCount(pid), procStatus(pid, "Threads"), procStatus(pid, "VmRSS")
		return fd1 <= fd0 && thr1 <= thr0+4
	})
	t.Logf("soak: %d hosts × %d commands, %d agent kills, %d host results with a clear error; "+
		"daemon fds %d→%d, threads %d→%d, RSS %d→%d kB", hostsN, commands, kills, errs, fd0, fd1, thr0, thr1, rss0, rss1)
	if fd1 > fd0 {
		t.Errorf("daemon file descriptors grew from %d to %d", fd0, fd1)
	}
	if thr1 > thr0+4 {
		t.Errorf("daemon threads grew from %d to %d", thr0, thr1)
	}
	if rss1 > rss0*3/2+32<<10 {
		t.Errorf("daemon RSS grew from %d kB to %d kB", rss0, rss1)
	}
	if errs > kills*2 {
		t.Errorf("%d errors for %d agent kills: more than the kills explain", errs, kills)
	}
}
