package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// scenarioTitles names the scenarios of issue 7.
var scenarioTitles = map[int]string{
	1: "Cold `date`: no daemon, agents already installed (shoal) vs each peer's normal run",
	2: "First contact: shoal installing its agent on hosts that have none",
	3: "Warm `date`: the daemon already connected (shoal) vs each peer (Ansible also with ControlPersist)",
	4: "Commands in a row (a console session)",
	5: "Push one file to many hosts",
	6: "The floor: N local `bash -c date` processes, and one SSH handshake",
}

// writeDocs renders BENCHMARKS.md and bench.svg into dir.
func writeDocs(dir string, r *results) error {
	svg := plotSVG(r)
	if err := os.WriteFile(filepath.Join(dir, "bench.svg"), []byte(svg), 0o644); err != nil {
		return fmt.Errorf("writing plot: %w", err)
	}
	var analysis string
	if b, err := os.ReadFile(filepath.Join(dir, "..", "bench", "analysis.md")); err == nil {
		analysis = string(b)
	}
	md := renderMarkdown(r, analysis)
	if err := os.WriteFile(filepath.Join(dir, "BENCHMARKS.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing BENCHMARKS.md: %w", err)
	}
	return nil
}

func secs(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v < 1:
		return fmt.Sprintf("%.3f s", v)
	case v < 10:
		return fmt.Sprintf("%.2f s", v)
	default:
		return fmt.Sprintf("%.1f s", v)
	}
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	x := a / b
	if x >= 10 {
		return fmt.Sprintf("%.0f×", x)
	}
	return fmt.Sprintf("%.2f×", x)
}

func kib(v int64) string {
	switch {
	case v <= 0:
		return "–"
	case v >= 10*1024:
		return fmt.Sprintf("%.0f MiB", float64(v)/1024)
	default:
		return fmt.Sprintf("%.1f MiB", float64(v)/1024)
	}
}

// refN is the host count the targets are judged at: 200 when measured, else the largest.
func refN(r *results) int {
	if slices.Contains(r.Ns, 200) {
		return 200
	}
	if len(r.Ns) == 0 {
		return 0
	}
	return slices.Max(r.Ns)
}

// target is one line of the targets, judged.
type target struct {
	name, want, got, verdict string
}

