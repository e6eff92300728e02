package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
)

// Gateway is another daemon that reaches some hosts for this one. Requests for
// those hosts are forwarded to it as a client (over mutual TLS), and its answers
// stream back to the client that asked.
type Gateway struct {
	// Address names the gateway in errors, e.g. "tls://gw1:9007".
	Address string
	// Match reports whether host is reached through this gateway.
	Match func(host string) bool
	// Dial connects to the gateway, saying hops in its hello (client.Options.Hops).
	Dial func(ctx context.Context, hops int) (*client.Client, error)
}

// gatewayDialTimeout bounds connecting to a gateway.
const gatewayDialTimeout = 10 * time.Second

// gatewayBeat is how often a connected gateway is asked for its status; one that
// does not answer within two beats is dropped, so a gateway that hangs (frozen, or
// cut off without a reset) fails its hosts instead of holding them forever.
const gatewayBeat = 5 * time.Second

// gateway is a Gateway and the one connection this daemon keeps to it.
type gateway struct {
	Gateway

	// dialMu serialises dialling, and is held across the dial, so that concurrent
	// requests share one connection.
	dialMu sync.Mutex
	beat   time.Duration
	mu     sync.Mutex             // protects the following
	conns  map[int]*client.Client // by hops: usually one
	closed bool
	lost   map[*client.Client]error // connections the heartbeat dropped, and why
	own    map[*client.Client]bool  // connections of one transfer each (dialOwn)

	stop chan struct{}  // closed by close: heartbeats end
	wg   sync.WaitGroup // heartbeats
}

// errGatewayClosed is returned for a gateway whose daemon is stopping.
var errGatewayClosed = errors.New("daemon is stopping")

// hopsKey is the context key of the hops of the client a request came from.
type hopsKey struct{}

func withHops(ctx context.Context, hops int) context.Context {
	return context.WithValue(ctx, hopsKey{}, hops)
}

// errTooManyHops refuses to forward a request that went through MaxHops daemons.
var errTooManyHops = fmt.Errorf("the request went through %d daemons already: is there a loop in the [[gateway]] entries?", proto.MaxHops)

// nextHop returns the hop count a request of ctx carries to the next daemon, refusing one
// past proto.MaxHops.
func nextHop(ctx context.Context) (int, error) {
	hops, _ := ctx.Value(hopsKey{}).(int)
	if hops+1 > proto.MaxHops {
		return 0, errTooManyHops
	}
	return hops + 1, nil
}

// dial connects to the gateway for requests of hops, within gatewayDialTimeout.
func (g *gateway) dial(ctx context.Context, hops int) (*client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, gatewayDialTimeout)
	defer cancel()
	c, err := g.Dial(dctx, hops)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	return c, nil
}

// client returns the connection to the gateway for requests of ctx's hops,
// dialling it when there is none or the last one broke.
func (g *gateway) client(ctx context.Context) (*client.Client, error) {
	hops, err := nextHop(ctx)
	if err != nil {
		return nil, err
	}
	g.dialMu.Lock()
	defer g.dialMu.Unlock()
	g.mu.Lock()
	c, closed := g.conns[hops], g.closed
	g.mu.Unlock()
	if closed {
		return nil, errGatewayClosed
	}
	if c != nil && g.connErr(c) == nil {
		return c, nil
	}
	if c != nil {
		c.Close()
	}
	c, err = g.dial(ctx, hops)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		c.Close()
		return nil, errGatewayClosed
	}
	if g.conns == nil {
		g.conns = map[int]*client.Client{}
	}
	g.conns[hops] = c
	g.wg.Add(1)
	go g.heartbeat(c)
	return c, nil
}

// dialOwn opens a connection to the gateway for one transfer whose replies may
// stall (a get streaming to a slow client), so that they hold up no other request
// and no heartbeat on the shared connection. The caller ends it with release.
func (g *gateway) dialOwn(ctx context.Context) (*client.Client, error) {
	hops, err := nextHop(ctx)
	if err != nil {
		return nil, err
	}
	c, err := g.dial(ctx, hops)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		c.Close()
		return nil, errGatewayClosed
	}
	if g.own == nil {
		g.own = map[*client.Client]bool{}
	}
	g.own[c] = true
	return c, nil
}

