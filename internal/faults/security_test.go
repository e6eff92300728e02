package faults_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/certs"
	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/local"
)

// otherUser returns a test account other than the current one (the fleet's shoalt001,
// created when missing), or skips t when not root.
func otherUser(t testing.TB) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	u, err := user.Lookup("shoalt001")
	if err != nil {
		if out, err := exec.Command("useradd", "-m", "-s", "/bin/sh", "-p", "*", "shoalt001").CombinedOutput(); err != nil {
			t.Skipf("creating a test user: %v: %s", err, out)
		}
		if u, err = user.Lookup("shoalt001"); err != nil {
			t.Skip(err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// TestPrivateFiles checks that the socket, its directory and every state file are private.
func TestPrivateFiles(t *testing.T) {
	t.Parallel()
	h := newHome(t, localConfig(1, ""))
	c := h.dial()
	runOne(t, c, []string{"lab1"}, "echo secret-output", time.Minute)
	for _, dir := range []string{filepath.Join(h.root, "run"), filepath.Join(h.root, "state"), h.cache} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			st, err := os.Lstat(p)
			if err != nil {
				return nil
			}
			if st.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is %v: readable or writable by others", p, st.Mode())
			}
			return nil
		})
	}
	st, err := os.Stat(h.socket)
	if err != nil || st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Errorf("socket %s: %v %v; want a 0600 socket", h.socket, st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Dir(h.socket)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v %v; want 0700", st.Mode(), err)
	}
}

// TestSocketRefusesOtherUsers runs a client as another user: the private directory stops it,
// and when the directory and socket are opened up by mistake the daemon's peer check does.
func TestSocketRefusesOtherUsers(t *testing.T) {
	t.Parallel()
	uid, gid := otherUser(t)
	h := newHome(t, localConfig(1, ""))
	h.dial()
	pid := h.daemonPID()
	other := filepath.Join(h.root, "other")
	for _, d := range []string{"cfg", "state", "cache", "home"} {
		os.MkdirAll(filepath.Join(other, d), 0o700)
	}
	filepath.WalkDir(other, func(p string, d fs.DirEntry, err error) error { return os.Chown(p, uid, gid) })
	os.Chmod(h.root, 0o755)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Join(other, "home"),
		"XDG_RUNTIME_DIR=" + filepath.Join(h.root, "run"), "XDG_CONFIG_HOME=" + filepath.Join(other, "cfg"),
		"XDG_STATE_HOME=" + filepath.Join(other, "state"), "XDG_CACHE_HOME=" + filepath.Join(other, "cache"),
		"XDG_CONFIG_DIRS=/nonexistent"}
	// The built binary sits in a private temp dir: give the other user a copy it may run.
	bin := filepath.Join(h.root, "shoal-other")
	if b, err := os.ReadFile(h.bin); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatalf("copying the binary: %v", err)
	}
	asOther := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out []byte
		var err error
		// A child forked by a parallel test between our write and its own exec still holds the
		// copy open for writing, and exec fails with ETXTBSY until it execs: try again, bounded.
		for try := 0; ; try++ {
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = env
			cmd.Dir = "/"
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			out, err = cmd.CombinedOutput()
			if !errors.Is(err, syscall.ETXTBSY) || try == 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("running shoal as uid %d: %v", uid, err)
		}
		noPanic(t, string(out))
		return string(out), code
	}
	nBadInputs.Add(2)
	out, code := asOther("daemon", "status")
	t.Logf("other user, private socket directory: exit %d: %s", code, strings.TrimSpace(out))
	if code == 0 || strings.Contains(out, "pid "+strconv.Itoa(pid)) {
		t.Errorf("another user reached the daemon: %s", out)
	}
	// Open the directory and the socket up, as a careless admin might.
	os.Chmod(filepath.Join(h.root, "run"), 0o755)
	os.Chmod(filepath.Dir(h.socket), 0o755)
	os.Chmod(h.socket, 0o666)
	out, code = asOther("daemon", "status")
	t.Logf("other user, socket opened up: exit %d: %s", code, strings.TrimSpace(out))
	if code == 0 || strings.Contains(out, "lab1") {
		t.Errorf("another user got the daemon's status through an opened socket: %s", out)
	}
	// Its client now refuses a socket directory of root's by itself; a raw client hello
	// from that user reaches the daemon's own peer check.
	hello, out2 := helperAs(t, h.root, uid, gid, "hello", h.socket)
	line, _ := out2.ReadString('\n')
	hello.Wait()
	t.Logf("other user's raw hello, socket opened up: %s", strings.TrimSpace(line))
	if !strings.Contains(line, "refusing client of uid "+strconv.Itoa(uid)) {
		t.Errorf("the daemon answered another user's hello with %q; want a refusal", line)
	}
	audit, _ := os.ReadFile(filepath.Join(h.state, "audit.log"))
	if !bytes.Contains(audit, []byte("client refused")) || !bytes.Contains(audit, []byte(`"uid":`+strconv.Itoa(uid))) {
		t.Errorf("the audit log does not record the refused uid %d", uid)
	}
	if p := h.daemonPID(); p != pid {
		t.Errorf("daemon changed from %d to %d", pid, p)
	}
}

