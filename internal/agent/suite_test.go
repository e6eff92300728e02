package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/local"
)

func TestMain(m *testing.M) {
	// A race-enabled agent binary otherwise sleeps a second at exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	shoaltest.Main(m)
}

// patience bounds every wait for a message, so a broken agent fails a test instead of hanging it.
const patience = 60 * time.Second

// peer is the daemon's side of one agent, however it runs.
type peer struct {
	t        testing.TB
	kind     string
	conn     *proto.Conn
	raw      io.Writer // the agent's input, for malformed frames
	closeIn  func()    // end the agent's input
	stateDir string
	pid      int // the agent's process id (the test's own for pipes)
	hello    *proto.Hello

	msgs   chan recvd
	stash  map[uint64][]*proto.Envelope
	nextID uint64
	ended  bool
	endErr error
}

type recvd struct {
	env *proto.Envelope
	err error
}

// kinds are the ways the suite runs an agent: in-process over pipes, and the built binary
// through the local transport.
var kinds = []struct {
	name  string
	start func(t testing.TB, opts agent.Options) *peer
}{
	{"pipe", startPipe},
	{"binary", startBinary},
}

func forEachKind(t *testing.T, f func(t *testing.T, start func(testing.TB, agent.Options) *peer)) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { f(t, k.start) })
	}
}

func startPipe(t testing.TB, opts agent.Options) *peer {
	a := shoaltest.StartAgent(t, opts)
	p := newPeer(t, "pipe", a, a, func() { a.Close() }, a.StateDir, os.Getpid())
	return p
}

func startBinary(t testing.TB, opts agent.Options) *peer {
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	var args []string
	if opts.MaxRunning != 0 {
		args = append(args, "--max-running", strconv.Itoa(opts.MaxRunning))
	}
	if opts.MaxQueued != 0 {
		args = append(args, "--max-queued", strconv.Itoa(opts.MaxQueued))
	}
	if opts.OutputCap != 0 {
		args = append(args, "--output-cap", strconv.FormatInt(opts.OutputCap, 10))
	}
	tr := &local.Transport{Binary: shoaltest.Binary(t), Stderr: testWriter{t}}
	c, err := tr.Connect(context.Background(), transport.Target{Name: "localhost", InstallDir: opts.StateDir, AgentArgs: args})
	if err != nil {
		t.Fatalf("starting the agent: %v", err)
	}
	lc := c.(*local.Conn)
	t.Cleanup(func() {
		lc.Close()
		select {
		case <-lc.Done():
		case <-time.After(patience):
			lc.Kill()
			<-lc.Done()
		}
	})
	return newPeer(t, "binary", lc, lc, func() { lc.CloseWrite() }, opts.StateDir, lc.PID())
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("agent: %s", bytes.TrimRight(b, "\n"))
	return len(b), nil
}

func newPeer(t testing.TB, kind string, r io.Reader, w io.Writer, closeIn func(), stateDir string, pid int) *peer {
	p := &peer{
		t: t, kind: kind, conn: proto.NewConn(r, w, proto.ConnOptions{}), raw: w, closeIn: closeIn,
		stateDir: stateDir, pid: pid, msgs: make(chan recvd, 64), stash: map[uint64][]*proto.Envelope{}, nextID: 1000,
	}
	p.hello = shoaltest.Handshake(t, p.conn)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			env, err := p.conn.Recv()
			select {
			case p.msgs <- recvd{env, err}:
			case <-stop:
				return
			}
			if err != nil && env == nil {
				var de *proto.DecodeError
				if !errors.As(err, &de) {
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		// Kill what still runs so the agent can end, end its input, and wait for the reader.
		p.conn.Send(1, proto.TypeKill, &proto.Kill{All: true, Signal: 9})
		p.closeIn()
		close(stop)
		<-done
	})
	return p
}

// recv returns the next message from the agent, or fails the test after patience.
func (p *peer) recv() *proto.Envelope {
	p.t.Helper()
	env, err := p.recvErr()
	if err != nil {
		p.t.Fatalf("reading from the agent: %v", err)
	}
	return env
}

func (p *peer) recvErr() (*proto.Envelope, error) {
	p.t.Helper()
	if p.ended {
		return nil, p.endErr
	}
	select {
	case m := <-p.msgs:
		if m.err != nil && m.env == nil {
			var de *proto.DecodeError
			if !errors.As(m.err, &de) {
				p.ended, p.endErr = true, m.err
			}
		}
		return m.env, m.err
	case <-time.After(patience):
		p.t.Fatalf("no message from the agent within %v", patience)
		return nil, nil
	}
}

