package console

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestRolloutSettings(t *testing.T) {
	f := newFake(standard)
	_, out := runConsole(t, f, three, ":batch 2\n:maxfail 10%\n:canary 1\n:batch\ntrue\n:batch off\n:maxfail off\n:canary off\ntrue\n:batch 0%\n", nil)
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d runs; want 2\n%s", len(reqs), out)
	}
	if got, want := reqs[0].Rollout, (proto.Rollout{Batch: 2, MaxFailPercent: 10, Canary: 1}); got == nil || *got != want {
		t.Errorf("paced run: rollout %+v; want %+v", got, want)
	}
	if reqs[1].Rollout != nil {
		t.Errorf("after off: rollout %+v; want none", reqs[1].Rollout)
	}
	for _, want := range []string{"batch: 2\n", "maxfail: 10%\n", "canary: 1\n", "batch: off\n", `reading batch "0%"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestCanaryAsks runs a canary the way an interactive console does: the canary alone, a
// question, then the rest or nothing.
func TestCanaryAsks(t *testing.T) {
	hosts := []string{"n1", "n2", "n3", "n4"}
	for _, tc := range []struct {
		answer string
		runs   int
		want   string
	}{
		{"y\n", 2, "ok ok ok ok"},
		{"n\n", 1, "ok skipped skipped skipped"},
		{"", 1, "ok skipped skipped skipped"}, // no answer at all
	} {
		f := newFake(standard)
		c := &console{sess: f, out: io.Discard, errw: io.Discard, hosts: hosts, interrupts: make(chan struct{}, 1),
			lr: &scanReader{sc: bufio.NewScanner(strings.NewReader(tc.answer))}, opt: Options{interrupts: make(chan os.Signal)}}
		out, err := c.runCanary(context.Background(), "true", &proto.Rollout{Canary: 1, Batch: 2})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		reqs := f.requests()
		var got []string
		for _, r := range out.Results {
			got = append(got, string(r.Status))
		}
		if len(reqs) != tc.runs || strings.Join(got, " ") != tc.want {
			t.Errorf("answer %q: %d runs, results %v; want %d runs, %s", tc.answer, len(reqs), got, tc.runs, tc.want)
			continue
		}
		if len(reqs[0].Hosts) != 1 || reqs[0].Rollout.Canary != 0 {
			t.Errorf("answer %q: canary run %v %+v; want n1 alone, no canary", tc.answer, reqs[0].Hosts, reqs[0].Rollout)
		}
		if tc.runs == 2 && (strings.Join(reqs[1].Hosts, " ") != "n2 n3 n4" || reqs[1].Rollout.Batch != 2) {
			t.Errorf("answer %q: second run %v %+v; want n2 n3 n4 in batches of 2", tc.answer, reqs[1].Hosts, reqs[1].Rollout)
		}
	}
}

func TestDiffBuiltin(t *testing.T) {
	f := newFake(func(host, cmd string) (proto.HostResult, bool) {
		r, block := standard(host, cmd)
		if cmd == "which" && strings.HasSuffix(host, "2") {
			r.Stdout = []byte("two\n")
		}
		return r, block
	})
	_, out := runConsole(t, f, []string{"n1", "n2", "n12"}, ":diff\nwhich\n:diff\n:diff n1\n:diff n9\ntrue\n:diff\n", nil)
	for _, want := range []string{"no command has run yet", "--- n[2,12]\n+++ n1\n", "--- n1\n+++ n[2,12]\n",
		"diff against n9: no such host", "nothing to diff"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
