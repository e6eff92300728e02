package daemon

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
)

// spool is a put-stream's file arriving in put-data frames: a private temporary
// file (0600, unlinked at once), so the daemon holds no file in memory and reads it
// once for every host.
type spool struct {
	f     *os.File
	req   *proto.PutStream
	hosts []string
	n     int64
}

// startPutStream opens the spool of put-stream id; its put-data frames follow.
func (c *clientConn) startPutStream(id uint64, req *proto.PutStream) {
	hosts := dedupe(req.Hosts)
	switch {
	case len(hosts) == 0:
		c.fail(id, proto.CodeBadRequest, "put: no hosts")
		return
	case req.Dest == "":
		c.fail(id, proto.CodeBadRequest, "put: empty destination")
		return
	case req.Size < 0:
		c.fail(id, proto.CodeBadRequest, fmt.Sprintf("put: negative size %d", req.Size))
		return
	}
	c.mu.Lock()
	_, dup := c.runs[id]
	c.mu.Unlock()
	if dup || c.puts[id] != nil {
		c.fail(id, proto.CodeDuplicateID, fmt.Sprintf("put: request id %d is in use", id))
		return
	}
	f, err := os.CreateTemp("", ".shoal-put-*")
	if err != nil {
		c.fail(id, proto.CodeIO, fmt.Sprintf("put: creating a spool file: %v", err))
		return
	}
	os.Remove(f.Name()) // the open file is all the daemon needs; nothing is left behind
	if c.puts == nil {
		c.puts = map[uint64]*spool{}
	}
	c.puts[id] = &spool{f: f, req: req, hosts: hosts}
	c.s.noteRequest(c.who, id, "put", hosts, req.Name+" -> "+req.Dest)
}

// putData adds a chunk to put-stream id's spool, and at EOF copies the file to
// every host. Chunks of an unknown (failed or cancelled) put are dropped.
func (c *clientConn) putData(id uint64, d *proto.PutData) {
	sp := c.puts[id]
	if sp == nil {
		return
	}
	drop := func(code proto.ErrorCode, msg string) {
		delete(c.puts, id)
		sp.f.Close()
		c.fail(id, code, msg)
	}
	if sp.n+int64(len(d.Data)) > sp.req.Size {
		drop(proto.CodeBadRequest, fmt.Sprintf("put: more than the %d bytes announced", sp.req.Size))
		return
	}
	if _, err := sp.f.Write(d.Data); err != nil {
		drop(proto.CodeIO, fmt.Sprintf("put: spooling the file: %v", err))
		return
	}
	sp.n += int64(len(d.Data))
	if !d.EOF {
		return
	}
	if sp.n != sp.req.Size {
		drop(proto.CodeBadRequest, fmt.Sprintf("put: %d bytes arrived, %d announced", sp.n, sp.req.Size))
		return
	}
	delete(c.puts, id)
	ctx, cancel := context.WithCancelCause(c.ctx)
	c.mu.Lock()
	c.runs[id] = cancel
	c.mu.Unlock()
	c.goHandle(func() {
		defer func() {
			c.mu.Lock()
			delete(c.runs, id)
			c.mu.Unlock()
			cancel(nil)
			sp.f.Close()
		}()
		mode := fs.FileMode(sp.req.Mode).Perm()
		if mode == 0 {
			mode = 0o644
		}
		if sp.req.Tree {
			mode |= fs.ModeDir
		}
		res := c.s.putFile(ctx, sp.hosts, sp.f, sp.n, sp.req.Dest, mode, sp.req.Name)
		c.send(id, proto.TypeFileResults, &proto.FileResults{Results: res})
	})
}

// dropPut ends put-stream id before its EOF (the client cancelled); it reports whether there was one.
func (c *clientConn) dropPut(id uint64) bool {
	sp := c.puts[id]
	if sp == nil {
		return false
	}
	delete(c.puts, id)
	sp.f.Close()
	return true
}

// dropPuts ends every unfinished put-stream (the client left).
func (c *clientConn) dropPuts() {
	for id := range c.puts {
		c.dropPut(id)
	}
}

