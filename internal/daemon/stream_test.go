package daemon_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// blob writes a random file of n bytes with mode and returns its SHA-256.
func blob(t testing.TB, path string, n int, mode os.FileMode) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestFileStream puts and gets a file larger than one chunk through a front
// daemon with one and two gateway levels behind it, from a TLS client (whose
// files travel over the connection) and from a Unix client (whose files the front
// daemon reads and writes): every host gets the bytes intact, with their mode, and
// every host's copy comes back byte-identical to DestDir/<host>/.
func TestFileStream(t *testing.T) {
	checkLeaks(t)
	ca := newTestCA(t, "test CA")
	pipes := newPipeTransport(t)
	gw2 := startTLSDaemon(t, ca, "gw2", pipes)
	gw1 := startTLSDaemon(t, ca, "gw1", pipes, gatewayTo(ca, "gw1", gw2, "c1"))
	front := startTLSDaemon(t, ca, "front", pipes, gatewayTo(ca, "front", gw1, "g1a", "c1"))
	hosts := []string{"a", "g1a", "c1"}

	alice, err := client.Dial(context.Background(), client.Options{Addr: front.addr, TLS: ca.clientTLS("alice"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	local, err := client.Dial(context.Background(), client.Options{Socket: front.socket, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()

	const size = 2<<20 + 12345 // more than two chunks
	src := filepath.Join(t.TempDir(), "blob.bin")
	want := blob(t, src, size, 0o640)
	for _, tc := range []struct {
		name string
		c    *client.Client
	}{{"tls", alice}, {"unix", local}} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "blob.bin")
			res, err := tc.c.Put(context.Background(), hosts, client.PutRequest{LocalPath: src, Dest: dest})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Host != hosts[i] || r.Status != proto.StatusOK || r.Bytes != size {
					t.Errorf("put %d: %+v; want %s ok, %d bytes", i, r, hosts[i], size)
				}
			}
			if got := fileSHA(t, dest); got != want {
				t.Errorf("the put file's SHA-256 is %s; want %s", got, want)
			}
			if st, err := os.Stat(dest); err != nil || st.Mode().Perm() != 0o640 {
				t.Errorf("the put file: %v, %v; want mode 0640", st, err)
			}
			out := filepath.Join(t.TempDir(), "got")
			res, err = tc.c.Get(context.Background(), hosts, client.GetRequest{Src: dest, DestDir: out})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				p := filepath.Join(out, hosts[i], "blob.bin")
				if r.Host != hosts[i] || r.Status != proto.StatusOK || r.Bytes != size || r.Path != p {
					t.Errorf("get %d: %+v; want %s ok, %d bytes at %s", i, r, hosts[i], size, p)
					continue
				}
				if got := fileSHA(t, p); got != want {
					t.Errorf("%s: SHA-256 %s; want %s", p, got, want)
				}
				if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o640 {
					t.Errorf("%s: %v, %v; want mode 0640", p, st, err)
				}
			}
			// A file that does not exist is a per-host error, and leaves no file.
			res, err = tc.c.Get(context.Background(), hosts, client.GetRequest{Src: dest + ".missing", DestDir: out})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Status == proto.StatusOK || r.Err == "" {
					t.Errorf("get of a missing file %d: %+v; want an error", i, r)
				}
				if _, err := os.Stat(filepath.Join(out, hosts[i], "blob.bin.missing")); err == nil {
					t.Errorf("%s: a file was left for a failed get", hosts[i])
				}
			}
		})
	}
}

// gatedTransport is a pipeTransport whose connections stall, once, after limit
// bytes have gone either way, calling trip: a host whose file is on its way when
// its gateway dies.
type gatedTransport struct {
	*pipeTransport
	limit int
	once  sync.Once
	trip  func()
}

type gatedConn struct {
	transport.Conn
	g       *gatedTransport
	mu      sync.Mutex
	n       int
	stalled chan struct{} // closed by Close
	closing sync.Once
}

func (g *gatedTransport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	c, err := g.pipeTransport.Connect(ctx, t)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, g: g, stalled: make(chan struct{})}, nil
}

// gate counts n bytes and, past the limit, calls trip once and waits for Close.
func (c *gatedConn) gate(n int) {
	c.mu.Lock()
	c.n += n
	over := c.n > c.g.limit
	c.mu.Unlock()
	if over {
		c.g.once.Do(c.g.trip)
		<-c.stalled
	}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.gate(n)
	return n, err
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.gate(len(p))
	return c.Conn.Write(p)
}

func (c *gatedConn) Close() error {
	c.closing.Do(func() { close(c.stalled) })
	return c.Conn.Close()
}

