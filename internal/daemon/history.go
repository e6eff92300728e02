package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/shoal-sh/shoal/internal/fsutil"
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
//
// The store never loses what it accepted: a line may be of any length, each append is
// synced before add returns, a line that cannot be decoded is moved to the file's
// ".corrupt" sibling rather than dropped, a read error stops compaction (which rewrites
// only what was read) and is reported to every `last`, and eviction passes over runs
// whose results no client has seen (Unseen).
type history struct {
	path     string // "" keeps history in memory only
	maxRuns  int
	maxBytes int64

	mu        sync.Mutex // protects the following
	loaded    bool       // runs holds the file's runs (always true without a file)
	runs      []proto.RunRecord
	bytes     int64
	fileBytes int64
	torn      bool  // the file does not end in a newline (a write cut by a crash)
	readErr   error // the file could not be read whole: compaction is off
	badLines  int   // lines that could not be decoded, moved to the .corrupt file
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
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		h.loaded = true
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading result history: %w", err)
	}
	defer f.Close()
	if err := fsutil.CheckPrivateFile(f, path, "the result history"); err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading result history: %w", err)
	}
	h.fileBytes = st.Size()
	if h.fileBytes > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], h.fileBytes-1); err != nil {
			return nil, fmt.Errorf("reading result history: %w", err)
		}
		h.torn = last[0] != '\n'
	}
	return h, nil
}

// loadLocked reads the file's runs into memory, once. Until then add only appends to the
// file, which so holds every run. Lines have no length limit; a line that is not a run
// is moved to the .corrupt file, and a read error is kept in readErr.
func (h *history) loadLocked() {
	if h.loaded {
		return
	}
	h.loaded = true
	f, err := os.Open(h.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		h.readErr = fmt.Errorf("reading result history %s: %w", h.path, err)
		return
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var bad []byte
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var r proto.RunRecord
			if json.Unmarshal(line, &r) != nil {
				h.badLines++
				bad = append(bad, line...)
				if line[len(line)-1] != '\n' {
					bad = append(bad, '\n')
				}
			} else {
				h.addLocked(r)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			h.readErr = fmt.Errorf("reading result history %s at line %d: %w", h.path, lineNo, err)
			break
		}
	}
	if len(bad) > 0 {
		if err := appendSynced(h.path+".corrupt", bad); err != nil {
			h.readErr = fmt.Errorf("keeping %d undecodable lines of the result history: %w", h.badLines, err)
		}
	}
}

// problem returns what keeps the history from being whole, or "".
func (h *history) problemLocked() string {
	switch {
	case h.readErr != nil:
		return h.readErr.Error() + "; runs after that point are not shown, and the file is only appended to until it can be read"
	case h.badLines > 0:
		return fmt.Sprintf("%d lines of the result history %s could not be decoded; they were moved to %s.corrupt",
			h.badLines, h.path, h.path)
	}
	return ""
}

// addLocked appends r and drops the oldest runs past the bounds. A run larger than
// the whole byte bound has its output cut so that it fits.
func (h *history) addLocked(r proto.RunRecord) {
	size := recordSize(&r)
	if size > h.maxBytes && !r.Unseen {
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
	if i := h.indexLocked(r.ID); i >= 0 {
		// More of a run filed earlier (hosts recovered after a restart): one record.
		old := &h.runs[i]
		h.bytes -= recordSize(old)
		for _, hr := range r.Results {
			if k := slices.IndexFunc(old.Results, func(x proto.HostResult) bool { return x.Host == hr.Host }); k >= 0 {
				old.Results[k] = hr
			} else {
				old.Results = append(old.Results, hr)
			}
		}
		old.Ended = max(old.Ended, r.Ended)
		old.Unseen = old.Unseen || r.Unseen
		h.bytes += recordSize(old)
	} else {
		h.runs = append(h.runs, r)
		h.bytes += size
	}
	h.evictLocked()
}

// indexLocked returns the index of run id in runs, or -1. Runs are few (the run bound),
// and a merge is most often into one of the newest.
func (h *history) indexLocked(id uint64) int {
	for i := len(h.runs) - 1; i >= 0; i-- {
		if h.runs[i].ID == id {
			return i
		}
	}
	return -1
}

// evictLocked drops the oldest runs past the bounds, passing over (and not counting
// towards the run bound) runs no client has seen: a run recovered after a crash stays
// until someone reads it. The newest run is always kept.
func (h *history) evictLocked() {
	seen := 0
	for i := range h.runs {
		if !h.runs[i].Unseen {
			seen++
		}
	}
	keep := h.runs[:0]
	for i := range h.runs {
		r := &h.runs[i]
		if !r.Unseen && i < len(h.runs)-1 && (seen > h.maxRuns || h.bytes > h.maxBytes) {
			h.bytes -= recordSize(r)
			seen--
			continue
		}
		keep = append(keep, *r)
	}
	clear(h.runs[len(keep):])
	h.runs = keep
}

// add records a completed run and appends it to the file, compacting the file when it
// has grown to twice the byte bound. A run whose id is already recorded adds its hosts
// to that record (replacing a host's earlier result): the file then holds two lines of
// the run, which a reload merges the same way. It returns once the line is synced.
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
		if h.readErr == nil {
			h.addLocked(r)
			return h.compactLocked()
		}
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

// appendLocked appends line to the file, after a newline when the file's last line was
// cut by a crash (so that line stays apart and only it is lost), and syncs it.
func (h *history) appendLocked(line []byte) error {
	if h.torn {
		line = append([]byte{'\n'}, line...)
	}
	if err := appendSynced(h.path, line); err != nil {
		return err
	}
	h.torn = false
	h.fileBytes += int64(len(line))
	return nil
}

// appendSynced appends data to the file at path (made 0600, in a 0700 directory) and
// syncs it before returning.
func appendSynced(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing result history: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("writing result history: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing result history: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing result history: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing result history: %w", err)
	}
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
	h.torn = false
	return nil
}

// last returns up to n of the newest runs matching keep, newest first, and what keeps
// the history from being whole ("" when it is). The runs it returns count as seen.
func (h *history) last(n int, keep func(*proto.RunRecord) bool) ([]proto.RunRecord, string) {
	if n <= 0 {
		n = 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loadLocked()
	var out []proto.RunRecord
	for i := len(h.runs) - 1; i >= 0 && len(out) < n; i-- {
		if keep(&h.runs[i]) {
			h.runs[i].Unseen = false
			out = append(out, h.runs[i])
		}
	}
	h.evictLocked()
	return out, h.problemLocked()
}
