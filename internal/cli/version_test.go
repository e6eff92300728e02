package cli

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/config"
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

// TestRotatedLog checks that the daemon's log rotates at log_max_size and keeps log_files old logs.
func TestRotatedLog(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Daemon.LogMaxSize, cfg.Daemon.LogFiles = 1<<20, 2
	lj := rotatedLog(cfg, filepath.Join(dir, "daemon.log"))
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for range 5 * 1024 { // 5 MiB: four rotations
		if _, err := lj.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := lj.Close(); err != nil {
		t.Fatal(err)
	}
	// Old logs are compressed and pruned by a goroutine of lumberjack's: wait for it, boundedly.
	var names []string
	for range 300 {
		names = names[:0]
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if len(names) == 3 && !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, ".log") && n != "daemon.log" }) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(names) != 3 || !slices.Contains(names, "daemon.log") {
		t.Errorf("files %v; want daemon.log and 2 compressed old logs", names)
	}
	if st, err := os.Stat(filepath.Join(dir, "daemon.log")); err != nil || st.Size() > 1<<20 {
		t.Errorf("daemon.log: %v, %v; want at most 1 MiB", st, err)
	}
}
