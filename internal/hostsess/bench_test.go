package hostsess

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/local"
	"github.com/shoal-sh/shoal/internal/transport/ssh"
)

// BenchmarkIdleHostMemory connects sessions to real agent subprocesses (the local
// transport) and reports the daemon-side heap and stack per connected idle host,
// transport included (the agents themselves live in other processes).
func BenchmarkIdleHostMemory(b *testing.B) {
	const hosts = 100
	b.Setenv("GORACE", "atexit_sleep_ms=0")
	lt := &local.Transport{Binary: shoaltest.Binary(b), BaseDir: shoaltest.AgentDir(b)}
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
	lt := &local.Transport{Binary: shoaltest.Binary(b), BaseDir: shoaltest.AgentDir(b)}
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
	lt := &local.Transport{Binary: shoaltest.Binary(b), BaseDir: shoaltest.AgentDir(b)}
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

// BenchmarkIdleHostMemorySSH is BenchmarkIdleHostMemory over the in-process SSH
// transport to a real sshd fleet (SHOAL_BENCH_HOSTS hosts, default 50): the
// daemon-side cost of a connected idle host, SSH client included.
func BenchmarkIdleHostMemorySSH(b *testing.B) {
	hosts := 50
	if n, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_HOSTS")); err == nil && n > 0 {
		hosts = n
	}
	f := shoaltest.StartFleet(b, shoaltest.FleetOptions{N: hosts})
	tr := ssh.New(ssh.Options{
		Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"},
		Source: f.AgentSource(b),
		Stderr: func(host string) io.Writer { return &prefixWriter{b: b, host: host} },
	})
	sem := make(chan struct{}, 32)
	connect := func() []*Session {
		sessions := make([]*Session, hosts)
		var wg sync.WaitGroup
		for i, h := range f.Hosts {
			sessions[i] = New(Options{Target: transport.Target{Name: h.Name}, Transport: tr, Handshakes: sem})
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := sessions[i].Ping(context.Background()); err != nil {
					b.Errorf("Ping %s: %v", h.Name, err)
				}
			}()
		}
		wg.Wait()
		return sessions
	}
	for _, s := range connect() { // install the agent once, outside the measurement
		s.Close()
	}
	for range b.N {
		b.StopTimer()
		g0 := runtime.NumGoroutine()
		m0 := liveBytes()
		b.StartTimer()
		sessions := connect()
		b.StopTimer()
		m1 := liveBytes()
		g1 := runtime.NumGoroutine()
		b.ReportMetric(float64(m1-m0)/float64(hosts), "bytes/host")
		b.ReportMetric(float64(g1-g0)/float64(hosts), "goroutines/host")
		for _, s := range sessions {
			s.Close()
		}
		b.StartTimer()
	}
}

// prefixWriter logs an agent's warnings and errors with its host name.
type prefixWriter struct {
	b    *testing.B
	host string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "level=INFO") {
		return len(p), nil
	}
	w.b.Logf("%s: %s", w.host, p)
	return len(p), nil
}
