package daemon_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	sshtr "github.com/shoal-sh/shoal/internal/transport/ssh"
)

// TestFleet runs the daemon against real sshd hosts: agents are installed over SSH,
// two clients share hosts, and a client that leaves mid-command leaves no process.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an sshd fleet")
	}
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 3})
	tr := sshtr.New(sshtr.Options{Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"}, Source: f.AgentSource(t)})
	d := startDaemon(t, tr, func(o *daemon.Options) {
		o.Resolve = func(host string) (daemon.Host, error) {
			return daemon.Host{Target: transport.Target{Name: host}, Transport: tr, TransportName: "ssh"}, nil
		}
	})
	names := f.Names()
	c1, c2 := d.dial(t, "one"), d.dial(t, "two")
	var wg sync.WaitGroup
	for i, c := range []*client.Client{c1, c2} {
		hosts := names[i : i+2]
		word := []string{"first", "second"}[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Run(context.Background(), client.RunRequest{Hosts: hosts, Command: "echo " + word + "; whoami"})
			if err != nil {
				t.Error(err)
				return
			}
			_, done := collect(t, r)
			if len(done) != 2 {
				t.Errorf("%s: %d results; want 2", word, len(done))
			}
			for _, h := range hosts {
				res := done[h]
				if res == nil || res.Status != proto.StatusOK || !strings.HasPrefix(string(res.Stdout), word+"\n") {
					t.Errorf("%s on %s: %+v", word, h, res)
				}
			}
		}()
	}
	wg.Wait()

	st, err := c1.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Hosts) != 3 {
		t.Errorf("status lists %d hosts; want 3", len(st.Hosts))
	}
	for _, h := range st.Hosts {
		if h.State != "ready" || h.AgentPID == 0 {
			t.Errorf("host %+v; want ready with an agent pid", h)
		}
	}

	// A client that leaves mid-command: its process groups on the hosts die.
	c3, err := client.Dial(context.Background(), client.Options{Socket: d.socket})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c3.Run(context.Background(), client.RunRequest{Hosts: names, Command: "sleep 1000 & sleep 1000"})
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for ev := range r.Events {
		if ev.Kind == proto.EventStart {
			pids[ev.Host] = ev.PID
		}
		if len(pids) == len(names) {
			break
		}
	}
	c3.Close()
	for _, pid := range pids {
		waitGone(t, pid) // the fleet's hosts are this machine
	}
}