// putFile copies size bytes of f to dest on every host, forwarding to the
// gateways the hosts behind them, and returns each host's result in hosts order.
// A mode with fs.ModeDir says f is a tar archive of a tree to lay out at dest.
func (s *server) putFile(ctx context.Context, hosts []string, f io.ReaderAt, size int64, dest string, mode fs.FileMode, name string) []proto.FileResult {
	out := make([]proto.FileResult, len(hosts))
	s.forShares(hosts, func(sh share) {
		if sh.gw != nil {
			for k, r := range s.putGateway(ctx, sh.gw, sh.hosts, f, size, dest, mode, name) {
				out[sh.pos[k]] = r
			}
			return
		}
		forHosts(sh.hosts, func(k int, host string) {
			r := proto.FileResult{Host: host, Path: dest}
			hs, unpin, err := s.session(ctx, host)
			defer unpin()
			if err == nil {
				err = hs.WriteFile(ctx, dest, mode, io.NewSectionReader(f, 0, size), size)
			}
			r.Status = statusOf(ctx, err)
			if err != nil {
				r.Err = err.Error()
			} else {
				r.Bytes = size
			}
			out[sh.pos[k]] = r
		})
	})
	return out
}

// putGateway streams the file to gw for its hosts.
func (s *server) putGateway(ctx context.Context, gw *gateway, hosts []string, f io.ReaderAt, size int64, dest string, mode fs.FileMode, name string) []proto.FileResult {
	out := make([]proto.FileResult, len(hosts))
	gc, err := gw.client(ctx)
	var res []client.FileResult
	if err == nil {
		res, err = gc.PutFrom(ctx, hosts, io.NewSectionReader(f, 0, size), size, dest, mode, name)
		err = gatewayLost(gw, gc, err)
	}
	if err == nil && len(res) != len(hosts) {
		err = fmt.Errorf("the gateway answered for %d hosts, not %d", len(res), len(hosts))
	}
	for i, h := range hosts {
		if err != nil {
			out[i] = proto.FileResult{Host: h, Status: statusOfGateway(ctx, err), Err: gw.gatewayErr(err), Path: dest}
			continue
		}
		out[i] = wireFile(res[i])
		out[i].Host = h
	}
	return out
}

// gatewayLost explains err, from a request to gw on gc, as the gateway going away
// when the connection broke.
func gatewayLost(gw *gateway, gc *client.Client, err error) error {
	if err == nil {
		return nil
	}
	if cerr := gw.connErr(gc); cerr != nil {
		return fmt.Errorf("gateway went away: %w", cerr)
	}
	return err
}

// wireFile turns a client file result back into its wire form.
func wireFile(r client.FileResult) proto.FileResult {
	return proto.FileResult{Host: r.Host, Status: r.Status, Err: r.Err, Bytes: r.Bytes, Path: r.Path, Mode: uint32(r.Mode.Perm())}
}

// getSink receives the files of a get: each host's chunks in order, then its end.
type getSink interface {
	// write adds data to host's file.
	write(host string, data []byte)
	// end finishes host's file with outcome r and returns the host's final result.
	end(host string, r proto.FileResult) proto.FileResult
}

// frameSink sends a get's files to a get-stream client in get-data frames.
type frameSink struct {
	c  *clientConn
	id uint64
}

func (k frameSink) write(host string, data []byte) {
	for len(data) > 0 {
		n := min(len(data), proto.FileChunk)
		k.c.send(k.id, proto.TypeGetData, &proto.GetData{Host: host, Data: data[:n]})
		data = data[n:]
	}
}

func (k frameSink) end(host string, r proto.FileResult) proto.FileResult {
	k.c.send(k.id, proto.TypeGetData, &proto.GetData{Host: host, End: &r})
	return r
}

// saverSink writes a get's files into the local client's directory.
type saverSink struct{ sv *client.Saver }

func (k saverSink) write(host string, data []byte) { k.sv.Write(host, data) }

func (k saverSink) end(host string, r proto.FileResult) proto.FileResult {
	p, n, err := k.sv.End(host, fs.FileMode(r.Mode), r.Status == proto.StatusOK)
	switch {
	case err != nil:
		r.Status, r.Err, r.Path = proto.StatusError, err.Error(), ""
	case r.Status == proto.StatusOK:
		r.Path, r.Bytes = p, n
	default:
		r.Path = ""
	}
	return r
}

