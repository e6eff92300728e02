package faults_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHistoryAfterBigRun runs a command whose output makes a history line longer than the
// history's byte bound, between two small ones, restarts the daemon and asks for the last 3
// runs: all three must be there, and stay there after the compaction that follows.
func TestHistoryAfterBigRun(t *testing.T) {
	t.Parallel()
	h := newHome(t, localConfig(1, ""))
	// 7.3 MB of output is 9.7 MB of base64 in history.jsonl: past the 8 MiB bound + 1 MiB
	// a line could have before.
	for _, cmd := range []string{"echo a", "head -c 7300000 /dev/zero | tr '\\0' a", "echo c"} {
		if r := h.shoal(2*time.Minute, "run", "lab1", "--", cmd); r.code != 0 {
			t.Fatalf("shoal run %q: exit %d\n%s", cmd, r.code, clip(r.stderr))
		}
	}
	if r := h.shoal(time.Minute, "daemon", "stop"); r.code != 0 {
		t.Fatalf("daemon stop: exit %d\n%s", r.code, r.stderr)
	}
	waitFor(10*time.Second, func() bool { return len(h.daemons()) == 0 })
	check := func(when string) {
		t.Helper()
		r := h.shoal(2*time.Minute, "--json", "last", "3")
		if r.code != 0 {
			t.Fatalf("%s: shoal last 3: exit %d\n%s", when, r.code, clip(r.stderr))
		}
		var outs []string
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if strings.Contains(line, `"host"`) {
				outs = append(outs, line)
			}
		}
		if len(outs) != 3 || !strings.Contains(outs[0], `"a\n"`) || !strings.Contains(outs[2], `"c\n"`) ||
			!strings.Contains(outs[1], strings.Repeat("a", 7_300_000)) {
			t.Fatalf("%s: shoal last 3 shows %d host results; want echo a, the 7.3 MB run and echo c", when, len(outs))
		}
		t.Logf("%s: shoal last 3 shows all 3 runs, the middle one with 7,300,000 bytes", when)
	}
	check("after a restart")
	// Push the file past twice the bound so the next run compacts it, and check again.
	st, _ := os.Stat(filepath.Join(h.state, "history.jsonl"))
	t.Logf("history.jsonl is %d bytes", st.Size())
	if r := h.shoal(2*time.Minute, "run", "lab1", "--", "head -c 3000000 /dev/zero | tr '\\0' b; echo; echo d"); r.code != 0 {
		t.Fatalf("shoal run: exit %d\n%s", r.code, clip(r.stderr))
	}
	r := h.shoal(time.Minute, "--json", "last", "4")
	if r.code != 0 || strings.Count(r.stdout, `"host"`) < 2 {
		t.Fatalf("after a compaction: shoal last 4: exit %d, %d results\n%s", r.code, strings.Count(r.stdout, `"host"`), clip(r.stderr))
	}
	t.Logf("after a compaction: shoal last 4 shows %d runs", strings.Count(r.stdout, `"host"`))
}
