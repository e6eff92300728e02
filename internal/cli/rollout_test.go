package cli

import (
	"slices"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestRolloutFlags(t *testing.T) {
	tests := []struct {
		rf   rolloutFlags
		want *proto.Rollout
		bad  bool
	}{
		{rf: rolloutFlags{}, want: nil},
		{rf: rolloutFlags{seed: 3, pick: 2}, want: nil},
		{rf: rolloutFlags{batch: "2"}, want: &proto.Rollout{Batch: 2}},
		{rf: rolloutFlags{batch: "25%", maxFail: "10%", canary: 1, waves: true}, want: &proto.Rollout{BatchPercent: 25, MaxFailPercent: 10, Canary: 1, Waves: true}},
		{rf: rolloutFlags{shuffle: true, seed: 9}, want: &proto.Rollout{Shuffle: true, Seed: 9}},
		{rf: rolloutFlags{batch: "0"}, bad: true},
		{rf: rolloutFlags{batch: "x"}, bad: true},
		{rf: rolloutFlags{batch: "101%"}, bad: true},
		{rf: rolloutFlags{maxFail: "-1"}, bad: true},
		{rf: rolloutFlags{waves: true}, bad: true},
		{rf: rolloutFlags{canary: -1}, bad: true},
	}
	for _, tc := range tests {
		got, err := tc.rf.rollout()
		switch {
		case tc.bad && err == nil:
			t.Errorf("%+v: no error", tc.rf)
		case !tc.bad && err != nil:
			t.Errorf("%+v: %v", tc.rf, err)
		case !tc.bad && (got == nil) != (tc.want == nil), got != nil && *got != *tc.want:
			t.Errorf("%+v: got %+v; want %+v", tc.rf, got, tc.want)
		}
	}
}

func TestSubset(t *testing.T) {
	hosts := []string{"a1", "a2", "a3", "a4", "a5", "a6"}
	got, _ := (&rolloutFlags{first: 2}).subset(hosts)
	if !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("--first 2: got %v", got)
	}
	p1, _ := (&rolloutFlags{pick: 3, seed: 5}).subset(hosts)
	p2, _ := (&rolloutFlags{pick: 3, seed: 5}).subset(hosts)
	if len(p1) != 3 || !slices.Equal(p1, p2) || !slices.IsSorted(p1) {
		t.Errorf("--pick 3 --seed 5: got %v and %v; want the same 3 hosts in target order", p1, p2)
	}
	if got, _ := (&rolloutFlags{pick: 9}).subset(hosts); !slices.Equal(got, hosts) {
		t.Errorf("--pick 9 of 6: got %v; want all", got)
	}
	if _, err := (&rolloutFlags{pick: 1, first: 1}).subset(hosts); err == nil {
		t.Error("--pick with --first: no error")
	}
}

func TestUsesHistory(t *testing.T) {
	for expr, want := range map[string]bool{
		"@failed": true, "@ok,web1": true, "web[1-3]&@last": true, "@all !@skipped": true, "@unreachable)": true,
		"@okay": false, "@failed-db": false, "web1": false, "@lastweek": false, "": false,
	} {
		if got := usesHistory(expr); got != want {
			t.Errorf("usesHistory(%q) = %v; want %v", expr, got, want)
		}
	}
}
