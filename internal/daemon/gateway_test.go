package daemon_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/certs"
	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/hostsess"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	sshtr "github.com/shoal-sh/shoal/internal/transport/ssh"
)

// testCA is a certificate directory with a CA.
type testCA struct {
	t   testing.TB
	dir string
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	ca := &testCA{t: t, dir: t.TempDir()}
	if err := certs.Init(ca.dir, name, time.Now()); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue makes a certificate for name, usable as client and as a server on 127.0.0.1.
func (ca *testCA) issue(name string) (cert, key string) {
	ca.t.Helper()
	cert, key, err := certs.Issue(ca.dir, certs.IssueOptions{Name: name, Hosts: []string{"127.0.0.1"}}, time.Now())
	if err != nil {
		ca.t.Fatal(err)
	}
	return cert, key
}

// clientTLS is the client configuration of name's certificate.
func (ca *testCA) clientTLS(name string) *tls.Config {
	ca.t.Helper()
	cert, key := filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	if _, err := os.Stat(cert); err != nil {
		cert, key = ca.issue(name)
	}
	conf, err := certs.ClientConfig(cert, key, filepath.Join(ca.dir, certs.CACert), "127.0.0.1")
	if err != nil {
		ca.t.Fatal(err)
	}
	return conf
}

// killListener records the connections it accepts, so a test can drop them all at
// once, as a gateway that dies would.
type killListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

func (l *killListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		c.Close()
	} else {
		l.conns = append(l.conns, c)
	}
	return c, nil
}

// kill closes every connection and refuses new ones.
func (l *killListener) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead = true
	for _, c := range l.conns {
		c.Close()
	}
}

// tlsDaemon is a daemon serving mutual TLS on loopback.
type tlsDaemon struct {
	name   string
	addr   string // HOST:PORT
	audit  string // audit log path
	socket string
	ln     *killListener
}

// gatewayTo is the Gateway for hosts served by d, dialled with from's certificate.
func gatewayTo(ca *testCA, from string, d *tlsDaemon, hosts ...string) daemon.Gateway {
	set := map[string]bool{}
	for _, h := range hosts {
		set[h] = true
	}
	conf := ca.clientTLS(from)
	return daemon.Gateway{
		Address: "tls://" + d.addr,
		Match:   func(h string) bool { return set[h] },
		Dial: func(ctx context.Context, hops int) (*client.Client, error) {
			return client.Dial(ctx, client.Options{Addr: d.addr, TLS: conf, Version: "test", Hops: hops})
		},
	}
}

// startTLSDaemon serves a daemon named name (its certificate's name) on a loopback
// TLS port and a Unix socket, reaching hosts through tr and gws.
func startTLSDaemon(t testing.TB, ca *testCA, name string, tr transport.Transport, gws ...daemon.Gateway) *tlsDaemon {
	t.Helper()
	return startTLSDaemonTweak(t, ca, name, tr, nil, gws...)
}

