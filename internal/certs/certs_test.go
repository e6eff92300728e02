package certs

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := Init(dir, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Issue(dir, IssueOptions{Name: "daemon", Hosts: []string{"127.0.0.1", "localhost"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Issue(dir, IssueOptions{Name: "alice@example"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFilesArePrivate(t *testing.T) {
	dir := setup(t)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("dir mode = %v; want 0700", got)
	}
	for _, f := range []string{CACert, CAKey, "daemon.pem", "daemon-key.pem", "alice@example-key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %v; want 0600", f, got)
		}
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	dir := setup(t)
	if err := Init(dir, "", now); !errors.Is(err, ErrExists) {
		t.Errorf("second Init: got %v; want ErrExists", err)
	}
}

func TestIssueRejectsBadNames(t *testing.T) {
	dir := setup(t)
	for _, name := range []string{"", "../x", "a/b", "-x", "a b"} {
		if _, _, err := Issue(dir, IssueOptions{Name: name}, now); err == nil {
			t.Errorf("Issue(%q): got nil error; want one", name)
		}
	}
}

func TestServerConfigRequiresClientCA(t *testing.T) {
	dir := setup(t)
	if _, err := ServerConfig(filepath.Join(dir, "daemon.pem"), filepath.Join(dir, "daemon-key.pem"), ""); err == nil {
		t.Fatal("ServerConfig without a client CA: got nil error")
	}
}

// serve accepts connections on a loopback listener and reports the peer name of each
// completed handshake, or the handshake error.
func serve(t *testing.T, cfg *tls.Config) (addr string, results <-chan string) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				ch <- "error: " + err.Error()
			} else {
				ch <- PeerName(tc.ConnectionState())
				io.WriteString(tc, "hi")
			}
			tc.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), ch
}

func TestMutualTLS(t *testing.T) {
	dir := setup(t)
	scfg, err := ServerConfig(filepath.Join(dir, "daemon.pem"), filepath.Join(dir, "daemon-key.pem"), filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serve(t, scfg)

	ccfg, err := ClientConfig(filepath.Join(dir, "alice@example.pem"), filepath.Join(dir, "alice@example-key.pem"), filepath.Join(dir, CACert), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", addr, ccfg)
	if err != nil {
		t.Fatalf("dial with a good certificate: %v", err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if got := <-results; got != "alice@example" {
		t.Errorf("server saw peer %q; want alice@example", got)
	}
	if string(b) != "hi" {
		t.Errorf("read %q; want hi", b)
	}

	// A certificate from another CA is refused.
	other := setup(t)
	bad, err := ClientConfig(filepath.Join(other, "alice@example.pem"), filepath.Join(other, "alice@example-key.pem"), filepath.Join(dir, CACert), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tls.Dial("tcp", addr, bad); err == nil {
		io.ReadAll(c) // TLS 1.3 reports the client's rejection on the first read
		c.Close()
	}
	if got := <-results; got[:6] != "error:" {
		t.Errorf("foreign-CA client: server got %q; want a handshake error", got)
	}

	// No client certificate at all is refused.
	nocert := ccfg.Clone()
	nocert.Certificates = nil
	if c, err := tls.Dial("tcp", addr, nocert); err == nil {
		io.ReadAll(c)
		c.Close()
	}
	if got := <-results; got[:6] != "error:" {
		t.Errorf("client without certificate: server got %q; want a handshake error", got)
	}

	// TLS 1.2 is refused.
	old := ccfg.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if c, err := tls.Dial("tcp", addr, old); err == nil {
		c.Close()
		t.Error("TLS 1.2 client: handshake succeeded; want refusal")
	}
	if got := <-results; got[:6] != "error:" {
		t.Errorf("TLS 1.2 client: server got %q; want a handshake error", got)
	}
}
