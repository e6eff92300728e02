package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
)

// runOne runs cmd on hosts through c and returns the results, failing t after limit.
func runOne(t testing.TB, c *client.Client, hosts []string, cmd string, limit time.Duration) map[string]*proto.HostResult {
	t.Helper()
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: hosts, Command: cmd})
	if err != nil {
		t.Fatalf("run %q: %v", cmd, err)
	}
	res := collect(t, r, limit)
	checkClientResults(t, res, hosts)
	return res
}

// TestOutputExtremes runs commands whose output is hostile: a gigabyte, a 10 MB line without a
// newline, every byte value, and commands that close stdout or leave a child holding it.
func TestOutputExtremes(t *testing.T) {
	t.Parallel()
	h := newHome(t, localConfig(2, "[agent]\noutput_cap = \"16MiB\"\n"))
	c := h.dial()
	hosts := []string{"lab1", "lab2"}

	t.Run("Huge", func(t *testing.T) {
		size := "256M"
		if long() {
			size = "1G"
		}
		start := time.Now()
		res := runOne(t, c, hosts, "head -c "+size+" /dev/zero", 5*time.Minute)
		for _, hn := range hosts {
			r := res[hn]
			if r.Status != proto.StatusOK || !r.Truncated || len(r.Stdout) > 16<<20 || len(r.Stdout) < 1<<20 {
				t.Errorf("%s: %s truncated=%v %d bytes kept, err %q; want ok, truncated, at most 16 MiB",
					hn, r.Status, r.Truncated, len(r.Stdout), r.Err)
			}
		}
		t.Logf("%s of output on %d hosts: %v, kept %d bytes each", size, len(hosts), time.Since(start), len(res["lab1"].Stdout))
	})

	t.Run("LongLine", func(t *testing.T) {
		res := runOne(t, c, hosts, "head -c 10000000 /dev/zero | tr '\\0' x", 2*time.Minute)
		for _, hn := range hosts {
			r := res[hn]
			if r.Status != proto.StatusOK || len(r.Stdout) != 10000000 || r.Truncated ||
				len(bytes.Trim(r.Stdout, "x")) != 0 {
				t.Errorf("%s: %s, %d bytes, truncated=%v; want the whole 10,000,000-byte line", hn, r.Status, len(r.Stdout), r.Truncated)
			}
		}
		// The console folds it without choking.
		out := h.shoal(2*time.Minute, "run", "lab1", "--", "head -c 10000000 /dev/zero | tr '\\0' y")
		if out.code != 0 || !strings.Contains(out.stdout, strings.Repeat("y", 1000)) {
			t.Errorf("shoal run of a 10 MB line: exit %d, %d bytes out", out.code, len(out.stdout))
		}
	})

	t.Run("Binary", func(t *testing.T) {
		var want []byte
		for range 64 {
			for b := range 256 {
				want = append(want, byte(b))
			}
		}
		res := runOne(t, c, hosts, `for i in $(seq 0 255); do printf "\\$(printf %o $i)"; done > b; for r in $(seq 64); do cat b; done`, time.Minute)
		for _, hn := range hosts {
			if r := res[hn]; !bytes.Equal(r.Stdout, want) {
				t.Errorf("%s: binary output differs: %d bytes; want %d", hn, len(r.Stdout), len(want))
			}
		}
		// Through the console every byte value and escape sequence is made harmless.
		out := h.shoal(time.Minute, "run", "lab1", "--", `printf '\033]0;owned\007\033[2J\x00\xff\xfe done'`)
		if strings.Contains(out.stdout, "\033]0;") || strings.Contains(out.stdout, "\033[2J") {
			t.Errorf("terminal escape reached the console's output: %q", out.stdout)
		}
		if !strings.Contains(out.stdout, "done") {
			t.Errorf("console output of binary bytes: %q", out.stdout)
		}
	})

	t.Run("ClosesStdout", func(t *testing.T) {
		start := time.Now()
		res := runOne(t, c, hosts, "echo before; exec 1>&- 2>&-; sleep 1; exit 7", time.Minute)
		for _, hn := range hosts {
			r := res[hn]
			if r.Status != proto.StatusFailed || r.ExitCode != 7 || string(r.Stdout) != "before\n" {
				t.Errorf("%s: %s exit %d %q; want failed, exit 7, \"before\\n\"", hn, r.Status, r.ExitCode, r.Stdout)
			}
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("result after %v, before the command ended", d)
		}
	})

	t.Run("ChildHoldsStdout", func(t *testing.T) {
		// bash exits at once; a background child keeps stdout open for 30 s.
		nap := fmt.Sprintf("30.%06d", time.Now().Nanosecond()/1000)
		start := time.Now()
		res := runOne(t, c, hosts, "sleep "+nap+" & echo parent-done", time.Minute)
		took := time.Since(start)
		for _, hn := range hosts {
			r := res[hn]
			if r.Status != proto.StatusOK || !strings.HasPrefix(string(r.Stdout), "parent-done") {
				t.Errorf("%s: %s %q", hn, r.Status, r.Stdout)
			}
		}
		if took > 15*time.Second {
			t.Errorf("result took %v: the run waited for the child holding stdout", took)
		}
		t.Logf("result after %v; background children left running: %d", took, countProcs("sleep", nap))
	})
}

