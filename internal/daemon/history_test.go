package daemon

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestHistoryBoundsAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	h, err := newHistory(path, 3, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		uid := 1000 + i%2
		err := h.add(proto.RunRecord{ID: uint64(i), Command: fmt.Sprint("cmd", i), UID: uid,
			Results: []proto.HostResult{{Host: "a", Stdout: bytes.Repeat([]byte("x"), 100)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	all := func(*proto.RunRecord) bool { return true }
	got, _ := h.last(10, all)
	if len(got) != 3 || got[0].ID != 9 || got[2].ID != 7 {
		t.Fatalf("last(10) = %d runs, first %d; want 3, newest (9) first", len(got), got[0].ID)
	}
	mine, _ := h.last(5, func(r *proto.RunRecord) bool { return r.UID == 1000 })
	if len(mine) != 1 || mine[0].ID != 8 {
		t.Errorf("filtered last: %+v; want run 8 only", mine)
	}
	if one, _ := h.last(0, all); len(one) != 1 {
		t.Errorf("last(0) gave %d runs; want 1", len(one))
	}
	// A new daemon reads the same history back.
	h2, err := newHistory(path, 3, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := h2.last(10, all); len(got) != 3 || got[0].ID != 9 {
		t.Errorf("reloaded history: %d runs; want 3, newest 9", len(got))
	}
	// Byte bound: a huge run is cut to fit, and the total stays within the bound.
	big := proto.RunRecord{ID: 100, Results: []proto.HostResult{{Host: "a", Stdout: bytes.Repeat([]byte("y"), 50_000)}}}
	if err := h.add(big); err != nil {
		t.Fatal(err)
	}
	got, _ = h.last(10, all)
	if got[0].ID != 100 || !got[0].Results[0].Truncated || len(got[0].Results[0].Stdout) >= 10_000 {
		t.Errorf("after a huge run: newest %d, truncated=%v, %d bytes", got[0].ID, got[0].Results[0].Truncated, len(got[0].Results[0].Stdout))
	}
	if h.bytes > h.maxBytes {
		t.Errorf("history holds %d bytes; bound %d", h.bytes, h.maxBytes)
	}
}

// TestHistoryLazyLoad checks that a history opened on an existing file appends without reading
// it, and that the first query sees the file's runs and the appended ones once each, in order.
func TestHistoryLazyLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	h, err := newHistory(path, 5, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := h.add(proto.RunRecord{ID: uint64(i), Command: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	h2, err := newHistory(path, 5, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 6; i++ {
		if err := h2.add(proto.RunRecord{ID: uint64(i), Command: "new"}); err != nil {
			t.Fatal(err)
		}
	}
	if h2.loaded || len(h2.runs) != 0 {
		t.Fatalf("history read its file before a query (%d runs in memory)", len(h2.runs))
	}
	got, _ := h2.last(10, func(*proto.RunRecord) bool { return true })
	var ids []uint64
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if fmt.Sprint(ids) != "[5 4 3 2 1]" {
		t.Errorf("last after lazy load = %v; want [5 4 3 2 1]", ids)
	}
	// Once loaded, adds go to memory too.
	if err := h2.add(proto.RunRecord{ID: 6}); err != nil {
		t.Fatal(err)
	}
	if got, _ := h2.last(1, func(*proto.RunRecord) bool { return true }); len(got) != 1 || got[0].ID != 6 {
		t.Errorf("newest after load: %+v; want run 6", got)
	}
}

func TestCheckPeer(t *testing.T) {
	if err := checkPeer(PeerCred{UID: 1000, Known: true}, 1000, false); err != nil {
		t.Errorf("same uid refused: %v", err)
	}
	err := checkPeer(PeerCred{UID: 1001, Known: true}, 1000, false)
	if _, ok := err.(*PeerError); !ok {
		t.Errorf("other uid: %v; want *PeerError", err)
	}
	if err := checkPeer(PeerCred{UID: -1, Remote: true, Name: "alice"}, 1000, false); err != nil {
		t.Errorf("TLS client with a certificate refused: %v", err)
	}
	if err := checkPeer(PeerCred{UID: -1, Remote: true}, 1000, false); err == nil {
		t.Error("TLS client without a certificate accepted")
	}
}

func TestCheckHost(t *testing.T) {
	for _, h := range []string{"web01", "web01.dc1", "10.0.0.1", "user@host", "[::1]"} {
		if err := checkHost(h); err != nil {
			t.Errorf("checkHost(%q) = %v; want ok", h, err)
		}
	}
	for _, h := range []string{"", "-oProxyCommand=x", "a b", "a\nb", "a\x00"} {
		if checkHost(h) == nil {
			t.Errorf("checkHost(%q) accepted it", h)
		}
	}
}

// TestHistoryAnyRecordSize checks that a run whose line is longer than the byte bound (and
// than any buffer) reads back after a restart, with every run after it, and that the
// compaction that follows keeps them.
func TestHistoryAnyRecordSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	const bound = 100_000
	h, err := newHistory(path, 10, bound)
	if err != nil {
		t.Fatal(err)
	}
	all := func(*proto.RunRecord) bool { return true }
	h.add(proto.RunRecord{ID: 1, Command: "echo a"})
	// 90 kB of output is 120 kB of base64: a line longer than bound + a scanner's slack.
	h.add(proto.RunRecord{ID: 2, Command: "big", Results: []proto.HostResult{{Host: "a", Stdout: bytes.Repeat([]byte("a"), 90_000)}}})
	h.add(proto.RunRecord{ID: 3, Command: "echo c"})
	h2, err := newHistory(path, 10, bound)
	if err != nil {
		t.Fatal(err)
	}
	got, problem := h2.last(3, all)
	if len(got) != 3 || problem != "" {
		t.Fatalf("after a restart: %d runs, problem %q; want 3, none", len(got), problem)
	}
	if len(got[1].Results[0].Stdout) != 90_000 {
		t.Errorf("big run has %d bytes; want 90000", len(got[1].Results[0].Stdout))
	}
	// Grow the file past twice the bound: the compaction keeps the newest runs.
	for i := 4; i < 8; i++ {
		h2.add(proto.RunRecord{ID: uint64(i), Results: []proto.HostResult{{Host: "a", Stdout: bytes.Repeat([]byte("b"), 30_000)}}})
	}
	h3, _ := newHistory(path, 10, bound)
	got, problem = h3.last(10, all)
	if len(got) == 0 || got[0].ID != 7 || problem != "" {
		t.Fatalf("after compaction: %d runs, newest %d, problem %q", len(got), got[0].ID, problem)
	}
}

// TestHistoryTornAndCorrupt checks that a line cut by a crash costs only itself (the next
// append starts a new line), and that an undecodable line is moved aside and reported.
func TestHistoryTornAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.jsonl")
	os.WriteFile(path, []byte(`{"ID":1,"Command":"one"}`+"\n"+`{"ID":2,"Comm`), 0o600)
	h, err := newHistory(path, 10, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.add(proto.RunRecord{ID: 3, Command: "three"}); err != nil {
		t.Fatal(err)
	}
	h2, _ := newHistory(path, 10, 10_000)
	got, problem := h2.last(10, func(*proto.RunRecord) bool { return true })
	if len(got) != 2 || got[0].ID != 3 || got[1].ID != 1 {
		t.Fatalf("after a torn line: %d runs (%+v); want runs 3 and 1", len(got), got)
	}
	if !strings.Contains(problem, "1 lines") {
		t.Errorf("problem = %q; want it to count the one undecodable line", problem)
	}
	bad, err := os.ReadFile(path + ".corrupt")
	if err != nil || string(bad) != `{"ID":2,"Comm`+"\n" {
		t.Errorf(".corrupt holds %q (%v); want the torn line", bad, err)
	}
}

// TestHistoryReadErrorStopsCompaction checks that a history that cannot be read says so,
// and that it then never rewrites the file from the part it read.
func TestHistoryReadErrorStopsCompaction(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.jsonl")
	h, err := newHistory(path, 10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	h.add(proto.RunRecord{ID: 1})
	h, _ = newHistory(path, 10, 1000)
	// The file becomes unreadable (a directory reads as EISDIR) before the first query.
	os.Remove(path)
	os.Mkdir(path, 0o700)
	os.WriteFile(filepath.Join(path, "keep"), []byte("x"), 0o600)
	_, problem := h.last(1, func(*proto.RunRecord) bool { return true })
	if !strings.Contains(problem, "reading result history") {
		t.Fatalf("problem = %q; want the read error", problem)
	}
	for i := range 5 {
		h.add(proto.RunRecord{ID: uint64(10 + i), Results: []proto.HostResult{{Host: "a", Stdout: bytes.Repeat([]byte("x"), 600)}}})
	}
	if _, err := os.Stat(filepath.Join(path, "keep")); err != nil {
		t.Errorf("the unreadable history was replaced: %v", err)
	}
}

// TestHistoryKeepsUnseen checks that eviction passes over runs no client has seen, and that
// a run returned by last may be evicted afterwards.
func TestHistoryKeepsUnseen(t *testing.T) {
	h, _ := newHistory("", 2, 1000)
	h.add(proto.RunRecord{ID: 1, Unseen: true, Results: []proto.HostResult{{Host: "a", Stdout: bytes.Repeat([]byte("x"), 5000)}}})
	for i := 2; i < 6; i++ {
		h.add(proto.RunRecord{ID: uint64(i), Results: []proto.HostResult{{Host: "a", Stdout: bytes.Repeat([]byte("y"), 400)}}})
	}
	got, _ := h.last(10, func(r *proto.RunRecord) bool { return r.ID == 1 })
	if len(got) != 1 || len(got[0].Results[0].Stdout) != 5000 {
		t.Fatalf("unseen run: %d runs; want it whole", len(got))
	}
	h.add(proto.RunRecord{ID: 6})
	if got, _ := h.last(10, func(r *proto.RunRecord) bool { return r.ID == 1 }); len(got) != 0 {
		t.Errorf("a seen run outlived the bounds")
	}
}

// TestHistoryMergesRun checks that lines of one run (hosts filed after a restart) make one
// record, in memory and after a reload.
func TestHistoryMergesRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	h, _ := newHistory(path, 10, 100_000)
	h.add(proto.RunRecord{ID: 7, Command: "c", Results: []proto.HostResult{{Host: "a", Status: "error"}}})
	h.add(proto.RunRecord{ID: 8, Command: "other"})
	h.add(proto.RunRecord{ID: 7, Command: "c", Results: []proto.HostResult{{Host: "b", Status: "ok"}}})
	h.add(proto.RunRecord{ID: 7, Command: "c", Results: []proto.HostResult{{Host: "a", Status: "ok"}}})
	for _, hh := range []*history{h, func() *history { x, _ := newHistory(path, 10, 100_000); return x }()} {
		got, _ := hh.last(10, func(*proto.RunRecord) bool { return true })
		if len(got) != 2 {
			t.Fatalf("%d runs; want 2", len(got))
		}
		var r proto.RunRecord
		for _, x := range got {
			if x.ID == 7 {
				r = x
			}
		}
		if len(r.Results) != 2 || r.Results[0].Host != "a" || r.Results[0].Status != "ok" || r.Results[1].Host != "b" {
			t.Errorf("run 7: %+v; want a ok and b ok in one record", r.Results)
		}
	}
}

// FuzzHistoryLoad reads arbitrary bytes as a history file: loading never panics, every
// line that decodes is kept (up to the bounds), and a compaction after it never drops a
// run it did not read.
func FuzzHistoryLoad(f *testing.F) {
	f.Add([]byte(`{"ID":1,"Command":"a"}` + "\n" + `{"ID":2,"Comm`))
	f.Add([]byte(`{"ID":1,"Results":[{"Host":"a","Stdout":"eA=="}]}` + "\n" + `{"ID":1,"Results":[{"Host":"b"}]}` + "\n"))
	f.Add([]byte("\n\n{}\nnot json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "history.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		h, err := newHistory(path, 1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		runs, _ := h.last(1000, func(*proto.RunRecord) bool { return true })
		// Compacting rewrites the file from memory: whatever was read comes back.
		h.mu.Lock()
		cerr := h.compactLocked()
		h.mu.Unlock()
		if cerr != nil {
			t.Fatal(cerr)
		}
		h2, _ := newHistory(path, 1000, 1<<20)
		again, _ := h2.last(1000, func(*proto.RunRecord) bool { return true })
		if len(again) != len(runs) {
			t.Errorf("%d runs read, %d after a compaction", len(runs), len(again))
		}
	})
}
