package client_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
)

// remoteFake is a fake daemon greeting a client that believes it is on TLS (so it
// streams files); caps are the daemon's capabilities.
func remoteFake(t *testing.T, caps []string, handle func(pc *proto.Conn, env *proto.Envelope) bool) *client.Client {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer b.Close()
		pc := proto.NewConn(b, b, proto.ConnOptions{})
		go pc.Send(0, proto.TypeDaemonHello, &proto.DaemonHello{Protocol: proto.Version, Client: proto.ClientVersion, PID: 42, Caps: caps})
		if _, err := pc.Recv(); err != nil {
			return
		}
		for {
			env, err := pc.Recv()
			if err != nil || !handle(pc, env) {
				return
			}
		}
	}()
	c, err := client.New(context.Background(), a, client.Options{TLS: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

// TestGetHostileNames: a daemon that names hosts or a file so as to leave DestDir
// gets errors for them, and nothing is written outside DestDir.
func TestGetHostileNames(t *testing.T) {
	hosts := []string{"ok", "../up", "a/b", "..", "evil"}
	c := remoteFake(t, []string{proto.CapFileStream}, func(pc *proto.Conn, env *proto.Envelope) bool {
		if env.Type != proto.TypeGetStream {
			return true
		}
		var res proto.FileResults
		for _, h := range append(hosts, "../../unasked", "/abs") {
			pc.Send(env.ID, proto.TypeGetData, &proto.GetData{Host: h, Data: []byte("data of " + h)})
			r := proto.FileResult{Host: h, Status: "ok", Bytes: 8, Path: "/etc/passwd", Mode: 0o4777}
			pc.Send(env.ID, proto.TypeGetData, &proto.GetData{Host: h, End: &r})
			if h != "../../unasked" && h != "/abs" {
				res.Results = append(res.Results, r)
			}
		}
		pc.Send(env.ID, proto.TypeFileResults, &res)
		return true
	})
	parent := t.TempDir()
	dest := filepath.Join(parent, "dest")
	// A symlink inside DestDir that points out of it is not followed either.
	os.MkdirAll(dest, 0o755)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dest, "evil")); err != nil {
		t.Fatal(err)
	}
	res, err := c.Get(context.Background(), hosts, client.GetRequest{Src: "/x/f", DestDir: dest})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		ok := hosts[i] == "ok"
		if ok != (r.Status == proto.StatusOK) {
			t.Errorf("%s: %+v; want ok only for the host named ok", hosts[i], r)
		}
		if ok && (r.Path != filepath.Join(dest, "ok", "f") || r.Mode != 0o777) {
			t.Errorf("ok: %+v; want path %s, mode 0777 (no setuid)", r, filepath.Join(dest, "ok", "f"))
		}
	}
	if b, err := os.ReadFile(filepath.Join(dest, "ok", "f")); err != nil || string(b) != "data of ok" {
		t.Errorf("ok's file: %q, %v", b, err)
	}
	if st, _ := os.Stat(filepath.Join(dest, "ok", "f")); st == nil || st.Mode()&os.ModeSetuid != 0 {
		t.Errorf("ok's file mode: %v; want no setuid", st)
	}
	for _, dir := range []string{parent, outside} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if dir == parent && e.Name() == "dest" {
				continue
			}
			t.Errorf("%s was written outside DestDir", filepath.Join(dir, e.Name()))
		}
	}
}

// TestGetRefusesHostileSource: a source whose base name is not a file name is
// refused before anything is asked.
func TestGetRefusesHostileSource(t *testing.T) {
	c := remoteFake(t, []string{proto.CapFileStream}, func(pc *proto.Conn, env *proto.Envelope) bool {
		t.Errorf("the daemon was asked %v", env.Type)
		return true
	})
	for _, src := range []string{"", "/", "..", "a/.."} {
		if _, err := c.Get(context.Background(), []string{"h"}, client.GetRequest{Src: src, DestDir: t.TempDir()}); err == nil {
			t.Errorf("get %q: no error", src)
		}
	}
}

// TestOldDaemonNoFileStream: a TLS client of a daemon without the file-stream
// capability gets a clear error for put and get, and sends nothing.
func TestOldDaemonNoFileStream(t *testing.T) {
	c := remoteFake(t, nil, func(pc *proto.Conn, env *proto.Envelope) bool {
		t.Errorf("the daemon was asked %v", env.Type)
		return true
	})
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("x"), 0o600)
	if _, err := c.Put(context.Background(), []string{"h"}, client.PutRequest{LocalPath: src, Dest: "/tmp/f"}); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("put: %v; want an error saying to upgrade the daemon", err)
	}
	if _, err := c.Get(context.Background(), []string{"h"}, client.GetRequest{Src: "/x/f", DestDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("get: %v; want an error saying to upgrade the daemon", err)
	}
}

// TestPutStreamChunks: put sends the file in chunks of at most proto.FileChunk
// bytes, the last with EOF, adding up to the announced size.
func TestPutStreamChunks(t *testing.T) {
	const size = 2*proto.FileChunk + 3
	var got, chunks int
	var eof bool
	var announced int64
	c := remoteFake(t, []string{proto.CapFileStream}, func(pc *proto.Conn, env *proto.Envelope) bool {
		switch env.Type {
		case proto.TypePutStream:
			var ps proto.PutStream
			env.Decode(&ps)
			announced = ps.Size
		case proto.TypePutData:
			var d proto.PutData
			env.Decode(&d)
			if len(d.Data) > proto.FileChunk {
				t.Errorf("a chunk of %d bytes", len(d.Data))
			}
			got += len(d.Data)
			chunks++
			if d.EOF {
				eof = true
				pc.Send(env.ID, proto.TypeFileResults, &proto.FileResults{Results: []proto.FileResult{{Host: "h", Status: "ok", Bytes: int64(got)}}})
			}
		}
		return true
	})
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, make([]byte, size), 0o600)
	res, err := c.Put(context.Background(), []string{"h"}, client.PutRequest{LocalPath: src, Dest: "/tmp/f"})
	if err != nil {
		t.Fatal(err)
	}
	if got != size || announced != size || !eof || chunks != 3 || res[0].Bytes != size {
		t.Errorf("sent %d bytes in %d chunks (eof %v), announced %d, result %+v; want %d in 3", got, chunks, eof, announced, res[0], size)
	}
}
