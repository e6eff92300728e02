package daemon_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// xdgEnv is a set of XDG directories of one user of the shoal binary.
type xdgEnv struct {
	config, state string
	env           []string
}

func newXDG(t *testing.T, user string) *xdgEnv {
	dir := t.TempDir()
	x := &xdgEnv{config: filepath.Join(dir, "config"), state: filepath.Join(dir, "state")}
	x.env = append(os.Environ(), "XDG_CONFIG_HOME="+x.config, "XDG_STATE_HOME="+x.state,
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"),
		"XDG_CONFIG_DIRS="+filepath.Join(dir, "none"), "USER="+user, "SHOAL_IDENTITY=")
	os.MkdirAll(filepath.Join(x.config, "shoal"), 0o700)
	return x
}

// shoal runs the binary with x's environment and returns its combined output.
func (x *xdgEnv) shoal(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(shoaltest.Binary(t), args...)
	cmd.Env = x.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (x *xdgEnv) writeConfig(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(x.config, "shoal", "config.toml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRemoteConsoleBinary runs `shoal daemon` with a mutual-TLS listener and a
// one-shot `shoal --daemon tls://... run` from another user's directories, whose
// certificate is found where `shoal certs issue $USER` puts it; the daemon audits
// the run under that certificate's name. A listener without a client CA is refused,
// and an insecure one warns.
func TestRemoteConsoleBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	srv, cli := newXDG(t, "ops"), newXDG(t, "alice")
	if out, err := srv.shoal(t, "certs", "init"); err != nil {
		t.Fatalf("certs init: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"certs", "issue", "daemon", "--host", "127.0.0.1"}, {"certs", "issue", "alice"}} {
		if out, err := srv.shoal(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	tlsDir := filepath.Join(srv.config, "shoal", "tls")
	cliTLS := filepath.Join(cli.config, "shoal", "tls")
	os.MkdirAll(cliTLS, 0o700)
	for _, f := range []string{"ca.pem", "alice.pem", "alice-key.pem"} {
		data, err := os.ReadFile(filepath.Join(tlsDir, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(cliTLS, f), data, 0o600)
	}

	port := freePort(t)
	hosts := "[tags]\nweb = \"w[1-2]\"\n[[host]]\nname = \"w[1-2]\"\ntransport = \"local\"\n"
	listen := fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:%d\"\ntls_cert = %q\ntls_key = %q\n", port,
		filepath.Join(tlsDir, "daemon.pem"), filepath.Join(tlsDir, "daemon-key.pem"))

	// No client CA: refused.
	srv.writeConfig(t, hosts+listen)
	if out, err := srv.shoal(t, "daemon"); err == nil || !strings.Contains(out, "client_ca") {
		t.Errorf("a daemon listening without a client CA started (%v):\n%s", err, out)
	}

	srv.writeConfig(t, hosts+listen+fmt.Sprintf("client_ca = %q\n", filepath.Join(tlsDir, "ca.pem")))
	d := exec.Command(shoaltest.Binary(t), "daemon")
	d.Env = srv.env
	var dlog bytes.Buffer
	d.Stderr = &dlog
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Process.Signal(syscall.SIGTERM)
		d.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i == 300 {
			t.Fatalf("the daemon does not listen on %s after 30s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	cli.writeConfig(t, "[tags]\nweb = \"w[1-2]\"\n")
	out, err := cli.shoal(t, "--daemon", "tls://"+addr, "run", "@web", "--", "echo remote-$((40+2))")
	if err != nil || strings.Count(out, "remote-42") != 1 || !strings.Contains(out, "w[1-2]") {
		t.Errorf("remote run: %v\n%s", err, out)
	}
	// The console, reading commands from a pipe.
	con := exec.Command(shoaltest.Binary(t), "--daemon", "tls://"+addr, "@web")
	con.Env = cli.env
	con.Stdin = strings.NewReader("echo console-$((1+1))\n")
	if out, err := con.CombinedOutput(); err != nil || !strings.Contains(string(out), "console-2") {
		t.Errorf("remote console: %v\n%s", err, out)
	}
	// The same through [client] daemon, with the result shown per host.
	cli.writeConfig(t, fmt.Sprintf("[tags]\nweb = \"w[1-2]\"\n[client]\ndaemon = \"tls://%s\"\n", addr))
	if out, err := cli.shoal(t, "run", "w1", "--", "echo via-config"); err != nil || !strings.Contains(out, "via-config") {
		t.Errorf("remote run through [client] daemon: %v\n%s", err, out)
	}
	// Put and get stream the file over the TLS connection; get writes on the client's side.
	files := t.TempDir()
	src, dest, got := filepath.Join(files, "src.txt"), filepath.Join(files, "dest.txt"), filepath.Join(files, "got")
	os.WriteFile(src, []byte("remote file\n"), 0o640)
	if out, err := cli.shoal(t, "--daemon", "tls://"+addr, "put", "w1", src, dest); err != nil {
		t.Errorf("remote put: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "remote file\n" {
		t.Errorf("remote put wrote %q, %v", b, err)
	}
	if out, err := cli.shoal(t, "--daemon", "tls://"+addr, "get", "@web", dest, got); err != nil {
		t.Errorf("remote get: %v\n%s", err, out)
	}
	for _, h := range []string{"w1", "w2"} {
		if b, err := os.ReadFile(filepath.Join(got, h, "dest.txt")); err != nil || string(b) != "remote file\n" {
			t.Errorf("remote get into %s/: %q, %v", h, b, err)
		}
	}
	// Stopping needs a local client.
	if out, err := cli.shoal(t, "--daemon", "tls://"+addr, "daemon", "stop"); err == nil {
		t.Errorf("a remote client stopped the daemon:\n%s", out)
	}

	audit, _ := os.ReadFile(filepath.Join(srv.state, "shoal", "audit.log"))
	if n := strings.Count(string(audit), `"cert":"alice"`); n < 2 || !strings.Contains(string(audit), `"op":"run"`) {
		t.Errorf("the audit log names alice %d times; want her runs:\n%s", n, audit)
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", dlog.String())
	}
}
