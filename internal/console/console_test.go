package console

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/show"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runConsole runs a piped console over f on hosts with input and returns its status and output.
func runConsole(t *testing.T, f *fakeSession, hosts []string, input string, mod func(*Options)) (int, string) {
	t.Helper()
	var out bytes.Buffer
	opt := Options{Session: f, Hosts: hosts, In: strings.NewReader(input), Out: &out, Err: &out,
		interrupts: make(chan os.Signal)}
	if mod != nil {
		mod(&opt)
	}
	status, err := Run(context.Background(), opt)
	f.Close()
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	return status, out.String()
}

var three = []string{"n1", "n2", "n3"}

func TestPipedExitStatus(t *testing.T) {
	tests := []struct {
		input string
		want  int
	}{
		{"true\n", 0},
		{"echo hi\n", 0},
		{"fail 3\n", 3},
		{"fail 3\nfail 7\ntrue\n", 7},
		{"down\n", 255},
		{"down\nfail 9\n", 255},
		{"nosuchcommand\n", 127},
		{"\n# a comment\n\n", 0},
		{":nosuchbuiltin\n", 1},
	}
	for _, tt := range tests {
		got, out := runConsole(t, newFake(standard), three, tt.input, nil)
		if got != tt.want {
			t.Errorf("input %q: status %d; want %d\noutput:\n%s", tt.input, got, tt.want, out)
		}
	}
}

func TestPipedGatherOutput(t *testing.T) {
	_, out := runConsole(t, newFake(standard), three, "echo hello\nfail 4\n", nil)
	for _, want := range []string{
		"shoal n[1-3] (3)> echo hello\n",
		"n[1-3] (3)\n",
		"hello\n",
		"3 hosts in",
		"n2 (1) · exit 4",
		"failed:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("piped output holds escape codes:\n%q", out)
	}
}

func TestStreamAndJSONModes(t *testing.T) {
	_, out := runConsole(t, newFake(standard), three, ":output stream\necho hi\n", nil)
	if !strings.Contains(out, "n2 | hi\n") {
		t.Errorf("stream output lacks a prefixed line:\n%s", out)
	}
	_, out = runConsole(t, newFake(standard), three, ":output json\necho hi\n", nil)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "{") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 || !strings.Contains(lines[0], `"host":"n1"`) || !strings.Contains(lines[0], `"stdout":"hi\n"`) {
		t.Errorf("json output: got %q", lines)
	}
	if strings.Contains(out, "> echo hi") {
		t.Errorf("json mode echoed the prompt:\n%s", out)
	}
	var stdout, stderr bytes.Buffer
	Run(context.Background(), Options{Session: newFake(standard), Hosts: three, Mode: show.ModeJSON,
		In: strings.NewReader(":target n[1-2]\n:timeout 5s\necho hi\n"), Out: &stdout, Err: &stderr, interrupts: make(chan os.Signal)})
	if n := strings.Count(stdout.String(), "\n"); n != 2 || !strings.Contains(stderr.String(), "targets: n[1-2] (2)") {
		t.Errorf("piped json mode: stdout %q (want 2 JSON lines), stderr %q (want the remarks)", stdout.String(), stderr.String())
	}
}

