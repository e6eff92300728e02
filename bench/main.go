// Command bench measures shoal against pdsh, ClusterShell, pssh and Ansible on a local sshd
// fleet and writes docs/BENCHMARKS.md and docs/bench.svg. Run it through bench/run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config holds the command-line flags.
type config struct {
	ns        []int
	runs      int
	scenarios map[int]bool
	work      string
	shoal     string
	root      string
	out       string
	timeout   time.Duration
	seq       int
	seqN      int
	seqRuns   int
	pushRuns  int
	pushN     int
	pushMB    int
	memN      int
	render    string
	perf      bool
	hold      time.Duration
	budget    time.Duration
	slowRuns  int
	firstRuns int
	cpN       []int
	skip      map[string]bool
	cmdline   string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var c config
	var ns, scen, skip string
	var err error
	flag.StringVar(&ns, "n", "10,50,200", "host counts to measure")
	flag.IntVar(&c.runs, "runs", 5, "timed runs of each tool at each host count")
	flag.StringVar(&scen, "scenarios", "1,2,3,4,5,6", "scenarios to run (see docs/BENCHMARKS.md)")
	flag.StringVar(&c.work, "work", "", "work directory (fleet, logs); required")
	flag.StringVar(&c.shoal, "shoal", "", "the shoal binary")
	flag.StringVar(&c.root, "root", ".", "repository root")
	flag.StringVar(&c.out, "out", "", "where to write BENCHMARKS.md and bench.svg (default ROOT/docs)")
	flag.DurationVar(&c.timeout, "timeout", 180*time.Second, "limit for one tool invocation")
	flag.IntVar(&c.seq, "seq", 20, "scenario 4: commands in a row")
	flag.IntVar(&c.seqN, "seqn", 200, "scenario 4: hosts")
	flag.IntVar(&c.seqRuns, "seqruns", 3, "scenario 4: runs")
	flag.IntVar(&c.pushN, "pushn", 50, "scenario 5: hosts")
	flag.IntVar(&c.pushRuns, "pushruns", 3, "scenario 5: runs")
	flag.IntVar(&c.pushMB, "pushmb", 50, "scenario 5: file size in MB")
	flag.IntVar(&c.memN, "memn", 500, "also measure the warm daemon (time, memory) at this many hosts; 0: no")
	flag.StringVar(&c.render, "render", "", "only render docs from this results JSON")
	flag.DurationVar(&c.hold, "hold", 0, "only bring the fleet up (max of -n), print its ssh_config and keep it this long")
	flag.DurationVar(&c.budget, "budget", 18*time.Minute, "start no new scenario after this long")
	flag.IntVar(&c.slowRuns, "slowruns", 0, "runs of Ansible (cold and ControlPersist) at N >= 50; 0: as -runs")
	flag.IntVar(&c.firstRuns, "firstruns", 3, "scenario 2 (first contact): runs")
	var cpN string
	flag.StringVar(&cpN, "cpn", "200", "scenario 3: host counts at which Ansible with ControlPersist is measured")
	flag.BoolVar(&c.perf, "perf", true, "profile one cold shoal run at the reference N with perf (system-wide)")
	flag.StringVar(&skip, "skip", "", "tools to leave out, comma-separated (e.g. ansible)")
	flag.IntVar(&fleetNet, "net", fleetNet, "the fleet's addresses are 127.NET.x.y: give two fleets on one machine different ones")
	flag.Parse()
	if fleetNet < 1 || fleetNet > 255 {
		return fmt.Errorf("-net %d: want 1-255 (addresses 127.NET.x.y)", fleetNet)
	}
	c.cmdline = os.Getenv("BENCH_CMDLINE")
	if c.cmdline == "" {
		c.cmdline = "bench/run " + strings.Join(os.Args[1:], " ")
	}
	if c.out == "" {
		c.out = filepath.Join(c.root, "docs")
	}
	if c.cpN, err = parseInts(cpN); err != nil {
		return err
	}
	if c.ns, err = parseInts(ns); err != nil {
		return err
	}
	sc, err := parseInts(scen)
	if err != nil {
		return err
	}
	c.scenarios = map[int]bool{}
	for _, s := range sc {
		c.scenarios[s] = true
	}
	c.skip = map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		if s != "" {
			c.skip[s] = true
		}
	}
	if c.render != "" {
		var all *results
		for _, p := range strings.Split(c.render, ",") {
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("reading results: %w", err)
			}
			var res results
			if err := json.Unmarshal(b, &res); err != nil {
				return fmt.Errorf("decoding results %s: %w", p, err)
			}
			if all == nil {
				all = &res
			} else {
				all.merge(&res)
			}
		}
		js, _ := json.MarshalIndent(all, "", " ")
		if err := os.WriteFile(filepath.Join(c.out, "bench.json"), js, 0o644); err != nil {
			return fmt.Errorf("writing results: %w", err)
		}
		return writeDocs(c.out, all)
	}
	if c.work == "" || c.shoal == "" {
		return fmt.Errorf("-work and -shoal are required (use bench/run)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return measureAll(ctx, &c)
}

// loadavg returns the 1, 5 and 15 minute load averages: the machine is shared.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("parsing %q: want positive integers separated by commas", s)
		}
		out = append(out, v)
	}
	sort.Ints(out)
	return out, nil
}

