package simfleet

import (
	"testing"
	"time"
)

func TestUsageRoundTrip(t *testing.T) {
	u := Usage{User: 1500 * time.Millisecond, Sys: 20 * time.Millisecond, MaxRSS: 3 << 20, RSS: 2 << 20, Goroutines: 42}
	got, err := ParseUsage(u.String())
	if err != nil || got != u {
		t.Fatalf("got %+v, %v; want %+v", got, err, u)
	}
	if now := ReadUsage(); now.RSS <= 0 || now.Goroutines <= 0 {
		t.Errorf("ReadUsage: %+v; want an RSS and goroutines", now)
	}
}

func FuzzParseUsage(f *testing.F) {
	f.Add("user_ms=1 sys_ms=2 maxrss_kib=3 rss_kib=4 goroutines=5")
	f.Add("user_ms=-1 sys_ms=x")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUsage(s)
		if err != nil {
			return
		}
		if again, err := ParseUsage(u.String()); err != nil || again != u {
			t.Fatalf("%q: parsed %+v, reparsed %+v, %v", s, u, again, err)
		}
	})
}