// release closes c, a connection from dialOwn.
func (g *gateway) release(c *client.Client) {
	g.mu.Lock()
	delete(g.own, c)
	g.mu.Unlock()
	c.Close()
}

// heartbeat asks the gateway on c for its status every beat until c ends, and
// closes c when an answer takes longer than two beats.
func (g *gateway) heartbeat(c *client.Client) {
	defer g.wg.Done()
	t := time.NewTicker(g.beat)
	defer t.Stop()
	for {
		g.mu.Lock()
		closed := g.closed
		g.mu.Unlock()
		if closed || c.Err() != nil {
			return
		}
		select {
		case <-t.C:
		case <-g.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*g.beat)
		_, err := c.Status(ctx)
		cancel()
		if err != nil && c.Err() == nil {
			g.mu.Lock()
			if g.lost == nil {
				g.lost = map[*client.Client]error{}
			}
			g.lost[c] = fmt.Errorf("no answer for %v: %w", 2*g.beat, err)
			g.mu.Unlock()
			c.Close()
			return
		}
	}
}

// connErr returns why c, a connection to the gateway, ended; nil while it is open.
func (g *gateway) connErr(c *client.Client) error {
	g.mu.Lock()
	lost := g.lost[c]
	g.mu.Unlock()
	if lost != nil {
		return lost
	}
	return c.Err()
}

// close ends the connection to the gateway; its runs end with an error at once.
func (g *gateway) close() {
	g.mu.Lock()
	conns := g.conns
	if !g.closed {
		close(g.stop)
	}
	own := g.own
	g.conns, g.own, g.closed = nil, nil, true
	g.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	for c := range own {
		c.Close()
	}
	g.wg.Wait()
}

// gatewayErr is a host's error when its gateway could not be reached or went away.
func (g *gateway) gatewayErr(err error) string {
	return fmt.Sprintf("through gateway %s: %v", g.Address, err)
}

// share is the part of a request's hosts that one gateway (or this daemon, when gw
// is nil) serves, with each host's position in the request.
type share struct {
	gw    *gateway
	pos   []int
	hosts []string
}

// route splits hosts between this daemon (first, gw nil, possibly empty) and the
// gateways that match them: the first matching gateway takes a host.
func (s *server) route(hosts []string) []share {
	shares := []share{{}}
	byGW := map[*gateway]int{}
	for i, h := range hosts {
		k := 0
		if gw := s.gatewayFor(h); gw != nil {
			var ok bool
			if k, ok = byGW[gw]; !ok {
				k = len(shares)
				byGW[gw] = k
				shares = append(shares, share{gw: gw})
			}
		}
		shares[k].pos = append(shares[k].pos, i)
		shares[k].hosts = append(shares[k].hosts, h)
	}
	return shares
}

// gatewayFor returns the gateway that reaches host, or nil when this daemon does.
func (s *server) gatewayFor(host string) *gateway {
	for _, gw := range s.gws {
		if gw.Match(host) {
			return gw
		}
	}
	return nil
}

// forShares calls fn for every non-empty share of hosts in parallel and waits.
func (s *server) forShares(hosts []string, fn func(sh share)) {
	var wg sync.WaitGroup
	for _, sh := range s.route(hosts) {
		if len(sh.hosts) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(sh)
		}()
	}
	wg.Wait()
}

// forwardIdentity is who a forwarded request is for, as the gateway's audit log
// should name her: the person at the console, else the client's certificate or uid.
func forwardIdentity(who audit.Client) string {
	switch {
	case who.Identity != "":
		return who.Identity
	case who.Cert != "":
		return "cert " + who.Cert
	case who.UID >= 0:
		return fmt.Sprintf("uid %d", who.UID)
	}
	return ""
}

