package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/proto"
)

// helloTimeout bounds how long a new connection may take to say hello.
const helloTimeout = 10 * time.Second

// clientConn is one connected client.
type clientConn struct {
	s   *server
	nc  net.Conn
	pc  *proto.Conn
	id  uint64
	who audit.Client
	out *outbox // frames to the client, after the hello
	// remote is a network (TLS) client: it may not make the daemon read or write
	// local files (put, get), and its history is its certificate's.
	remote bool
	hops   int                 // how many daemons forwarded this client's requests
	config *proto.ClientConfig // the client's configuration; nil for the daemon's own
	ctx    context.Context     // cancelled when the client leaves (its runs are killed)
	quit   context.CancelCauseFunc

	mu   sync.Mutex                         // protects the following
	runs map[uint64]context.CancelCauseFunc // by client request id
	// killNow is closed, by request id, when the client asks for a run to be killed at
	// once (Cancel.Now: a second Ctrl-C), skipping what is left of its kill grace.
	killNow map[uint64]chan struct{}

	// puts are the put-streams whose bytes are still arriving, by request id;
	// only the read loop (and serve after it) touches them.
	puts map[uint64]*spool

	wg sync.WaitGroup // request handlers
}

// stopping ends the connection as the daemon stops: a client whose runs are still
// finishing keeps its connection until they are reported; the read loop then ends
// when the connection closes.
func (c *clientConn) stopping() {
	c.nc.SetReadDeadline(time.Unix(1, 0))
}

// errClientLeft is the cause of cancelled runs whose client disconnected.
var errClientLeft = errors.New("client disconnected")

func (c *clientConn) serve() {
	s := c.s
	defer s.dropClient(c)
	defer c.nc.Close()
	c.pc = proto.NewConn(c.nc, c.nc, proto.ConnOptions{MaxFrame: ClientMaxFrame})
	c.who = audit.Client{ID: c.id, UID: -1}

	cred, err := s.opts.peerCred(c.nc)
	c.who.UID, c.who.PID = cred.UID, cred.PID
	if cred.Remote {
		c.remote = true
		c.who.Cert = cred.Name
	}
	if err == nil {
		err = checkPeer(cred, s.uid, s.opts.AllowUnverifiedTLS)
	}
	hello := proto.DaemonHello{Protocol: proto.Version, Client: proto.ClientVersion, Program: s.opts.Version,
		PID: os.Getpid(), Started: s.started.UnixNano(), Socket: s.opts.Socket,
		Caps: []string{proto.CapFileStream, proto.CapRollout, proto.CapSudo, proto.CapTree, proto.CapLoginUser, proto.CapScript, proto.CapPTY}}
	if err != nil {
		hello.Err = err.Error()
		c.pc.Send(0, proto.TypeDaemonHello, &hello)
		s.audit.Event("client refused", "conn", c.id, "uid", c.who.UID, "pid", c.who.PID, "error", err.Error())
		s.log.Warn("refusing a client", "err", err)
		return
	}
	// Read the client's hello, bounded in time.
	c.nc.SetReadDeadline(time.Now().Add(helloTimeout))
	env, err := c.pc.Recv()
	c.nc.SetReadDeadline(time.Time{})
	if s.ctx.Err() != nil {
		return // stopping; the deadline stopping set may just have been cleared
	}
	var ch proto.ClientHello
	if err == nil && env.Type != proto.TypeClientHello {
		err = fmt.Errorf("first frame is %v, want client-hello", env.Type)
	}
	if err == nil {
		err = env.Decode(&ch)
	}
	var verr *proto.VersionError
	if errors.As(err, &verr) || (err == nil && (ch.Protocol != proto.Version || ch.Client != proto.ClientVersion)) {
		if env != nil {
			env.Decode(&ch)
		}
		err = fmt.Errorf("client speaks protocol %d.%d (version %q), daemon %d.%d (version %q)",
			ch.Protocol, ch.Client, ch.Program, proto.Version, proto.ClientVersion, s.opts.Version)
	}
	if errors.Is(err, io.EOF) {
		return // a probe: connected and left without a word
	}
	if err != nil {
		hello.Err = err.Error()
		c.pc.Send(0, proto.TypeDaemonHello, &hello)
		s.audit.Event("client refused", "conn", c.id, "uid", c.who.UID, "pid", c.who.PID, "error", err.Error())
		return
	}
	c.who.Identity, c.who.Version = ch.Identity, ch.Program
	if err := c.pc.Send(0, proto.TypeDaemonHello, &hello); err != nil {
		return
	}
	s.audit.ClientConnected(c.who)
	c.out = newOutbox(c.nc, s.opts.sendTimeout)
	go c.out.run()
	defer c.out.close()

	// Runs are not cancelled when the daemon stops (the agents keep their results);
	// only the client's leaving or its cancel kills them.
	c.hops = ch.Hops
	if !c.remote {
		// A remote client's paths name files on its own machine, not this one.
		c.config = ch.Config
	}
	c.ctx, c.quit = context.WithCancelCause(withClientConfig(withHops(context.WithoutCancel(s.ctx), c.hops), c.config))
	err = c.readLoop()
	c.dropPuts()
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if s.ctx.Err() != nil {
		// The daemon stops: the host sessions are closed, so the runs end at once;
		// let them report to the client before the connection closes.
		err = nil
		c.wg.Wait()
		c.out.close() // flush their last frames
	}
	c.quit(errClientLeft)
	c.nc.Close()
	c.wg.Wait()
	s.audit.ClientLeft(c.who, err)
}

