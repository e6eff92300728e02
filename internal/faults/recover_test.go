package faults_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// historyRun is one run of history.jsonl, its lines merged by id.
type historyRun struct {
	ID      uint64
	Command string
	Started int64
	UID     int
	Results map[string]string // host → stdout
	Status  map[string]string // host → status
}

// historyRuns reads history.jsonl, merging the lines of one run.
func historyRuns(path string) map[uint64]*historyRun {
	b, _ := os.ReadFile(path)
	out := map[uint64]*historyRun{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec struct {
			ID      uint64
			Command string
			Started int64
			UID     int
			Results []struct {
				Host, Status, Stdout string
			}
		}
		if len(line) == 0 || json.Unmarshal(line, &rec) != nil {
			continue
		}
		r := out[rec.ID]
		if r == nil {
			r = &historyRun{ID: rec.ID, Command: rec.Command, Started: rec.Started, UID: rec.UID,
				Results: map[string]string{}, Status: map[string]string{}}
			out[rec.ID] = r
		}
		for _, x := range rec.Results {
			so, _ := base64.StdEncoding.DecodeString(x.Stdout)
			r.Results[x.Host], r.Status[x.Host] = string(so), x.Status
		}
	}
	return out
}

// TestRunFiledAfterDaemonCrash SIGKILLs the daemon while 12 sshd hosts each print 1.29 MB, and
// starts a new daemon without running anything: it reconnects by itself to the hosts of the
// run in flight, collects the results the agents kept, and files them under the original run
// (its id, command and start time), all hosts in one record, which `shoal last` shows.
func TestRunFiledAfterDaemonCrash(t *testing.T) {
	t.Parallel()
	const n = 12
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: n})
	h := newHome(t, strings.Replace(strings.Replace(fleetConfig(f.SSHConfig, n, ""), `"3s"`, `"60s"`, 1), "fanout = 256", "fanout = 24", 1))
	targets := fmt.Sprintf("h[001-%03d]", n)
	if r := h.shoal(2*time.Minute, "--json", "run", targets, "--", "true"); r.code != 0 {
		t.Fatalf("warm-up: exit %d\n%s", r.code, clip(r.stderr))
	}
	pid1 := h.daemonPID()
	c0 := h.dial()
	agents := pidValues(agentPIDs(t, c0))
	c0.Close()
	nap := fmt.Sprintf("3.%06d", time.Now().Nanosecond()/1000)
	command := "sleep " + nap + "; head -c 1290000 /dev/zero | tr '\\0' k; echo; echo kept-$(hostname)"
	cmd := exec.Command(h.bin, "--json", "run", targets, "--", command)
	cmd.Env = h.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	if !waitFor(30*time.Second, func() bool { return countProcs("sleep", nap) == n }) {
		t.Fatalf("%d of %d commands started within 30s", countProcs("sleep", nap), n)
	}
	tree := snapshotTree(agents)
	nFaults.Add(1)
	syscall.Kill(pid1, syscall.SIGKILL)
	waitGone(pid1, 10*time.Second)
	<-done
	done <- nil
	if !waitFor(60*time.Second, func() bool { return countProcs("sleep", nap) == 0 }) {
		t.Fatalf("commands still running 60s after the daemon died")
	}
	reapAll(tree)

	// A new daemon, and no command: it must go and get the results itself.
	if r := h.shoal(time.Minute, "daemon", "start"); r.code != 0 {
		t.Fatalf("daemon start: exit %d\n%s", r.code, r.stderr)
	}
	hist := filepath.Join(h.state, "history.jsonl")
	var run *historyRun
	ok := waitFor(3*time.Minute, func() bool {
		for _, r := range historyRuns(hist) {
			if r.Command == command {
				run = r
			}
		}
		if run == nil {
			return false
		}
		kept := 0
		for _, so := range run.Results {
			if strings.Contains(so, "kept-") && len(so) > 1_290_000 {
				kept++
			}
		}
		return kept == n
	})
	for range n {
		nCommands.Add(1)
	}
	if run == nil {
		nLost.Add(n)
		t.Fatalf("no run with the original command in the history after the restart")
	}
	kept := 0
	for hn, so := range run.Results {
		if strings.Contains(so, "kept-") && len(so) > 1_290_000 && run.Status[hn] == "ok" {
			kept++
		}
	}
	t.Logf("after the restart: run %d, command %q, started %v: %d of %d hosts with their 1.29 MB kept result, in one record",
		run.ID, run.Command, time.Unix(0, run.Started).Format(time.TimeOnly), kept, n)
	if !ok || kept != n {
		nLost.Add(int64(n - kept))
		t.Errorf("%d of %d kept results filed under the original run; statuses %v", kept, n, run.Status)
	}
	if run.Started == 0 || time.Since(time.Unix(0, run.Started)) > time.Hour {
		t.Errorf("the run's start time is %v; want the original", time.Unix(0, run.Started))
	}
	for id, r := range historyRuns(hist) {
		if strings.Contains(r.Command, "re-delivered") {
			t.Errorf("run %d: a kept result filed as a run of its own (%q)", id, r.Command)
		}
	}
	r := h.shoal(time.Minute, "--json", "last", "1")
	if c := strings.Count(r.stdout, "kept-"); c != n {
		t.Errorf("shoal last 1 shows %d kept results; want %d\n%s", c, n, clip(r.stderr))
	}
}