// bench is one measurement session.
type bench struct {
	deadline time.Time
	c        *config
	k        *kit
	res      *results
	sh       *shoalTool
}

// overBudget reports whether the run's time budget is spent.
func (b *bench) overBudget() bool { return time.Now().After(b.deadline) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func measureAll(ctx context.Context, c *config) error {
	start := time.Now()
	res := &results{Cmdline: c.cmdline, Started: start.UTC().Format(time.RFC3339), Runs: c.runs, Ns: c.ns, Work: c.work}
	if c.scenarios[3] {
		res.MemN = c.memN
	}
	if c.scenarios[4] {
		res.Seq, res.SeqN, res.SeqRuns = c.seq, c.seqN, c.seqRuns
	}
	if c.scenarios[5] {
		res.PushN, res.PushMB, res.PushRuns = c.pushN, c.pushMB, c.pushRuns
	}
	res.Machine = describeMachine(c)
	res.Machine["loadavg at start"] = loadavg()
	maxN := slices.Max(c.ns)
	if c.scenarios[4] {
		maxN = max(maxN, c.seqN)
	}
	if c.scenarios[5] {
		maxN = max(maxN, c.pushN)
	}
	if c.scenarios[3] && c.memN > 0 {
		maxN = max(maxN, c.memN)
	}
	fl, err := startFleet(ctx, filepath.Join(c.work, "fleet"), maxN, logf)
	if err != nil {
		return err
	}
	defer fl.stop(logf)
	if c.hold > 0 {
		logf("fleet up: ssh -F %s h001; holding for %s (Ctrl-C ends)", fl.sshConfig, c.hold)
		select {
		case <-ctx.Done():
		case <-time.After(c.hold):
		}
		return nil
	}
	k := &kit{work: c.work, fl: fl, shoal: c.shoal}
	b := &bench{c: c, k: k, res: res}
	b.sh = newShoalTool(k, c.timeout)
	defer b.sh.stopDaemon()
	res.Shoal = b.sh.describe()

	b.deadline = start.Add(c.budget)
	if c.scenarios[2] && c.firstRuns < c.runs {
		res.Notes = append(res.Notes, fmt.Sprintf("First contact (scenario 2) ran %d times at each N: each run uploads the agent to every host.", c.firstRuns))
	}
	if c.slowRuns > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("Ansible (cold and ControlPersist) ran %d times at N ≥ 50, not %d, to keep the run bounded; it is never the fastest peer, so no verdict depends on it.", c.slowRuns, c.runs))
	}
	b.scenarioFloorAndCold(ctx)
	// In order of what the targets need most, each skipped when the time budget is spent.
	steps := []struct {
		sc int
		f  func(context.Context)
	}{{3, b.scenarioWarm}, {2, b.scenarioFirstContact}, {5, b.scenarioPush}, {4, b.scenarioSequence}}
	for _, st := range steps {
		if !c.scenarios[st.sc] || ctx.Err() != nil {
			continue
		}
		if b.overBudget() {
			res.Notes = append(res.Notes, fmt.Sprintf("scenario %d was not run: the time budget (-budget %s) was spent", st.sc, c.budget))
			continue
		}
		st.f(ctx)
	}
	if c.perf && c.scenarios[1] && b.sh.hasRun && ctx.Err() == nil {
		logf("profiling one cold shoal run")
		res.Profile = b.profileRun(ctx, b.sh.cold(remoteCmd), refN(res), "cold (`shoal run --no-daemon`)")
	}
	res.Kex = collectKex(fl)
	res.Machine["loadavg at end"] = loadavg()
	res.Elapsed = time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		res.Notes = append(res.Notes, "the run was interrupted: "+err.Error())
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(res, "", " ")
	if err := os.WriteFile(filepath.Join(c.out, "bench.json"), js, 0o644); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	if err := writeDocs(c.out, res); err != nil {
		return err
	}
	logf("done in %s; wrote %s", time.Since(start).Round(time.Second), filepath.Join(c.out, "BENCHMARKS.md"))
	return ctx.Err()
}

