package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
)

// results is everything one measurement session found; it is saved as docs/bench.json and
// rendered into docs/BENCHMARKS.md and docs/bench.svg.
type results struct {
	Cmdline  string            `json:"cmdline"`
	Started  string            `json:"started"`
	Elapsed  float64           `json:"elapsed"`
	Runs     int               `json:"runs"`
	Ns       []int             `json:"ns"`
	Seq      int               `json:"seq"`
	SeqN     int               `json:"seq_n"`
	PushN    int               `json:"push_n"`
	PushMB   int               `json:"push_mb"`
	SeqRuns  int               `json:"seq_runs"`
	PushRuns int               `json:"push_runs"`
	MemN     int               `json:"mem_n"`
	Machine  map[string]string `json:"machine"`
	Shoal    shoalInfo         `json:"shoal"`
	Kex      map[string]int    `json:"kex"`
	Cells    []*cell           `json:"cells"`
	Commands map[string]string `json:"commands"`
	Daemon   []*daemonMem      `json:"daemon"`
	Notes    []string          `json:"notes"`
	Profile  string            `json:"profile,omitempty"`
	// ProfileWarm, ProfileFirst and ProfilePut are the same for a warm run through the daemon,
	// a first contact and a file push.
	ProfileWarm  string `json:"profile_warm,omitempty"`
	ProfileFirst string `json:"profile_first,omitempty"`
	ProfilePut   string `json:"profile_put,omitempty"`
	Work         string `json:"work"` // the temporary directory, shown as $WORK
}

// cell holds the samples of one tool at one host count in one scenario.
type cell struct {
	Scenario int      `json:"scenario"`
	Tool     string   `json:"tool"`
	N        int      `json:"n"`
	Samples  []sample `json:"samples"`
	Mem      *sample  `json:"mem,omitempty"` // the untimed memory-sampling run
}

// daemonMem is the shoal daemon's memory, idle and connected to N hosts (KiB).
type daemonMem struct {
	N       int   `json:"n"`
	IdlePSS int64 `json:"idle_pss"`
	IdleRSS int64 `json:"idle_rss"`
	PSS     int64 `json:"pss"`
	RSS     int64 `json:"rss"`
	HWM     int64 `json:"hwm"`
	// LiveHeap is the Go heap live after the daemon's last GC (gctrace), KiB; 0 when unknown.
	LiveHeap int64 `json:"live_heap,omitempty"`
}

// merge adds the cells of o (a later, separate run) to r; a cell of o replaces r's
// cell of the same scenario, tool and N.
func (r *results) merge(o *results) {
	r.Cmdline += "\n" + o.Cmdline
	r.Elapsed += o.Elapsed
	for _, c := range o.Cells {
		if old := r.find(c.Scenario, c.Tool, c.N); old != nil {
			*old = *c
		} else {
			r.Cells = append(r.Cells, c)
		}
	}
	for k, v := range o.Commands {
		if r.Commands == nil {
			r.Commands = map[string]string{}
		}
		r.Commands[k] = strings.ReplaceAll(v, o.Work, r.Work)
	}
	for k, v := range o.Kex {
		if r.Kex == nil {
			r.Kex = map[string]int{}
		}
		r.Kex[k] += v
	}
	for _, d := range o.Daemon {
		*r.daemonEntry(d.N) = *d
	}
	if o.Profile != "" {
		r.Profile = o.Profile
	}
	for _, p := range []struct {
		dst *string
		src string
	}{{&r.ProfileWarm, o.ProfileWarm}, {&r.ProfileFirst, o.ProfileFirst}, {&r.ProfilePut, o.ProfilePut}} {
		if p.src != "" {
			*p.dst = p.src
		}
	}
	if o.MemN > 0 && r.MemN == 0 {
		r.MemN = o.MemN
	}
	if o.SeqRuns > 0 && r.SeqRuns == 0 {
		r.SeqRuns, r.Seq, r.SeqN = o.SeqRuns, o.Seq, o.SeqN
	}
	if o.PushRuns > 0 && r.PushRuns == 0 {
		r.PushRuns, r.PushN, r.PushMB = o.PushRuns, o.PushN, o.PushMB
	}
	for k, v := range o.Machine {
		if strings.HasPrefix(k, "loadavg") {
			r.Machine[k+" (run 2)"] = v
		}
	}
	r.Notes = append(r.Notes, o.Notes...)
}

func (r *results) cell(sc int, tool string, n int) *cell {
	for _, c := range r.Cells {
		if c.Scenario == sc && c.Tool == tool && c.N == n {
			return c
		}
	}
	c := &cell{Scenario: sc, Tool: tool, N: n}
	r.Cells = append(r.Cells, c)
	return c
}

func (r *results) find(sc int, tool string, n int) *cell {
	for _, c := range r.Cells {
		if c.Scenario == sc && c.Tool == tool && c.N == n {
			return c
		}
	}
	return nil
}

func (r *results) command(tool string, iv invocation) {
	if r.Commands == nil {
		r.Commands = map[string]string{}
	}
	r.Commands[tool] = iv.String()
}

