package daemon_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/certs"
	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/hostsess"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if sock := os.Getenv("SHOAL_TEST_PEER_DIAL"); sock != "" {
		peerDialHelper(sock)
		return
	}
	shoaltest.Main(m)
}

// peerDialHelper runs in a copy of the test binary started as another user: it
// connects to the daemon and prints what the daemon's hello says.
func peerDialHelper(sock string) {
	nc, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(2)
	}
	defer nc.Close()
	env, err := proto.NewConn(nc, nc, proto.ConnOptions{}).Recv()
	if err != nil {
		fmt.Println("recv:", err)
		os.Exit(2)
	}
	var h proto.DaemonHello
	env.Decode(&h)
	fmt.Println("hello error:", h.Err)
	os.Exit(0)
}

// checkLeaks fails t if goroutines started during it outlive its cleanups.
// Call it first, so its cleanup runs last.
func checkLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// testDaemon is a daemon serving on a Unix socket in a temp dir.
type testDaemon struct {
	socket string
	dir    string
	done   chan error
	stop   context.CancelFunc
}

func startDaemon(t *testing.T, tr transport.Transport, tweak func(*daemon.Options)) *testDaemon {
	t.Helper()
	return startDaemonTweak(t, tr, tweak)
}

func startDaemonTweak(t testing.TB, tr transport.Transport, tweak func(*daemon.Options)) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	socket := config.Paths{RuntimeDir: filepath.Join(dir, "run", "shoal")}.Socket()
	ln, err := daemon.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	al, err := audit.Open(audit.Options{Path: filepath.Join(dir, "state", "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	opts := daemon.Options{
		Resolve: func(host string) (daemon.Host, error) {
			return daemon.Host{Target: transport.Target{Name: host}, Transport: tr, TransportName: "pipe"}, nil
		},
		Socket:      socket,
		Version:     "test",
		Audit:       al,
		StateFile:   filepath.Join(dir, "state", "state.json"),
		HistoryFile: filepath.Join(dir, "state", "history.jsonl"),
		Session:     hostsess.Options{KillWait: 500 * time.Millisecond, ConnectTimeout: time.Minute},
	}
	if tweak != nil {
		tweak(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &testDaemon{socket: socket, dir: dir, done: make(chan error, 1), stop: cancel}
	go func() { d.done <- daemon.Serve(ctx, ln, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-d.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		al.Close()
	})
	return d
}

func (d *testDaemon) dial(t *testing.T, identity string) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), client.Options{Socket: d.socket, Identity: identity, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// collect reads a run's events until the channel closes.
func collect(t *testing.T, r *client.Run) (events []proto.RunEvent, done map[string]*proto.HostResult) {
	t.Helper()
	done = map[string]*proto.HostResult{}
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ev, ok := <-r.Events:
			if !ok {
				return events, done
			}
			events = append(events, ev)
			if ev.Kind == proto.EventDone {
				if done[ev.Host] != nil {
					t.Errorf("host %s got two done events", ev.Host)
				}
				done[ev.Host] = ev.Result
			}
		case <-timeout:
			t.Fatal("run did not finish within 60s")
		}
	}
}

func TestRunBasic(t *testing.T) {
	checkLeaks(t)
	d := startDaemon(t, newPipeTransport(t), nil)
	c := d.dial(t, "alice")
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"a", "b"}, Command: "echo out; echo err >&2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID == 0 {
		t.Error("run id is 0")
	}
	_, done := collect(t, r)
	for _, h := range []string{"a", "b"} {
		res := done[h]
		if res == nil {
			t.Fatalf("no result for %s", h)
		}
		if res.Status != proto.StatusFailed || res.ExitCode != 3 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
			t.Errorf("%s: got %+v; want failed, exit 3, out/err", h, res)
		}
	}
}