func TestTargetBuiltins(t *testing.T) {
	f := newFake(standard)
	_, out := runConsole(t, f, nil, strings.Join([]string{
		"true",
		":target n[1-4]",
		":remove n2",
		":add n9,n10",
		":t",
		"true",
		":rm n[1-20]",
		"true",
	}, "\n")+"\n", nil)
	for _, want := range []string{
		"no targets",
		"targets: n[1-4] (4)\n",
		"targets: n[1,3-4] (3)\n",
		"targets: n[1,3-4,9-10] (5)\n",
		"targets: none\n",
		"shoal (no targets) (0)> ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	reqs := f.requests()
	if len(reqs) != 1 || !slices.Equal(reqs[0].Hosts, []string{"n1", "n3", "n4", "n9", "n10"}) {
		t.Errorf("requests: got %+v; want one on n[1,3-4,9-10]", reqs)
	}
}

func TestRetarget(t *testing.T) {
	f := newFake(standard)
	runConsole(t, f, []string{"n1", "n2", "n3", "n12"}, "fail 1\n:failed\ntrue\n:target n[1-3]\ndown\n:ok\ntrue\n:failed\n", nil)
	reqs := f.requests()
	if len(reqs) != 4 {
		t.Fatalf("got %d requests; want 4", len(reqs))
	}
	if got, want := reqs[1].Hosts, []string{"n2", "n12"}; !slices.Equal(got, want) {
		t.Errorf(":failed: got %v; want %v", got, want)
	}
	if got, want := reqs[3].Hosts, []string{"n1", "n2"}; !slices.Equal(got, want) {
		t.Errorf(":ok: got %v; want %v", got, want)
	}
}

func TestSettings(t *testing.T) {
	f := newFake(standard)
	_, out := runConsole(t, f, three, ":timeout 2m\n:fanout 7\n:timeout\n:fanout\n:output\ntrue\n:timeout off\n:timeout bogus\ntrue\n", func(o *Options) {
		o.Identity = "ada"
	})
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests; want 2", len(reqs))
	}
	if reqs[0].Timeout != 2*time.Minute || reqs[0].Fanout != 7 || reqs[0].Identity != "ada" {
		t.Errorf("request: got timeout %v fanout %d identity %q; want 2m 7 ada", reqs[0].Timeout, reqs[0].Fanout, reqs[0].Identity)
	}
	if reqs[1].Timeout != 0 {
		t.Errorf("after :timeout off: got %v", reqs[1].Timeout)
	}
	for _, want := range []string{"timeout: 2m0s\n", "fanout: 7\n", "output: gather\n", "timeout: off\n", `reading timeout "bogus"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestIdentityRequiredWhenPiped(t *testing.T) {
	var out bytes.Buffer
	_, err := Run(context.Background(), Options{Session: newFake(standard), In: strings.NewReader("true\n"), Out: &out, RequireIdentity: true})
	if err == nil || !strings.Contains(err.Error(), "SHOAL_IDENTITY") {
		t.Errorf("got %v; want an error naming SHOAL_IDENTITY", err)
	}
}

func TestInterrupt(t *testing.T) {
	f := newFake(standard)
	sigs := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-f.started
		sigs <- os.Interrupt
	}()
	status, out := runConsole(t, f, three, "sleep\ntrue\n", func(o *Options) { o.interrupts = sigs })
	<-done
	if status != show.ExitInterrupted {
		t.Errorf("status %d; want %d", status, show.ExitInterrupted)
	}
	for _, want := range []string{"quick\n", "cancelled", "interrupted: 2 not finished: n[2-3]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("piped console ran %d commands after the interrupt; want it to stop", n-1)
	}
}

func TestReportBuiltins(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "file")
	os.WriteFile(src, []byte("hello"), 0o640)
	status, out := runConsole(t, newFake(standard), three, strings.Join([]string{
		":ping", ":info", ":time", ":put " + src + " /tmp/dst", ":get /etc/x " + dir, ":status", "echo again", ":last", ":help", ":help put",
	}, "\n")+"\n", nil)
	for _, want := range []string{
		"ok n[1-2] (2): rtt min",
		"unreachable n3 (1): no route to host",
		"n1    linux/amd64",
		"← outlier",
		"1 outlier more than 100ms from the median: n2",
		"ok n[1-3] (3): put 5 B → /tmp/dst",
		"ok n[1-3] (3): get 7 B → " + dir + "/<host>/x",
		"daemon: pid 42",
		"ready        n[1-2] (2)",
		"# echo again",
		":put SRC DEST",
		"copy the local file SRC",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if status != show.ExitNotRun {
		t.Errorf("status %d; want 255 (a host did not answer ping)", status)
	}
}

func TestLocalCommand(t *testing.T) {
	status, out := runConsole(t, newFake(standard), three, "!echo local-$((1+2))\n!exit 5\n", nil)
	if !strings.Contains(out, "local-3\n") || status != 5 {
		t.Errorf("status %d, output:\n%s\nwant 5 and local-3", status, out)
	}
}

func TestQuit(t *testing.T) {
	f := newFake(standard)
	runConsole(t, f, three, "true\n:quit\ntrue\n", nil)
	if n := len(f.requests()); n != 1 {
		t.Errorf("ran %d commands; want 1 (none after :quit)", n)
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"put a b", []string{"put", "a", "b"}},
		{`put "a b" 'c d'`, []string{"put", "a b", "c d"}},
		{`put a\ b  c`, []string{"put", "a b", "c"}},
		{`x ""`, []string{"x", ""}},
	}
	for _, tt := range tests {
		got, err := splitArgs(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := splitArgs(`a "b`); err == nil {
		t.Errorf("splitArgs with an open quote: no error")
	}
}

