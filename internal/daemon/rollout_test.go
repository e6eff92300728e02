package daemon

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestResolvePace(t *testing.T) {
	tests := []struct {
		ro                      proto.Rollout
		n, batch, maxFail, cany int
	}{
		{proto.Rollout{}, 6, 6, 0, 0},
		{proto.Rollout{Batch: 2}, 6, 2, 0, 0},
		{proto.Rollout{Batch: 10}, 6, 6, 0, 0},
		{proto.Rollout{BatchPercent: 25}, 6, 2, 0, 0}, // 1.5 rounds up
		{proto.Rollout{BatchPercent: 1}, 6, 1, 0, 0},
		{proto.Rollout{MaxFailPercent: 10}, 6, 6, 1, 0},
		{proto.Rollout{MaxFailPercent: 50}, 6, 6, 3, 0},
		{proto.Rollout{MaxFail: 2, Canary: 9}, 6, 6, 2, 6},
	}
	for _, tc := range tests {
		p, err := resolvePace(&tc.ro, tc.n)
		if err != nil {
			t.Errorf("%+v: %v", tc.ro, err)
			continue
		}
		if p.batch != tc.batch || p.maxFail != tc.maxFail || p.canary != tc.cany {
			t.Errorf("%+v over %d: got batch %d, max-fail %d, canary %d; want %d, %d, %d",
				tc.ro, tc.n, p.batch, p.maxFail, p.canary, tc.batch, tc.maxFail, tc.cany)
		}
	}
	for _, bad := range []proto.Rollout{{Batch: -1}, {BatchPercent: 101}, {MaxFail: -2}, {MaxFailPercent: 200}, {Canary: -1}, {Wait: -1}} {
		if _, err := resolvePace(&bad, 6); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	a, _ := resolvePace(&proto.Rollout{Shuffle: true, Seed: 7}, 20)
	b, _ := resolvePace(&proto.Rollout{Shuffle: true, Seed: 7}, 20)
	if !slices.Equal(a.order, b.order) {
		t.Errorf("one seed, two orders: %v, %v", a.order, b.order)
	}
	sorted := slices.Clone(a.order)
	slices.Sort(sorted)
	if slices.Equal(a.order, sorted) || sorted[0] != 0 || sorted[19] != 19 {
		t.Errorf("shuffled order %v: want a permutation of 0..19, not sorted", a.order)
	}
}

// fakeRollout runs rollout over n hosts whose statuses are fail's (ok when missing) and
// returns the statuses, with the skipped ones as "skipped".
func fakeRollout(t *testing.T, ctx context.Context, ro *proto.Rollout, n int, fail map[int]proto.Status) []string {
	t.Helper()
	p, err := resolvePace(ro, n)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := make([]string, n)
	rollout(ctx, p, func(i int) proto.Status {
		st := fail[i]
		if st == "" {
			st = proto.StatusOK
		}
		mu.Lock()
		out[i] = string(st)
		mu.Unlock()
		return st
	}, func(i int, why string) {
		if why == "" {
			t.Errorf("host %d skipped without a reason", i)
		}
		out[i] = string(proto.StatusSkipped)
	})
	return out
}

func TestRolloutStops(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		ro   proto.Rollout
		fail map[int]proto.Status
		want string
	}{
		{"no limit", proto.Rollout{Batch: 2}, map[int]proto.Status{0: proto.StatusFailed}, "failed ok ok ok ok ok"},
		{"max-fail in waves", proto.Rollout{Batch: 2, Waves: true, MaxFail: 1}, map[int]proto.Status{1: proto.StatusFailed},
			"ok failed skipped skipped skipped skipped"},
		{"max-fail counts unreachable", proto.Rollout{Batch: 1, MaxFail: 2}, map[int]proto.Status{0: proto.StatusUnreachable, 2: proto.StatusTimeout},
			"unreachable ok timeout skipped skipped skipped"},
		{"cancelled is no failure", proto.Rollout{Batch: 1, MaxFail: 1}, map[int]proto.Status{0: proto.StatusCancelled}, "cancelled ok ok ok ok ok"},
		{"canary fails", proto.Rollout{Canary: 2}, map[int]proto.Status{1: proto.StatusFailed}, "ok failed skipped skipped skipped skipped"},
		{"canary passes", proto.Rollout{Canary: 2, Batch: 1}, map[int]proto.Status{4: proto.StatusFailed}, "ok ok ok ok failed ok"},
	}
	for _, tc := range tests {
		got := fakeRollout(t, ctx, &tc.ro, 6, tc.fail)
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%s: got %s; want %s", tc.name, g, tc.want)
		}
	}
	// A cancel before the start skips every host.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	got := fakeRollout(t, cctx, &proto.Rollout{Batch: 1}, 3, nil)
	if g := strings.Join(got, " "); g != "skipped skipped skipped" && g != "ok skipped skipped" {
		t.Errorf("cancelled: got %s; want every host (but perhaps the first) skipped", g)
	}
}
