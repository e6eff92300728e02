package daemon_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	sshtr "github.com/shoal-sh/shoal/internal/transport/ssh"
)

// scrape fetches the metrics page as Prometheus would and returns its samples by series.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping metrics: %s, %v", resp.Status, err)
	}
	out := map[string]float64{}
	line := regexp.MustCompile(`^(\S+) (\S+)$`)
	for l := range strings.SplitSeq(string(b), "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", l, err)
			}
			out[m[1]] = v
		}
	}
	return out
}

// TestMetrics runs a command on a real fleet through a daemon serving metrics on loopback,
// and scrapes them: sessions by state, results, requests, fan-out latency, heartbeats, bytes
// and the history.
func TestMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an sshd fleet")
	}
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 2})
	tr := sshtr.New(sshtr.Options{Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"}, Source: f.AgentSource(t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	d := startDaemon(t, tr, func(o *daemon.Options) {
		o.Resolve = func(host string) (daemon.Host, error) {
			return daemon.Host{Target: transport.Target{Name: host}, Transport: tr, TransportName: "ssh"}, nil
		}
		o.MetricsListener = ln
		o.Session.Heartbeat = time.Second
	})
	before := scrape(t, addr)
	if before[`shoal_sessions{state="ready"}`] != 0 || before["shoal_clients"] != 0 {
		t.Errorf("before any client: %v", before)
	}
	c := d.dial(t, "metrics")
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: f.Names(), Command: "echo hello"})
	if err != nil {
		t.Fatal(err)
	}
	if _, done := collect(t, r); len(done) != 2 {
		t.Fatalf("%d results; want 2", len(done))
	}
	var m map[string]float64
	for range 200 { // until both sessions have answered a heartbeat; 20 s at most
		m = scrape(t, addr)
		if m["shoal_heartbeat_rtt_seconds_count"] == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for series, want := range map[string]float64{
		`shoal_sessions{state="ready"}`:             2,
		`shoal_sessions{state="lost"}`:              0,
		`shoal_host_results_total{status="ok"}`:     2,
		`shoal_host_results_total{status="failed"}`: 0,
		`shoal_requests_total{op="run"}`:            1,
		"shoal_run_duration_seconds_count":          1,
		`shoal_bytes_total{direction="in"}`:         2 * float64(len("hello\n")),
		"shoal_heartbeat_rtt_seconds_count":         2,
		"shoal_history_runs":                        1,
		"shoal_clients":                             1,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v); want %v", series, got, ok, want)
		}
	}
	if m["shoal_history_bytes"] <= 0 || m["go_goroutines"] <= 0 || m[`shoal_heartbeat_rtt_seconds_bucket{le="+Inf"}`] != 2 {
		t.Errorf("history bytes %v, goroutines %v, rtt +Inf bucket %v; want all above 0",
			m["shoal_history_bytes"], m["go_goroutines"], m[`shoal_heartbeat_rtt_seconds_bucket{le="+Inf"}`])
	}
}