func TestPrompt(t *testing.T) {
	c := &console{hosts: []string{"web01", "web02", "web03"}}
	if got, want := c.prompt(), "shoal web[01-03] (3)> "; got != want {
		t.Errorf("prompt %q; want %q", got, want)
	}
}

func TestSecondInterruptStopsWaiting(t *testing.T) {
	f := newFake(standard)
	f.release = make(chan struct{})
	sigs := make(chan os.Signal)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-f.started
		sigs <- os.Interrupt // cancel: the stubborn hosts do not confirm
		sigs <- os.Interrupt // stop waiting
	}()
	var out bytes.Buffer
	status, err := Run(context.Background(), Options{Session: f, Hosts: three, In: strings.NewReader("stubborn\n"),
		Out: &out, Err: &out, interrupts: sigs})
	<-done
	close(f.release) // let the fake finish its run, as a daemon would eventually
	f.Close()
	if err != nil || status != show.ExitInterrupted {
		t.Errorf("status %d, %v; want %d", status, err, show.ExitInterrupted)
	}
	if !strings.Contains(out.String(), "not confirmed before a second interrupt") {
		t.Errorf("output lacks the abandoned hosts:\n%s", out.String())
	}
}

// floodSession runs every command as one host that prints a line, waits for the cancel, and then
// sends more output before it confirms: what a flood looks like after Ctrl-C.
type floodSession struct {
	*fakeSession
	ready chan struct{} // closed once the first line was taken
}

func (s floodSession) Run(ctx context.Context, req client.RunRequest) (*client.Run, error) {
	ch := make(chan proto.RunEvent)
	cancel := make(chan struct{})
	var once sync.Once
	run := &client.Run{ID: 1, Events: ch, Cancel: func() { once.Do(func() { close(cancel) }) }}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(ch)
		ch <- proto.RunEvent{Host: "n1", Kind: proto.EventStart, PID: 7}
		ch <- proto.RunEvent{Host: "n1", Kind: proto.EventStdout, Data: []byte("before\n")}
		close(s.ready)
		<-cancel
		for range 3 {
			ch <- proto.RunEvent{Host: "n1", Kind: proto.EventStdout, Data: []byte("after\n")}
		}
		ch <- proto.RunEvent{Host: "n1", Kind: proto.EventDone, Result: &proto.HostResult{Host: "n1", Status: proto.StatusCancelled, Signal: "KILL", PID: 7}}
	}()
	return run, nil
}

// TestStreamInterruptHoldsFlood checks that stream mode stops printing output once Ctrl-C is
// pressed, and says how much it held back.
func TestStreamInterruptHoldsFlood(t *testing.T) {
	s := floodSession{fakeSession: newFake(standard), ready: make(chan struct{})}
	defer s.Close()
	interrupt := make(chan struct{})
	go func() {
		<-s.ready
		interrupt <- struct{}{}
	}()
	var b bytes.Buffer
	out, err := show.Run(context.Background(), s, client.RunRequest{Hosts: []string{"n1"}, Command: "yes"},
		show.View{Out: &b, Mode: show.ModeStream, Summary: true}, interrupt)
	if err != nil || !out.Interrupted {
		t.Fatalf("Exec = %+v, %v; want an interrupted outcome", out, err)
	}
	got := b.String()
	for _, want := range []string{"n1 | before\n", "(18 B of output that arrived after the interrupt not shown)", "interrupted: 1 not finished: n1"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "| after") {
		t.Errorf("stream mode printed output that arrived after the interrupt:\n%s", got)
	}
	if r := out.Results[0]; string(r.Stdout) != "before\nafter\nafter\nafter\n" {
		t.Errorf("result stdout %q; want all of it kept", r.Stdout)
	}
}