// runGateway forwards one run's share of hosts to gw, streams the gateway's
// events to the client and returns each host's full result, in hosts order.
// Cancelling ctx cancels the run at the gateway, which kills the remote work. A
// gateway that cannot be reached or goes away gives every host it has not
// finished an unreachable result naming the gateway.
func (c *clientConn) runGateway(ctx context.Context, id, runID uint64, who audit.Client, gw *gateway, hosts []string, req *proto.RunRequest, place *placement) []proto.HostResult {
	s := c.s
	out := make([]proto.HostResult, len(hosts))
	idx := make(map[string]int, len(hosts))
	for i, h := range hosts {
		idx[h] = i
	}
	done := make([]bool, len(hosts))
	outLen := make([]int, len(hosts))
	errLen := make([]int, len(hosts))
	finish := func(i int, hr proto.HostResult) {
		full := hr
		if len(hr.Stdout) == outLen[i] && len(hr.Stderr) == errLen[i] {
			// The client has every chunk already.
			hr.Stdout, hr.Stderr, hr.Output = nil, nil, false
		} else {
			hr.Output = true
		}
		c.send(id, proto.TypeRunEvent, &proto.RunEvent{Host: hosts[i], Kind: proto.EventDone, Result: &hr})
		full.Output = false
		s.noteOutcome(who, runID, &full)
		out[i], done[i] = full, true
	}
	failAll := func(err error) {
		for i, h := range hosts {
			if done[i] {
				continue
			}
			hr := proto.HostResult{Host: h, Status: statusOfGateway(ctx, err), Err: gw.gatewayErr(err), Ended: proto.UnixNanoOf(s.opts.Now())}
			if ctx.Err() != nil {
				hr.Err = context.Cause(ctx).Error()
			}
			finish(i, hr)
		}
	}
	gc, err := gw.client(ctx)
	var r *client.Run
	if err == nil {
		fwd := proto.RunRequest{}
		place.forward(&fwd, hosts)
		r, err = gc.Run(ctx, client.RunRequest{Hosts: hosts, Command: req.Command, Timeout: time.Duration(req.Timeout),
			Env: req.Env, Stdin: req.Stdin, Identity: forwardIdentity(who), Fanout: req.Fanout, Dir: req.Dir, KillGrace: time.Duration(req.KillGrace),
			Subst: req.Subst, Masked: req.Masked, Index: fwd.Index, Count: fwd.Count, RunID: fwd.RunID,
			SudoUser: req.SudoUser, SudoPassword: req.SudoPassword, SudoCheck: req.SudoCheck,
			Script: req.Script, ScriptName: req.ScriptName, Args: req.Args, Login: req.Login, PTY: req.PTY})
	}
	if err != nil {
		failAll(err)
		return out
	}
	// A second Ctrl-C (Cancel.Now) goes on to the gateway, which kills at once too.
	c.mu.Lock()
	now := c.killNow[id]
	c.mu.Unlock()
	if now != nil {
		stop, stopped := make(chan struct{}), make(chan struct{})
		defer func() { close(stop); <-stopped }()
		go func() {
			defer close(stopped)
			select {
			case <-now:
				r.KillNow()
			case <-stop:
			}
		}()
	}
	for ev := range r.Events {
		i, ok := idx[ev.Host]
		if !ok || done[i] {
			continue
		}
		switch ev.Kind {
		case proto.EventState, proto.EventStart:
		case proto.EventStdout:
			outLen[i] += len(ev.Data)
		case proto.EventStderr:
			errLen[i] += len(ev.Data)
		case proto.EventDone:
			hr := *ev.Result
			if cerr := gc.Err(); cerr != nil && ev.Result.Status == proto.StatusError && ev.Result.Err == cerr.Error() {
				// The connection broke: the client library made this result up.
				hr.Status, hr.Err = proto.StatusUnreachable, gw.gatewayErr(fmt.Errorf("gateway went away: %w", gw.connErr(gc)))
				if ctx.Err() != nil {
					hr.Status = proto.StatusCancelled
				}
			}
			finish(i, hr)
			continue
		default:
			continue
		}
		c.send(id, proto.TypeRunEvent, &ev)
	}
	if cerr := gw.connErr(gc); cerr != nil {
		failAll(fmt.Errorf("gateway went away: %w", cerr))
	} else {
		failAll(errors.New("the gateway ended the run without a result for this host"))
	}
	return out
}

