package agent

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/proto"
)

// Bounds on file transfers in progress: each read holds a chunk buffer, each write an open file.
const (
	maxReads  = 16
	maxWrites = 64
)

// fileWritePiece bounds each write(2) of a file push. Pushing 50 MB to 50 hosts on a
// 2-vCPU virtual machine (kernel 6.18, ext4), the agents spent ~3 CPU-seconds copying
// 256 KiB writes into the page cache and ~0.25 s copying the same bytes 64 KiB at a
// time. Larger writes get larger folios; ours were ten times slower to fill, most
// likely high-order memory the hypervisor had taken back and faults in again.
const fileWritePiece = 64 << 10

// writebackEvery is how many bytes of a file push the agent lets pile up in the page
// cache before it starts writing them to disk. Without it the closing fsync wrote all of
// a pushed file at the end: ~1 s of the 7-8 s that 50 MB to 50 hosts took on the bench
// machine went to waiting for the disk after the last byte had arrived.
const writebackEvery = 8 << 20

// resolvePath makes a request path absolute: "~/x" and relative paths are taken from $HOME.
func resolvePath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("resolving %q: %w", p, err)
	}
	if p == "~" {
		return home, nil
	}
	p = strings.TrimPrefix(p, "~/")
	return filepath.Join(home, p), nil
}

func errCode(err error) proto.ErrorCode {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return proto.CodeNotFound
	case errors.Is(err, fs.ErrPermission):
		return proto.CodePermission
	}
	return proto.CodeIO
}

// startRead streams a file in chunks from a goroutine; kill with the read's id cancels it.
func (s *server) startRead(ctx context.Context, id uint64, req *proto.Read) {
	path, err := resolvePath(req.Path)
	if err != nil {
		s.sendError(id, proto.CodeBadRequest, "%v", err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	if s.idInUseLocked(id) {
		s.mu.Unlock()
		cancel()
		s.sendError(id, proto.CodeDuplicateID, "request id %d is still pending", id)
		return
	}
	if len(s.reads) >= maxReads {
		s.mu.Unlock()
		cancel()
		s.sendError(id, proto.CodeBusy, "%d reads in progress", maxReads)
		return
	}
	s.reads[id] = cancel
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.reads, id)
			s.mu.Unlock()
			cancel()
		}()
		if err := s.readFile(ctx, id, path, req); err != nil {
			var pe *proto.Error
			if errors.As(err, &pe) {
				s.send(id, proto.TypeError, pe)
			} else {
				s.sendError(id, errCode(err), "reading %s: %v", path, err)
			}
		}
	}()
}

func (s *server) readFile(ctx context.Context, id uint64, path string, req *proto.Read) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if req.Tree {
		if !st.IsDir() {
			return &proto.Error{Code: proto.CodeBadRequest, Message: path + " is not a directory"}
		}
		// Packed into an unlinked temporary file first, so the size is known and the chunks
		// below are those of any read.
		tf, err := packTemp(path)
		if err != nil {
			return err
		}
		defer tf.Close()
		tst, err := tf.Stat()
		if err != nil {
			return err
		}
		f, st = tf, dirSized{st, tst.Size()}
	} else if !st.Mode().IsRegular() {
		return &proto.Error{Code: proto.CodeBadRequest, Message: path + " is not a regular file"}
	}
	size := st.Size()
	if req.Offset < 0 || req.Length < 0 {
		return &proto.Error{Code: proto.CodeBadRequest, Message: "negative offset or length"}
	}
	want := max(size-req.Offset, 0)
	if req.Length > 0 {
		want = min(want, req.Length)
	}
	limit := s.opts.MaxFileSize
	if req.MaxSize > 0 {
		limit = min(limit, req.MaxSize)
	}
	if want > limit {
		return &proto.Error{Code: proto.CodeTooLarge, Message: fmt.Sprintf("%s: %d bytes exceed the limit of %d", path, want, limit)}
	}
	chunk := req.ChunkSize
	if chunk <= 0 {
		chunk = 128 << 10
	}
	chunk = min(max(chunk, 1<<10), s.conn.MaxFrame()/2)
	head := proto.ReadChunk{Size: size, Mode: uint32(st.Mode().Perm()), MTime: st.ModTime().UnixNano()}
	buf := make([]byte, chunk)
	off := req.Offset
	r := io.NewSectionReader(f, req.Offset, want)
	for {
		if err := ctx.Err(); err != nil {
			return &proto.Error{Code: proto.CodeIO, Message: "read canceled"}
		}
		n, err := io.ReadFull(r, buf)
		c := head
		c.Offset, c.Data = off, buf[:n]
		off += int64(n)
		eof := err != nil
		if eof && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return err
		}
		c.EOF = eof || off-req.Offset >= want
		if err := s.send(id, proto.TypeReadChunk, &c); err != nil {
			return nil // the connection is gone
		}
		if c.EOF {
			return nil
		}
	}
}

