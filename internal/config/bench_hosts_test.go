package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// hostEntries returns a config of n [[host]] entries, each with an address and a tag of its own.
func hostEntries(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[[host]]\nname = \"n%05d\"\naddress = \"127.0.0.%d\"\ntags = [\"u%d\", \"rack%d\"]\n", i, i%250+1, i, i%20)
	}
	return []byte(b.String())
}

// BenchmarkHostEntries parses and validates 10,000 [[host]] entries, as every command does.
func BenchmarkHostEntries(b *testing.B) {
	data := hostEntries(10_000)
	for b.Loop() {
		c, err := Parse("config.toml", data)
		if err != nil {
			b.Fatal(err)
		}
		if got, err := c.Targets("@rack7", nil); err != nil || len(got) != 500 {
			b.Fatalf("@rack7: %d hosts, %v", len(got), err)
		}
		if s := c.HostFor("n09999"); s.Address != "127.0.0.250" {
			b.Fatalf("HostFor: %+v", s)
		}
	}
}

// TestManyHostEntries checks that 10,000 [[host]] entries, each with a tag of its own, load
// and answer a tag and a host lookup in linear time: well under a second here, so a bound of
// 10 s still fails the quadratic cost they had (29 s).
func TestManyHostEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("parses 10,000 entries")
	}
	data := hostEntries(10_000)
	start := time.Now()
	c, err := Parse("config.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Targets("@u1234,@rack3", nil); err != nil || len(got) != 501 {
		t.Fatalf("@u1234,@rack3: %d hosts, %v; want 501", len(got), err)
	}
	if s := c.HostFor("n09999"); s.Address != "127.0.0.250" || !slices.Equal(s.Tags, []string{"rack19", "u9999"}) {
		t.Fatalf("HostFor(n09999) = %+v", s)
	}
	took := time.Since(start)
	// Linear time, judged by a ratio measured in this run, not by the clock of a machine
	// that may be loaded: ten times the entries may cost at most about ten times as much
	// (the quadratic loader cost a hundred times as much).
	small := parseTime(t, hostEntries(1_000))
	t.Logf("10,000 [[host]] entries: parsed, validated and looked up in %v; 1,000 parsed in %v", took, small)
	if ratio := float64(took) / float64(small); ratio > 35 {
		t.Errorf("10,000 [[host]] entries took %v, %.0f× the %v of 1,000; want linear time (about 10×)", took, ratio, small)
	}
	// A mistake in the last entry is still reported at its line.
	bad := append(data, "[[host]]\nname = \"x\"\nport = -1\n"...)
	_, err = Parse("config.toml", bad)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("config.toml:%d:", 40_003)) {
		t.Errorf("bad last entry: %v; want it at line 40003", err)
	}
}

// parseTime returns the least time of three parses of data, the least disturbed by other work.
func parseTime(t *testing.T, data []byte) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		if _, err := Parse("config.toml", data); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}