func TestTwoClientsOverlappingHosts(t *testing.T) {
	checkLeaks(t)
	d := startDaemon(t, newPipeTransport(t), nil)
	c1, c2 := d.dial(t, "one"), d.dial(t, "two")
	hosts1 := []string{"h1", "h2", "h3"}
	hosts2 := []string{"h2", "h3", "h4"}
	var wg sync.WaitGroup
	check := func(c *client.Client, hosts []string, word string) {
		defer wg.Done()
		for i := range 3 {
			r, err := c.Run(context.Background(), client.RunRequest{Hosts: hosts, Command: fmt.Sprintf("echo %s-%d", word, i)})
			if err != nil {
				t.Error(err)
				return
			}
			events, done := collect(t, r)
			var got []string
			for h := range done {
				got = append(got, h)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(hosts, ",") {
				t.Errorf("%s run %d: results for %v; want %v", word, i, got, hosts)
			}
			for _, ev := range events {
				if ev.Kind == proto.EventStdout && string(ev.Data) != fmt.Sprintf("%s-%d\n", word, i) {
					t.Errorf("%s run %d: got output %q from %s, not ours", word, i, ev.Data, ev.Host)
				}
			}
			for h, res := range done {
				if res.Status != proto.StatusOK || string(res.Stdout) != fmt.Sprintf("%s-%d\n", word, i) {
					t.Errorf("%s run %d: %s result %+v", word, i, h, res)
				}
			}
		}
	}
	wg.Add(2)
	go check(c1, hosts1, "one")
	go check(c2, hosts2, "two")
	wg.Wait()
}

// gone reports whether the process group pgid has no process left, waiting a bounded time.
func waitGone(t *testing.T, pgid int) {
	t.Helper()
	for range 500 {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	t.Errorf("process group %d still alive 10s after its client left", pgid)
}

func TestDisconnectKillsRemoteWork(t *testing.T) {
	checkLeaks(t)
	d := startDaemon(t, newPipeTransport(t), nil)
	c, err := client.Dial(context.Background(), client.Options{Socket: d.socket})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"a", "b"}, Command: "sleep 1000 & sleep 1000"})
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for ev := range r.Events {
		if ev.Kind == proto.EventStart {
			pids[ev.Host] = ev.PID
		}
		if len(pids) == 2 {
			break
		}
	}
	c.Close()
	for h, pid := range pids {
		if pid <= 0 {
			t.Fatalf("host %s: no pid", h)
		}
		waitGone(t, pid)
	}
	// The daemon still serves, and the history shows the cancelled run.
	c2 := d.dial(t, "")
	last, err := c2.Last(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 || len(last[0].Results) != 2 || last[0].Results[0].Status != proto.StatusCancelled {
		t.Errorf("Last after a disconnect: %+v; want one run with two cancelled hosts", last)
	}
}

func TestCancel(t *testing.T) {
	d := startDaemon(t, newPipeTransport(t), nil)
	c := d.dial(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := c.Run(ctx, client.RunRequest{Hosts: []string{"a"}, Command: "sleep 1000"})
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	var res *proto.HostResult
	for ev := range r.Events {
		if ev.Kind == proto.EventStart {
			pid = ev.PID
			cancel()
		}
		if ev.Kind == proto.EventDone {
			res = ev.Result
		}
	}
	if res == nil || res.Status != proto.StatusCancelled {
		t.Fatalf("result %+v; want cancelled", res)
	}
	waitGone(t, pid)
}

func TestPeerOfAnotherUserRefused(t *testing.T) {
	d := startDaemon(t, newPipeTransport(t), func(o *daemon.Options) {
		daemon.SetPeerCred(o, func(net.Conn) (daemon.PeerCred, error) {
			return daemon.PeerCred{UID: os.Getuid() + 1, PID: 1, Known: true}, nil
		})
	})
	_, err := client.Dial(context.Background(), client.Options{Socket: d.socket})
	var re *client.RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), fmt.Sprintf("uid %d", os.Getuid()+1)) {
		t.Fatalf("Dial: %v; want a refusal naming uid %d", err, os.Getuid()+1)
	}
}

