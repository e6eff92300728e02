package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileRun records, system-wide with perf, one run of t on n hosts, and returns where the
// machine's CPU went (by process name) and the shoal processes' hottest symbols. System-wide,
// because on this one box the sshd and the agents are the "hosts" (and the daemon is apart).
func (b *bench) profileRun(ctx context.Context, t *tool, n int, label string) string {
	if _, err := exec.LookPath("perf"); err != nil {
		return "perf is not installed; no profile."
	}
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
	if t.check != nil {
		if err := t.check(out, n); err != nil {
			return "profiled run failed: " + err.Error()
		}
	} else if got, _ := countMarkers(out, n); got != n {
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
	// The agents run from ~/.cache/shoal/agent-<hash> inside the hosts' mount namespaces, out of
	// perf's sight: give it a symbol tree where that path (and the client's) is our binary.
	comms := "shoal"
	symfs := filepath.Join(b.c.work, "symfs")
	if sum, err := fileSHA256(b.k.shoal); err == nil {
		agent := filepath.Join(symfs, "root", ".cache", "shoal", "agent-"+sum[:16])
		os.MkdirAll(filepath.Dir(agent), 0o755)
		os.Link(b.k.shoal, agent)
		comms += ",agent-" + sum[:9] // comm names are cut at 15 bytes
	}
	own := filepath.Join(symfs, b.k.shoal)
	os.MkdirAll(filepath.Dir(own), 0o755)
	os.Link(b.k.shoal, own)
	shoalSyms := report("--comms", comms, "--symfs", symfs, "--kallsyms", "/proc/kallsyms", "--sort", "comm,sym", "-g", "none", "--percent-limit", "0.5")
	os.Remove(data)
	return fmt.Sprintf("One %s run (%d hosts, %.2f s under perf), sampled system-wide at 499 Hz "+
		"(the box is the client and all the hosts; anything else running shows up too).\n\n"+
		"Share of all CPU samples by process name (agents show as `agent-<hash>`):\n\n```\n%s\n```\n\nInside shoal's processes (client or daemon, and agents), by symbol, as a share of all samples:\n\n```\n%s\n```\n",
		label, n, s.Wall, byComm, shoalSyms)
}

// fileSHA256 returns the hex SHA-256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
