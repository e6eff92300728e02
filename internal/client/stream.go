package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/shoal-sh/shoal/internal/proto"
)

// ErrNoFileStream says the daemon cannot take files over its connection (it is older
// than put-stream and get-stream).
var ErrNoFileStream = errors.New("the shoal daemon cannot copy files over the network (it predates put-stream and get-stream): upgrade it")

// StreamsFiles reports whether the daemon takes PutFrom and GetTo.
func (c *Client) StreamsFiles() bool { return slices.Contains(c.hello.Caps, proto.CapFileStream) }

// errTreeUnsupported is the error of a tree copy to a daemon without CapTree.
var errTreeUnsupported = errors.New("this daemon cannot copy directory trees (put -r); stop it with `shoal daemon stop` so that one of this version starts")

// PutFrom copies size bytes read from r to dest on every host (mode 0: 0644),
// sending them to the daemon in chunks of at most proto.FileChunk bytes; name is
// the file's local name, for the daemon's audit log. A mode with fs.ModeDir says
// the bytes are a tar archive of a tree (PutRequest.Tree), for a daemon with CapTree.
func (c *Client) PutFrom(ctx context.Context, hosts []string, r io.Reader, size int64, dest string, mode fs.FileMode, name string) ([]FileResult, error) {
	if !c.StreamsFiles() {
		return nil, ErrNoFileStream
	}
	if mode.IsDir() && !slices.Contains(c.hello.Caps, proto.CapTree) {
		return nil, errTreeUnsupported
	}
	if size < 0 {
		return nil, fmt.Errorf("put: negative size %d", size)
	}
	cl := &call{reply: make(chan *proto.Envelope, 1)}
	id, err := c.register(cl)
	if err != nil {
		return nil, err
	}
	abort := func(err error) ([]FileResult, error) {
		c.unregister(id)
		c.pc.Send(id, proto.TypeCancel, &proto.Cancel{})
		return nil, err
	}
	if err := c.pc.Send(id, proto.TypePutStream, &proto.PutStream{Hosts: hosts, Dest: dest, Mode: uint32(mode.Perm()), Size: size, Name: name, Tree: mode.IsDir()}); err != nil {
		return abort(fmt.Errorf("put: sending: %w", err))
	}
	buf := make([]byte, min(int64(proto.FileChunk), size))
	var sent int64
	for first := true; first || sent < size; first = false {
		if err := ctx.Err(); err != nil {
			return abort(err)
		}
		select {
		case env, ok := <-cl.reply:
			// The daemon answered before the end: it failed the request (or the connection broke).
			var res proto.FileResults
			if !ok {
				return nil, c.Err()
			}
			if err := decodeReply(env, proto.TypeFileResults, &res); err != nil {
				return nil, err
			}
			return nil, errors.New("put: the daemon answered before the file was sent")
		default:
		}
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-sent)])
		if err != nil {
			return abort(fmt.Errorf("put: reading the file: %w", err))
		}
		sent += int64(n)
		if err := c.pc.Send(id, proto.TypePutData, &proto.PutData{Data: buf[:n], EOF: sent == size}); err != nil {
			return abort(fmt.Errorf("put: sending: %w", err))
		}
	}
	var res proto.FileResults
	if err := c.wait(ctx, id, cl, proto.TypeFileResults, &res, true); err != nil {
		return nil, err
	}
	return fileResults(res), nil
}

// putStream streams the local file p to the daemon.
func (c *Client) putStream(ctx context.Context, hosts []string, p string, req PutRequest) ([]FileResult, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("put: %s is not a regular file", p)
	}
	mode := st.Mode().Perm()
	if req.Mode != 0 {
		mode = req.Mode.Perm()
	}
	if req.Tree {
		mode |= fs.ModeDir
	}
	return c.PutFrom(ctx, hosts, f, st.Size(), req.Dest, mode, p)
}

// GetTo streams src from every host: fn gets each host's chunks in order (end
// nil), then its outcome (end set, with the file's mode). fn runs on the
// connection's reader, one call at a time, so it holds up every other reply while
// it runs. GetTo returns the daemon's results in hosts order. With tree, src is a
// directory and each host's bytes are a tar archive of its tree (fsutil.Pack).
func (c *Client) GetTo(ctx context.Context, hosts []string, src string, tree bool, fn func(host string, data []byte, end *FileResult)) ([]FileResult, error) {
	if !c.StreamsFiles() {
		return nil, ErrNoFileStream
	}
	if tree && !slices.Contains(c.hello.Caps, proto.CapTree) {
		return nil, errTreeUnsupported
	}
	cl := &call{reply: make(chan *proto.Envelope, 1), data: func(d *proto.GetData) {
		if d.End == nil {
			fn(d.Host, d.Data, nil)
			return
		}
		if len(d.Data) > 0 {
			fn(d.Host, d.Data, nil)
		}
		e := fileResults(proto.FileResults{Results: []proto.FileResult{*d.End}})[0]
		e.Host = d.Host
		fn(d.Host, nil, &e)
	}}
	id, err := c.register(cl)
	if err != nil {
		return nil, err
	}
	if err := c.pc.Send(id, proto.TypeGetStream, &proto.GetStream{Hosts: hosts, Src: src, Tree: tree}); err != nil {
		c.unregister(id)
		return nil, fmt.Errorf("get: sending: %w", err)
	}
	var res proto.FileResults
	if err := c.wait(ctx, id, cl, proto.TypeFileResults, &res, true); err != nil {
		return nil, err
	}
	return fileResults(res), nil
}

// getStream streams src from every host into destDir/<host>/<base name of src> (a tree, with tree).
func (c *Client) getStream(ctx context.Context, hosts []string, src, destDir string, tree bool) ([]FileResult, error) {
	sv, err := NewSaver(destDir, src, tree)
	if err != nil {
		return nil, err
	}
	defer sv.Close()
	asked := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		asked[h] = true
	}
	var mu sync.Mutex
	local := map[string]FileResult{}
	res, err := c.GetTo(ctx, hosts, src, tree, func(host string, data []byte, end *FileResult) {
		if !asked[host] {
			return // not a host this request named: never write for it
		}
		if end == nil {
			sv.Write(host, data)
			return
		}
		r := *end
		p, n, err := sv.End(host, end.Mode, end.Status == proto.StatusOK)
		switch {
		case err != nil:
			r.Status, r.Err, r.Path = proto.StatusError, err.Error(), ""
		case end.Status == proto.StatusOK:
			r.Path, r.Bytes = p, n
		}
		mu.Lock()
		local[host] = r
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	for i, r := range res {
		l, ok := local[r.Host]
		switch {
		case ok:
			res[i] = l
		case r.Status == proto.StatusOK:
			res[i].Status, res[i].Err, res[i].Path = proto.StatusError, "the daemon sent no file for this host", ""
		default:
			res[i].Path = ""
		}
		if res[i].Path != "" && !filepath.IsAbs(res[i].Path) {
			res[i].Path = filepath.Join(destDir, res[i].Path)
		}
	}
	return res, nil
}