// fileWrite is a write in progress: data goes to a temporary file beside the target.
type fileWrite struct {
	path    string
	tmp     *os.File
	mode    fs.FileMode
	size    int64 // expected, when positive
	written int64
	flushed int64 // bytes handed to startWriteback
	sum     hash.Hash
	journal string // the write's journal entry in the run directory ("" without one)
	tree    bool   // tmp holds a tar archive to unpack at path (proto.Write.Tree)
}

// A write in progress is journalled in the agent's run directory: a file named writePrefix
// and the request id, holding the temporary file's path, made before that file is. An agent
// that dies mid-write leaves both; the agent that takes over its run directory (adopt)
// removes the partial file. A live writer's run directory is locked, so never its files.
const writePrefix = "write-"

// tempInfix marks shoal's temporary files beside a write's target: ".NAME.shoal-RANDOM".
const tempInfix = ".shoal-"

// createTemp journals write id and creates its temporary file beside path.
func (s *server) createTemp(id uint64, path string) (*os.File, string, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	name := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+tempInfix+hex.EncodeToString(rnd[:]))
	journal := ""
	if s.runDir != "" {
		journal = filepath.Join(s.runDir, writePrefix+strconv.FormatUint(id, 10))
		if err := os.WriteFile(journal, []byte(name), 0o600); err != nil {
			return nil, "", fmt.Errorf("journalling the write: %w", err)
		}
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if journal != "" {
			os.Remove(journal)
		}
		return nil, "", err
	}
	return f, journal, nil
}

// removeDeadWrites removes the temporary files of the writes journalled in dir, the run
// directory of a dead agent whose lock this agent holds, and their journal entries.
func (s *server) removeDeadWrites(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), writePrefix) {
			continue
		}
		j := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(j)
		tmp := string(b)
		base := filepath.Base(tmp)
		// Only ever a file of ours: a hidden name with our infix, a regular file.
		if err == nil && filepath.IsAbs(tmp) && strings.HasPrefix(base, ".") && strings.Contains(base, tempInfix) {
			if st, err := os.Lstat(tmp); err == nil && st.Mode().IsRegular() {
				if err := os.Remove(tmp); err == nil {
					s.log.Info("removed a dead agent's partial file", "path", tmp, "bytes", st.Size())
				}
			}
		}
		os.Remove(j)
	}
}

func (s *server) startWrite(id uint64, req *proto.Write) {
	path, err := resolvePath(req.Path)
	if err != nil {
		s.sendError(id, proto.CodeBadRequest, "%v", err)
		return
	}
	if req.Size > s.opts.MaxFileSize {
		s.sendError(id, proto.CodeTooLarge, "%d bytes exceed the limit of %d", req.Size, s.opts.MaxFileSize)
		return
	}
	s.mu.Lock()
	inUse := s.idInUseLocked(id)
	writes := len(s.writes)
	s.mu.Unlock()
	if inUse {
		s.sendError(id, proto.CodeDuplicateID, "request id %d is still pending", id)
		return
	}
	if writes >= maxWrites {
		s.sendError(id, proto.CodeBusy, "%d writes in progress", maxWrites)
		return
	}
	mode := fs.FileMode(req.Mode) & fs.ModePerm
	if req.Mode == 0 {
		mode = 0o644
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	}
	dir := filepath.Dir(path)
	if req.MkdirAll {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			s.sendError(id, errCode(err), "creating %s: %v", dir, err)
			return
		}
	}
	tmp, journal, err := s.createTemp(id, path)
	if err != nil {
		s.sendError(id, errCode(err), "writing %s: %v", path, err)
		return
	}
	s.mu.Lock()
	fw := &fileWrite{path: path, tmp: tmp, journal: journal, mode: mode, size: req.Size, tree: req.Tree}
	if req.Sum {
		fw.sum = sha256.New()
	}
	s.writes[id] = fw
	s.mu.Unlock()
}