func judge(r *results) []target {
	n := refN(r)
	floor := r.find(6, "floor-local", n).stats()
	fp := r.fastestPeer(1, n)
	fps := r.find(1, fp, n).stats()
	var ts []target
	noPeer := !fps.good()
	avail := func(st stats) string {
		if noPeer {
			return "no peer measured at this N"
		}
		if st.total == 0 {
			return "not measured"
		}
		if strings.Contains(st.err, "not yet available") {
			return "not yet available"
		}
		if !st.good() {
			return fmt.Sprintf("failed (%d of %d runs): %s", st.total-st.ok, st.total, tail(st.err, 160))
		}
		return ""
	}
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**missed**"
	}

	w := r.find(3, "shoal-warm", n).stats()
	t := target{name: fmt.Sprintf("warm `date`, %d hosts", n), want: "≤ 2× floor, ≥ 8× faster than the fastest peer"}
	if a := avail(w); a != "" {
		t.got, t.verdict = a, a
	} else {
		t.got = fmt.Sprintf("%s = %s floor; fastest peer (%s) %s = %s shoal", secs(w.med), ratio(w.med, floor.med), fp, secs(fps.med), ratio(fps.med, w.med))
		floorOK, peerOK := w.med <= 2*floor.med, fps.med >= 8*w.med
		t.verdict = verdict(floorOK && peerOK)
		if floorOK != peerOK {
			part := func(ok bool) string {
				if ok {
					return "met"
				}
				return "missed"
			}
			t.verdict += fmt.Sprintf(" (floor part %s, peer part %s)", part(floorOK), part(peerOK))
		}
	}
	ts = append(ts, t)

	c := r.find(1, "shoal-cold", n).stats()
	t = target{name: fmt.Sprintf("cold `date`, %d hosts", n), want: "faster than the fastest peer"}
	if a := avail(c); a != "" {
		t.got, t.verdict = a, a
	} else {
		t.got = fmt.Sprintf("%s vs %s %s (%s)", secs(c.med), fp, secs(fps.med), ratio(c.med, fps.med))
		t.verdict = verdict(c.med < fps.med)
	}
	ts = append(ts, t)

	f := r.find(2, "shoal-first", n).stats()
	t = target{name: fmt.Sprintf("first contact, %d hosts", n), want: "≤ 2× the fastest peer's cold run"}
	if a := avail(f); a != "" {
		t.got, t.verdict = a, a
	} else {
		t.got = fmt.Sprintf("%s vs %s %s (%s)", secs(f.med), fp, secs(fps.med), ratio(f.med, fps.med))
		t.verdict = verdict(f.med <= 2*fps.med)
	}
	ts = append(ts, t)

	p := r.find(5, "shoal-put", r.PushN).stats()
	pp := r.fastestPeer(5, r.PushN)
	pps := r.find(5, pp, r.PushN).stats()
	noPeer = !pps.good()
	t = target{name: "file push (scenario 5)", want: "at least as fast as the fastest peer"}
	if r.PushN > 0 {
		t.name = fmt.Sprintf("push %d MB to %d hosts", r.PushMB, r.PushN)
	}
	if a := avail(p); a != "" {
		t.got, t.verdict = a, a
	} else {
		t.got = fmt.Sprintf("%s vs %s %s (%s)", secs(p.med), pp, secs(pps.med), ratio(p.med, pps.med))
		t.verdict = verdict(p.med <= pps.med)
	}
	ts = append(ts, t)

	noPeer = false
	t = target{name: "daemon memory per connected host", want: fmt.Sprintf("< 150 KiB at %d hosts", max(r.MemN, 500))}
	var dm *daemonMem
	for _, d := range r.Daemon {
		if d.RSS > 0 && (dm == nil || d.N > dm.N) {
			dm = d
		}
	}
	if dm == nil {
		t.got, t.verdict = "not yet available", "not yet available"
	} else {
		per := float64(dm.RSS) / float64(dm.N)
		marg := float64(dm.RSS-dm.IdleRSS) / float64(dm.N)
		t.got = fmt.Sprintf("%d hosts: RSS %s = %.0f KiB/host (%.0f KiB/host above the idle daemon)", dm.N, kib(dm.RSS), per, marg)
		t.verdict = verdict(per < 150)
		if dm.N < 500 {
			t.verdict += fmt.Sprintf(" (at %d hosts, not 500)", dm.N)
		}
	}
	ts = append(ts, t)

	t = target{name: fmt.Sprintf("client CPU per host, cold, %d hosts", n), want: "< 3 ms"}
	if a := avail(c); a != "" && a != "no peer measured at this N" {
		t.got, t.verdict = a, a
	} else {
		pdsh := r.find(1, "pdsh", n).stats()
		t.got = fmt.Sprintf("%.1f ms (pdsh %.1f ms)", c.cpu*1000/float64(n), pdsh.cpu*1000/float64(n))
		t.verdict = verdict(c.cpu*1000/float64(n) < 3)
	}
	ts = append(ts, t)
	return ts
}