// readLoop reads requests until the connection ends.
func (c *clientConn) readLoop() error {
	for {
		env, err := c.pc.Recv()
		if err != nil {
			var ut *proto.UnknownTypeError
			if env != nil && errors.As(err, &ut) {
				c.fail(env.ID, proto.CodeUnknownType, err.Error())
				continue
			}
			return err
		}
		body, err := env.DecodeBody()
		if err != nil {
			c.fail(env.ID, proto.CodeBadRequest, err.Error())
			continue
		}
		c.dispatch(env.ID, env.Type, body)
	}
}

// sendTimeout is how long one frame may take to reach a client that stopped
// reading before the daemon gives up on the client (and kills its runs).
const sendTimeout = 30 * time.Second

// send writes one frame to the client; errors mean the client is gone and are
// noticed by the read loop.
func (c *clientConn) send(id uint64, t proto.Type, body any) {
	err := c.out.send(id, t, body)
	if errors.Is(err, proto.ErrFrameTooLarge) && t != proto.TypeFailed {
		c.fail(id, proto.CodeTooLarge, fmt.Sprintf("the %v reply is larger than a frame may be: %v", t, err))
		return
	}
	if err != nil {
		c.nc.Close()
	}
}

func (c *clientConn) fail(id uint64, code proto.ErrorCode, msg string) {
	c.send(id, proto.TypeFailed, &proto.Failed{Code: code, Message: msg})
}