// statusOfGateway is a host's status when its gateway failed a whole request.
func statusOfGateway(ctx context.Context, err error) proto.Status {
	switch {
	case ctx.Err() != nil:
		return proto.StatusCancelled
	case errors.Is(err, errTooManyHops), errors.Is(err, client.ErrNoFileStream):
		return proto.StatusError
	}
	return proto.StatusUnreachable
}

// askGateway sends one request for hosts to gw and returns one answer per host, in order:
// convert(host, answer) when the gateway answered for every host, else failed(host, status,
// message) for each of them.
func askGateway[A, R any](ctx context.Context, gw *gateway, hosts []string,
	ask func(*client.Client) ([]A, error), convert func(host string, a A) R, failed func(host string, status proto.Status, msg string) R) []R {
	out := make([]R, len(hosts))
	gc, err := gw.client(ctx)
	var res []A
	if err == nil {
		res, err = ask(gc)
	}
	if err == nil && len(res) != len(hosts) {
		err = fmt.Errorf("the gateway answered for %d hosts, not %d", len(res), len(hosts))
	}
	for i, h := range hosts {
		if err != nil {
			out[i] = failed(h, statusOfGateway(ctx, err), gw.gatewayErr(err))
			continue
		}
		out[i] = convert(h, res[i])
	}
	return out
}

func (s *server) pingGateway(ctx context.Context, gw *gateway, hosts []string) []proto.PingResult {
	return askGateway(ctx, gw, hosts,
		func(gc *client.Client) ([]client.PingResult, error) { return gc.Ping(ctx, hosts) },
		func(h string, p client.PingResult) proto.PingResult {
			return proto.PingResult{Host: h, RTT: int64(p.RTT), Status: p.Status, Err: p.Err}
		},
		func(h string, status proto.Status, msg string) proto.PingResult {
			return proto.PingResult{Host: h, Status: status, Err: msg}
		})
}

func (s *server) infoGateway(ctx context.Context, gw *gateway, hosts []string) []proto.InfoResult {
	return askGateway(ctx, gw, hosts,
		func(gc *client.Client) ([]client.InfoResult, error) { return gc.Info(ctx, hosts) },
		func(h string, p client.InfoResult) proto.InfoResult {
			r := proto.InfoResult{Host: h, Status: p.Status, Err: p.Err, Hostname: p.Hostname, OS: p.OS, Arch: p.Arch,
				Kernel: p.Kernel, CPUs: p.CPUs, MemTotal: p.MemTotal, MemAvailable: p.MemAvailable, Load: p.Load,
				Uptime: int64(p.Uptime), AgentVersion: p.AgentVersion, AgentHash: p.AgentHash}
			if !p.Clock.IsZero() {
				r.Clock = p.Clock.UnixNano()
			}
			return r
		},
		func(h string, status proto.Status, msg string) proto.InfoResult {
			return proto.InfoResult{Host: h, Status: status, Err: msg}
		})
}

// timeGateway asks gw for its hosts' clock offsets. They are measured against the
// gateway's clock, not this daemon's.
func (s *server) timeGateway(ctx context.Context, gw *gateway, hosts []string) []proto.TimeResult {
	return askGateway(ctx, gw, hosts,
		func(gc *client.Client) ([]client.TimeResult, error) { return gc.Time(ctx, hosts) },
		func(h string, p client.TimeResult) proto.TimeResult {
			return proto.TimeResult{Host: h, Status: p.Status, Err: p.Err, Offset: int64(p.Offset), RTT: int64(p.RTT)}
		},
		func(h string, status proto.Status, msg string) proto.TimeResult {
			return proto.TimeResult{Host: h, Status: status, Err: msg}
		})
}
