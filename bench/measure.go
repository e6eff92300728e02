package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// invocation is one command line a tool runs, with what it needs around it.
type invocation struct {
	argv []string
	env  []string // added to the harness's environment
	dir  string
}

func (iv invocation) String() string {
	var b strings.Builder
	for _, e := range iv.env {
		b.WriteString(shellQuote(e))
		b.WriteByte(' ')
	}
	for i, a := range iv.argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shellQuote(a))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r == '/' || r == '=' || r == ',' || r == ':' || r == '@' ||
			r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sample is what one timed invocation cost.
type sample struct {
	Wall    float64 `json:"wall"`    // seconds
	CPU     float64 `json:"cpu"`     // seconds, user+sys of the tool and its reaped children (+ extra processes)
	MaxRSS  int64   `json:"maxrss"`  // KiB, the largest single process (getrusage)
	PeakPSS int64   `json:"peakpss"` // KiB, the largest sum of PSS over the tool's processes (sampled runs only)
	PeakRSS int64   `json:"peakrss"` // KiB, the largest sum of RSS over the tool's processes (sampled runs only)
	OK      bool    `json:"ok"`
	Err     string  `json:"err,omitempty"`
}

// runOpts says how to run one invocation.
type runOpts struct {
	timeout   time.Duration
	sampleMem bool         // sample the process tree's memory while it runs
	extraPids func() []int // processes outside the tree whose CPU (delta) and memory count too
}

// runOnce runs iv, returning its cost and its combined output.
func runOnce(ctx context.Context, iv invocation, o runOpts) (sample, []byte) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c := exec.Command(iv.argv[0], iv.argv[1:]...)
	c.Env = append(os.Environ(), iv.env...)
	c.Dir = iv.dir
	var out bytes.Buffer
	c.Stdout = &out
	c.Stderr = &out
	c.Stdin = nil
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	var extra []int
	var extraCPU0 map[int]float64
	if o.extraPids != nil {
		extra = o.extraPids()
		extraCPU0 = map[int]float64{}
		for _, p := range extra {
			extraCPU0[p] = procCPU(p)
		}
	}
	start := time.Now()
	if err := c.Start(); err != nil {
		return sample{Err: fmt.Sprintf("starting %s: %v", iv.argv[0], err)}, nil
	}
	pid := c.Process.Pid
	var smp *memSampler
	if o.sampleMem {
		smp = startMemSampler(pid, extra)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	timedOut := false
	select {
	case err = <-done:
	case <-ctx.Done():
		timedOut = true
		syscall.Kill(-pid, syscall.SIGKILL) // the tool's own process group
		err = <-done
	}
	wall := time.Since(start).Seconds()
	s := sample{Wall: wall}
	if smp != nil {
		s.PeakPSS, s.PeakRSS = smp.stop()
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.CPU = tv(ru.Utime) + tv(ru.Stime)
		s.MaxRSS = ru.Maxrss
	}
	for _, p := range extra {
		if d := procCPU(p) - extraCPU0[p]; d > 0 {
			s.CPU += d
		}
	}
	switch {
	case timedOut:
		s.Err = fmt.Sprintf("timed out after %s", o.timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			s.Err = fmt.Sprintf("exit status %d", ee.ExitCode())
		} else {
			s.Err = err.Error()
		}
	default:
		s.OK = true
	}
	return s, out.Bytes()
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// procCPU returns the CPU seconds a running process has used so far, summed over its threads,
// with nanosecond resolution (schedstat) when available.
func procCPU(pid int) float64 {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err == nil {
		var ns int64
		okAll := true
		for _, e := range ents {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, e.Name()))
			if err != nil {
				okAll = false
				break
			}
			f := strings.Fields(string(b))
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				ns += v
			}
		}
		if okAll {
			return float64(ns) / 1e9
		}
	}
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return float64(st.utime+st.stime) / 100
}

// procStat is the part of /proc/PID/stat the harness uses.
type procStat struct {
	pid, ppid, pgrp int
	comm            string
	utime, stime    int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	l, r := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if l < 0 || r < l {
		return procStat{}, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	f := strings.Fields(s[r+1:])
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("parsing /proc/%d/stat: short", pid)
	}
	st := procStat{pid: pid, comm: s[l+1 : r]}
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	st.utime, _ = strconv.ParseInt(f[11], 10, 64)
	st.stime, _ = strconv.ParseInt(f[12], 10, 64)
	return st, nil
}

// listPids returns every PID in /proc.
func listPids() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// procMem returns the PSS and RSS of a process in KiB.
func procMem(pid int) (pss, rss int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Pss:":
			pss = v
		case "Rss:":
			rss = v
		}
	}
	return pss, rss
}

// cmdline returns the command line of pid with NULs turned into spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// memSampler polls the memory of a process tree (the root, its descendants, its process group)
// plus some extra processes, keeping the largest sums seen.
type memSampler struct {
	root  int
	extra []int
	stopc chan struct{}
	wg    sync.WaitGroup

	peakPSS, peakRSS int64 // written by the sampler goroutine, read after wg.Wait
}

func startMemSampler(root int, extra []int) *memSampler {
	m := &memSampler{root: root, extra: extra, stopc: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			m.once()
			select {
			case <-m.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) once() {
	children := map[int][]int{}
	inGroup := map[int]bool{}
	for _, p := range listPids() {
		st, err := readStat(p)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], p)
		if st.pgrp == m.root {
			inGroup[p] = true
		}
	}
	seen := map[int]bool{}
	var walk func(int)
	walk = func(p int) {
		if seen[p] {
			return
		}
		seen[p] = true
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(m.root)
	for p := range inGroup {
		walk(p)
	}
	for _, p := range m.extra {
		walk(p)
	}
	var pss, rss int64
	for p := range seen {
		a, b := procMem(p)
		pss += a
		rss += b
	}
	m.peakPSS = max(m.peakPSS, pss)
	m.peakRSS = max(m.peakRSS, rss)
}

func (m *memSampler) stop() (pss, rss int64) {
	close(m.stopc)
	m.wg.Wait()
	return m.peakPSS, m.peakRSS
}

// markerRE matches the line each host prints after the command: BENCHOK-<host>.
var markerRE = regexp.MustCompile(`BENCHOK-(h[0-9]{3})`)

// countMarkers returns how many distinct hosts 1..n printed their marker line in out.
func countMarkers(out []byte, n int) (int, []string) {
	seen := map[string]bool{}
	for _, m := range markerRE.FindAllSubmatch(out, -1) {
		seen[string(m[1])] = true
	}
	var missing []string
	got := 0
	for i := 1; i <= n; i++ {
		if seen[hostName(i)] {
			got++
		} else if len(missing) < 5 {
			missing = append(missing, hostName(i))
		}
	}
	return got, missing
}
