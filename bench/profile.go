package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileCold records, system-wide with perf, one cold shoal run on n hosts, and returns
// where the machine's CPU went (by process name) and the shoal client's hottest symbols.
// System-wide, because on this one box the sshd and the agents are the "hosts".
func (b *bench) profileCold(ctx context.Context, n int) string {
	if _, err := exec.LookPath("perf"); err != nil {
		return "perf is not installed; no profile."
	}
	t := b.sh.cold(remoteCmd)
	if t.before != nil {
		if err := t.before(n); err != nil {
			return "profile: " + err.Error()
		}
	}
	iv := t.cmd(n, 0)
	data := filepath.Join(b.c.work, "perf.data")
	argv := append([]string{"perf", "record", "-a", "-g", "-F", "499", "-o", data, "--"}, iv.argv...)
	s, out := runOnce(ctx, invocation{argv: argv, env: iv.env}, runOpts{timeout: b.c.timeout})
	if !s.OK {
		return fmt.Sprintf("perf record failed: %s: %s", s.Err, oneLine(tail(string(out), 300)))
	}
	if got, _ := countMarkers(out, n); got != n {
		return fmt.Sprintf("profiled run: only %d of %d hosts answered", got, n)
	}
	report := func(args ...string) string {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, "perf", append([]string{"report", "-i", data, "--stdio", "--no-children"}, args...)...)
		c.Stderr = nil
		o, err := c.Output()
		if err != nil {
			return "perf report: " + err.Error()
		}
		var keep []string
		for _, l := range strings.Split(string(o), "\n") {
			if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
				continue
			}
			keep = append(keep, strings.TrimRight(l, " "))
			if len(keep) >= 25 {
				break
			}
		}
		return strings.Join(keep, "\n")
	}
	byComm := report("--sort", "comm", "-g", "none", "--percent-limit", "1")
	shoalSyms := report("--comm", "shoal", "--sort", "dso,symbol", "-g", "none", "--percent-limit", "1.5")
	os.Remove(data)
	return fmt.Sprintf("One cold run (`shoal run --no-daemon`, %d hosts, %.2f s under perf), sampled system-wide at 499 Hz "+
		"(the box is the client and all the hosts; other engineers' work shows up too).\n\n"+
		"Share of all CPU samples by process name:\n\n```\n%s\n```\n\nInside the shoal client, by symbol:\n\n```\n%s\n```\n",
		n, s.Wall, byComm, shoalSyms)
}
