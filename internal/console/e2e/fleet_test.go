package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// fleetConfig writes a configuration naming the fleet's hosts h001… (over SSH, with the fleet's
// ssh_config) and one host nobody listens for.
func fleetConfig(t *testing.T, dir string, f *shoaltest.Fleet) string {
	t.Helper()
	p := filepath.Join(dir, "fleet.toml")
	cfg := `[daemon]
use = false

[ssh]
ssh_config = "` + f.SSHConfig + `"
connect_timeout = "5s"

[tags]
fleet = "` + "h[001-" + strings.TrimPrefix(f.Hosts[len(f.Hosts)-1].Name, "h") + "]" + `"

[[host]]
name = "h[001-999]"
transport = "ssh"

[[host]]
name = "dead"
address = "127.0.0.1"
port = 1
transport = "ssh"
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFleetOneShot runs one-shot commands over real SSH: the agent is installed on each host,
// and exit statuses follow the rules, unreachable hosts included.
func TestFleetOneShot(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 3})
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	base := []string{"--config", cfg, "--no-daemon"}
	tests := []struct {
		targets, cmd string
		want         int
		out          string
	}{
		{"@fleet", "id -un | sed s/shoalt.*/user/", 0, "h[001-003] (3)\n"},
		{"@fleet", `case $(id -un) in *2) exit 4;; esac`, 4, "h002 (1) · exit 4"},
		{"@fleet,dead", "true", 255, "dead (1) · unreachable"},
	}
	for _, tt := range tests {
		out, errOut, code := shoal(t, dir, "", append(base, "run", tt.targets, "--", tt.cmd)...)
		if code != tt.want || !strings.Contains(out, tt.out) {
			t.Errorf("run %s -- %s: status %d, want %d and %q\nstdout:\n%s\nstderr:\n%s", tt.targets, tt.cmd, code, tt.want, tt.out, out, errOut)
		}
	}
	out, errOut, code := shoal(t, dir, "", append(base, "time", "@fleet")...)
	if code != 0 || !strings.Contains(out, "no outliers") {
		t.Errorf("time: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestFleetConsoleInterrupt presses Ctrl-C in the console during `sleep 1000` on the fleet and
// checks that no sleep is left on any host.
func TestFleetConsoleInterrupt(t *testing.T) {
	t.Parallel()
	requireConsole(t)
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 3})
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	tm := newTerm(t, dir, shoaltest.Binary(t)+" --config "+cfg+" --no-daemon -o stream @fleet")
	tm.waitPrompt()
	tm.typeLine("echo pid=$$; exec sleep 1000")
	re := regexp.MustCompile(`(h\d+) +\| pid=(\d+)`)
	s := tm.waitFor("three pids", func(s string) bool { return len(re.FindAllString(s, -1)) >= 3 })
	pids := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		pids[m[1]], _ = strconv.Atoi(m[2])
	}
	for h, pid := range pids {
		if !alive(pid) {
			t.Fatalf("%s: sleep %d is not running before Ctrl-C", h, pid)
		}
	}
	tm.keys("C-c")
	s = tm.waitCount("interrupted: 3 not finished: h[001-003]", 1)
	tm.waitPrompt()
	for h, pid := range pids {
		deadline := time.Now().Add(5 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("%s: sleep %d still runs after Ctrl-C", h, pid)
		}
	}
	if !strings.Contains(s, "3 cancelled") {
		t.Errorf("no cancelled summary:\n%s", s)
	}
	tm.typeLine(":quit")
	tm.waitCount("EXITED 0", 1)
}
