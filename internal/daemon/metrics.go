package daemon

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-sh/shoal/internal/audit"
	"github.com/shoal-sh/shoal/internal/hostsess"
	"github.com/shoal-sh/shoal/internal/proto"
)

// sessionStates are the states shoal_sessions reports, every one of them even at zero, so a
// dashboard's series do not come and go.
var sessionStates = []hostsess.State{hostsess.StateIdle, hostsess.StateConnecting, hostsess.StateInstalling,
	hostsess.StateReady, hostsess.StateUnresponsive, hostsess.StateLost, hostsess.StateBackoff, hostsess.StateClosed}

// rttBuckets are the upper bounds, in seconds, of the heartbeat round-trip histogram.
var rttBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// promMetrics are the daemon's Prometheus metrics. Counters are updated where things happen;
// what the daemon holds (sessions, heartbeats, history) is read at each scrape.
type promMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec // by op
	results  *prometheus.CounterVec // by status
	fanout   prometheus.Histogram   // a run's time from accepted to every host's result
	bytes    *prometheus.CounterVec // by direction: in (output from hosts), out (stdin and files to hosts)

	sessions, rtt, clients, histRuns, histBytes *prometheus.Desc
}

// newMetrics registers the daemon's metrics, and Go's and the process's, for s.
func newMetrics(s *server) *promMetrics {
	m := &promMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_requests_total",
			Help: "Client requests by operation (run, ping, info, time, put, get, stop)."}, []string{"op"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_host_results_total",
			Help: "Per-host results of runs by status (ok, failed, timeout, unreachable, cancelled, ...)."}, []string{"status"}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shoal_run_duration_seconds",
			Help:    "Time from a run's acceptance to the last of its hosts' results (fan-out latency).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_bytes_total",
			Help: "Bytes of command output received from hosts (in) and of stdin and files sent to them (out)."}, []string{"direction"}),
		sessions:  prometheus.NewDesc("shoal_sessions", "Host sessions by state.", []string{"state"}, nil),
		rtt:       prometheus.NewDesc("shoal_heartbeat_rtt_seconds", "Last heartbeat round trip of each ready host session.", nil, nil),
		clients:   prometheus.NewDesc("shoal_clients", "Connected clients.", nil, nil),
		histRuns:  prometheus.NewDesc("shoal_history_runs", "Runs held in the result history.", nil, nil),
		histBytes: prometheus.NewDesc("shoal_history_bytes", "Bytes of results held in the result history.", nil, nil),
	}
	for _, st := range proto.Statuses {
		m.results.WithLabelValues(string(st))
	}
	m.bytes.WithLabelValues("in")
	m.bytes.WithLabelValues("out")
	m.reg.MustRegister(m.requests, m.results, m.fanout, m.bytes, &held{m: m, s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// held collects, at each scrape, what the daemon holds.
type held struct {
	m *promMetrics
	s *server
}

func (h *held) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{h.m.sessions, h.m.rtt, h.m.clients, h.m.histRuns, h.m.histBytes} {
		ch <- d
	}
}

func (h *held) Collect(ch chan<- prometheus.Metric) {
	s := h.s
	s.mu.Lock()
	sessions := make([]*hostSess, 0, len(s.sessions))
	for _, hs := range s.sessions {
		sessions = append(sessions, hs)
	}
	clients := len(s.clients)
	s.mu.Unlock()
	byState := map[hostsess.State]int{}
	buckets := make(map[float64]uint64, len(rttBuckets))
	var n uint64
	var sum float64
	for _, hs := range sessions {
		st := hs.Status()
		byState[st.State]++
		if st.State != hostsess.StateReady || st.LastRTT <= 0 {
			continue
		}
		sec := st.LastRTT.Seconds()
		n++
		sum += sec
		for _, b := range rttBuckets {
			if sec <= b {
				buckets[b]++
			}
		}
	}
	for _, st := range sessionStates {
		ch <- prometheus.MustNewConstMetric(h.m.sessions, prometheus.GaugeValue, float64(byState[st]), string(st))
	}
	ch <- prometheus.MustNewConstHistogram(h.m.rtt, n, sum, buckets)
	ch <- prometheus.MustNewConstMetric(h.m.clients, prometheus.GaugeValue, float64(clients))
	s.hist.mu.Lock()
	runs, bytes := len(s.hist.runs), s.hist.bytes
	s.hist.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(h.m.histRuns, prometheus.GaugeValue, float64(runs))
	ch <- prometheus.MustNewConstMetric(h.m.histBytes, prometheus.GaugeValue, float64(bytes))
}

// serveMetrics serves the metrics over HTTP at /metrics on ln until the returned func, which
// closes ln and waits, is called.
func (m *promMetrics) serveMetrics(ln net.Listener, log func(msg string, args ...any)) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log("serving metrics", "err", err)
		}
	}()
	return func() {
		srv.Close()
		<-done
	}
}

// noteRequest records a client request in the audit log and the metrics.
func (s *server) noteRequest(who audit.Client, id uint64, op string, hosts []string, command string, extra ...slog.Attr) {
	s.audit.Request(who, id, op, hosts, command, extra...)
	s.metrics.requests.WithLabelValues(op).Inc()
}

// noteOutcome records one host's result in the audit log and the metrics.
func (s *server) noteOutcome(who audit.Client, request uint64, r *proto.HostResult) {
	s.audit.HostOutcome(who, request, r)
	s.metrics.results.WithLabelValues(string(r.Status)).Inc()
	s.metrics.bytes.WithLabelValues("in").Add(float64(len(r.Stdout) + len(r.Stderr)))
}