func (r *results) daemonEntry(n int) *daemonMem {
	for _, d := range r.Daemon {
		if d.N == n {
			return d
		}
	}
	d := &daemonMem{N: n}
	r.Daemon = append(r.Daemon, d)
	return d
}

func (r *results) daemonIdle(n int, pss, rss int64) {
	d := r.daemonEntry(n)
	d.IdlePSS, d.IdleRSS = pss, rss
}

func (r *results) daemonConnected(n int, pss, rss, hwm int64) {
	d := r.daemonEntry(n)
	d.PSS, d.RSS, d.HWM = pss, rss, hwm
}

// stats summarises a cell's successful samples.
type stats struct {
	ok, total     int
	med, min, max float64 // wall seconds
	cpu           float64 // median CPU seconds
	err           string  // the first failure
}

func (c *cell) stats() stats {
	var st stats
	if c == nil {
		return st
	}
	var walls, cpus []float64
	for _, s := range c.Samples {
		st.total++
		if s.OK {
			st.ok++
			walls = append(walls, s.Wall)
			cpus = append(cpus, s.CPU)
		} else if st.err == "" {
			st.err = s.Err
		}
	}
	if len(walls) > 0 {
		st.med = median(walls)
		st.min = slicesMin(walls)
		st.max = slicesMax(walls)
		st.cpu = median(cpus)
	}
	return st
}

// good reports whether every run succeeded (a run with a missing host is a failure, not a figure).
func (s stats) good() bool { return s.total > 0 && s.ok == s.total }

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func slicesMin(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = math.Min(m, x)
	}
	return m
}

func slicesMax(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

// peerNames lists the peers of a scenario.
func peerNames(sc int) []string {
	switch sc {
	case 5:
		return []string{"pdcp", "clush-copy", "pscp"}
	case 3:
		return []string{"pdsh", "clush", "pssh", "ansible", "ssh-loop", "ansible-cp"}
	default:
		return []string{"pdsh", "clush", "pssh", "ansible", "ssh-loop"}
	}
}

// fastestPeer returns the peer with the lowest median (all runs successful) in scenario sc
// at n hosts; peers of scenario 3 other than ansible-cp are measured in scenario 1.
func (r *results) fastestPeer(sc, n int) string {
	best, bt := "", math.Inf(1)
	for _, p := range peerNames(sc) {
		s := sc
		if sc == 3 && p != "ansible-cp" {
			s = 1
		}
		st := r.find(s, p, n).stats()
		if st.good() && st.med < bt {
			best, bt = p, st.med
		}
	}
	return best
}

// describeMachine records the machine and the versions of every tool.
func describeMachine(c *config) map[string]string {
	m := map[string]string{}
	m["nproc"] = fmt.Sprint(runtime.NumCPU())
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				m["memory"] = strings.TrimSpace(strings.TrimPrefix(line, "MemTotal:"))
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				m["cpu"] = strings.TrimSpace(line[strings.IndexByte(line, ':')+1:])
				break
			}
		}
	}
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil && len(out) == 0 {
			return "missing"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	m["kernel"] = first("uname", "-sr")
	m["os"] = first("sh", "-c", `. /etc/os-release && echo "$PRETTY_NAME"`)
	m["go"] = first("go", "version")
	m["ssh"] = first("ssh", "-V")
	m["sshd"] = first("dpkg-query", "-W", "-f", "openssh-server ${Version}", "openssh-server")
	m["pdsh"] = first("pdsh", "-V")
	m["clush"] = first("clush", "--version")
	m["pssh"] = "parallel-ssh " + first("parallel-ssh", "--version")
	m["ansible"] = first("ansible", "--version")
	m["python"] = first("python3", "--version")
	m["bash"] = first("bash", "--version")
	m["hyperfine"] = first("hyperfine", "--version")
	m["shoal_commit"] = first("git", "-C", c.root, "log", "-1", "--format=%h %cd %s", "--date=iso")
	return m
}

var (
	kexRE    = regexp.MustCompile(`kex: algorithm: (\S+)`)
	cipherRE = regexp.MustCompile(`kex: client->server cipher: (\S+)`)
	clientRE = regexp.MustCompile(`remote software version (\S+)`)
)

// collectKex counts, over every sshd log of the fleet, the key exchanges, ciphers and client
// software that connected.
func collectKex(f *fleet) map[string]int {
	out := map[string]int{}
	for i := 1; i <= f.n; i++ {
		b, err := os.ReadFile(filepath.Join(f.dir, "hosts", hostName(i), "sshd.log"))
		if err != nil {
			continue
		}
		for _, m := range kexRE.FindAllSubmatch(b, -1) {
			out["kex "+string(m[1])]++
		}
		for _, m := range cipherRE.FindAllSubmatch(b, -1) {
			out["cipher "+string(m[1])]++
		}
		for _, m := range clientRE.FindAllSubmatch(b, -1) {
			out["client "+string(m[1])]++
		}
	}
	return out
}