// TestHostKeys checks that an unknown host key is refused under the strict default, a changed
// key always, and that nothing is written to known_hosts when refusing.
func TestHostKeys(t *testing.T) {
	t.Parallel()
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	variant := func(name, knownHosts string) string {
		cfg, _ := os.ReadFile(f.SSHConfig)
		p := filepath.Join(f.Dir, name+"_ssh_config")
		s := strings.ReplaceAll(string(cfg), f.KnownHosts, knownHosts)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	empty := filepath.Join(f.Dir, "empty_known_hosts")
	os.WriteFile(empty, nil, 0o644)
	// known_hosts where h001's entry carries h002's key.
	good, _ := os.ReadFile(f.KnownHosts)
	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	k1, k2 := strings.Fields(lines[0]), strings.Fields(lines[1])
	swapped := filepath.Join(f.Dir, "swapped_known_hosts")
	os.WriteFile(swapped, []byte(k1[0]+" "+k2[1]+" "+k2[2]+"\n"+lines[1]+"\n"), 0o644)
	before, _ := os.ReadFile(swapped)

	cases := []struct {
		name, sshConfig, policy, want string
	}{
		{"unknown-strict", variant("empty", empty), "strict", "unknown"},
		{"changed-strict", variant("swapped", swapped), "strict", "changed"},
		{"changed-accept-new", variant("swapped", swapped), "accept-new", "changed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nFaults.Add(1)
			conf := strings.Replace(fleetConfig(tc.sshConfig, 1, ""), "[ssh]\n", "[ssh]\nknown_hosts = \""+tc.policy+"\"\n", 1)
			h := newHome(t, conf)
			r := h.shoal(time.Minute, "--json", "run", "h001", "--", "echo reached")
			res := parseResults(t, r.stdout)
			checkEveryHost(t, res, []string{"h001"})
			got := res["h001"]
			e := ""
			if got.Error != nil {
				e = *got.Error
			}
			t.Logf("%s: exit %d, %s %q", tc.name, r.code, got.Status, e)
			if got.Status == "ok" || strings.Contains(got.Stdout, "reached") || !strings.Contains(e, tc.want) {
				t.Errorf("%s: %s %q; want refused with %q", tc.name, got.Status, e, tc.want)
			}
		})
	}
	if b, _ := os.ReadFile(empty); len(b) != 0 {
		t.Errorf("a refused unknown key was written to known_hosts: %q", b)
	}
	if b, _ := os.ReadFile(swapped); !bytes.Equal(b, before) {
		t.Errorf("known_hosts changed after a refused changed key")
	}
}