func startTLSDaemonTweak(t testing.TB, ca *testCA, name string, tr transport.Transport, tweak func(*daemon.Options), gws ...daemon.Gateway) *tlsDaemon {
	t.Helper()
	cert, key := ca.issue(name)
	tln, err := daemon.ListenTLS("127.0.0.1:0", daemon.TLSOptions{Cert: cert, Key: key, ClientCA: filepath.Join(ca.dir, certs.CACert)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := &tlsDaemon{name: name, addr: tln.Addr().String(), audit: filepath.Join(dir, "audit.log"),
		socket: filepath.Join(dir, "s.sock"), ln: &killListener{Listener: tln}}
	uln, err := daemon.Listen(d.socket)
	if err != nil {
		t.Fatal(err)
	}
	al, err := audit.Open(audit.Options{Path: d.audit})
	if err != nil {
		t.Fatal(err)
	}
	opts := daemon.Options{
		Resolve: func(host string) (daemon.Host, error) {
			return daemon.Host{Target: transport.Target{Name: host}, Transport: tr, TransportName: "test"}, nil
		},
		Version:  "test",
		Audit:    al,
		Gateways: gws,
		Session:  hostsess.Options{KillWait: 500 * time.Millisecond, ConnectTimeout: time.Minute},
	}
	if tweak != nil {
		tweak(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Serve(ctx, daemon.Merge(uln, d.ln), opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve %s: %v", name, err)
		}
		al.Close()
	})
	return d
}

// TestGateways runs a front daemon with two gateways over mutual TLS, one reaching
// a real sshd fleet and one reaching in-process agents plus a third daemon behind
// it (a two-level chain): every host answers exactly once, each daemon's audit log
// names its client's certificate, a certificate of another CA is refused, and a
// gateway that dies mid-command gives its hosts a clear error at once.
func TestGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an sshd fleet and four daemons")
	}
	checkLeaks(t)
	ca := newTestCA(t, "test CA")
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 3})
	ssh := sshtr.New(sshtr.Options{Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"}, Source: f.AgentSource(t)})
	pipes := newPipeTransport(t)

	gw3 := startTLSDaemon(t, ca, "gw3", pipes)
	gw1 := startTLSDaemon(t, ca, "gw1", pipes, gatewayTo(ca, "gw1", gw3, "c1", "c2"))
	gw2 := startTLSDaemon(t, ca, "gw2", ssh)
	fleet := f.Names()
	front := startTLSDaemon(t, ca, "front", pipes,
		gatewayTo(ca, "front", gw1, "g1a", "g1b", "c1", "c2"),
		gatewayTo(ca, "front", gw2, fleet...))
	all := append([]string{"a", "g1a", "c1", "g1b", "c2"}, fleet...)

	alice, err := client.Dial(context.Background(), client.Options{Addr: front.addr, TLS: ca.clientTLS("alice"), Version: "test"})
	if err != nil {
		t.Fatalf("alice dials the front: %v", err)
	}
	defer alice.Close()

	t.Run("every host once", func(t *testing.T) {
		r, err := alice.Run(context.Background(), client.RunRequest{Hosts: all, Command: "echo out; echo err >&2; exit 3"})
		if err != nil {
			t.Fatal(err)
		}
		_, done := collect(t, r)
		if len(done) != len(all) {
			t.Errorf("%d results; want %d", len(done), len(all))
		}
		for _, h := range all {
			res := done[h]
			if res == nil || res.Status != proto.StatusFailed || res.ExitCode != 3 ||
				string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
				t.Errorf("%s: %+v; want failed, exit 3, out and err once", h, res)
			}
		}
		ping, err := alice.Ping(context.Background(), all)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range ping {
			if p.Host != all[i] || p.Status != proto.StatusOK {
				t.Errorf("ping %d: %+v; want %s ok", i, p, all[i])
			}
		}
		info, err := alice.Info(context.Background(), all)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range info {
			if p.Host != all[i] || p.Status != proto.StatusOK || p.OS == "" {
				t.Errorf("info %d: %+v; want %s ok", i, p, all[i])
			}
		}
	})

	t.Run("a second cancel kills at once through gateways", func(t *testing.T) {
		// Commands that ignore SIGTERM, with a kill grace longer than the test: the first
		// cancel leaves them their grace; KillNow (a second Ctrl-C) kills them on every host,
		// two gateways away and over SSH alike.
		hosts := []string{"a", "c1", fleet[0]}
		r, err := alice.Run(context.Background(), client.RunRequest{Hosts: hosts,
			Command: "trap '' TERM; echo pid=$$; exec sleep 1000", KillGrace: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		pids := map[string]int{}
		for ev := range r.Events {
			var pid int
			if ev.Kind == proto.EventStdout && strings.HasPrefix(string(ev.Data), "pid=") {
				fmt.Sscanf(string(ev.Data), "pid=%d", &pid)
				pids[ev.Host] = pid
			}
			if len(pids) == len(hosts) {
				break
			}
		}
		r.Cancel()
		time.Sleep(300 * time.Millisecond)
		for h, pid := range pids {
			if syscall.Kill(pid, 0) != nil {
				t.Errorf("%s: sleep %d is gone after one cancel; want it to have its grace", h, pid)
			}
		}
		r.KillNow()
		start := time.Now()
		_, done := collect(t, r)
		if time.Since(start) > 2*time.Minute {
			t.Errorf("the results took %v after KillNow", time.Since(start))
		}
		for _, h := range hosts {
			if done[h] == nil || done[h].Status != proto.StatusCancelled {
				t.Errorf("%s: %+v; want cancelled", h, done[h])
			}
		}
	})

	t.Run("batches through gateways", func(t *testing.T) {
		// The sshd hosts behind gw2 and two hosts two gateways away, two at a time: one
		// pace across local and forwarded hosts alike.
		hosts := append([]string{"g1a", "c1"}, fleet...)
		r, err := alice.Run(context.Background(), client.RunRequest{Hosts: hosts,
			Command: "date +%s.%N; sleep 0.5; date +%s.%N", Rollout: &proto.Rollout{Batch: 2}})
		if err != nil {
			t.Fatal(err)
		}
		_, done := collect(t, r)
		type span struct{ start, end float64 }
		var spans []span
		for _, h := range hosts {
			res := done[h]
			f := strings.Fields(string(res.Stdout))
			if res.Status != proto.StatusOK || len(f) != 2 {
				t.Fatalf("%s: %+v; want ok and two times", h, res)
			}
			var sp span
			fmt.Sscan(f[0], &sp.start)
			fmt.Sscan(f[1], &sp.end)
			spans = append(spans, sp)
		}
		for i, sp := range spans {
			running := 0
			for _, o := range spans {
				if o.start <= sp.start && sp.start < o.end {
					running++
				}
			}
			if running > 2 {
				t.Errorf("%d hosts running when %s started; want at most 2", running, hosts[i])
			}
		}
		// One at a time, stopping at the first failure: the rest are skipped, wherever they are.
		r, err = alice.Run(context.Background(), client.RunRequest{Hosts: hosts, Command: "exit 4",
			Rollout: &proto.Rollout{Batch: 1, MaxFail: 1}})
		if err != nil {
			t.Fatal(err)
		}
		_, done = collect(t, r)
		for i, h := range hosts {
			want := proto.StatusSkipped
			if i == 0 {
				want = proto.StatusFailed
			}
			if done[h] == nil || done[h].Status != want {
				t.Errorf("%s: %+v; want %s", h, done[h], want)
			}
		}
	})

	t.Run("put and get through gateways", func(t *testing.T) {
		local, err := client.Dial(context.Background(), client.Options{Socket: front.socket, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		defer local.Close()
		src := filepath.Join(t.TempDir(), "f")
		os.WriteFile(src, []byte("x"), 0o600)
		dest := filepath.Join(t.TempDir(), "g")
		hosts := []string{"a", "g1a", "c1"} // the fleet's users cannot reach this test's temp dirs
		for _, c := range []*client.Client{local, alice} {
			res, err := c.Put(context.Background(), hosts, client.PutRequest{LocalPath: src, Dest: dest})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Host != hosts[i] || r.Status != proto.StatusOK || r.Bytes != 1 {
					t.Errorf("put %d: %+v; want %s ok", i, r, hosts[i])
				}
			}
		}
		// A tree, through the local socket and over TLS (put-stream), to hosts here and behind gateways.
		tree := filepath.Join(t.TempDir(), "tree")
		os.MkdirAll(filepath.Join(tree, "d", "empty"), 0o755)
		os.WriteFile(filepath.Join(tree, "d", "f"), []byte("in a tree"), 0o640)
		os.Symlink("d/f", filepath.Join(tree, "link"))
		arc := filepath.Join(t.TempDir(), "tree.tar")
		af, _ := os.Create(arc)
		if err := fsutil.Pack(af, tree); err != nil {
			t.Fatal(err)
		}
		af.Close()
		for k, c := range []*client.Client{local, alice} {
			destTree := filepath.Join(t.TempDir(), fmt.Sprint("copy", k))
			res, err := c.Put(context.Background(), hosts, client.PutRequest{LocalPath: arc, Dest: destTree, Tree: true})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Status != proto.StatusOK {
					t.Errorf("put tree %d: %+v; want %s ok", i, r, hosts[i])
				}
			}
			b, _ := os.ReadFile(filepath.Join(destTree, "link"))
			fi, _ := os.Stat(filepath.Join(destTree, "d", "f"))
			if string(b) != "in a tree" || fi == nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("tree copy %d: link reads %q, file %v; want the file's content, mode 0640", k, b, fi)
			}
			// And back, from hosts here and behind gateways: the daemon lays it out for a local
			// client, the client itself over TLS (get-stream).
			back := t.TempDir()
			res, err = c.Get(context.Background(), hosts, client.GetRequest{Src: destTree, DestDir: back, Tree: true})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				got := filepath.Join(back, hosts[i], filepath.Base(destTree))
				b, _ := os.ReadFile(filepath.Join(got, "link"))
				lt, _ := os.Readlink(filepath.Join(got, "link"))
				if r.Status != proto.StatusOK || string(b) != "in a tree" || lt != "d/f" {
					t.Errorf("get tree %d over client %d: %+v; link %q reads %q", i, k, r, lt, b)
				}
				if _, err := os.Stat(filepath.Join(got, "d", "empty")); err != nil {
					t.Errorf("get tree %d over client %d: no empty directory: %v", i, k, err)
				}
			}
		}
		out := t.TempDir()
		res, err := alice.Get(context.Background(), hosts, client.GetRequest{Src: dest, DestDir: out})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			b, _ := os.ReadFile(filepath.Join(out, hosts[i], "g"))
			if r.Status != proto.StatusOK || string(b) != "x" {
				t.Errorf("get %d: %+v, file %q; want %s ok, \"x\"", i, r, b, hosts[i])
			}
		}
	})

	t.Run("other CA refused", func(t *testing.T) {
		other := newTestCA(t, "other CA")
		conf := other.clientTLS("mallory")
		conf.RootCAs = ca.clientTLS("alice").RootCAs // she trusts the daemon, the daemon does not trust her
		// Show the certificate even though the daemon asks for another CA's.
		mine := conf.Certificates[0]
		conf.Certificates = nil
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mine, nil }
		c, err := client.Dial(context.Background(), client.Options{Addr: front.addr, TLS: conf, Version: "test"})
		if err == nil {
			c.Close()
			t.Fatal("a client certificate from another CA was accepted")
		}
		t.Logf("refused: %v", err)
	})

	t.Run("audit names each client", func(t *testing.T) {
		for _, tc := range []struct {
			d        *tlsDaemon
			cert, id string
		}{{front, "alice", ""}, {gw1, "front", "cert alice"}, {gw2, "front", "cert alice"}, {gw3, "gw1", "cert alice"}} {
			runs := 0
			for _, rec := range readAudit(t, tc.d.audit) {
				if rec["op"] != "run" {
					continue
				}
				runs++
				who, _ := rec["client"].(map[string]any)
				if who["cert"] != tc.cert || (tc.id != "" && who["identity"] != tc.id) {
					t.Errorf("%s audits a run as cert %v, identity %v; want %s, %q", tc.d.name, who["cert"], who["identity"], tc.cert, tc.id)
				}
			}
			if runs == 0 {
				t.Errorf("%s's audit log records no run", tc.d.name)
			}
		}
	})

	t.Run("gateway dies mid-command", func(t *testing.T) {
		r, err := alice.Run(context.Background(), client.RunRequest{Hosts: []string{"a", "g1a", "c1", fleet[0]}, Command: "sleep 1000"})
		if err != nil {
			t.Fatal(err)
		}
		started := map[string]bool{}
		for ev := range r.Events {
			if ev.Kind == proto.EventStart {
				started[ev.Host] = true
			}
			if len(started) == 4 {
				break
			}
		}
		killed := time.Now()
		gw1.ln.kill()
		lost := 0
		for ev := range r.Events {
			if ev.Kind != proto.EventDone {
				continue
			}
			if ev.Host != "g1a" && ev.Host != "c1" {
				t.Fatalf("%s finished before the hosts of the dead gateway: %+v", ev.Host, ev.Result)
			}
			if ev.Result.Status != proto.StatusUnreachable || !strings.Contains(ev.Result.Err, gw1.addr) {
				t.Errorf("%s: %+v; want unreachable naming %s", ev.Host, ev.Result, gw1.addr)
			}
			if lost++; lost == 2 {
				break
			}
		}
		t.Logf("the dead gateway's hosts reported %v after the kill", time.Since(killed))
		r.Cancel()
		_, done := collect(t, r)
		for _, h := range []string{"a", fleet[0]} {
			if done[h] == nil || done[h].Status != proto.StatusCancelled {
				t.Errorf("%s after cancel: %+v; want cancelled", h, done[h])
			}
		}
		// The next request dials the gateway again and finds it gone.
		ping, err := alice.Ping(context.Background(), []string{"g1a"})
		if err != nil || ping[0].Status != proto.StatusUnreachable || !strings.Contains(ping[0].Err, gw1.addr) {
			t.Errorf("ping through the dead gateway: %+v, %v; want unreachable naming it", ping, err)
		}
	})
}