// goHandle runs fn for request id in its own goroutine, owned by c.
func (c *clientConn) goHandle(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

func (c *clientConn) dispatch(id uint64, t proto.Type, body any) {
	s := c.s
	switch b := body.(type) {
	case *proto.RunRequest:
		c.startRun(id, b)
	case *proto.Cancel:
		if c.dropPut(id) {
			return
		}
		c.mu.Lock()
		cancel := c.runs[id]
		if now := c.killNow[id]; now != nil && b.Now {
			close(now) // before the cancel, so the hosts see it as they stop
			delete(c.killNow, id)
		}
		c.mu.Unlock()
		if cancel != nil {
			cancel(errCancelled)
		}
	case *proto.HostsRequest:
		hosts := dedupe(b.Hosts)
		switch t {
		case proto.TypePingHosts:
			s.noteRequest(c.who, id, "ping", hosts, "")
			c.goHandle(func() { c.send(id, proto.TypePingResults, &proto.PingResults{Results: s.ping(c.ctx, hosts)}) })
		case proto.TypeInfoHosts:
			s.noteRequest(c.who, id, "info", hosts, "")
			c.goHandle(func() { c.send(id, proto.TypeInfoResults, &proto.InfoResults{Results: s.info(c.ctx, hosts)}) })
		case proto.TypeTimeHosts:
			s.noteRequest(c.who, id, "time", hosts, "")
			c.goHandle(func() { c.send(id, proto.TypeTimeResults, &proto.TimeResults{Results: s.time(c.ctx, hosts)}) })
		default:
			c.fail(id, proto.CodeBadRequest, fmt.Sprintf("%v is not a client request", t))
		}
	case *proto.PutRequest, *proto.GetRequest:
		if c.remote {
			c.fail(id, proto.CodePermission, "put and get make the daemon read or write files on its own machine: they are for local clients only")
			return
		}
		c.dispatchFile(id, body)
	case *proto.PutStream:
		c.startPutStream(id, b)
	case *proto.PutData:
		c.putData(id, b)
	case *proto.GetStream:
		c.startGetStream(id, b)
	case *proto.StatusRequest:
		c.send(id, proto.TypeStatusResult, s.status())
	case *proto.LastRequest:
		ident := c.who.Identity
		runs, problem := s.hist.last(b.N, func(r *proto.RunRecord) bool {
			return r.UID == c.who.UID && r.Cert == c.who.Cert && (ident == "" || r.Identity == ident)
		})
		if problem != "" {
			s.log.Error("the result history is not whole", "problem", problem)
		}
		c.send(id, proto.TypeLastResult, &proto.LastResult{Runs: runs, Problem: problem})
	case *proto.Stop:
		if c.remote {
			c.fail(id, proto.CodePermission, "only a local client may stop the daemon")
			return
		}
		s.noteRequest(c.who, id, "stop", nil, "")
		c.send(id, proto.TypeStopping, &proto.Stopping{})
		s.stop(errStopped)
	case *proto.Reload:
		if c.remote {
			c.fail(id, proto.CodePermission, "only a local client may reload the daemon")
			return
		}
		s.audit.Request(c.who, id, "reload", nil, "")
		if s.opts.Reload != nil {
			if err := s.opts.Reload(); err != nil {
				c.fail(id, proto.CodeBadRequest, err.Error())
				return
			}
		}
		c.send(id, proto.TypeReloaded, &proto.Reloaded{})
	default:
		c.fail(id, proto.CodeBadRequest, fmt.Sprintf("%v is not a client request", t))
	}
}

// dispatchFile starts a put or get for a local client.
func (c *clientConn) dispatchFile(id uint64, body any) {
	s := c.s
	switch b := body.(type) {
	case *proto.PutRequest:
		hosts := dedupe(b.Hosts)
		s.noteRequest(c.who, id, "put", hosts, b.LocalPath+" -> "+b.Dest)
		c.goHandle(func() {
			res, err := s.put(c.ctx, hosts, b)
			if err != nil {
				c.fail(id, proto.CodeIO, err.Error())
				return
			}
			c.send(id, proto.TypeFileResults, &proto.FileResults{Results: res})
		})
	case *proto.GetRequest:
		hosts := dedupe(b.Hosts)
		s.noteRequest(c.who, id, "get", hosts, b.Src+" -> "+b.DestDir)
		c.goHandle(func() {
			res, err := s.get(c.ctx, hosts, b)
			if err != nil {
				c.fail(id, proto.CodeIO, err.Error())
				return
			}
			c.send(id, proto.TypeFileResults, &proto.FileResults{Results: res})
		})
	}
}

// dedupe drops repeated host names, keeping the first of each.
func dedupe(hosts []string) []string {
	seen := make(map[string]bool, len(hosts))
	out := hosts[:0:0]
	for _, h := range hosts {
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		out = append(out, h)
	}
	return out
}