// TestRealPeerOfAnotherUserRefused opens the socket to everyone and connects as
// nobody: SO_PEERCRED must refuse it. It needs root (to switch user).
func TestRealPeerOfAnotherUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another user")
	}
	dir, err := os.MkdirTemp("", "shoal-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	socket := filepath.Join(dir, "run", "shoal.sock")
	ln, err := daemon.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	// Open what Listen closed, so only the uid check stands in the way.
	os.Chmod(filepath.Dir(socket), 0o755)
	os.Chmod(socket, 0o666)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Serve(ctx, ln, daemon.Options{Resolve: func(string) (daemon.Host, error) { return daemon.Host{}, errors.New("none") }})
	}()
	defer func() {
		cancel()
		<-done
	}()
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	if err := os.WriteFile(helper, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helper)
	cmd.Env = []string{"SHOAL_TEST_PEER_DIAL=" + socket}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v: %s", err, out)
	}
	if want := "refusing client of uid 65534"; !strings.Contains(string(out), want) {
		t.Errorf("helper got %q; want a hello error containing %q", out, want)
	}
}

func TestDaemonRefusesOtherClientVersion(t *testing.T) {
	d := startDaemon(t, newPipeTransport(t), nil)
	nc, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pc := proto.NewConn(nc, nc, proto.ConnOptions{})
	if err := pc.Send(0, proto.TypeClientHello, &proto.ClientHello{Protocol: proto.Version, Client: proto.ClientVersion + 1, Program: "v9"}); err != nil {
		t.Fatal(err)
	}
	env, err := pc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var h proto.DaemonHello
	env.Decode(&h)
	if !strings.Contains(h.Err, "protocol") || !strings.Contains(h.Err, `"v9"`) {
		t.Errorf("daemon hello Err %q; want a protocol mismatch naming the client's version", h.Err)
	}
	if _, err := pc.Recv(); err == nil {
		t.Error("the daemon kept the connection open after refusing it")
	}
}

func TestClientReportsVersionMismatch(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		pc := proto.NewConn(b, b, proto.ConnOptions{})
		pc.Send(0, proto.TypeDaemonHello, &proto.DaemonHello{Protocol: proto.Version, Client: proto.ClientVersion + 1, Program: "v0.1"})
		pc.Recv()
	}()
	_, err := client.New(context.Background(), a, client.Options{Version: "v0.2"})
	var ve *client.VersionError
	if !errors.As(err, &ve) {
		t.Fatalf("New: %v; want a *client.VersionError", err)
	}
	for _, want := range []string{"v0.1", "v0.2", "shoal daemon stop"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %q", err, want)
		}
	}
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestAuditStateHistory(t *testing.T) {
	tr := newPipeTransport(t)
	d := startDaemon(t, tr, nil)
	c, err := client.Dial(context.Background(), client.Options{Socket: d.socket, Identity: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"x", "y"}, Command: "printf hello; exit 2"})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, r)
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.Clients != 1 || len(st.Hosts) != 2 || st.Hosts[0].Host != "x" || st.Hosts[0].State != "ready" {
		t.Errorf("status %+v; want this pid, one client, hosts x and y ready", st)
	}
	last, err := c.Last(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 || last[0].Identity != "alice" || last[0].Command != "printf hello; exit 2" ||
		len(last[0].Results) != 2 || string(last[0].Results[1].Stdout) != "hello" {
		t.Errorf("Last: %+v", last)
	}
	c.Close()
	// Stop the daemon so every record is written, then read them.
	d.stop()
	if err := <-d.done; err != nil {
		t.Fatal(err)
	}
	d.done <- nil

	lines := readAudit(t, filepath.Join(d.dir, "state", "audit.log"))
	var msgs []string
	var outcomes int
	for _, l := range lines {
		msgs = append(msgs, l["msg"].(string))
		switch l["msg"] {
		case "request":
			if l["command"] != "printf hello; exit 2" || l["count"] != float64(2) {
				t.Errorf("request record %v", l)
			}
			if cl := l["client"].(map[string]any); cl["identity"] != "alice" || cl["uid"] != float64(os.Getuid()) {
				t.Errorf("request client %v; want alice, uid %d", cl, os.Getuid())
			}
		case "host outcome":
			outcomes++
			if l["status"] != "failed" || l["exit"] != float64(2) || l["stdout_bytes"] != float64(5) {
				t.Errorf("outcome record %v", l)
			}
		}
	}
	joined := strings.Join(msgs, "|")
	for _, want := range []string{"daemon started", "client connected", "request", "host outcome", "client left", "daemon stopped"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit log lacks %q: %s", want, joined)
		}
	}
	if outcomes != 2 {
		t.Errorf("%d host outcomes; want 2", outcomes)
	}
	for _, name := range []string{"audit.log", "state.json", "history.jsonl"} {
		fi, err := os.Stat(filepath.Join(d.dir, "state", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v; want 0600", name, fi.Mode().Perm())
		}
	}
	data, _ := os.ReadFile(filepath.Join(d.dir, "state", "state.json"))
	if !strings.Contains(string(data), `"x"`) || !strings.Contains(string(data), `"last_seen"`) {
		t.Errorf("state file lacks host x or its last_seen:\n%s", data)
	}
}