// toolsOf returns the tools measured in scenario sc, peers first, in a stable order.
func (r *results) toolsOf(sc int) []string {
	order := []string{"floor-local", "floor-ssh", "pdsh", "clush", "pssh", "ssh-loop", "ansible", "ansible-cp",
		"pdcp", "clush-copy", "pscp", "shoal-cold", "shoal-first", "shoal-connect", "shoal-warm", "shoal-put"}
	seen := map[string]bool{}
	for _, c := range r.Cells {
		if c.Scenario == sc {
			seen[c.Tool] = true
		}
	}
	var out []string
	for _, t := range order {
		if seen[t] {
			out = append(out, t)
			delete(seen, t)
		}
	}
	var rest []string
	for t := range seen {
		rest = append(rest, t)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// nsOf returns the host counts measured in scenario sc.
func (r *results) nsOf(sc int) []int {
	var ns []int
	for _, c := range r.Cells {
		if c.Scenario == sc && !slices.Contains(ns, c.N) {
			ns = append(ns, c.N)
		}
	}
	sort.Ints(ns)
	return ns
}

// table renders one scenario at one host count.
func (r *results) table(b *strings.Builder, sc, n int, extra []string) {
	var tools []string
	for _, t := range append(extra, r.toolsOf(sc)...) {
		if !slices.Contains(tools, t) {
			tools = append(tools, t)
		}
	}
	fp := r.fastestPeer(sc, n)
	if sc == 2 || sc == 1 {
		fp = r.fastestPeer(1, n)
	}
	fps := r.find(1, fp, n).stats()
	if sc == 3 {
		fps = r.find(3, fp, n).stats()
		if fp != "ansible-cp" {
			fps = r.find(1, fp, n).stats()
		}
	}
	if sc == 5 || sc == 4 {
		fps = r.find(sc, fp, n).stats()
	}
	floor := r.find(6, "floor-local", n).stats()
	fmt.Fprintf(b, "| tool | median | min – max | runs ok | × fastest peer (%s) | × floor | client CPU / host | peak memory (PSS, all processes) | largest process |\n", fp)
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range tools {
		s := sc
		if strings.HasPrefix(t, "floor") {
			s = 6
		} else if (sc == 2 || sc == 3) && slices.Contains(peerNames(1), t) {
			s = 1
		}
		c := r.find(s, t, n)
		if c == nil {
			continue
		}
		st := c.stats()
		name := t
		if s != sc && s != 6 {
			name += fmt.Sprintf(" (s%d)", s)
		}
		if st.ok == 0 {
			fmt.Fprintf(b, "| %s | %s | | 0/%d | | | | | |\n", name, mdEscape(tail(st.err, 200)), st.total)
			continue
		}
		mark := ""
		if !st.good() {
			mark = " ⚠"
		}
		mem, big := "–", "–"
		if c.Mem != nil {
			mem = kib(c.Mem.PeakPSS)
			big = kib(c.Mem.MaxRSS)
		}
		hosts := n
		if sc == 4 {
			hosts = n * r.Seq
		}
		ratioFloor := ratio(st.med, floor.med)
		if sc == 4 || sc == 5 {
			ratioFloor = "–"
		}
		fmt.Fprintf(b, "| %s | %s%s | %s – %s | %d/%d | %s | %s | %.2f ms | %s | %s |\n", name, secs(st.med), mark,
			secs(st.min), secs(st.max), st.ok, st.total, ratio(st.med, fps.med), ratioFloor,
			st.cpu*1000/float64(hosts), mem, big)
	}
	b.WriteString("\n")
}

func mdEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

func renderMarkdown(r *results, analysis string) string {
	var b strings.Builder
	b.WriteString("# Benchmarks: shoal vs pdsh, ClusterShell, pssh and Ansible\n\n")
	b.WriteString("<!-- Generated by bench/run (bench/docs.go) from docs/bench.json; the analysis comes from bench/analysis.md. -->\n\n")
	fmt.Fprintf(&b, "Measured %s with:\n\n```sh\n%s\n```\n\n", r.Started, r.Cmdline)
	fmt.Fprintf(&b, "Measuring took %.0f s in all. Every figure is the median of %d runs unless its *runs ok* column says "+
		"otherwise (first contact, scenarios 4 and 5 and Ansible ran fewer times to keep the runs bounded; see the notes at the end); "+
		"tools alternated run by run; a run in which any host did not answer is a failure, not a figure.\n\n", r.Elapsed, r.Runs)

	b.WriteString("## Targets\n\n| target | wanted | measured | verdict |\n|---|---|---|---|\n")
	for _, t := range judge(r) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.name, t.want, mdEscape(t.got), t.verdict)
	}
	b.WriteString("\n![time vs hosts, log scale](bench.svg)\n\n")
	if analysis != "" {
		b.WriteString(analysis)
		b.WriteString("\n")
	}

	b.WriteString("## The machine\n\n| what | value |\n|---|---|\n")
	keys := make([]string, 0, len(r.Machine))
	for k := range r.Machine {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %s |\n", k, mdEscape(r.Machine[k]))
	}
	fmt.Fprintf(&b, "| shoal | %s (run: %v, daemon: %v, put: %v) |\n\n", mdEscape(r.Shoal.Version), r.Shoal.HasRun, r.Shoal.HasDaemon, r.Shoal.HasPut)

	b.WriteString("## The fleet\n\n")
	b.WriteString("Each host is its own `sshd -D` (Debian's OpenSSH) on its own loopback address (`127.77.x.y:22022`, `-net` changes the 77), " +
		"started by bench/fleet.go in its own mount namespace with its own directory bound over `/root`, so every host " +
		"has its own home: agent installs and pushed files do not collide. Each host has its own ed25519 host key; " +
		"one generated client key; `known_hosts` lists every host and `StrictHostKeyChecking yes`. " +
		"The sshd offer only `curve25519-sha256` for key exchange, `aes128-gcm@openssh.com` as cipher (Go's first choice; OpenSSH would pick chacha20-poly1305, slower on AES-NI machines, which would tilt the file push) and `ssh-ed25519` host keys; " +
		"`UsePAM no`, `MaxStartups 2000:30:4000`, `MaxSessions 1000`, `LogLevel DEBUG1` (to count what connected). " +
		"Every tool is given the same generated `ssh_config` (`-F`), full fan-out (`-f N`, `-p N`, forks = N, `--fanout N` and `fanout` in shoal's config.toml) and no ssh-agent. " +
		"shoal runs from the binary built from this tree with its own XDG directories, whose config.toml names the fleet's ssh_config. " +
		"Each sshd sets `BENCH_HOST` for its sessions; the command every tool runs is:\n\n")
	fmt.Fprintf(&b, "```sh\n%s\n```\n\nand the harness counts the `BENCHOK-hNNN` lines: all N hosts must answer.\n\n", remoteCmd)
	if len(r.Kex) > 0 {
		b.WriteString("What the sshd logged over the whole run (connections):\n\n| | connections |\n|---|---:|\n")
		keys := make([]string, 0, len(r.Kex))
		for k := range r.Kex {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "| %s | %d |\n", k, r.Kex[k])
		}
		b.WriteString("\n")
	}

	b.WriteString("## How each tool was run\n\n`$WORK` is the harness's temporary directory; N is the host count.\n\n")
	names := make([]string, 0, len(r.Commands))
	for k := range r.Commands {
		names = append(names, k)
	}
	sort.Strings(names)
	b.WriteString("```sh\n")
	for _, k := range names {
		cmd := r.Commands[k]
		if r.Work != "" {
			cmd = strings.ReplaceAll(cmd, r.Work, "$WORK")
		}
		fmt.Fprintf(&b, "# %s\n%s\n", k, cmd)
	}
	b.WriteString("```\n\n")
	b.WriteString("Columns: *median* and *min – max* are wall-clock seconds of the whole invocation; *× fastest peer* and " +
		"*× floor* divide the median by the fastest peer's (named in the header) and by N local `bash -c` processes; " +
		"*client CPU / host* is the median user+sys CPU of the tool and all its children (getrusage of the reaped tree, " +
		"plus ssh ControlPersist masters for Ansible and the daemon's CPU for warm shoal), divided by N; *peak memory* is " +
		"the largest sum of PSS over all the tool's processes (and the daemon's), sampled every 25 ms in one extra, untimed " +
		"run at the largest N; *largest process* is the biggest single max RSS.\n\n")

	for _, sc := range []int{6, 1, 2, 3, 4, 5} {
		ns := r.nsOf(sc)
		if len(ns) == 0 {
			continue
		}
		fmt.Fprintf(&b, "## Scenario %d: %s\n\n", sc, scenarioTitles[sc])
		switch sc {
		case 2:
			b.WriteString("Before each run the harness deletes `~/.cache/shoal` on every host, then syncs and waits 6 s, so the file system no longer treats the freed inodes as just freed (see *The hosts share one file system*); the run must install the agent on all of them. Peers' cold runs (scenario 1) are shown for comparison.\n\n")
		case 3:
			b.WriteString("The daemon is restarted for each N and connected by one untimed run (shown as *shoal-connect*, whose CPU column counts the client only); peers have no warm mode and are shown from scenario 1 (s1), except Ansible with ControlPersist masters opened by one untimed run.\n\n")
		case 4:
			fmt.Fprintf(&b, "%d commands in a row, each a separate invocation, on %d hosts; the figure is the total, median of %d runs. The peer is the fastest of scenario 1 at that N. Client CPU / host is per host and command.\n\n", r.Seq, r.SeqN, r.SeqRuns)
		case 5:
			fmt.Fprintf(&b, "A %d MB random file to `%s` on %d hosts, median of %d runs. Checked after each run: size and 16 blocks on every host, full SHA-256 on the first and last. Each tool as it comes: pscp compresses (`scp -qC`), the others do not.\n\n", r.PushMB, pushDest, r.PushN, r.PushRuns)
		}
		for _, n := range ns {
			if sc == 6 && n == 1 {
				st := r.find(6, "floor-ssh", 1).stats()
				fmt.Fprintf(&b, "One `ssh h001 'date; echo ...'` (process start, TCP, handshake, auth, session, exit): median %s (min %s, max %s, %d runs), client CPU %.1f ms.\n\n",
					secs(st.med), secs(st.min), secs(st.max), st.ok, st.cpu*1000)
				if so := r.find(6, "shoal-one", 1).stats(); so.good() {
					fmt.Fprintf(&b, "The same through `shoal run --no-daemon h001` (agent already installed): median %s (min %s, max %s, %d runs), client CPU %.1f ms.\n\n",
						secs(so.med), secs(so.min), secs(so.max), so.ok, so.cpu*1000)
				} else if so.total > 0 {
					fmt.Fprintf(&b, "`shoal run --no-daemon h001`: %s\n\n", mdEscape(tail(so.err, 200)))
				}
				continue
			}
			fmt.Fprintf(&b, "### N = %d\n\n", n)
			var extra []string
			if sc == 1 || sc == 2 || sc == 3 {
				extra = append(extra, "floor-local")
			}
			if sc == 2 || sc == 3 {
				for _, p := range peerNames(1) {
					if r.find(1, p, n) != nil {
						extra = append(extra, p)
					}
				}
			}
			r.table(&b, sc, n, extra)
		}
	}

	hasDaemon := false
	for _, d := range r.Daemon {
		hasDaemon = hasDaemon || d.RSS > 0
	}
	if hasDaemon {
		b.WriteString("## shoal daemon memory\n\nMeasured after the warm runs at each N, from /proc (RSS, PSS, VmHWM), and the Go heap live after the daemon's last GC (it runs with GODEBUG=gctrace=1). The hosts already have the agent (at the memory-only point a one-shot run installs it first), as after any restart of the daemon; a daemon that uploads an agent itself keeps that connection's x/crypto buffers at 32 KiB packets. The rest of RSS is the collector's headroom (GOGC=100 lets the heap grow to twice the live data), goroutine stacks and the runtime.\n\n| hosts | idle RSS | connected RSS | connected PSS | peak RSS | live heap | RSS / host | above idle / host | live heap / host |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		sort.Slice(r.Daemon, func(i, j int) bool { return r.Daemon[i].N < r.Daemon[j].N })
		for _, d := range r.Daemon {
			if d.RSS == 0 {
				continue
			}
			heap := "–"
			if d.LiveHeap > 0 {
				heap = fmt.Sprintf("%.0f KiB", float64(d.LiveHeap)/float64(d.N))
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %.0f KiB | %.0f KiB | %s |\n", d.N, kib(d.IdleRSS), kib(d.RSS), kib(d.PSS), kib(d.HWM),
				kib(d.LiveHeap), float64(d.RSS)/float64(d.N), float64(d.RSS-d.IdleRSS)/float64(d.N), heap)
		}
		b.WriteString("\n")
	}
	if r.Profile != "" || r.ProfileWarm != "" || r.ProfileFirst != "" || r.ProfilePut != "" {
		b.WriteString("## Where the time goes (perf)\n\n")
		for _, p := range []string{r.Profile, r.ProfileWarm, r.ProfileFirst, r.ProfilePut} {
			if p != "" {
				b.WriteString(p)
				b.WriteString("\n")
			}
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("## Notes from the run\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	return b.String()
}
