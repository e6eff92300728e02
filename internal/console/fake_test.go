package console

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
)

// fakeSession is an in-memory daemon: commands are answered by behave, per host.
type fakeSession struct {
	// behave decides one host's result for a command; a nil result with block set waits for cancel.
	behave func(host, cmd string) (res proto.HostResult, block bool)

	mu   sync.Mutex
	reqs []client.RunRequest
	last []proto.RunRecord
	// started receives one value per Run once every host has started.
	started chan struct{}
	// release, when set, is what "stubborn" commands wait for instead of the cancel.
	release chan struct{}
	wg      sync.WaitGroup
}

func newFake(behave func(host, cmd string) (proto.HostResult, bool)) *fakeSession {
	return &fakeSession{behave: behave, started: make(chan struct{}, 16)}
}

// standard understands: "true", "fail N" (exit N on hosts whose name ends in 2, else 0),
// "echo X", "sleep" (blocks until cancelled) and "down" (hosts ending in 3 unreachable).
func standard(host, cmd string) (proto.HostResult, bool) {
	r := proto.HostResult{Host: host, Status: proto.StatusOK, PID: 100}
	switch {
	case cmd == "true":
	case strings.HasPrefix(cmd, "fail "):
		if strings.HasSuffix(host, "2") {
			fmt.Sscanf(cmd, "fail %d", &r.ExitCode)
			r.Status = proto.StatusFailed
		}
	case strings.HasPrefix(cmd, "echo "):
		r.Stdout = []byte(strings.TrimPrefix(cmd, "echo ") + "\n")
	case cmd == "sleep":
		if !strings.HasSuffix(host, "1") {
			return r, true
		}
		r.Stdout = []byte("quick\n")
	case cmd == "stubborn":
		return r, true
	case cmd == "down":
		if strings.HasSuffix(host, "3") {
			return proto.HostResult{Host: host, Status: proto.StatusUnreachable, Err: host + ": connection refused"}, false
		}
	default:
		r.Status, r.ExitCode = proto.StatusFailed, 127
		r.Stderr = []byte("bash: " + cmd + ": command not found\n")
	}
	return r, false
}

func (f *fakeSession) requests() []client.RunRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]client.RunRequest(nil), f.reqs...)
}

func (f *fakeSession) Run(ctx context.Context, req client.RunRequest) (*client.Run, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	ch := make(chan proto.RunEvent, 4*len(req.Hosts)+4)
	cancel := make(chan struct{})
	var once sync.Once
	run := &client.Run{ID: uint64(len(f.reqs)), Events: ch, Cancel: func() { once.Do(func() { close(cancel) }) }}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(ch)
		started := time.Now()
		var results []proto.HostResult
		var blocked []proto.HostResult
		for i, h := range req.Hosts {
			res, block := f.behave(h, req.Command)
			res.Host = h
			if res.Status != proto.StatusUnreachable {
				ch <- proto.RunEvent{Host: h, Kind: proto.EventStart, PID: 1000 + i}
			}
			if block {
				blocked = append(blocked, res)
				continue
			}
			if len(res.Stdout) > 0 {
				ch <- proto.RunEvent{Host: h, Kind: proto.EventStdout, Data: res.Stdout}
			}
			r := res
			r.Started, r.Ended = proto.UnixNanoOf(started), proto.UnixNanoOf(time.Now())
			ch <- proto.RunEvent{Host: h, Kind: proto.EventDone, Result: &r}
			results = append(results, r)
		}
		f.started <- struct{}{}
		if len(blocked) > 0 && req.Command == "stubborn" && f.release != nil {
			<-f.release
		} else if len(blocked) > 0 {
			select {
			case <-cancel:
			case <-ctx.Done():
			}
			for _, res := range blocked {
				r := proto.HostResult{Host: res.Host, Status: proto.StatusCancelled, Signal: "KILL", PID: res.PID}
				ch <- proto.RunEvent{Host: res.Host, Kind: proto.EventDone, Result: &r}
				results = append(results, r)
			}
		}
		f.mu.Lock()
		f.last = append([]proto.RunRecord{{ID: run.ID, Command: req.Command, Started: proto.UnixNanoOf(started), Ended: proto.UnixNanoOf(time.Now()), Results: results}}, f.last...)
		f.mu.Unlock()
	}()
	return run, nil
}

func (f *fakeSession) Ping(ctx context.Context, hosts []string) ([]client.PingResult, error) {
	var out []client.PingResult
	for _, h := range hosts {
		r := client.PingResult{Host: h, Status: proto.StatusOK, RTT: time.Millisecond}
		if strings.HasSuffix(h, "3") {
			r = client.PingResult{Host: h, Status: proto.StatusUnreachable, Err: h + ": no route to host"}
		}
		out = append(out, r)
	}
	return out, nil
}

func (f *fakeSession) Info(ctx context.Context, hosts []string) ([]client.InfoResult, error) {
	var out []client.InfoResult
	for _, h := range hosts {
		out = append(out, client.InfoResult{Host: h, Status: proto.StatusOK, OS: "linux", Arch: "amd64", Kernel: "6.1.0",
			CPUs: 4, MemTotal: 8 << 30, MemAvailable: 6 << 30, Load: [3]float64{0.1, 0.2, 0.3}, Uptime: 50 * time.Hour, AgentVersion: "dev"})
	}
	return out, nil
}

func (f *fakeSession) Time(ctx context.Context, hosts []string) ([]client.TimeResult, error) {
	var out []client.TimeResult
	for i, h := range hosts {
		off := time.Duration(i) * time.Millisecond
		if strings.HasSuffix(h, "2") {
			off = 3 * time.Second
		}
		out = append(out, client.TimeResult{Host: h, Status: proto.StatusOK, Offset: off, RTT: time.Millisecond})
	}
	return out, nil
}

func (f *fakeSession) Put(ctx context.Context, hosts []string, req client.PutRequest) ([]client.FileResult, error) {
	var out []client.FileResult
	for _, h := range hosts {
		out = append(out, client.FileResult{Host: h, Status: proto.StatusOK, Bytes: 5, Path: req.Dest})
	}
	return out, nil
}

func (f *fakeSession) Get(ctx context.Context, hosts []string, req client.GetRequest) ([]client.FileResult, error) {
	var out []client.FileResult
	for _, h := range hosts {
		out = append(out, client.FileResult{Host: h, Status: proto.StatusOK, Bytes: 7, Path: req.DestDir + "/" + h + "/x"})
	}
	return out, nil
}

func (f *fakeSession) Status(ctx context.Context) (*client.DaemonStatus, error) {
	return &client.DaemonStatus{PID: 42, Version: "dev", Started: time.Now(), Clients: 1, Socket: "/tmp/s",
		Hosts: []client.HostStatus{{Host: "n1", State: "ready"}, {Host: "n2", State: "ready"}}}, nil
}

func (f *fakeSession) Last(ctx context.Context, n int) ([]proto.RunRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= 0 {
		n = 1
	}
	if len(f.last) == 0 {
		return nil, nil
	}
	return append([]proto.RunRecord(nil), f.last[:min(n, len(f.last))]...), nil
}

func (f *fakeSession) Close() error {
	f.wg.Wait()
	return nil
}

var _ client.Session = (*fakeSession)(nil)