func (s *server) writeChunk(id uint64, c *proto.WriteChunk) {
	s.mu.Lock()
	fw, ok := s.writes[id]
	s.mu.Unlock()
	if !ok {
		return // abandoned earlier: its error was sent then
	}
	if fw.written+int64(len(c.Data)) > s.opts.MaxFileSize {
		s.abortWrite(id, fw, fmt.Sprintf("more than %d bytes", s.opts.MaxFileSize))
		return
	}
	// In pieces of fileWritePiece: see there why.
	for d := c.Data; len(d) > 0; {
		k := min(len(d), fileWritePiece)
		if _, err := fw.tmp.Write(d[:k]); err != nil {
			s.abortWrite(id, fw, err.Error())
			return
		}
		d = d[k:]
	}
	if fw.sum != nil {
		fw.sum.Write(c.Data)
	}
	fw.written += int64(len(c.Data))
	if fw.written-fw.flushed >= writebackEvery {
		startWriteback(fw.tmp, fw.flushed, fw.written-fw.flushed)
		fw.flushed = fw.written
	}
}

// writeDone finishes a write from a goroutine: fsync, chmod, rename, fsync of the directory.
func (s *server) writeDone(id uint64) {
	s.mu.Lock()
	fw, ok := s.writes[id]
	delete(s.writes, id)
	s.mu.Unlock()
	if !ok {
		s.sendError(id, proto.CodeNotFound, "no write in progress with id %d", id)
		return
	}
	if fw.size > 0 && fw.written != fw.size {
		fw.discard()
		s.sendError(id, proto.CodeIO, "writing %s: got %d bytes, want %d", fw.path, fw.written, fw.size)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fw.commit(); err != nil {
			s.sendError(id, errCode(err), "writing %s: %v", fw.path, err)
			return
		}
		w := &proto.Written{Size: fw.written}
		if fw.sum != nil {
			w.SHA256 = hex.EncodeToString(fw.sum.Sum(nil))
		}
		s.send(id, proto.TypeWritten, w)
	}()
}

func (fw *fileWrite) commit() error {
	if fw.tree {
		return fw.unpack()
	}
	err := fw.tmp.Chmod(fw.mode)
	if err == nil {
		err = fw.tmp.Sync()
	}
	if cerr := fw.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(fw.tmp.Name(), fw.path)
	}
	if err != nil {
		os.Remove(fw.tmp.Name())
		fw.unjournal()
		return err
	}
	fsutil.SyncDir(filepath.Dir(fw.path))
	fw.unjournal()
	return nil
}

// unpack lays out the tree whose archive fw received, then drops the archive.
func (fw *fileWrite) unpack() error {
	_, err := fw.tmp.Seek(0, io.SeekStart)
	if err == nil {
		_, err = fsutil.Unpack(fw.tmp, fw.path)
	}
	fw.discard()
	return err
}

func (fw *fileWrite) discard() {
	fw.tmp.Close()
	os.Remove(fw.tmp.Name())
	fw.unjournal()
}

// unjournal removes the write's journal entry once its temporary file is gone or renamed.
func (fw *fileWrite) unjournal() {
	if fw.journal != "" {
		os.Remove(fw.journal)
	}
}

// abortWrite abandons a write, leaving the target untouched.
func (s *server) abortWrite(id uint64, fw *fileWrite, why string) {
	s.mu.Lock()
	cur, ok := s.writes[id]
	if ok && cur == fw {
		delete(s.writes, id)
	}
	s.mu.Unlock()
	if !ok || cur != fw {
		return
	}
	fw.discard()
	s.sendError(id, proto.CodeIO, "write of %s abandoned: %s", fw.path, why)
}

// abortWrites abandons every write in progress (the input ended or the agent is canceled).
func (s *server) abortWrites() {
	s.mu.Lock()
	ws := s.writes
	s.writes = map[uint64]*fileWrite{}
	s.mu.Unlock()
	for _, fw := range ws {
		fw.discard()
	}
}

// dirSized is a directory's FileInfo with the size of its packed archive.
type dirSized struct {
	fs.FileInfo
	size int64
}

func (d dirSized) Size() int64 { return d.size }

// packTemp packs the tree at dir into an unlinked temporary file, read from its start.
func packTemp(dir string) (*os.File, error) {
	f, err := os.CreateTemp("", ".shoal-tree-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 1<<20)
	err = fsutil.Pack(bw, dir)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("packing %s: %w", dir, err)
	}
	return f, nil
}
