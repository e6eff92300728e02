package faults_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// rolloutFleet is six sshd hosts and a home whose daemon has their agents running, and a way
// to make some of them fail: a host with ~/shoal-fail makes failCmd exit 3.
type rolloutFleet struct {
	f     *shoaltest.Fleet
	h     *home
	hosts []string
}

// failCmd exits 3 on a host marked to fail, else prints ok.
const failCmd = "test -e ~/shoal-fail && exit 3; echo ok"

func newRolloutFleet(t *testing.T) *rolloutFleet {
	t.Helper()
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 6})
	h := newHome(t, fleetConfig(f.SSHConfig, 6, ""))
	rf := &rolloutFleet{f: f, h: h, hosts: f.Names()}
	// Agents installed and running first, so that start times are the command's.
	if r := h.shoal(2*time.Minute, "run", "h[001-006]", "--", "true"); r.code != 0 {
		t.Fatalf("warming up: exit %d: %s", r.code, r.stderr)
	}
	return rf
}

// markFail makes failCmd fail on the hosts with these indexes (0-based) and succeed on the others.
func (rf *rolloutFleet) markFail(t *testing.T, idx ...int) {
	t.Helper()
	for i, fh := range rf.f.Hosts {
		p := filepath.Join(fh.Home, "shoal-fail")
		if slices.Contains(idx, i) {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// statuses returns the status of each host of res, in rf.hosts order, as "h001=ok h002=failed ...".
func (rf *rolloutFleet) statuses(res map[string]jsonResult) string {
	var b []string
	for _, hn := range rf.hosts {
		b = append(b, hn+"="+res[hn].Status)
	}
	return strings.Join(b, " ")
}

// TestRollout paces runs on real sshd hosts through the shoal binary: batches, a failure
// limit, canaries.
func TestRollout(t *testing.T) {
	rf := newRolloutFleet(t)
	h := rf.h

	t.Run("batch", func(t *testing.T) {
		rf.markFail(t)
		r := h.shoal(2*time.Minute, "run", "--json", "--batch", "2", "h[001-006]", "--", "date +%s.%N; sleep 1; date +%s.%N")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		res := parseResults(t, r.stdout)
		type span struct{ start, end float64 }
		var spans []span
		for _, hn := range rf.hosts {
			f := strings.Fields(res[hn].Stdout)
			if len(f) != 2 {
				t.Fatalf("%s: stdout %q; want two times", hn, res[hn].Stdout)
			}
			s, _ := strconv.ParseFloat(f[0], 64)
			e, _ := strconv.ParseFloat(f[1], 64)
			spans = append(spans, span{s, e})
		}
		slices.SortFunc(spans, func(a, b span) int { return int((a.start - b.start) * 1e9) })
		t0 := spans[0].start
		var starts []string
		for _, sp := range spans {
			starts = append(starts, fmt.Sprintf("%.2f", sp.start-t0))
		}
		t.Logf("start times (s after the first): %s", strings.Join(starts, " "))
		// Three waves: never more than two hosts running at once, and the k-th host starts
		// after the one two before it ended.
		for i, sp := range spans {
			running := 0
			for _, o := range spans {
				if o.start <= sp.start && sp.start < o.end {
					running++
				}
			}
			if running > 2 {
				t.Errorf("%d hosts running when host %d started; want at most 2 (start times %v)", running, i, starts)
			}
			if i >= 2 && sp.start < spans[i-2].start+1 {
				t.Errorf("start %d at %.2fs, less than 1s after start %d; want three waves (start times %v)", i, sp.start-t0, i-2, starts)
			}
		}
	})

	t.Run("max-fail", func(t *testing.T) {
		rf.markFail(t, 0, 1)
		r := h.shoal(2*time.Minute, "run", "--json", "--batch", "2", "--max-fail", "1", "h[001-006]", "--", failCmd)
		if r.code == 0 {
			t.Errorf("exit 0; want non-zero")
		}
		res := parseResults(t, r.stdout)
		want := "h001=failed h002=failed h003=skipped h004=skipped h005=skipped h006=skipped"
		if got := rf.statuses(res); got != want {
			t.Errorf("got %s; want %s", got, want)
		}
		if e := res["h003"].Error; e == nil || !strings.Contains(*e, "max-fail") {
			t.Errorf("h003: error %v; want one naming --max-fail", e)
		}
	})

	t.Run("canary", func(t *testing.T) {
		rf.markFail(t, 0)
		r := h.shoal(2*time.Minute, "run", "--json", "--canary", "1", "h[001-006]", "--", failCmd)
		if r.code == 0 {
			t.Errorf("exit 0; want non-zero")
		}
		want := "h001=failed h002=skipped h003=skipped h004=skipped h005=skipped h006=skipped"
		if got := rf.statuses(parseResults(t, r.stdout)); got != want {
			t.Errorf("got %s; want %s", got, want)
		}
		// A canary that succeeds lets the rest go on.
		rf.markFail(t, 5)
		r = h.shoal(2*time.Minute, "run", "--json", "--canary", "2", "--batch", "50%", "h[001-006]", "--", failCmd)
		want = "h001=ok h002=ok h003=ok h004=ok h005=ok h006=failed"
		if got := rf.statuses(parseResults(t, r.stdout)); got != want {
			t.Errorf("got %s; want %s", got, want)
		}
	})

	t.Run("retry @failed", func(t *testing.T) {
		rf.markFail(t, 1, 3, 4)
		if r := h.shoal(2*time.Minute, "run", "--json", "h[001-006]", "--", failCmd); r.code != 3 {
			t.Fatalf("first run: exit %d; want 3: %s", r.code, r.stderr)
		}
		// The retry runs on exactly the three that failed, and each of the sets names its hosts.
		rf.markFail(t)
		r := h.shoal(2*time.Minute, "run", "--json", "@failed", "--", "echo retried")
		res := parseResults(t, r.stdout)
		var got []string
		for hn, jr := range res {
			if jr.Status != "ok" || jr.Stdout != "retried\n" {
				t.Errorf("%s: %+v; want ok, retried", hn, jr)
			}
			got = append(got, hn)
		}
		slices.Sort(got)
		if want := "h002 h004 h005"; strings.Join(got, " ") != want {
			t.Errorf("@failed ran on %v; want %s", got, want)
		}
		// Now the last run is the retry: @last is its three hosts, @failed is none.
		if r := h.shoal(time.Minute, "run", "@last", "--", "true"); r.code != 0 {
			t.Errorf("@last: exit %d: %s", r.code, r.stderr)
		}
		if r := h.shoal(time.Minute, "run", "@failed", "--", "true"); r.code == 0 || !strings.Contains(r.stderr, "names no hosts") {
			t.Errorf("@failed after a run without failures: exit %d, %q; want an error saying it names no hosts", r.code, r.stderr)
		}
		// The sets of a paced run that stopped: @skipped and @ok.
		rf.markFail(t, 0)
		h.shoal(2*time.Minute, "run", "--json", "--batch", "1", "--max-fail", "1", "h[001-006]", "--", failCmd)
		r = h.shoal(time.Minute, "run", "--json", "@skipped", "--", "true")
		if n := len(parseResults(t, r.stdout)); n != 5 {
			t.Errorf("@skipped ran on %d hosts; want 5", n)
		}
	})

	t.Run("outdir", func(t *testing.T) {
		rf.markFail(t, 1)
		dir := filepath.Join(t.TempDir(), "out")
		errDir := filepath.Join(t.TempDir(), "err")
		cmd := "echo \"out $HOME\"; printf 'tab\\there <&> \\\\ \\\"q\\\"\\n'; echo err >&2; " + failCmd
		r := h.shoal(2*time.Minute, "run", "--json", "--outdir", dir, "h[001-006]", "--", cmd)
		if r.code != 3 {
			t.Fatalf("exit %d; want 3: %s", r.code, r.stderr)
		}
		lines := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var jr jsonResult
			if err := json.Unmarshal([]byte(line), &jr); err != nil {
				t.Fatalf("decoding %q: %v", line, err)
			}
			lines[jr.Host] = line
		}
		// HOST.status is the host's JSON line without its output, byte for byte.
		output := regexp.MustCompile(`"stdout":"(?:[^"\\]|\\.)*","stderr":"(?:[^"\\]|\\.)*",`)
		res := parseResults(t, r.stdout)
		for _, hn := range rf.hosts {
			out, _ := os.ReadFile(filepath.Join(dir, hn))
			errb, _ := os.ReadFile(filepath.Join(dir, hn+".err"))
			status, _ := os.ReadFile(filepath.Join(dir, hn+".status"))
			if string(out) != res[hn].Stdout || string(errb) != res[hn].Stderr {
				t.Errorf("%s: files hold %q and %q; the JSON %q and %q", hn, out, errb, res[hn].Stdout, res[hn].Stderr)
			}
			if want := output.ReplaceAllString(lines[hn], "") + "\n"; string(status) != want {
				t.Errorf("%s.status:\n%s\nwant the JSON line without its output:\n%s", hn, status, want)
			}
		}
		t.Logf("h002: %q\n%s", mustRead(t, filepath.Join(dir, "h002")), mustRead(t, filepath.Join(dir, "h002.status")))
		if !strings.Contains(string(mustRead(t, filepath.Join(dir, "h002.status"))), `"exit_code":3`) {
			t.Errorf("h002.status does not say exit 3")
		}
		// --errdir takes the .err files elsewhere.
		r = h.shoal(2*time.Minute, "run", "--outdir", dir, "--errdir", errDir, "h[001-002]", "--", "echo E >&2")
		if b := mustRead(t, filepath.Join(errDir, "h001.err")); string(b) != "E\n" {
			t.Errorf("errdir h001.err: %q; want E", b)
		}
		if b := mustRead(t, filepath.Join(dir, "h001")); len(b) != 0 {
			t.Errorf("outdir h001 after a run without stdout: %q; want empty", b)
		}
	})
}

// TestDiffOnFleet shows how one host's output differs, as a diff that patch applies.
func TestDiffOnFleet(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("no patch:", err)
	}
	rf := newRolloutFleet(t)
	rf.markFail(t, 2)
	cmd := "seq 1 12; test -e ~/shoal-fail && echo extra && seq 20 22; true"
	r := rf.h.shoal(2*time.Minute, "run", "--diff", "h[001-006]", "--", cmd)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	t.Logf("shoal run --diff:\n%s", r.stdout)
	if !strings.Contains(r.stdout, "--- h[001-002,004-006]\n+++ h003\n") {
		t.Errorf("no diff from the five hosts to h003 in:\n%s", r.stdout)
	}
	// patch, given the whole output, finds the diff and turns the majority's output into h003's.
	ref := filepath.Join(t.TempDir(), "ref")
	var want strings.Builder
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	os.WriteFile(ref, []byte(want.String()), 0o600)
	want.WriteString("extra\n20\n21\n22\n")
	p := exec.Command("patch", "-s", ref)
	p.Stdin = strings.NewReader(r.stdout)
	if out, err := p.CombinedOutput(); err != nil {
		t.Fatalf("patch: %v: %s", err, out)
	}
	if got := string(mustRead(t, ref)); got != want.String() {
		t.Errorf("patched:\n%s\nwant h003's output:\n%s", got, want.String())
	}
	// --diff-ref turns it round.
	r = rf.h.shoal(2*time.Minute, "run", "--diff-ref", "h003", "h[001-006]", "--", cmd)
	if !strings.Contains(r.stdout, "--- h003\n+++ h[001-002,004-006]\n") {
		t.Errorf("--diff-ref h003: no diff from h003 in:\n%s", r.stdout)
	}
}

// TestPutTree copies a tree with a symbolic link, an empty directory and a file of mode 0640 to
// sshd hosts and finds it identical there.
func TestPutTree(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	h := newHome(t, fleetConfig(f.SSHConfig, 2, ""))
	src := filepath.Join(h.root, "src")
	old := time.Date(2021, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for p, mode := range map[string]os.FileMode{"etc/app.conf": 0o640, "bin/tool": 0o755, "a/b/c/deep": 0o600} {
		full := filepath.Join(src, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte("content of "+p+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(full, mode)
		os.Chtimes(full, old, old)
	}
	os.Mkdir(filepath.Join(src, "empty"), 0o700)
	os.Symlink("../etc/app.conf", filepath.Join(src, "bin", "conf"))
	for _, d := range []string{"empty", "bin", "etc", "a/b/c", "a/b", "a", "."} {
		os.Chtimes(filepath.Join(src, d), old, old)
	}
	// Symbolic links get their own time; lchtimes through touch -h.
	if out, err := exec.Command("touch", "-h", "-d", "@1600000000", filepath.Join(src, "bin", "conf")).CombinedOutput(); err != nil {
		t.Fatalf("touch -h: %v: %s", err, out)
	}
	const find = `find tree -printf '%P %m %s %T@ %l\n' | sed 's/\.[0-9]* / /' | sort`
	r := h.shoal(2*time.Minute, "put", "-r", "h[001-002]", src, "tree")
	if r.code != 0 {
		t.Fatalf("put -r: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	local := exec.Command("sh", "-c", strings.Replace(find, "find tree", "find src", 1))
	local.Dir = h.root
	want, err := local.Output()
	if err != nil {
		t.Fatal(err)
	}
	r = h.shoal(time.Minute, "run", "--json", "h[001-002]", "--", find)
	res := parseResults(t, r.stdout)
	t.Logf("find on both sides (mtime to the second):\n%s", want)
	for _, hn := range f.Names() {
		if res[hn].Stdout != string(want) {
			t.Errorf("%s holds:\n%s\nwant:\n%s", hn, res[hn].Stdout, want)
		}
	}
	// get -r brings each host's copy back, identical again.
	back := filepath.Join(h.root, "back")
	if r := h.shoal(2*time.Minute, "get", "-r", "h[001-002]", "tree", back); r.code != 0 {
		t.Fatalf("get -r: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, hn := range f.Names() {
		c := exec.Command("sh", "-c", strings.Replace(find, "find tree", "find "+filepath.Join(back, hn, "tree"), 1))
		got, err := c.Output()
		if err != nil || string(got) != string(want) {
			t.Errorf("get -r into %s/%s: %v:\n%s\nwant:\n%s", back, hn, err, got, want)
		}
	}
	// Again, over a changed tree: the files are replaced, and one more arrives.
	os.WriteFile(filepath.Join(src, "etc", "new"), []byte("new\n"), 0o644)
	if r := h.shoal(2*time.Minute, "put", "-r", "h[001-002]", src, "tree"); r.code != 0 {
		t.Fatalf("second put -r: exit %d: %s", r.code, r.stderr)
	}
	r = h.shoal(time.Minute, "run", "--json", "h[001-002]", "--", "cat tree/etc/new tree/bin/conf")
	for hn, jr := range parseResults(t, r.stdout) {
		if jr.Stdout != "new\ncontent of etc/app.conf\n" {
			t.Errorf("%s: %q; want the new file and the file behind the link", hn, jr.Stdout)
		}
	}
	// A file is no tree, and a tree needs -r.
	if r := h.shoal(time.Minute, "put", "-r", "h001", filepath.Join(src, "bin", "tool"), "x"); r.code == 0 {
		t.Errorf("put -r of a file: exit 0")
	}
	if r := h.shoal(time.Minute, "put", "h001", src, "x"); r.code == 0 || !strings.Contains(r.stderr, "put -r") {
		t.Errorf("put of a directory: exit %d, %q; want a hint at put -r", r.code, r.stderr)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
