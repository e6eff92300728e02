package cli

import (
	"runtime/debug"
	"testing"
	"time"
)

func TestModuleVersion(t *testing.T) {
	for _, tc := range []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261208014600-3fe97654abcd+dirty"}}, "v0.0.0-20261208014600-3fe97654abcd+dirty"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{&debug.BuildInfo{}, "dev"},
		{nil, "dev"},
	} {
		got := moduleVersion("dev", func() (*debug.BuildInfo, bool) { return tc.bi, tc.bi != nil })
		if got != tc.want {
			t.Errorf("moduleVersion(%+v) = %q; want %q", tc.bi, got, tc.want)
		}
	}
}

func TestManDate(t *testing.T) {
	now := time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC)
	for _, tc := range []struct {
		epoch string
		want  time.Time
		err   bool
	}{
		{"", now, false},
		{"1764633600", time.Date(2025, 12, 2, 0, 0, 0, 0, time.UTC), false},
		{"yesterday", time.Time{}, true},
	} {
		got, err := manDate(tc.epoch, now)
		if (err != nil) != tc.err || !got.Equal(tc.want) {
			t.Errorf("manDate(%q) = %v, %v; want %v, error %v", tc.epoch, got, err, tc.want, tc.err)
		}
	}
}
