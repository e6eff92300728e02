package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/state"
)

// Defaults for the result history.
const (
	DefaultHistoryRuns  = 100
	DefaultHistoryBytes = 8 << 20
)

// history keeps the most recent runs' full results, bounded by count and by bytes of
// output, in memory and in a JSON-lines file (mode 0600) that survives restarts.
//
// The file is read on first need (a `last` query, or a compaction), not at start: a
// one-shot `shoal run --no-daemon` only appends its run, and parsing up to twice the byte
// bound of JSON cost it 4% of its CPU.
type history struct {
	path     string // "" keeps history in memory only
	maxRuns  int
	maxBytes int64

	mu        sync.Mutex // protects the following
	loaded    bool       // runs holds the file's runs (always true without a file)
	runs      []proto.RunRecord
	bytes     int64
	fileBytes int64
}

func recordSize(r *proto.RunRecord) int64 {
	n := int64(len(r.Command)) + 64
	for i := range r.Results {
		h := &r.Results[i]
		n += int64(len(h.Stdout)+len(h.Stderr)+len(h.Err)+len(h.Host)) + 64
	}
	return n
}

func newHistory(path string, maxRuns int, maxBytes int64) (*history, error) {
	if maxRuns <= 0 {
		maxRuns = DefaultHistoryRuns
	}
	if maxBytes <= 0 {
		maxBytes = DefaultHistoryBytes
	}
	h := &history{path: path, maxRuns: maxRuns, maxBytes: maxBytes, loaded: path == ""}
	if path == "" {
		return h, nil
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		h.loaded = true
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading result history: %w", err)
	}
	h.fileBytes = st.Size()
	return h, nil
}

// loadLocked reads the file's runs into memory, once. Until then add only appends to the
// file, which so holds every run.
func (h *history) loadLocked() {
	if h.loaded {
		return
	}
	h.loaded = true
	f, err := os.Open(h.path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, int(h.maxBytes)+1<<20)
	for sc.Scan() {
		var r proto.RunRecord
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue // a torn last line after a crash
		}
		h.addLocked(r)
	}
}

// addLocked appends r and drops the oldest runs past the bounds. A run larger than
// the whole byte bound has its output cut so that it fits.
func (h *history) addLocked(r proto.RunRecord) {
	size := recordSize(&r)
	if size > h.maxBytes {
		per := h.maxBytes / int64(2*len(r.Results)+1)
		for i := range r.Results {
			hr := &r.Results[i]
			if int64(len(hr.Stdout)) > per {
				hr.Stdout, hr.Truncated = hr.Stdout[:per], true
			}
			if int64(len(hr.Stderr)) > per {
				hr.Stderr, hr.Truncated = hr.Stderr[:per], true
			}
		}
		size = recordSize(&r)
	}
	// Copy the outputs: a truncated slice (or one grown by append) would pin the
	// run's whole output buffers for as long as the record lives.
	res := make([]proto.HostResult, len(r.Results))
	for i, hr := range r.Results {
		hr.Stdout, hr.Stderr = bytes.Clone(hr.Stdout), bytes.Clone(hr.Stderr)
		res[i] = hr
	}
	r.Results = res
	h.runs = append(h.runs, r)
	h.bytes += size
	for len(h.runs) > 1 && (len(h.runs) > h.maxRuns || h.bytes > h.maxBytes) {
		h.bytes -= recordSize(&h.runs[0])
		h.runs[0] = proto.RunRecord{}
		h.runs = h.runs[1:]
	}
}

// add records a completed run and appends it to the file, compacting the file when it
// has grown to twice the byte bound.
func (h *history) add(r proto.RunRecord) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.path == "" {
		h.addLocked(r)
		return nil
	}
	line, err := json.Marshal(&r)
	if err != nil {
		h.loadLocked()
		h.addLocked(r)
		return fmt.Errorf("encoding result history: %w", err)
	}
	line = append(line, '\n')
	if h.fileBytes+int64(len(line)) > 2*h.maxBytes {
		h.loadLocked()
		h.addLocked(r)
		return h.compactLocked()
	}
	if err := h.appendLocked(line); err != nil {
		h.loadLocked() // keep r in memory at least
		h.addLocked(r)
		return err
	}
	if h.loaded {
		h.addLocked(r)
	}
	return nil
}

// appendLocked appends line to the file.
func (h *history) appendLocked(line []byte) error {
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return fmt.Errorf("writing result history: %w", err)
	}
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("writing result history: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("writing result history: %w", err)
	}
	h.fileBytes += int64(len(line))
	return nil
}

// compactLocked rewrites the file with the runs held in memory, atomically.
func (h *history) compactLocked() error {
	var buf []byte
	for i := range h.runs {
		line, err := json.Marshal(&h.runs[i])
		if err != nil {
			return fmt.Errorf("encoding result history: %w", err)
		}
		buf = append(append(buf, line...), '\n')
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return fmt.Errorf("writing result history: %w", err)
	}
	if err := state.WriteFile(h.path, buf, 0o600); err != nil {
		return err
	}
	h.fileBytes = int64(len(buf))
	return nil
}

// last returns up to n of the newest runs matching keep, newest first.
func (h *history) last(n int, keep func(*proto.RunRecord) bool) []proto.RunRecord {
	if n <= 0 {
		n = 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loadLocked()
	var out []proto.RunRecord
	for i := len(h.runs) - 1; i >= 0 && len(out) < n; i-- {
		if keep(&h.runs[i]) {
			out = append(out, h.runs[i])
		}
	}
	return out
}