// TestListenTLSNeedsClientCA: a TLS listener without a client CA is refused unless
// insecure_no_client_auth is set, and then every start logs a loud warning.
func TestListenTLSNeedsClientCA(t *testing.T) {
	ca := newTestCA(t, "test CA")
	cert, key := ca.issue("daemon")
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ln, err := daemon.ListenTLS("127.0.0.1:0", daemon.TLSOptions{Cert: cert, Key: key, Logger: logger})
	if !errors.Is(err, daemon.ErrNoClientCA) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("ListenTLS without a client CA = %v; want ErrNoClientCA", err)
	}
	for i := range 2 {
		ln, err := daemon.ListenTLS("127.0.0.1:0", daemon.TLSOptions{Cert: cert, Key: key, InsecureNoClientAuth: true, Logger: logger})
		if err != nil {
			t.Fatalf("insecure ListenTLS: %v", err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if n := strings.Count(logs.String(), "INSECURE"); n != i+1 {
			t.Fatalf("after %d insecure starts the log warns %d times; want %d:\n%s", i+1, n, i+1, logs.String())
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), addr) {
			t.Errorf("the warning is not a WARN naming %s:\n%s", addr, logs.String())
		}
	}
	// With a client CA there is no warning.
	logs.Reset()
	ln, err = daemon.ListenTLS("127.0.0.1:0", daemon.TLSOptions{Cert: cert, Key: key, ClientCA: filepath.Join(ca.dir, certs.CACert), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if logs.Len() != 0 {
		t.Errorf("a mutual-TLS listener logged: %s", logs.String())
	}
}

// freezeProxy forwards TCP connections to target until frozen; then it holds
// every byte, as a gateway that hangs or a network cut without a reset would.
type freezeProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	gate   chan struct{} // closed while bytes may pass
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target, gate: make(chan struct{})}
	close(p.gate)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				u.Close()
				return
			}
			p.conns = append(p.conns, c, u)
			p.wg.Add(2)
			p.mu.Unlock()
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	t.Cleanup(p.close)
	return p
}