// one runs tool t once on n hosts (seq commands in a row) and checks its effect.
func (b *bench) one(ctx context.Context, t *tool, n, run, seq int, sampleMem bool) sample {
	if t.before != nil {
		if err := t.before(n); err != nil {
			return sample{Err: "preparing: " + err.Error()}
		}
	}
	var agg sample
	agg.OK = true
	for i := 0; i < seq; i++ {
		iv := t.cmd(n, run*seq+i)
		b.res.command(t.name, iv)
		s, out := runOnce(ctx, iv, runOpts{timeout: b.c.timeout, sampleMem: sampleMem, extraPids: t.extraPids})
		agg.Wall += s.Wall
		agg.CPU += s.CPU
		agg.MaxRSS = max(agg.MaxRSS, s.MaxRSS)
		agg.PeakPSS = max(agg.PeakPSS, s.PeakPSS)
		agg.PeakRSS = max(agg.PeakRSS, s.PeakRSS)
		if s.OK {
			if t.check != nil {
				if err := t.check(out, n); err != nil {
					s.OK, s.Err = false, err.Error()
				}
			} else if got, missing := countMarkers(out, n); got != n {
				s.OK, s.Err = false, fmt.Sprintf("%d of %d hosts answered (missing %s)", got, n, strings.Join(missing, ","))
			}
		}
		if !s.OK {
			agg.OK = false
			agg.Err = s.Err + ": " + oneLine(tail(string(out), 300))
			b.saveLog(t.name, n, run, out)
			break
		}
	}
	if t.after != nil {
		agg.CPU += t.after()
	}
	return agg
}

