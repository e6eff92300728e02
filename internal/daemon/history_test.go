package daemon

import (
	"bytes"
	"fmt"
	"path/filepath"
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
	got := h.last(10, all)
	if len(got) != 3 || got[0].ID != 9 || got[2].ID != 7 {
		t.Fatalf("last(10) = %d runs, first %d; want 3, newest (9) first", len(got), got[0].ID)
	}
	mine := h.last(5, func(r *proto.RunRecord) bool { return r.UID == 1000 })
	if len(mine) != 1 || mine[0].ID != 8 {
		t.Errorf("filtered last: %+v; want run 8 only", mine)
	}
	if one := h.last(0, all); len(one) != 1 {
		t.Errorf("last(0) gave %d runs; want 1", len(one))
	}
	// A new daemon reads the same history back.
	h2, err := newHistory(path, 3, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if got := h2.last(10, all); len(got) != 3 || got[0].ID != 9 {
		t.Errorf("reloaded history: %d runs; want 3, newest 9", len(got))
	}
	// Byte bound: a huge run is cut to fit, and the total stays within the bound.
	big := proto.RunRecord{ID: 100, Results: []proto.HostResult{{Host: "a", Stdout: bytes.Repeat([]byte("y"), 50_000)}}}
	if err := h.add(big); err != nil {
		t.Fatal(err)
	}
	got = h.last(10, all)
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
	got := h2.last(10, func(*proto.RunRecord) bool { return true })
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
	if got := h2.last(1, func(*proto.RunRecord) bool { return true }); len(got) != 1 || got[0].ID != 6 {
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