// TestQueueLimits floods one agent with commands past its queue: the excess is refused with a
// clear "busy", nothing hangs, and a bounded fork bomb is stopped by its own ulimit and the timeout.
func TestQueueLimits(t *testing.T) {
	t.Parallel()
	h := newHome(t, localConfig(1, "[agent]\nmax_running = 2\nmax_queued = 2\n"))
	c := h.dial()
	runOne(t, c, []string{"lab1"}, "true", time.Minute) // start the agent
	const n = 12
	var wg sync.WaitGroup
	res := make([]*proto.HostResult, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"lab1"}, Command: "sleep 1"})
			if err != nil {
				t.Error(err)
				return
			}
			res[i] = collect(t, r, time.Minute)["lab1"]
		}()
	}
	wg.Wait()
	counts := map[proto.Status]int{}
	for i, r := range res {
		nCommands.Add(1)
		nBadInputs.Add(1)
		if r == nil {
			nLost.Add(1)
			t.Errorf("command %d: no result", i)
			continue
		}
		counts[r.Status]++
		if r.Status == proto.StatusRefused && !strings.Contains(strings.ToLower(r.Err), "busy") {
			t.Errorf("refused without saying busy: %q", r.Err)
		}
	}
	t.Logf("%d commands at once on max_running=2 max_queued=2: %v", n, counts)
	if counts[proto.StatusOK] < 4 || counts[proto.StatusRefused] == 0 || counts[proto.StatusOK]+counts[proto.StatusRefused] != n {
		t.Errorf("outcomes %v; want at least 4 ok (2 running + 2 queued) and the rest refused as busy", counts)
	}

	// A fork bomb, bounded by construction (depth 6: at most 127 processes) and by ulimit, stopped
	// by the command timeout: every process of it must be gone afterwards.
	nap := fmt.Sprintf("60.%06d", time.Now().Nanosecond()/1000)
	bomb := "ulimit -u 512 2>/dev/null; b(){ if [ $1 -gt 0 ]; then b $(($1-1)) & b $(($1-1)); wait; else sleep " + nap + "; fi; }; b 6"
	nFaults.Add(1)
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"lab1"}, Command: bomb, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	peak := 0
	res2 := map[string]*proto.HostResult{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		res2 = collect(t, r, time.Minute)
	}()
	for {
		select {
		case <-done:
		case <-time.After(200 * time.Millisecond):
			peak = max(peak, countProcs("sleep", nap))
			continue
		}
		break
	}
	checkClientResults(t, res2, []string{"lab1"})
	b := res2["lab1"]
	left := 0
	waitFor(10*time.Second, func() bool { left = countProcs("sleep", nap); return left == 0 })
	t.Logf("bounded fork bomb: %s %q, peak %d leaves, %d left after the timeout", b.Status, b.Err, peak, left)
	if b.Status != proto.StatusTimeout {
		t.Errorf("fork bomb with a 3s timeout: %s %q; want timeout", b.Status, b.Err)
	}
	if left != 0 {
		t.Errorf("%d processes of the fork bomb left after its timeout", left)
	}
}

// mountTmpfs mounts a tmpfs of size at dir and unmounts it when t ends; it skips t when
// mounting is not permitted.
func mountTmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		for range 50 {
			if exec.Command("umount", dir).Run() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		exec.Command("umount", "-l", dir).Run()
	})
}

// TestDiskFull fills the agent's disk while it writes a result and while it writes a file.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	h := newHome(t, localConfig(1, ""))
	// The local agent of lab1 keeps its results in <cache>/local/lab1: make that a 1 MiB disk.
	mountTmpfs(t, filepath.Join(h.cache, "local", "lab1"), "1m")
	target := filepath.Join(h.root, "target")
	mountTmpfs(t, target, "1m")
	c := h.dial()
	nFaults.Add(2)

	res := runOne(t, c, []string{"lab1"}, "head -c 3000000 /dev/zero | tr '\\0' z; echo end >&2", time.Minute)
	r := res["lab1"]
	t.Logf("3 MB of output into a 1 MiB result disk: %s exit %d truncated=%v kept %d bytes err=%q",
		r.Status, r.ExitCode, r.Truncated, len(r.Stdout), r.Err)
	if r.Status == proto.StatusOK && !r.Truncated && len(r.Stdout) != 3000000 {
		t.Errorf("output silently cut to %d bytes: ok, not truncated, no error", len(r.Stdout))
	}
	// The agent still works once space is back.
	res = runOne(t, c, []string{"lab1"}, "echo alive", time.Minute)
	if r := res["lab1"]; r.Status != proto.StatusOK || string(r.Stdout) != "alive\n" {
		t.Errorf("after the full disk: %s %q %q", r.Status, r.Stdout, r.Err)
	}

	// A put that does not fit: a clear error, the old file kept.
	old := []byte("old content\n")
	dest := filepath.Join(target, "f")
	if err := os.WriteFile(dest, old, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(h.root, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("b"), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	fr, err := c.Put(context.Background(), []string{"lab1"}, client.PutRequest{LocalPath: big, Dest: dest})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	nCommands.Add(1)
	if len(fr) != 1 || fr[0].Status == proto.StatusOK || fr[0].Err == "" {
		t.Errorf("put of 3 MiB into 1 MiB: %+v; want a clear error", fr)
	} else {
		t.Logf("put into a full disk: %s %q", fr[0].Status, fr[0].Err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, old) {
		t.Errorf("old file after a failed put: %q; want %q", clip(string(got)), old)
	}
	ents, _ := os.ReadDir(target)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("temp files left in the target directory: %v", names)
	}
}

func clientRun(hosts []string, cmd string) client.RunRequest {
	return client.RunRequest{Hosts: hosts, Command: cmd}
}