// writerFunc is an io.Writer calling a function.
type writerFunc func(p []byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// startGetStream streams src from every host to the client in get-data frames.
func (c *clientConn) startGetStream(id uint64, req *proto.GetStream) {
	s := c.s
	hosts := dedupe(req.Hosts)
	if len(hosts) == 0 {
		c.fail(id, proto.CodeBadRequest, "get: no hosts")
		return
	}
	if req.Src == "" || !localName(path.Base(req.Src)) {
		c.fail(id, proto.CodeBadRequest, fmt.Sprintf("get: %q does not name a file", req.Src))
		return
	}
	c.mu.Lock()
	if _, dup := c.runs[id]; dup || c.puts[id] != nil {
		c.mu.Unlock()
		c.fail(id, proto.CodeDuplicateID, fmt.Sprintf("get: request id %d is in use", id))
		return
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	c.runs[id] = cancel
	c.mu.Unlock()
	s.noteRequest(c.who, id, "get", hosts, req.Src)
	c.goHandle(func() {
		defer func() {
			c.mu.Lock()
			delete(c.runs, id)
			c.mu.Unlock()
			cancel(nil)
		}()
		sink := frameSink{c: c, id: id}
		out := make([]proto.FileResult, len(hosts))
		s.forShares(hosts, func(sh share) {
			if sh.gw != nil {
				for k, r := range s.getGateway(ctx, sh.gw, sh.hosts, req.Src, req.Tree, sink) {
					out[sh.pos[k]] = r
				}
				return
			}
			forHosts(sh.hosts, func(k int, host string) {
				hs, unpin, err := s.session(ctx, host)
				defer unpin()
				var n int64
				var mode fs.FileMode
				if err == nil {
					read := hs.ReadFile
					if req.Tree {
						read = hs.ReadTree
					}
					n, mode, err = read(ctx, req.Src, writerFunc(func(p []byte) (int, error) {
						sink.write(host, p)
						return len(p), nil
					}))
				}
				r := proto.FileResult{Host: host, Status: statusOf(ctx, err), Mode: uint32(mode.Perm())}
				if err != nil {
					r.Err = err.Error()
				} else {
					r.Bytes = n
				}
				out[sh.pos[k]] = sink.end(host, r)
			})
		})
		c.send(id, proto.TypeFileResults, &proto.FileResults{Results: out})
	})
}

// getGateway streams src from gw's hosts into sink and returns their results. A
// host the gateway did not finish (it went away, or ctx ended) ends with an error
// naming the gateway, and its partial file is thrown away.
func (s *server) getGateway(ctx context.Context, gw *gateway, hosts []string, src string, tree bool, sink getSink) []proto.FileResult {
	out := make([]proto.FileResult, len(hosts))
	idx := make(map[string]int, len(hosts))
	for i, h := range hosts {
		idx[h] = i
	}
	var mu sync.Mutex // protects ended and out against a callback still running
	ended := make([]bool, len(hosts))
	// A connection of its own: sink may block for as long as the client takes to
	// read, and that must not hold up the shared connection's other replies.
	gc, err := gw.dialOwn(ctx)
	var res []client.FileResult
	if err == nil {
		defer gw.release(gc)
		res, err = gc.GetTo(ctx, hosts, src, tree, func(host string, data []byte, end *client.FileResult) {
			mu.Lock()
			defer mu.Unlock()
			i, ok := idx[host]
			if !ok || ended[i] {
				return
			}
			if end == nil {
				sink.write(host, data)
				return
			}
			r := wireFile(*end)
			r.Host = host
			ended[i], out[i] = true, sink.end(host, r)
		})
		err = gatewayLost(gw, gc, err)
	}
	if err == nil && len(res) != len(hosts) {
		err = fmt.Errorf("the gateway answered for %d hosts, not %d", len(res), len(hosts))
	}
	mu.Lock()
	defer mu.Unlock()
	for i, h := range hosts {
		if ended[i] {
			continue
		}
		r := proto.FileResult{Host: h, Status: proto.StatusError, Err: "the gateway sent no file for this host"}
		switch {
		case err != nil:
			r.Status, r.Err = statusOfGateway(ctx, err), gw.gatewayErr(err)
		case res[i].Status != proto.StatusOK:
			r = wireFile(res[i])
			r.Host = h
		}
		ended[i], out[i] = true, sink.end(h, r)
	}
	return out
}