func TestSocketModes(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "run", "shoal", "shoal.sock")
	ln, err := daemon.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for p, want := range map[string]os.FileMode{filepath.Dir(socket): 0o700, socket: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v; want %v", p, fi.Mode().Perm(), want)
		}
	}
	if _, err := daemon.Listen(socket); !errors.Is(err, daemon.ErrRunning) {
		t.Errorf("second Listen: %v; want ErrRunning", err)
	}
	// A stale socket (nothing listening) is replaced.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln2, err := daemon.Listen(socket)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln2.Close()
}

func TestStopAndIdleExit(t *testing.T) {
	checkLeaks(t)
	d := startDaemon(t, newPipeTransport(t), nil)
	c := d.dial(t, "")
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		d.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop")
	}

	d2 := startDaemon(t, newPipeTransport(t), func(o *daemon.Options) { o.IdleExit = 50 * time.Millisecond })
	c2 := d2.dial(t, "")
	c2.Close()
	select {
	case err := <-d2.done:
		d2.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not exit when idle")
	}
}

func TestPutGet(t *testing.T) {
	d := startDaemon(t, newPipeTransport(t), nil)
	c := d.dial(t, "")
	src := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(src, []byte("payload"), 0o640)
	remote := filepath.Join(t.TempDir(), "remote.txt")
	res, err := c.Put(context.Background(), []string{"a"}, client.PutRequest{LocalPath: src, Dest: remote})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Status != proto.StatusOK || res[0].Bytes != 7 {
		t.Fatalf("put: %+v", res)
	}
	if b, _ := os.ReadFile(remote); string(b) != "payload" {
		t.Fatalf("remote file holds %q", b)
	}
	dest := t.TempDir()
	res, err = c.Get(context.Background(), []string{"a", "b", "../evil"}, client.GetRequest{Src: remote, DestDir: dest})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		switch r.Host {
		case "../evil":
			if r.Status == proto.StatusOK {
				t.Errorf("get for host ../evil succeeded: %+v", r)
			}
		default:
			want := filepath.Join(dest, r.Host, "remote.txt")
			if r.Status != proto.StatusOK || r.Path != want {
				t.Errorf("get %s: %+v; want ok at %s", r.Host, r, want)
			}
			if b, _ := os.ReadFile(want); string(b) != "payload" {
				t.Errorf("%s holds %q", want, b)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dest), "evil")); err == nil {
		t.Error("get wrote outside DestDir")
	}
}