func (b *bench) saveLog(name string, n, run int, out []byte) {
	dir := filepath.Join(b.c.work, "logs")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-n%d-r%d.txt", name, n, run)), out, 0o644)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// measure runs tools alternately, runs times each, on n hosts, and stores the samples
// under scenario sc (floor tools under scenario 6); with sampleMem it adds one untimed
// run per tool that samples memory.
func (b *bench) measure(ctx context.Context, sc int, tools []*tool, n, runs, seq int, sampleMem bool) {
	var live []*tool
	for _, t := range tools {
		if t != nil && !b.c.skip[t.name] {
			live = append(live, t)
		}
	}
	fails := map[string]int{}
	for r := 0; r < runs; r++ {
		for j := range live {
			t := live[(j+r)%len(live)]
			if ctx.Err() != nil {
				return
			}
			cl := b.res.cell(scenarioOf(sc, t), t.name, n)
			if fails[t.name] >= 2 {
				continue // it failed twice in a row: its remaining runs would only cost time
			}
			if b.c.slowRuns > 0 && n >= 50 && strings.HasPrefix(t.name, "ansible") && r >= b.c.slowRuns {
				continue
			}
			s := b.one(ctx, t, n, r, seq, false)
			cl.Samples = append(cl.Samples, s)
			if s.OK {
				fails[t.name] = 0
				logf("s%d n=%d %-12s run %d: %6.2fs cpu %6.2fs", sc, n, t.name, r+1, s.Wall, s.CPU)
			} else {
				fails[t.name]++
				logf("s%d n=%d %-12s run %d: FAILED %s", sc, n, t.name, r+1, tail(s.Err, 400))
			}
		}
	}
	if !sampleMem {
		return
	}
	for _, t := range live {
		if ctx.Err() != nil || fails[t.name] >= 2 {
			continue
		}
		s := b.one(ctx, t, n, runs, seq, true)
		if s.OK {
			b.res.cell(scenarioOf(sc, t), t.name, n).Mem = &s
			logf("s%d n=%d %-12s memory: peak PSS %d KiB, RSS %d KiB, largest process %d KiB", sc, n, t.name, s.PeakPSS, s.PeakRSS, s.MaxRSS)
		}
	}
}

func scenarioOf(sc int, t *tool) int {
	if strings.HasPrefix(t.name, "floor") {
		return 6
	}
	return sc
}

// scenarioFloorAndCold measures scenario 1 (cold date) with the local floor alternated in,
// and the one-handshake floor of scenario 6.
func (b *bench) scenarioFloorAndCold(ctx context.Context) {
	var tools []*tool
	if b.c.scenarios[1] {
		tools = append(tools, b.k.peers(remoteCmd)...)
		tools = append(tools, b.sh.cold(remoteCmd))
	}
	if b.c.scenarios[6] || b.c.scenarios[1] {
		tools = append(tools, floorLocal(remoteCmd))
	}
	for _, n := range b.c.ns {
		b.measure(ctx, 1, tools, n, b.c.runs, 1, n == slices.Max(b.c.ns))
	}
	if b.c.scenarios[6] {
		hs := &tool{name: "floor-ssh", cmd: func(_, _ int) invocation {
			return invocation{argv: []string{"ssh", "-F", b.k.fl.sshConfig, "h001", remoteCmd}, env: []string{"SSH_AUTH_SOCK="}}
		}}
		one := b.sh.cold(remoteCmd)
		one.name = "shoal-one"
		b.measure(ctx, 6, []*tool{hs, one}, 1, max(b.c.runs*2, 10), 1, false)
	}
}

// scenarioFirstContact measures shoal installing its agent on hosts that have none.
func (b *bench) scenarioFirstContact(ctx context.Context) {
	for _, n := range b.c.ns {
		b.measure(ctx, 2, []*tool{b.sh.first(remoteCmd)}, n, min(b.c.runs, b.c.firstRuns), 1, false)
	}
	if b.c.perf && b.sh.hasRun && ctx.Err() == nil {
		logf("profiling one first contact")
		b.res.ProfileFirst = b.profileRun(ctx, b.sh.first(remoteCmd), refN(b.res), "first-contact (`shoal run --no-daemon`, agents removed)")
	}
}

// scenarioWarm measures shoal with its daemon connected, and Ansible with ControlPersist.
func (b *bench) scenarioWarm(ctx context.Context) {
	ns := slices.Clone(b.c.ns)
	if b.c.memN > 0 && !slices.Contains(ns, b.c.memN) {
		ns = append(ns, b.c.memN)
	}
	aw := b.k.ansibleWarm(remoteCmd)
	for _, n := range ns {
		tools := []*tool{}
		extraN := !slices.Contains(b.c.ns, n) // the daemon-memory point: shoal only
		if extraN {
			// The memory point is about connected idle hosts, as a daemon holds them after a
			// restart, so a one-shot run installs the agents first: a daemon that uploads an
			// agent itself keeps x/crypto's buffers at the upload's 32 KiB packets for the rest
			// of that connection (see docs/BENCHMARKS.md).
			if err := b.sh.cold(remoteCmd).before(n); err != nil {
				logf("s3 n=%d installing agents before the memory point: %v", n, err)
			}
		}
		if w := b.sh.warmUp(ctx, 3, n, remoteCmd, b.res); w != nil {
			tools = append(tools, w)
		}
		if !extraN && !b.c.skip[aw.name] && slices.Contains(b.c.cpN, n) {
			s := b.one(ctx, aw, n, 0, 1, false) // warm-up: opens the masters
			if !s.OK {
				logf("s3 n=%d ansible-cp warm-up FAILED: %s", n, s.Err)
			}
			tools = append(tools, aw)
		}
		runs := b.c.runs
		b.measure(ctx, 3, tools, n, runs, 1, n == slices.Max(b.c.ns))
		b.sh.recordDaemon(n, b.res)
		if b.c.perf && n == refN(b.res) && len(tools) > 0 && tools[0].name == "shoal-warm" && ctx.Err() == nil {
			logf("profiling one warm shoal run")
			b.res.ProfileWarm = b.profileRun(ctx, tools[0], n, "warm (`shoal run` through the connected daemon)")
		}
		stopMasters(filepath.Join(b.c.work, "ansible-cp", "warm"))
	}
	b.sh.stopDaemon()
}

// scenarioSequence measures seq commands in a row on seqN hosts: shoal through its daemon,
// the fastest peer of scenario 1 and Ansible with ControlPersist.
func (b *bench) scenarioSequence(ctx context.Context) {
	n := b.c.seqN
	var tools []*tool
	if w := b.sh.warmUp(ctx, 4, n, remoteCmd, b.res); w != nil {
		tools = append(tools, w)
	}
	if fp := b.res.fastestPeer(1, n); fp != "" {
		for _, t := range b.k.peers(remoteCmd) {
			if t.name == fp {
				tools = append(tools, t)
			}
		}
	} else {
		tools = append(tools, b.k.peers(remoteCmd)[0])
	}
	b.measure(ctx, 4, tools, n, b.c.seqRuns, b.c.seq, false)
	b.sh.stopDaemon()
}

// scenarioPush measures pushing one file to pushN hosts.
func (b *bench) scenarioPush(ctx context.Context) {
	src, sum, err := makePushFile(b.c.work, b.c.pushMB)
	if err != nil {
		b.res.Notes = append(b.res.Notes, "scenario 5 not run: "+err.Error())
		return
	}
	tools := b.k.pushers(src, sum)
	tools = append(tools, b.sh.put(src, sum))
	b.measure(ctx, 5, tools, b.c.pushN, b.c.pushRuns, 1, false)
	if b.c.perf && b.sh.hasPut && ctx.Err() == nil {
		logf("profiling one push")
		b.res.ProfilePut = b.profileRun(ctx, b.sh.put(src, sum), b.c.pushN, "push (`shoal put --no-daemon`)")
	}
}