// TestGatewayDiesMidTransfer: a gateway that dies while a file is on its way to or
// from one of its hosts gives that host an error naming the gateway, and no file,
// while the front daemon's own host completes.
func TestGatewayDiesMidTransfer(t *testing.T) {
	checkLeaks(t)
	ca := newTestCA(t, "test CA")
	const size = 3 << 20
	src := filepath.Join(t.TempDir(), "big")
	want := blob(t, src, size, 0o600)
	for _, op := range []string{"put", "get"} {
		t.Run(op, func(t *testing.T) {
			pipes := newPipeTransport(t)
			gated := &gatedTransport{pipeTransport: pipes, limit: 512 << 10}
			gw := startTLSDaemon(t, ca, "gw", gated)
			gated.trip = func() { go gw.ln.kill() }
			front := startTLSDaemon(t, ca, "front", pipes, gatewayTo(ca, "front", gw, "z"))
			alice, err := client.Dial(context.Background(), client.Options{Addr: front.addr, TLS: ca.clientTLS("alice"), Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			defer alice.Close()
			out := t.TempDir()
			var res []client.FileResult
			if op == "put" {
				res, err = alice.Put(context.Background(), []string{"a", "z"}, client.PutRequest{LocalPath: src, Dest: filepath.Join(t.TempDir(), "big")})
			} else {
				res, err = alice.Get(context.Background(), []string{"a", "z"}, client.GetRequest{Src: src, DestDir: out})
			}
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Status != proto.StatusOK || res[0].Bytes != size {
				t.Errorf("a: %+v; want ok, %d bytes", res[0], size)
			}
			t.Logf("z: %+v", res[1])
			if res[1].Status != proto.StatusUnreachable || !strings.Contains(res[1].Err, gw.addr) {
				t.Errorf("z: %+v; want unreachable naming the gateway %s", res[1], gw.addr)
			}
			if op == "get" {
				if got := fileSHA(t, filepath.Join(out, "a", "big")); got != want {
					t.Errorf("a's file: SHA-256 %s; want %s", got, want)
				}
				if ents, _ := os.ReadDir(filepath.Join(out, "z")); len(ents) != 0 {
					t.Errorf("z's directory holds %v after a failed get; want nothing", ents)
				}
			}
		})
	}
}

// TestPutStreamBadSizes: a put-stream whose data does not add up to its announced
// size fails as a whole, and its later chunks are ignored; a cancelled one answers
// nothing and the connection goes on.
func TestPutStreamBadSizes(t *testing.T) {
	checkLeaks(t)
	ca := newTestCA(t, "test CA")
	d := startTLSDaemon(t, ca, "d", newPipeTransport(t))
	nc, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pc := proto.NewConn(nc, nc, proto.ConnOptions{MaxFrame: daemon.ClientMaxFrame})
	go pc.Send(0, proto.TypeClientHello, &proto.ClientHello{Protocol: proto.Version, Client: proto.ClientVersion})
	env, err := pc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var hello proto.DaemonHello
	env.Decode(&hello)
	if !slices.Contains(hello.Caps, proto.CapFileStream) {
		t.Errorf("hello caps %v; want %s", hello.Caps, proto.CapFileStream)
	}
	dest := filepath.Join(t.TempDir(), "f")
	ps := &proto.PutStream{Hosts: []string{"a"}, Dest: dest, Size: 10}
	pc.Send(1, proto.TypePutStream, ps)
	pc.Send(1, proto.TypePutData, &proto.PutData{Data: []byte("short"), EOF: true})
	pc.Send(2, proto.TypePutStream, ps)
	pc.Send(2, proto.TypePutData, &proto.PutData{Data: []byte("far too long")})
	pc.Send(2, proto.TypePutData, &proto.PutData{Data: []byte("ignored"), EOF: true})
	pc.Send(3, proto.TypePutStream, ps)
	pc.Send(3, proto.TypePutData, &proto.PutData{Data: []byte("abc")})
	pc.Send(3, proto.TypeCancel, &proto.Cancel{})
	pc.Send(3, proto.TypePutData, &proto.PutData{Data: []byte("defghij"), EOF: true})
	pc.Send(4, proto.TypeStatus, &proto.StatusRequest{})
	for _, id := range []uint64{1, 2, 4} {
		env, err := pc.Recv()
		if err != nil {
			t.Fatal(err)
		}
		want := proto.TypeFailed
		if id == 4 {
			want = proto.TypeStatusResult
		}
		if env.ID != id || env.Type != want {
			t.Errorf("reply %d %v; want %d %v", env.ID, env.Type, id, want)
		}
	}
	if _, err := os.Stat(dest); err == nil {
		t.Error("a put whose size was wrong wrote its file")
	}
}
