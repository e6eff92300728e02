package simfleet_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/simfleet"
)

// patience bounds each run of the tests: generous, since the machine may be loaded.
const patience = 5 * time.Minute

// TestThousandHosts runs the real daemon against 1,000 simulated hosts (100 with -short, 300
// under the race detector): it connects to all, runs true and echo everywhere with every
// result correct, and reports a host that stalls and one that dies for what they are.
func TestThousandHosts(t *testing.T) {
	n := 1000
	switch {
	case testing.Short():
		n = 100
	case shoaltest.Race:
		n = 300 // the race detector makes each host cost several times more; keep it short
	}
	src, hashes := agentSource(t)
	f, err := simfleet.Start(simfleet.Options{N: n, Dir: t.TempDir(), Installed: hashes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c := startDaemon(t, f.SSHConfig, src)
	names := f.Names()

	start := time.Now()
	for h, res := range run(t, c, client.RunRequest{Hosts: names, Command: "true"}, patience) {
		if res.Status != proto.StatusOK {
			t.Errorf("true on %s: %s %s", h, res.Status, res.Err)
		}
	}
	t.Logf("true on %d cold hosts: %v", n, time.Since(start))
	start = time.Now()
	got := run(t, c, client.RunRequest{Hosts: names, Command: "echo hi %h", Subst: true}, patience)
	t.Logf("echo on %d warm hosts: %v", n, time.Since(start))
	if len(got) != n {
		t.Errorf("%d results; want %d", len(got), n)
	}
	for _, h := range names {
		res := got[h]
		if res == nil || res.Status != proto.StatusOK || string(res.Stdout) != "hi "+h+"\n" {
			t.Errorf("echo on %s: %+v; want ok and %q", h, res, "hi "+h+"\n")
		}
	}
	if st, err := c.Status(t.Context()); err != nil {
		t.Error(err)
	} else if ready := countReady(st.Hosts); ready != n {
		t.Errorf("status: %d hosts ready; want %d", ready, n)
	}

	// On cue, one host stalls (stops answering) and one dies (drops its connection, refuses
	// more) while the command runs; the rest answer.
	stall, die := names[1], names[2]
	f.Hosts[1].BreakNext(simfleet.Stall)
	f.Hosts[2].BreakNext(simfleet.Die)
	got = run(t, c, client.RunRequest{Hosts: names[:10], Command: "echo ok", Timeout: time.Second}, patience)
	for _, h := range names[3:10] {
		if got[h] == nil || got[h].Status != proto.StatusOK || string(got[h].Stdout) != "ok\n" {
			t.Errorf("%s beside the broken hosts: %+v; want ok", h, got[h])
		}
	}
	for h, want := range map[string][]proto.Status{
		stall: {proto.StatusTimeout},
		// The daemon waits for a lost agent's result until the timeout's grace is over.
		die: {proto.StatusError, proto.StatusUnreachable, proto.StatusTimeout},
	} {
		res := got[h]
		if res == nil || !slices.Contains(want, res.Status) || res.Err == "" {
			t.Errorf("%s: %+v; want one of %v", h, res, want)
			continue
		}
		t.Logf("%s: %s: %s", h, res.Status, res.Err)
	}
	f.Hosts[1].Thaw()
}

func countReady(hosts []client.HostStatus) int {
	n := 0
	for _, h := range hosts {
		if h.State == "ready" {
			n++
		}
	}
	return n
}

// TestCommands checks the command table on one host through the daemon.
func TestCommands(t *testing.T) {
	src, hashes := agentSource(t)
	f, err := simfleet.Start(simfleet.Options{N: 2, Dir: t.TempDir(), Installed: hashes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c := startDaemon(t, f.SSHConfig, src)
	h := f.Hosts[0]
	for _, tc := range []struct {
		cmd    string
		status proto.Status
		code   int
		out    string
	}{
		{"true", proto.StatusOK, 0, ""},
		{"exit 7", proto.StatusFailed, 7, ""},
		{"echo a  b", proto.StatusOK, 0, "a b\n"},
		{"hostname", proto.StatusOK, 0, h.Name + "\n"},
		{"whoami", proto.StatusOK, 0, h.User + "\n"},
		{"output 100", proto.StatusOK, 0, strings.Repeat("x", 63) + "\n" + strings.Repeat("x", 36)},
		{"sleep 0.01", proto.StatusOK, 0, ""},
		{"nosuch", proto.StatusFailed, 127, ""},
	} {
		res := run(t, c, client.RunRequest{Hosts: []string{h.Name}, Command: tc.cmd}, patience)[h.Name]
		if res == nil || res.Status != tc.status || res.ExitCode != tc.code || string(res.Stdout) != tc.out {
			t.Errorf("%s: %+v; want %s, code %d, %q", tc.cmd, res, tc.status, tc.code, tc.out)
		}
	}
	res := run(t, c, client.RunRequest{Hosts: []string{h.Name}, Command: "date"}, patience)[h.Name]
	if res == nil || res.Status != proto.StatusOK || !strings.Contains(string(res.Stdout), fmt.Sprint(time.Now().Year())) {
		t.Errorf("date: %+v", res)
	}
	res = run(t, c, client.RunRequest{Hosts: []string{h.Name}, Command: "sleep 100", Timeout: 200 * time.Millisecond}, patience)[h.Name]
	if res == nil || res.Status != proto.StatusTimeout {
		t.Errorf("sleep past its timeout: %+v; want timeout", res)
	}
}

// TestFirstContact installs the agent on a host that lacks it: the upload goes through the
// bootstrap's session and the agent then reports the uploaded hash.
func TestFirstContact(t *testing.T) {
	src, hashes := agentSource(t)
	f, err := simfleet.Start(simfleet.Options{N: 2, Dir: t.TempDir(), Installed: hashes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	f.Hosts[0].Uninstall()
	c := startDaemon(t, f.SSHConfig, src)
	for h, res := range run(t, c, client.RunRequest{Hosts: f.Names(), Command: "hostname"}, patience) {
		if res.Status != proto.StatusOK || string(res.Stdout) != h+"\n" {
			t.Errorf("%s: %+v; want ok and its name", h, res)
		}
	}
}
