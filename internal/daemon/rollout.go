package daemon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/hostsess"
	"github.com/shoal-sh/shoal/internal/proto"
)

// pace is a rollout resolved against a run's host count.
type pace struct {
	batch   int           // hosts running at once, ≥ 1
	waves   bool          // strict waves
	wait    time.Duration // between waves, or before a freed place is taken
	maxFail int           // failures that stop the rollout; 0: none
	canary  int           // hosts run first, alone
	order   []int         // host indexes in the order they start
}

// percentOf returns pct percent of n, rounded up, and at least 1.
func percentOf(pct, n int) int {
	return max(1, (pct*n+99)/100)
}

// resolvePace checks ro and resolves it for n hosts.
func resolvePace(ro *proto.Rollout, n int) (pace, error) {
	p := pace{batch: n, order: make([]int, n)}
	for i := range p.order {
		p.order[i] = i
	}
	if ro == nil {
		return p, nil
	}
	switch {
	case ro.Batch < 0 || ro.BatchPercent < 0 || ro.BatchPercent > 100:
		return p, fmt.Errorf("batch %d (%d%%) is out of range", ro.Batch, ro.BatchPercent)
	case ro.MaxFail < 0 || ro.MaxFailPercent < 0 || ro.MaxFailPercent > 100:
		return p, fmt.Errorf("max-fail %d (%d%%) is out of range", ro.MaxFail, ro.MaxFailPercent)
	case ro.Canary < 0 || ro.Wait < 0:
		return p, fmt.Errorf("canary %d or batch wait %v is negative", ro.Canary, time.Duration(ro.Wait))
	}
	switch {
	case ro.Batch > 0:
		p.batch = min(ro.Batch, n)
	case ro.BatchPercent > 0:
		p.batch = min(percentOf(ro.BatchPercent, n), n)
	}
	switch {
	case ro.MaxFail > 0:
		p.maxFail = ro.MaxFail
	case ro.MaxFailPercent > 0:
		p.maxFail = percentOf(ro.MaxFailPercent, n)
	}
	p.waves, p.wait, p.canary = ro.Waves, time.Duration(ro.Wait), min(ro.Canary, n)
	if ro.Shuffle {
		seed := uint64(ro.Seed)
		if seed == 0 {
			seed = rand.Uint64()
		}
		r := rand.New(rand.NewPCG(seed, seed>>32|seed<<32))
		r.Shuffle(n, func(i, j int) { p.order[i], p.order[j] = p.order[j], p.order[i] })
	}
	return p, nil
}

// failure reports whether a host's status counts against a rollout's failure limit: any but
// ok, and cancelled (the person stopped it).
func failure(status proto.Status) bool {
	return status != proto.StatusOK && status != proto.StatusCancelled
}

// rollout runs the hosts of a run as p paces them. run runs host i to its end and returns
// its status; skip is called, after every started host has ended, for each host left
// unstarted, with why (the caller tells a cancel from a stop by ctx). rollout returns
// when every host has been run or skipped.
func rollout(ctx context.Context, p pace, run func(i int) proto.Status, skip func(i int, why string)) {
	var (
		mu      sync.Mutex // protects the following
		failed  int
		stopped string // why no host starts any more; "" while they do
	)
	var wg sync.WaitGroup
	start := func(i int, slots chan struct{}) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := run(i)
			mu.Lock()
			if failure(st) {
				failed++
				if p.maxFail > 0 && failed >= p.maxFail && stopped == "" {
					stopped = fmt.Sprintf("not started: %d of the hosts failed, the limit (--max-fail) is %d", failed, p.maxFail)
				}
			}
			mu.Unlock()
			if slots != nil {
				<-slots
			}
		}()
	}
	halt := func() string {
		mu.Lock()
		defer mu.Unlock()
		return stopped
	}
	// sleep waits d, or until ctx ends; it reports whether ctx ended.
	sleep := func(d time.Duration) bool {
		if d <= 0 {
			return ctx.Err() != nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-ctx.Done():
			return true
		}
	}
	next := 0
	var why string
	// The canaries first, alone; every one must succeed.
	if p.canary > 0 {
		for ; next < p.canary; next++ {
			start(p.order[next], nil)
		}
		wg.Wait()
		mu.Lock()
		if failed > 0 && stopped == "" {
			stopped = fmt.Sprintf("not started: %d of the %d canaries failed", failed, p.canary)
		}
		mu.Unlock()
		if why = halt(); why == "" && next < len(p.order) && sleep(p.wait) {
			why = "not started: cancelled"
		}
	}
	if why == "" && p.waves {
		for first := p.canary == 0; next < len(p.order); first = false {
			if !first && sleep(p.wait) {
				why = "not started: cancelled"
				break
			}
			if why = halt(); why != "" {
				break
			}
			for end := min(next+p.batch, len(p.order)); next < end; next++ {
				start(p.order[next], nil)
			}
			wg.Wait()
		}
	} else if why == "" {
		slots := make(chan struct{}, p.batch)
	loop:
		for ; next < len(p.order); next++ {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				why = "not started: cancelled"
				break loop
			}
			// A place freed up: it is taken after the wait, unless the rollout stopped meanwhile.
			if next >= p.batch+p.canary && sleep(p.wait) {
				why = "not started: cancelled"
				break
			}
			if why = halt(); why != "" {
				break
			}
			start(p.order[next], slots)
		}
	}
	wg.Wait()
	if why == "" {
		why = halt()
	}
	for _, i := range p.order[next:] {
		skip(i, why)
	}
}

// runPaced runs a run's hosts as p paces them, each host alone whether it is local or behind a
// gateway (so one pace holds across all of them), and fills results in hosts order.
func (c *clientConn) runPaced(ctx context.Context, id, runID uint64, who audit.Client, hosts []string,
	req *proto.RunRequest, ereq hostsess.ExecRequest, place *placement, slots chan struct{}, p pace, results []proto.HostResult) {
	s := c.s
	gws := make([]*gateway, len(hosts))
	for _, sh := range s.route(hosts) {
		for k := range sh.hosts {
			gws[sh.pos[k]] = sh.gw
		}
	}
	rollout(ctx, p, func(i int) proto.Status {
		if gw := gws[i]; gw != nil {
			results[i] = c.runGateway(ctx, id, runID, who, gw, hosts[i:i+1], req, place)[0]
		} else {
			results[i] = c.runHost(ctx, id, runID, who, hosts[i], ereq, place, slots)
		}
		return results[i].Status
	}, func(i int, why string) {
		hr := proto.HostResult{Host: hosts[i], Status: proto.StatusSkipped, Err: why}
		if ctx.Err() != nil {
			hr.Status, hr.Err = proto.StatusCancelled, "not started: "+context.Cause(ctx).Error()
		}
		c.send(id, proto.TypeRunEvent, &proto.RunEvent{Host: hosts[i], Kind: proto.EventDone, Result: &hr})
		s.noteOutcome(who, runID, &hr)
		results[i] = hr
	})
}
