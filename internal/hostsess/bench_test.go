package hostsess

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/local"
)

// BenchmarkIdleHostMemory connects sessions to real agent subprocesses (the local
// transport) and reports the daemon-side heap and stack per connected idle host,
// transport included (the agents themselves live in other processes).
func BenchmarkIdleHostMemory(b *testing.B) {
	const hosts = 100
	b.Setenv("GORACE", "atexit_sleep_ms=0")
	lt := &local.Transport{Binary: shoaltest.Binary(b), BaseDir: b.TempDir()}
	for range b.N {
		b.StopTimer()
		g0 := runtime.NumGoroutine()
		m0 := liveBytes()
		b.StartTimer()
		sessions := make([]*Session, hosts)
		for i := range sessions {
			sessions[i] = New(Options{Target: transport.Target{Name: "h" + itoa3(i)}, Transport: lt})
			if _, err := sessions[i].Ping(context.Background()); err != nil {
				b.Fatalf("Ping: %v", err)
			}
		}
		b.StopTimer()
		m1 := liveBytes()
		g1 := runtime.NumGoroutine()
		b.ReportMetric(float64(m1-m0)/hosts, "bytes/host")
		b.ReportMetric(float64(g1-g0)/hosts, "goroutines/host")
		for _, s := range sessions {
			s.Close()
		}
		b.StartTimer()
	}
	// Let the agents see their input end and exit.
	time.Sleep(100 * time.Millisecond)
}

// BenchmarkExecRoundTrip is a warm `true` through a session and a real agent.
func BenchmarkExecRoundTrip(b *testing.B) {
	b.Setenv("GORACE", "atexit_sleep_ms=0")
	lt := &local.Transport{Binary: shoaltest.Binary(b), BaseDir: b.TempDir()}
	s := New(Options{Target: transport.Target{Name: "bench"}, Transport: lt})
	defer s.Close()
	if _, err := s.Ping(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.Exec(context.Background(), ExecRequest{Command: "true"}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPing is a ping round trip through a session and a real agent.
func BenchmarkPing(b *testing.B) {
	b.Setenv("GORACE", "atexit_sleep_ms=0")
	lt := &local.Transport{Binary: shoaltest.Binary(b), BaseDir: b.TempDir()}
	s := New(Options{Target: transport.Target{Name: "bench"}, Transport: lt})
	defer s.Close()
	if _, err := s.Ping(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.Ping(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// liveBytes returns the heap in use plus goroutine stacks after a GC.
func liveBytes() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

func itoa3(i int) string {
	return string([]byte{byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)})
}
