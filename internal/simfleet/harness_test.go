package simfleet_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/hostsess"
	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	sshtr "github.com/shoal-sh/shoal/internal/transport/ssh"
)

func TestMain(m *testing.M) { shoaltest.Main(m) }

// agentSource is what the daemon offers: the shoal binary built for the tests.
func agentSource(tb testing.TB) (*install.Source, []string) {
	src := &install.Source{Self: shoaltest.Binary(tb)}
	var hashes []string
	for _, b := range src.Available() {
		hashes = append(hashes, b.Hash)
	}
	if len(hashes) == 0 {
		tb.Fatal("the test binary offers no agent")
	}
	return src, hashes
}

// startDaemon serves a daemon in this process on the fleet whose ssh_config is sshConfig and
// returns a client of it; both stop when tb ends.
func startDaemon(tb testing.TB, sshConfig string, src *install.Source) *client.Client {
	tb.Helper()
	c, stop := startDaemonStop(tb, sshConfig, src)
	tb.Cleanup(stop)
	return c
}

// startDaemonStop is startDaemon returning the function that stops the daemon and its client.
func startDaemonStop(tb testing.TB, sshConfig string, src *install.Source) (*client.Client, func()) {
	tb.Helper()
	dir := tb.TempDir()
	socket := config.Paths{RuntimeDir: filepath.Join(dir, "run", "shoal")}.Socket()
	ln, err := daemon.Listen(socket)
	if err != nil {
		tb.Fatal(err)
	}
	tr := sshtr.New(sshtr.Options{Dialer: &sshx.Dialer{ConfigFile: sshConfig, AgentSocket: "none"}, Source: src})
	opts := daemon.Options{
		Resolve: func(host string) (daemon.Host, error) {
			return daemon.Host{Target: transport.Target{Name: host}, Transport: tr, TransportName: "ssh"}, nil
		},
		Socket:  socket,
		Version: "test",
		Session: hostsess.Options{KillWait: 500 * time.Millisecond, ConnectTimeout: 2 * time.Minute},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Serve(ctx, ln, opts) }()
	c, err := client.Dial(context.Background(), client.Options{Socket: socket, Version: "test"})
	if err != nil {
		cancel()
		<-done
		tb.Fatal(err)
	}
	var once sync.Once
	return c, func() {
		once.Do(func() {
			c.Close()
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("daemon: %v", err)
			}
		})
	}
}

// run runs cmd on hosts and returns each host's result, failing tb after patience.
func run(tb testing.TB, c *client.Client, req client.RunRequest, patience time.Duration) map[string]*proto.HostResult {
	tb.Helper()
	r, err := c.Run(context.Background(), req)
	if err != nil {
		tb.Fatalf("running %q: %v", req.Command, err)
	}
	done := map[string]*proto.HostResult{}
	timeout := time.After(patience)
	for {
		select {
		case ev, ok := <-r.Events:
			if !ok {
				return done
			}
			if ev.Kind == proto.EventDone {
				done[ev.Host] = ev.Result
			}
		case <-timeout:
			r.Cancel()
			tb.Fatalf("%q: %d of %d hosts done after %v", req.Command, len(done), len(req.Hosts), patience)
		}
	}
}