// pipe copies src to dst, waiting at the gate before each write.
func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
}

func (p *freezeProxy) close() {
	p.mu.Lock()
	p.closed = true
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// TestGatewayHangs: a gateway that stops answering without closing its connection
// fails its hosts after the heartbeat gives up on it, instead of holding them.
func TestGatewayHangs(t *testing.T) {
	checkLeaks(t)
	ca := newTestCA(t, "test CA")
	pipes := newPipeTransport(t)
	gw := startTLSDaemon(t, ca, "gw", pipes)
	proxy := startFreezeProxy(t, gw.addr)
	front := startTLSDaemonTweak(t, ca, "front", pipes, func(o *daemon.Options) { daemon.SetGatewayBeat(o, 100*time.Millisecond) },
		gatewayTo(ca, "front", &tlsDaemon{addr: proxy.ln.Addr().String()}, "z"))
	c, err := client.Dial(context.Background(), client.Options{Socket: front.socket, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"a", "z"}, Command: "sleep 1000"})
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for ev := range r.Events {
		if ev.Kind == proto.EventStart {
			if started++; started == 2 {
				break
			}
		}
	}
	proxy.freeze()
	for ev := range r.Events {
		if ev.Kind != proto.EventDone {
			continue
		}
		if ev.Host != "z" || ev.Result.Status != proto.StatusUnreachable || !strings.Contains(ev.Result.Err, "no answer") {
			t.Errorf("%s: %+v; want z unreachable, its gateway not answering", ev.Host, ev.Result)
		}
		break
	}
	r.Cancel()
	collect(t, r)
}

// TestGatewayLoop: two daemons that name each other as the gateway of a host do
// not forward a request forever; the host reports the loop.
func TestGatewayLoop(t *testing.T) {
	checkLeaks(t)
	ca := newTestCA(t, "test CA")
	pipes := newPipeTransport(t)
	later := &tlsDaemon{} // a's address, known once a has started
	b := startTLSDaemon(t, ca, "b", pipes, gatewayTo(ca, "b", later, "x"))
	a := startTLSDaemon(t, ca, "a", pipes, gatewayTo(ca, "a", b, "x"))
	later.addr = a.addr
	c, err := client.Dial(context.Background(), client.Options{Socket: a.socket, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"x"}, Command: "true"})
	if err != nil {
		t.Fatal(err)
	}
	_, done := collect(t, r)
	if res := done["x"]; res == nil || res.Status == proto.StatusOK || !strings.Contains(res.Err, "loop") {
		t.Errorf("x: %+v; want an error naming a loop", res)
	}
	ping, err := c.Ping(context.Background(), []string{"x"})
	if err != nil || ping[0].Status == proto.StatusOK || !strings.Contains(ping[0].Err, "loop") {
		t.Errorf("ping x: %+v, %v; want an error naming a loop", ping, err)
	}
}
