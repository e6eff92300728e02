package daemon_test

import (
	"context"
	"testing"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
)

// TestCancelFloodStopsOutput: after a cancel, the daemon stops relaying the
// output of flooding hosts: what still reaches the client is bounded by what was
// already on its way (the daemon's send buffer and a few chunks per host), not by
// what the hosts produced, and every host still gets a cancelled result.
func TestCancelFloodStopsOutput(t *testing.T) {
	checkLeaks(t)
	const outputCap = 16 << 20
	d := startDaemon(t, newPipeTransport(t), func(o *daemon.Options) { o.OutputCap = outputCap })
	c := d.dial(t, "alice")
	hosts := []string{"a", "b", "c", "d"}
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: hosts, Command: "yes"})
	if err != nil {
		t.Fatal(err)
	}
	var before, after int64
	cancelled := false
	done := map[string]*proto.HostResult{}
	for ev := range r.Events {
		switch ev.Kind {
		case proto.EventStdout, proto.EventStderr:
			if cancelled {
				after += int64(len(ev.Data))
			} else {
				before += int64(len(ev.Data))
			}
			if !cancelled && before >= 1<<20 {
				cancelled = true
				r.Cancel()
			}
		case proto.EventDone:
			done[ev.Host] = ev.Result
		}
	}
	if !cancelled {
		t.Fatalf("the run ended after %d bytes, before the cancel", before)
	}
	// The daemon's client buffer (8 MiB) plus a few 64 KiB chunks per host.
	bound := int64(8<<20 + len(hosts)<<20)
	t.Logf("%d bytes before the cancel, %d after", before, after)
	if after > bound {
		t.Errorf("%d bytes of output came after the cancel; want at most %d", after, bound)
	}
	for _, h := range hosts {
		res := done[h]
		if res == nil {
			t.Errorf("no result for %s", h)
			continue
		}
		if res.Status != proto.StatusCancelled {
			t.Errorf("%s: status %s (%s); want cancelled", h, res.Status, res.Err)
		}
		if int64(len(res.Stdout)) > before+after {
			t.Errorf("%s: %d bytes of output in the result; more than the %d streamed", h, len(res.Stdout), before+after)
		}
	}
}