// TestFailureReasons checks that an authentication failure and a changed host key, both
// status unreachable, reach the person apart: as the reason of `--json` (and of the stream's
// end events), and in the words of the console's gathered output.
func TestFailureReasons(t *testing.T) {
	t.Parallel()
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 3})
	// h002's known_hosts entry carries h001's key; h003 logs in as a user sshd does not know.
	good, _ := os.ReadFile(f.KnownHosts)
	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	k1, k2 := strings.Fields(lines[0]), strings.Fields(lines[1])
	swapped := filepath.Join(f.Dir, "reasons_known_hosts")
	os.WriteFile(swapped, []byte(lines[0]+"\n"+k2[0]+" "+k1[1]+" "+k1[2]+"\n"+lines[2]+"\n"), 0o644)
	cfg, _ := os.ReadFile(f.SSHConfig)
	sshConfig := filepath.Join(f.Dir, "reasons_ssh_config")
	os.WriteFile(sshConfig, []byte("Host h003\n  User shoal-no-such-user\n"+strings.ReplaceAll(string(cfg), f.KnownHosts, swapped)), 0o644)
	h := newHome(t, fleetConfig(sshConfig, 3, ""))
	want := map[string][2]string{"h002": {"host_key_changed", "host key changed"}, "h003": {"auth_failed", "auth failed"}}

	nFaults.Add(1)
	r := h.shoal(time.Minute, "--json", "run", "h[001-003]", "--", "echo reached")
	res := parseResults(t, r.stdout)
	checkEveryHost(t, res, []string{"h001", "h002", "h003"})
	if got := res["h001"]; got.Status != "ok" || got.Reason != nil {
		t.Errorf("h001: %s, reason %v; want ok and no reason", got.Status, got.Reason)
	}
	for host, w := range want {
		got := res[host]
		if got.Status != "unreachable" || got.Reason == nil || *got.Reason != w[0] || got.Error == nil || !strings.Contains(*got.Error, w[1]) {
			t.Errorf("%s: %s, reason %v, error %v; want unreachable, reason %s, an error saying %q", host, got.Status, got.Reason, got.Error, w[0], w[1])
		}
	}

	r = h.shoal(time.Minute, "-o", "stream", "--json", "run", "h[001-003]", "--", "echo reached")
	ends := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(r.stdout), "\n") {
		var e struct {
			Type, Host string
			Reason     *string
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Type == "end" && e.Reason != nil {
			ends[e.Host] = *e.Reason
		}
	}
	for host, w := range want {
		if ends[host] != w[0] {
			t.Errorf("%s: stream end reason %q; want %q\n%s", host, ends[host], w[0], r.stdout)
		}
	}

	// Gathered, the two are two groups, each saying its reason under its header.
	r = h.shoal(time.Minute, "run", "h[001-003]", "--", "echo reached")
	out := r.stdout + r.stderr
	lines = strings.Split(out, "\n")
	for host, w := range want {
		found := false
		for i, l := range lines {
			if strings.HasPrefix(l, host+" (1)") && i+2 < len(lines) && strings.HasPrefix(lines[i+2], w[1]+": ") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no group of it says %q:\n%s", host, w[1], out)
		}
	}
}