// next returns the next message about request id, keeping others for later.
func (p *peer) next(id uint64) *proto.Envelope {
	p.t.Helper()
	if q := p.stash[id]; len(q) > 0 {
		p.stash[id] = q[1:]
		return q[0]
	}
	for {
		env := p.recv()
		if env.ID == id {
			return env
		}
		p.stash[env.ID] = append(p.stash[env.ID], env)
	}
}

// expect returns the next message about id, decoded, failing unless it has type typ.
func expect[T any](p *peer, id uint64, typ proto.Type) *T {
	p.t.Helper()
	env := p.next(id)
	if env.Type != typ {
		var detail string
		if env.Type == proto.TypeError {
			var e proto.Error
			env.Decode(&e)
			detail = ": " + e.Error()
		}
		p.t.Fatalf("request %d: got %v%s; want %v", id, env.Type, detail, typ)
	}
	v := new(T)
	if err := env.Decode(v); err != nil {
		p.t.Fatalf("decoding %v: %v", typ, err)
	}
	return v
}

func (p *peer) id() uint64 {
	p.nextID++
	return p.nextID
}

func (p *peer) send(id uint64, typ proto.Type, body any) {
	p.t.Helper()
	if err := p.conn.Send(id, typ, body); err != nil {
		p.t.Fatalf("sending %v: %v", typ, err)
	}
}

// result is everything the agent said about one exec.
type result struct {
	started        *proto.Started
	stdout, stderr []byte
	seqs           []uint64
	exit           *proto.Exit
}

// collect reads the messages of an exec, after started, up to its exit.
func (p *peer) collect(id uint64, r *result) *result {
	p.t.Helper()
	for {
		env := p.next(id)
		switch env.Type {
		case proto.TypeOutput:
			var o proto.Output
			if err := env.Decode(&o); err != nil {
				p.t.Fatal(err)
			}
			r.seqs = append(r.seqs, o.Seq)
			switch o.Stream {
			case proto.Stdout:
				r.stdout = append(r.stdout, o.Data...)
			case proto.Stderr:
				r.stderr = append(r.stderr, o.Data...)
			default:
				p.t.Fatalf("output on stream %d", o.Stream)
			}
		case proto.TypeExit:
			r.exit = new(proto.Exit)
			env.Decode(r.exit)
			for i, s := range r.seqs {
				if s != uint64(i) {
					p.t.Fatalf("output seqs %v are not 0, 1, 2...", r.seqs)
				}
			}
			return r
		default:
			p.t.Fatalf("request %d: got %v during output; want output or exit", id, env.Type)
		}
	}
}

// run execs req and returns its result; it acknowledges the result.
func (p *peer) run(req *proto.Exec) *result {
	p.t.Helper()
	id := p.id()
	p.send(id, proto.TypeExec, req)
	r := &result{started: expect[proto.Started](p, id, proto.TypeStarted)}
	p.collect(id, r)
	p.send(id, proto.TypeAck, nil)
	return r
}

// ping sends a ping and waits for its pong.
func (p *peer) ping() {
	p.t.Helper()
	id := p.id()
	p.send(id, proto.TypePing, nil)
	expect[proto.Pong](p, id, proto.TypePong)
}

// waitEnd reads until the agent's output ends, failing on anything but exits and outputs.
func (p *peer) drainToEnd() []*proto.Envelope {
	p.t.Helper()
	var got []*proto.Envelope
	for {
		env, err := p.recvErr()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return got
			}
			var de *proto.DecodeError
			if errors.As(err, &de) {
				continue
			}
			p.t.Fatalf("reading to the end: %v", err)
		}
		if env != nil {
			got = append(got, env)
		}
	}
}

// groupAlive returns the live (non-zombie) processes in process group pgid.
func groupAlive(pgid int) []string {
	ents, _ := os.ReadDir("/proc")
	var alive []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			alive = append(alive, e.Name()+":"+s[:i+1])
		}
	}
	return alive
}

// waitGroupGone waits, boundedly, until no live process remains in pgid.
func waitGroupGone(t testing.TB, pgid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		alive := groupAlive(pgid)
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left in group %d: %v", pgid, alive)
		}
		time.Sleep(10 * time.Millisecond) // polling the kernel's process table, not synchronising with the agent
	}
}

func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			n, err := strconv.ParseInt(f[0], 10, 64)
			return n * 1024, err
		}
	}
	return 0, errors.New("no VmHWM")
}

// waitGone waits, boundedly, for path to disappear: the agent removes acknowledged results off its
// reader loop.
func waitGone(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there (%v); want it removed", path, err)
		}
		time.Sleep(5 * time.Millisecond) // polling the file system, not synchronising with the agent
	}
}
