package hostsess

import (
	"context"
	"errors"
	"os"
	"sync"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// fakeTransport connects to in-process fake agents over pipes. Each connect
// starts a fakeAgent whose behaviour is the handler returned by agent.
type fakeTransport struct {
	// hash returns the agent hash to report for a connect (reinstall: Target.Reinstall).
	hash func(reinstall bool) string
	// infoHash, when set, is the ConnInfo.AgentHash the transport reports.
	infoHash string
	// agent returns the handler of the n-th agent (0-based).
	agent func(n int) fakeHandler
	// side answers Conn.Side.
	side func(cmd string) ([]byte, error)
	// hello lets a test change the agent's hello.
	hello func(n int, h *proto.Hello)
	// fail, when set, makes the n-th connect fail with its error.
	fail func(n int) error
	// afterHello runs in the agent's goroutine after its hello (re-offers go here).
	afterHello func(a *fakeAgent)
	// instead, when it returns non-nil for a connect, is written by the agent in place of its
	// hello (raw bytes, e.g. a banner or a frame of the wrong type), and the agent then exits.
	instead func(n int, reinstall bool) []byte

	mu         sync.Mutex
	n          int
	reinstalls int
	active     int // connects in progress
	maxActive  int
	sides      []string
	agents     []*fakeAgent
	wg         sync.WaitGroup
	cleanup    bool
	gate       chan struct{} // when set, Connect waits for it (to observe the semaphore)
}

// fakeHandler handles one message the agent received; it may reply with a.send.
type fakeHandler func(a *fakeAgent, env *proto.Envelope, body any)

type fakeConn struct {
	r      *os.File // the agent's stdout
	w      *os.File // the agent's stdin
	t      *fakeTransport
	closeF func()
}

func (c *fakeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *fakeConn) Close() error                { c.closeF(); return nil }
func (c *fakeConn) Info() transport.ConnInfo {
	return transport.ConnInfo{AgentPath: "/fake/agent", AgentHash: c.t.infoHash}
}
func (c *fakeConn) Side(ctx context.Context, cmd string) ([]byte, error) {
	c.t.mu.Lock()
	c.t.sides = append(c.t.sides, cmd)
	side := c.t.side
	c.t.mu.Unlock()
	if side == nil {
		return nil, errors.New("no side channel")
	}
	return side(cmd)
}

// fakeAgent is one agent process: it reads requests and answers through its handler.
type fakeAgent struct {
	n     int
	pc    *proto.Conn
	in    *os.File
	out   *os.File
	mu    sync.Mutex
	acks  []uint64
	kills []proto.Kill
	state map[string]any // handler scratch space
}

func (a *fakeAgent) send(id uint64, t proto.Type, body any) { a.pc.Send(id, t, body) }

// stop ends the agent's connection as if the process died.
func (a *fakeAgent) stop() {
	a.out.Close()
	a.in.Close()
}

func (a *fakeAgent) acked() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]uint64(nil), a.acks...)
}

func (ft *fakeTransport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	ft.mu.Lock()
	n := ft.n
	ft.n++
	if t.Reinstall {
		ft.reinstalls++
	}
	ft.active++
	if ft.active > ft.maxActive {
		ft.maxActive = ft.active
	}
	gate := ft.gate
	fail := ft.fail
	ft.mu.Unlock()
	if fail != nil {
		if err := fail(n); err != nil {
			ft.mu.Lock()
			ft.active--
			ft.mu.Unlock()
			return nil, err
		}
	}
	defer func() {
		ft.mu.Lock()
		ft.active--
		ft.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	a := &fakeAgent{n: n, pc: proto.NewConn(inR, outW, proto.ConnOptions{}), in: inR, out: outW, state: map[string]any{}}
	ft.mu.Lock()
	ft.agents = append(ft.agents, a)
	ft.mu.Unlock()
	h := proto.Hello{Protocol: proto.Version, Program: "fake", PID: 1000 + n, Role: "agent",
		Capabilities: proto.AgentCapabilities}
	if ft.hash != nil {
		h.BinarySHA256 = ft.hash(t.Reinstall)
	}
	if ft.hello != nil {
		ft.hello(n, &h)
	}
	handler := defaultHandler
	if ft.agent != nil {
		if hd := ft.agent(n); hd != nil {
			handler = hd
		}
	}
	var instead []byte
	if ft.instead != nil {
		instead = ft.instead(n, t.Reinstall)
	}
	ft.wg.Add(1)
	go func() {
		defer ft.wg.Done()
		defer inR.Close()
		defer outW.Close()
		if instead != nil {
			outW.Write(instead)
			return // the process exits before hello
		}
		a.send(0, proto.TypeHello, &h)
		if ft.afterHello != nil {
			ft.afterHello(a)
		}
		for {
			env, err := a.pc.Recv()
			if err != nil {
				return
			}
			body, err := env.DecodeBody()
			if err != nil {
				continue
			}
			switch env.Type {
			case proto.TypeAck:
				a.mu.Lock()
				a.acks = append(a.acks, env.ID)
				a.mu.Unlock()
			case proto.TypeKill:
				a.mu.Lock()
				a.kills = append(a.kills, *body.(*proto.Kill))
				a.mu.Unlock()
			}
			handler(a, env, body)
		}
	}()
	c := &fakeConn{r: outR, w: inW, t: ft}
	c.closeF = func() {
		inW.Close()
		outR.Close()
	}
	return c, nil
}

func (ft *fakeTransport) agentN(n int) *fakeAgent {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if n < len(ft.agents) {
		return ft.agents[n]
	}
	return nil
}

func (ft *fakeTransport) sideCmds() []string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]string(nil), ft.sides...)
}

// defaultHandler answers pings and info, and runs "echo X" style commands at once:
// the command's text is echoed as stdout and exit 0.
func defaultHandler(a *fakeAgent, env *proto.Envelope, body any) {
	switch b := body.(type) {
	case *proto.Ping:
		a.send(env.ID, proto.TypePong, &proto.Pong{Clock: 1})
	case *proto.InfoRequest:
		a.send(env.ID, proto.TypeInfoResult, &proto.Info{Hostname: "fakehost", OS: "linux"})
	case *proto.Exec:
		a.send(env.ID, proto.TypeStarted, &proto.Started{PID: 4242})
		a.send(env.ID, proto.TypeOutput, &proto.Output{Stream: proto.Stdout, Data: []byte(b.Cmd + "\n")})
		a.send(env.ID, proto.TypeOutput, &proto.Output{Stream: proto.Stderr, Data: []byte("err\n"), Seq: 1})
		a.send(env.ID, proto.TypeExit, &proto.Exit{Code: 0, Start: 1, End: 2})
	case *proto.Kill:
		a.send(env.ID, proto.TypeKilled, &proto.Killed{Count: 1})
	}
}