// TestTamperedAgent replaces the installed agent with a script, then makes it world-writable:
// each time the next connect must refuse it (never run it) and install a good copy.
func TestTamperedAgent(t *testing.T) {
	t.Parallel()
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	h := newHome(t, fleetConfig(f.SSHConfig, 1, ""))
	run := func() jsonResult {
		r := h.shoal(2*time.Minute, "--json", "run", "h001", "--", "echo ran")
		res := parseResults(t, r.stdout)
		checkEveryHost(t, res, []string{"h001"})
		return res["h001"]
	}
	if r := run(); r.Status != "ok" {
		t.Fatalf("first run: %+v", r)
	}
	dir := filepath.Join(f.Hosts[0].Home, ".cache", "shoal")
	ents, _ := filepath.Glob(filepath.Join(dir, "agent-*"))
	if len(ents) != 1 {
		t.Fatalf("installed agents: %v; want one", ents)
	}
	agentPath := ents[0]
	goodSum := fileSum(t, agentPath)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("install dir %s mode %v %v; want 0700", dir, st.Mode(), err)
	}
	stop := func() {
		if r := h.shoal(30*time.Second, "daemon", "stop"); r.code != 0 {
			t.Fatalf("daemon stop: %d %s", r.code, r.stderr)
		}
		waitFor(10*time.Second, func() bool { return len(h.daemons()) == 0 })
		// The agent exits when its daemon's connection closes.
		waitFor(10*time.Second, func() bool { return countProcs(agentPath, "agent") == 0 })
	}

	stop()
	marker := filepath.Join(f.Hosts[0].Home, "tampered-agent-ran")
	st, _ := os.Stat(agentPath)
	uid, gid := st.Sys().(*syscall.Stat_t).Uid, st.Sys().(*syscall.Stat_t).Gid
	script := "#!/bin/sh\ntouch " + marker + "\nexit 1\n"
	os.Remove(agentPath)
	if err := os.WriteFile(agentPath, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(agentPath, int(uid), int(gid))
	nFaults.Add(1)
	r := run()
	t.Logf("after tampering: %s %q %v", r.Status, r.Stdout, deref(r.Error))
	if _, err := os.Stat(marker); err == nil {
		knownBug(t, "internal/install", "a tampered installed agent is executed before its hash is checked: the "+
			"bootstrap checks only name and modes, the hash is compared after the agent's hello")
	}
	if r.Status != "ok" || fileSum(t, agentPath) != goodSum {
		knownBug(t, "internal/install + internal/hostsess", "a tampered agent that exits before hello is not replaced: "+
			"the run fails (%s %q) and the file stays (hash %.16s); only a hello with a wrong hash triggers a reinstall",
			r.Status, deref(r.Error), fileSum(t, agentPath))
	}

	stop()
	os.Chmod(agentPath, 0o777)
	nFaults.Add(1)
	r = run()
	st, _ = os.Stat(agentPath)
	t.Logf("after chmod 0777: %s, mode now %v", r.Status, st.Mode())
	if r.Status != "ok" || st.Mode().Perm()&0o022 != 0 {
		t.Errorf("world-writable agent: run %s, mode %v; want it refused and replaced (not group/world-writable)", r.Status, st.Mode())
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func fileSum(t testing.TB, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "missing"
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPutGetNoEscape plants symlinks where put and get write, and asks get for names that
// would climb out of DESTDIR: nothing may be written outside.
func TestPutGetNoEscape(t *testing.T) {
	t.Parallel()
	h := newHome(t, localConfig(2, ""))
	c := h.dial()
	ctx := context.Background()
	outside := filepath.Join(h.root, "outside")
	os.Mkdir(outside, 0o700)
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("untouched\n"), 0o600)

	src := filepath.Join(h.root, "src.txt")
	os.WriteFile(src, []byte("payload\n"), 0o644)
	dest := filepath.Join(h.root, "remote")
	os.Mkdir(dest, 0o700)
	link := filepath.Join(dest, "f")
	os.Symlink(victim, link)
	nBadInputs.Add(1)
	fr, err := c.Put(ctx, []string{"lab1"}, client.PutRequest{LocalPath: src, Dest: link})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("put over a planted symlink: %+v", fr)
	if b, _ := os.ReadFile(victim); string(b) != "untouched\n" {
		t.Errorf("put wrote through a planted symlink: victim now %q", b)
	}

	// get: DESTDIR/<host> is a symlink to outside; and names that climb.
	destDir := filepath.Join(h.root, "got")
	os.Mkdir(destDir, 0o700)
	os.Symlink(outside, filepath.Join(destDir, "lab1"))
	os.Mkdir(filepath.Join(destDir, "lab2"), 0o700)
	os.Symlink(victim, filepath.Join(destDir, "lab2", "src.txt"))
	for _, srcName := range []string{src, "/", filepath.Join(h.root, ".."), src + "/..", "/etc/../" + src[1:]} {
		nBadInputs.Add(1)
		fr, err := c.Get(ctx, []string{"lab1", "lab2"}, client.GetRequest{Src: srcName, DestDir: destDir})
		t.Logf("get %q: %+v %v", srcName, fr, err)
		for _, r := range fr {
			if r.Path != "" && !strings.HasPrefix(filepath.Clean(r.Path), filepath.Clean(destDir)+"/") {
				t.Errorf("get %q wrote %s, outside %s", srcName, r.Path, destDir)
			}
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "untouched\n" {
		t.Errorf("get wrote through a planted symlink: victim now %q", b)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("files appeared outside DESTDIR: %v", names)
	}
	// Bad paths through the one-shot commands: clear errors, no panic.
	for _, args := range [][]string{
		{"put", "lab1", src, "rel/\xff\xfe/name"},
		{"put", "lab1", "/nonexistent/\xff", "x"},
		{"get", "lab1", "/etc/\xff\xfe", filepath.Join(h.root, "g2")},
		{"get", "lab1", "../../../../etc/hostname", filepath.Join(h.root, "g3")},
	} {
		nBadInputs.Add(1)
		r := h.shoal(time.Minute, args...)
		t.Logf("shoal %q: exit %d %s", args, r.code, strings.TrimSpace(clip(r.stderr+r.stdout)))
	}
}

// TestSecretsNotLogged runs commands over SSH with a key, then looks for the key material in
// every file the daemon writes.
func TestSecretsNotLogged(t *testing.T) {
	t.Parallel()
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	h := newHome(t, fleetConfig(f.SSHConfig, 1, ""))
	r := h.shoal(time.Minute, "--json", "run", "h001", "--", "echo hi")
	checkEveryHost(t, parseResults(t, r.stdout), []string{"h001"})
	key, _ := os.ReadFile(f.ClientKey)
	var secrets []string
	for _, line := range strings.Split(string(key), "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "-----") {
			secrets = append(secrets, line[:20])
		}
	}
	secrets = append(secrets, "PRIVATE KEY")
	filepath.WalkDir(h.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSocket != 0 {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains key material %q", p, s)
			}
		}
		return nil
	})
}

// TestTLSListener serves a daemon on a mutual-TLS listener and checks who gets in.
func TestTLSListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	if err := certs.Init(dir, "test CA", now); err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := certs.Issue(dir, certs.IssueOptions{Name: "daemon", Hosts: []string{"127.0.0.1"}, Valid: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey, err := certs.Issue(dir, certs.IssueOptions{Name: "alice", Valid: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	certs.Init(other, "other CA", now)
	strCert, strKey, _ := certs.Issue(other, certs.IssueOptions{Name: "mallory", Valid: time.Hour}, now)
	scfg, err := certs.ServerConfig(srvCert, srvKey, filepath.Join(dir, certs.CACert))
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(tcp, scfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	tr := &local.Transport{BaseDir: shoaltest.AgentDir(t), Binary: shoaltest.Binary(t)}
	go func() {
		done <- daemon.Serve(ctx, ln, daemon.Options{Version: "dev", Resolve: func(host string) (daemon.Host, error) {
			return daemon.Host{Target: transport.Target{Name: host}, Transport: tr, TransportName: "local"}, nil
		}})
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		<-done
	})
	addr := tcp.Addr().String()
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, certs.CACert))
	pool.AppendCertsFromPEM(caPEM)

	// try connects with cfg, sends a hello and returns the daemon's hello error (or the transport error).
	try := func(cfg *tls.Config) (string, error) {
		nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return "", err
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		pc := proto.NewConn(nc, nc, proto.ConnOptions{})
		if err := pc.Send(0, proto.TypeClientHello, &proto.ClientHello{Protocol: proto.Version, Client: proto.ClientVersion, Program: "dev"}); err != nil {
			return "", err
		}
		env, err := pc.Recv()
		if err != nil {
			return "", err
		}
		var dh proto.DaemonHello
		env.Decode(&dh)
		return dh.Err, nil
	}
	good, err := certs.ClientConfig(cliCert, cliKey, filepath.Join(dir, certs.CACert), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := try(good); err != nil || e != "" {
		t.Fatalf("a client with a good certificate: %q %v", e, err)
	}
	stranger, _ := tls.LoadX509KeyPair(strCert, strKey)
	old := good.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS12
	cases := []struct {
		name string
		cfg  *tls.Config
	}{
		{"no-certificate", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}},
		{"other-CA", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{stranger}}},
		{"tls1.2-and-older", old},
	}
	for _, tc := range cases {
		nBadInputs.Add(1)
		e, err := try(tc.cfg)
		t.Logf("%s: hello error %q, connection error %v", tc.name, e, err)
		if err == nil && e == "" {
			t.Errorf("%s: the TLS listener let the client in", tc.name)
		}
	}
	// A plain TCP client that speaks no TLS at all is dropped within the handshake timeout.
	nc, err := net.Dial("tcp", addr)
	if err == nil {
		nc.SetDeadline(time.Now().Add(15 * time.Second))
		nc.Write(goodHello(t))
		_, err = nc.Read(make([]byte, 100))
		nc.Close()
		t.Logf("plain TCP client: %v", err)
	}
}