func TestPingInfoTime(t *testing.T) {
	d := startDaemon(t, newPipeTransport(t), nil)
	c := d.dial(t, "")
	hosts := []string{"a", "b"}
	pr, err := c.Ping(context.Background(), hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pr {
		if p.Status != proto.StatusOK || p.RTT <= 0 {
			t.Errorf("ping %+v", p)
		}
	}
	ir, err := c.Info(context.Background(), hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ir {
		if i.Status != proto.StatusOK || i.Hostname == "" || i.CPUs == 0 {
			t.Errorf("info %+v", i)
		}
	}
	tr, err := c.Time(context.Background(), hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range tr {
		// Same machine: the offset is within the round trip.
		if x.Status != proto.StatusOK || x.Offset > x.RTT+time.Millisecond || -x.Offset > x.RTT+time.Millisecond {
			t.Errorf("time %+v; want an offset within the round trip", x)
		}
	}
}

func TestRequestFanout(t *testing.T) {
	d := startDaemon(t, newPipeTransport(t), nil)
	c := d.dial(t, "")
	hosts := []string{"f1", "f2", "f3", "f4", "f5"}
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: hosts, Command: "echo ok", Fanout: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, done := collect(t, r)
	for _, h := range hosts {
		if done[h] == nil || done[h].Status != proto.StatusOK {
			t.Errorf("%s: %+v", h, done[h])
		}
	}
}

// TestStopKeepsRunningCommands: a daemon that stops tells its agents (their input
// ends) instead of killing their commands; the client gets an error result.
func TestStopKeepsRunningCommands(t *testing.T) {
	d := startDaemon(t, newPipeTransport(t), nil)
	c := d.dial(t, "")
	marker := filepath.Join(t.TempDir(), "finished")
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"a"}, Command: "sleep 0.3; touch " + marker})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range r.Events {
		if ev.Kind == proto.EventStart {
			break
		}
	}
	d.stop()
	var res *proto.HostResult
	for ev := range r.Events {
		if ev.Kind == proto.EventDone {
			res = ev.Result
		}
	}
	if res == nil || res.Status == proto.StatusOK || res.Status == proto.StatusCancelled {
		t.Errorf("result when the daemon stopped: %+v; want an error, not ok or cancelled", res)
	}
	if err := <-d.done; err != nil {
		t.Fatal(err)
	}
	d.done <- nil
	// The command was not killed: it finishes on its own.
	for range 500 {
		if _, err := os.Stat(marker); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the command was killed when the daemon stopped")
}

// TestClientThatStopsReading: a client that floods itself with output and never
// reads is dropped after the send timeout, and its command is killed.
func TestClientThatStopsReading(t *testing.T) {
	d := startDaemon(t, newPipeTransport(t), func(o *daemon.Options) {
		daemon.SetSendTimeout(o, time.Second)
		o.HistoryBytes = 64 << 10 // keep the other client's Last reply small
	})
	nc, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pc := proto.NewConn(nc, nc, proto.ConnOptions{MaxFrame: daemon.ClientMaxFrame})
	pc.Send(0, proto.TypeClientHello, &proto.ClientHello{Protocol: proto.Version, Client: proto.ClientVersion})
	if _, err := pc.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := pc.Send(1, proto.TypeRun, &proto.RunRequest{Hosts: []string{"a"}, Command: "head -c 4000000 /dev/zero; sleep 1000"}); err != nil {
		t.Fatal(err)
	}
	// Read nothing more. Another client sees the run end (cancelled) in bounded time.
	c := d.dial(t, "")
	for range 1000 {
		last, err := c.Last(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(last) == 1 {
			if st := last[0].Results[0].Status; st != proto.StatusCancelled {
				t.Errorf("flooding run ended %s; want cancelled", st)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the run of a client that stopped reading was still going after 20s")
}

// TestTLSListener serves the Unix socket and a mutual-TLS listener on loopback at
// once: a client with a certificate from the CA runs commands (audited under its
// certificate name) but may not put or stop; one without a certificate is refused.
func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := certs.Init(dir, "test CA", now); err != nil {
		t.Fatal(err)
	}
	scert, skey, err := certs.Issue(dir, certs.IssueOptions{Name: "daemon", Hosts: []string{"127.0.0.1"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	ccert, ckey, err := certs.Issue(dir, certs.IssueOptions{Name: "alice"}, now)
	if err != nil {
		t.Fatal(err)
	}
	sconf, err := certs.ServerConfig(scert, skey, filepath.Join(dir, certs.CACert))
	if err != nil {
		t.Fatal(err)
	}
	tln, err := tls.Listen("tcp", "127.0.0.1:0", sconf)
	if err != nil {
		t.Fatal(err)
	}
	addr := tln.Addr().String()
	// One daemon on both listeners, through Merge.
	d2dir := t.TempDir()
	uln, err := daemon.Listen(filepath.Join(d2dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	tr := newPipeTransport(t)
	al, _ := audit.Open(audit.Options{Path: filepath.Join(d2dir, "audit.log")})
	defer al.Close()
	auditPath := filepath.Join(d2dir, "audit.log")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Serve(ctx, daemon.Merge(uln, tln), daemon.Options{Audit: al, Resolve: func(h string) (daemon.Host, error) {
			return daemon.Host{Target: transport.Target{Name: h}, Transport: tr}, nil
		}})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	cconf, err := certs.ClientConfig(ccert, ckey, filepath.Join(dir, certs.CACert), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(context.Background(), client.Options{Addr: addr, TLS: cconf})
	if err != nil {
		t.Fatalf("Dial over TLS: %v", err)
	}
	defer c.Close()
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"a"}, Command: "echo tls"})
	if err != nil {
		t.Fatal(err)
	}
	_, res := collect(t, r)
	if res["a"] == nil || string(res["a"].Stdout) != "tls\n" {
		t.Errorf("run over TLS: %+v", res["a"])
	}
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("x"), 0o600)
	// Put over TLS streams the client's file; a put naming a path on the daemon's
	// machine (the Unix clients' request) is refused.
	dest := filepath.Join(t.TempDir(), "g")
	if res, err := c.Put(context.Background(), []string{"a"}, client.PutRequest{LocalPath: src, Dest: dest}); err != nil || res[0].Status != proto.StatusOK {
		t.Errorf("streamed put over TLS: %+v, %v", res, err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "x" {
		t.Errorf("streamed put over TLS wrote %q, %v", b, err)
	}
	raw, err := tls.Dial("tcp", addr, cconf)
	if err != nil {
		t.Fatal(err)
	}
	pc := proto.NewConn(raw, raw, proto.ConnOptions{MaxFrame: daemon.ClientMaxFrame})
	go pc.Send(0, proto.TypeClientHello, &proto.ClientHello{Protocol: proto.Version, Client: proto.ClientVersion})
	if env, err := pc.Recv(); err != nil || env.Type != proto.TypeDaemonHello {
		t.Fatalf("raw hello: %v, %v", env, err)
	}
	pc.Send(1, proto.TypePut, &proto.PutRequest{Hosts: []string{"a"}, LocalPath: src, Dest: "/tmp/never"})
	if env, err := pc.Recv(); err != nil || env.Type != proto.TypeFailed {
		t.Errorf("a path put over TLS was answered %v, %v; want failed", env, err)
	}
	raw.Close()
	if err := c.Stop(context.Background()); err == nil {
		t.Error("stop over TLS was allowed")
	}
	// The local socket still works, and sees the TLS client's run only if it asks as that client.
	lc, err := client.Dial(context.Background(), client.Options{Socket: filepath.Join(d2dir, "s.sock")})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if last, err := lc.Last(context.Background(), 5); err != nil || len(last) != 0 {
		t.Errorf("local Last saw %d runs (%v); want none of the TLS client's", len(last), err)
	}

	// Without a client certificate: refused.
	bare := &tls.Config{RootCAs: cconf.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	if _, err := client.Dial(context.Background(), client.Options{Addr: addr, TLS: bare}); err == nil {
		t.Error("a TLS client without a certificate was accepted")
	}
	c.Close()
	lc.Close()
	cancel()
	<-done
	done <- nil
	data, _ := os.ReadFile(auditPath)
	if !strings.Contains(string(data), `"cert":"alice"`) {
		t.Errorf("audit log does not name the TLS client's certificate:\n%s", data)
	}
}

// TestResultKeptAcrossRestart: a command still running when the daemon stops finishes
// on its host; the next daemon collects its result into the history.
func TestResultKeptAcrossRestart(t *testing.T) {
	tr := newPipeTransport(t)
	d := startDaemon(t, tr, nil)
	c := d.dial(t, "")
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"a"}, Command: "sleep 0.3; echo kept"})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range r.Events {
		if ev.Kind == proto.EventStart {
			break
		}
	}
	d.stop()
	if err := <-d.done; err != nil {
		t.Fatal(err)
	}
	d.done <- nil
	tr.wg.Wait() // the first agent finished the command and exited

	d2 := startDaemon(t, tr, nil)
	c2 := d2.dial(t, "")
	if _, err := c2.Ping(context.Background(), []string{"a"}); err != nil {
		t.Fatal(err)
	}
	for range 500 {
		last, err := c2.Last(context.Background(), 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range last {
			if len(rec.Results) == 1 && string(rec.Results[0].Stdout) == "kept\n" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("the result of the command left running was not collected by the next daemon")
}
