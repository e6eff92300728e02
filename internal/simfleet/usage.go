package simfleet

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Usage is what the fleet's process has cost so far, kept apart from the daemon it serves.
type Usage struct {
	User, Sys  time.Duration // CPU
	MaxRSS     int64         // bytes, the high-water mark
	RSS        int64         // bytes, now
	Goroutines int
}

// ReadUsage returns the running process's usage.
func ReadUsage() Usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	u := Usage{
		User: time.Duration(ru.Utime.Nano()), Sys: time.Duration(ru.Stime.Nano()),
		MaxRSS: ru.Maxrss * 1024, Goroutines: runtime.NumGoroutine(),
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				u.RSS = kb * 1024
			}
		}
	}
	return u
}

// String formats u as the key=value line WriteUsage writes.
func (u Usage) String() string {
	return fmt.Sprintf("user_ms=%d sys_ms=%d maxrss_kib=%d rss_kib=%d goroutines=%d",
		u.User.Milliseconds(), u.Sys.Milliseconds(), u.MaxRSS>>10, u.RSS>>10, u.Goroutines)
}

// WriteUsage writes the process's usage to path, replacing it (ParseUsage reads it).
func WriteUsage(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(ReadUsage().String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing usage: %w", err)
	}
	return os.Rename(tmp, path)
}

// ParseUsage reads a line WriteUsage wrote.
func ParseUsage(s string) (Usage, error) {
	var u Usage
	var user, sys, maxrss, rss int64
	_, err := fmt.Sscanf(strings.TrimSpace(s), "user_ms=%d sys_ms=%d maxrss_kib=%d rss_kib=%d goroutines=%d",
		&user, &sys, &maxrss, &rss, &u.Goroutines)
	if err != nil {
		return u, fmt.Errorf("parsing usage %q: %w", s, err)
	}
	for _, v := range []int64{user, sys, maxrss, rss} {
		if v < 0 || v > 1<<40 {
			return u, fmt.Errorf("parsing usage %q: %d out of range", s, v)
		}
	}
	u.User, u.Sys = time.Duration(user)*time.Millisecond, time.Duration(sys)*time.Millisecond
	u.MaxRSS, u.RSS = maxrss<<10, rss<<10
	return u, nil
}
