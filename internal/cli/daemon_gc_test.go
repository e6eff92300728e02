package cli

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, true},
		{map[string]string{"GOGC": "200"}, false},
		{map[string]string{"GOMEMLIMIT": "1GiB"}, false},
	} {
		debug.SetGCPercent(100)
		got := tuneGC(func(k string) string { return tc.env[k] })
		pct := debug.SetGCPercent(100)
		if got != tc.want {
			t.Errorf("tuneGC with %v = %v; want %v", tc.env, got, tc.want)
		}
		if want := map[bool]int{true: daemonGOGC, false: 100}[tc.want]; pct != want {
			t.Errorf("with %v the GC percent is %d; want %d", tc.env, pct, want)
		}
	}
}
