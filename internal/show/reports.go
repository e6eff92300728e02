package show

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/render"
)

// ReportOptions say how the tables of ping, info, time, put, get and status are written.
type ReportOptions struct {
	Color bool
	// JSON writes one JSON object per host (per line) instead of a table.
	JSON bool
	// MaxLines and MaxBytes cap what WriteRecord shows of each group's stdout and stderr; 0
	// shows all.
	MaxLines, MaxBytes int
}

// OutlierThreshold is how far a host's clock may stray from the fleet's median offset, beyond half
// its round trip, before `time` marks it as an outlier.
const OutlierThreshold = 100 * time.Millisecond

// failure is a set of hosts that failed the same way.
type failure struct {
	status proto.Status
	err    string
	hosts  []string
}

// failureGroups groups hosts by status and error message (with the host's name taken out), in the
// order of their first host.
func failureGroups(add func(yield func(host string, st proto.Status, err string))) []failure {
	var out []failure
	idx := map[string]int{}
	add(func(host string, st proto.Status, err string) {
		msg := render.GroupError(host, err)
		k := string(st) + "\x00" + msg
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, failure{status: st, err: msg})
		}
		out[i].hosts = append(out[i].hosts, host)
	})
	return out
}

// tally counts the results that are ok and groups the others by status and error (see
// failureGroups); of says what a result is: its host, status and error.
func tally[T any](res []T, of func(T) (host string, st proto.Status, err string)) (okN int, fails []failure) {
	fails = failureGroups(func(yield func(string, proto.Status, string)) {
		for _, r := range res {
			host, st, err := of(r)
			if st == proto.StatusOK {
				okN++
				continue
			}
			yield(host, st, err)
		}
	})
	return okN, fails
}

// writeFailures writes one line per failure group.
func writeFailures(w io.Writer, fs []failure, opt ReportOptions) {
	for _, f := range fs {
		hostlist.Sort(f.hosts)
		fmt.Fprintf(w, "%s %s (%d): %s\n", render.Paint(opt.Color, render.SGRRed, string(f.status)),
			render.Paint(opt.Color, render.SGRBold, hostlist.Fold(f.hosts)), len(f.hosts), render.ShowError(f.err, f.hosts))
	}
}

// writeJSONLines writes each value as one line of JSON.
func writeJSONLines[T any](w io.Writer, vs []T) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// hostErr is a host's error for a JSON object that names the host beside it: null when there
// is none, and without the host's name where it would start the message or one of its parts
// ("refused: connecting to …", not "h007: refused: h007: connecting to …").
func hostErr(host, s string) *string {
	if s == "" {
		return nil
	}
	s = render.ShowError(render.GroupError(host, s), []string{host})
	return &s
}

// ptr returns a pointer to v, for a JSON key that is null when unknown.
func ptr[T any](v T) *T { return &v }

// statusOf is the exit status for a table: 0 when every host is ok, 255 otherwise.
func statusOf(ok, total int) int {
	if ok == total {
		return 0
	}
	return ExitNotRun
}

// WritePing writes ping results: the hosts that answered, folded, with their round trips, then the
// hosts that did not, grouped by error. It returns 0 when every host answered, else 255.
func WritePing(w io.Writer, res []client.PingResult, opt ReportOptions) (int, error) {
	okN, fails := tally(res, func(r client.PingResult) (string, proto.Status, string) { return r.Host, r.Status, r.Err })
	if opt.JSON {
		type row struct {
			Host   string       `json:"host"`
			Status proto.Status `json:"status"`
			RTTMS  *float64     `json:"rtt_ms"`
			Error  *string      `json:"error"`
		}
		rows := make([]row, len(res))
		for i, r := range res {
			rows[i] = row{Host: r.Host, Status: r.Status, Error: hostErr(r.Host, r.Err)}
			if r.Status == proto.StatusOK {
				v := ms(r.RTT)
				rows[i].RTTMS = &v
			}
		}
		return statusOf(okN, len(res)), writeJSONLines(w, rows)
	}
	var b bytes.Buffer
	var okHosts []string
	var rtts []time.Duration
	for _, r := range res {
		if r.Status == proto.StatusOK {
			okHosts = append(okHosts, r.Host)
			rtts = append(rtts, r.RTT)
		}
	}
	if len(okHosts) > 0 {
		slices.Sort(rtts)
		hostlist.Sort(okHosts)
		fmt.Fprintf(&b, "%s %s (%d): rtt min %s · median %s · max %s\n", render.Paint(opt.Color, render.SGRBold, "ok"),
			render.Paint(opt.Color, render.SGRBold, hostlist.Fold(okHosts)), len(okHosts),
			render.FormatDuration(rtts[0]), render.FormatDuration(rtts[len(rtts)/2]), render.FormatDuration(rtts[len(rtts)-1]))
	}
	writeFailures(&b, fails, opt)
	_, err := w.Write(b.Bytes())
	return statusOf(okN, len(res)), err
}

// WriteInfo writes one line per host describing it, in natural host order, then the hosts that did
// not answer. It returns 0 when every host answered, else 255.
func WriteInfo(w io.Writer, res []client.InfoResult, opt ReportOptions) (int, error) {
	res = slices.Clone(res)
	slices.SortFunc(res, func(a, b client.InfoResult) int { return hostlist.Compare(a.Host, b.Host) })
	okN, fails := tally(res, func(r client.InfoResult) (string, proto.Status, string) { return r.Host, r.Status, r.Err })
	if opt.JSON {
		type row struct {
			Host         string       `json:"host"`
			Status       proto.Status `json:"status"`
			Error        *string      `json:"error"`
			Hostname     *string      `json:"hostname"`
			OS           *string      `json:"os"`
			Arch         *string      `json:"arch"`
			Kernel       *string      `json:"kernel"`
			CPUs         *int         `json:"cpus"`
			MemTotal     *int64       `json:"mem_total"`
			MemAvailable *int64       `json:"mem_available"`
			Load         []float64    `json:"load"`
			UptimeS      *float64     `json:"uptime_s"`
			AgentVersion *string      `json:"agent_version"`
			AgentHash    *string      `json:"agent_hash"`
			Clock        *string      `json:"clock"`
		}
		rows := make([]row, len(res))
		for i, r := range res {
			// Every key is present; what an unreachable host could not say is null.
			rows[i] = row{Host: r.Host, Status: r.Status, Error: hostErr(r.Host, r.Err)}
			if r.Status == proto.StatusOK {
				rows[i].Hostname, rows[i].OS, rows[i].Arch, rows[i].Kernel = ptr(r.Hostname), ptr(r.OS), ptr(r.Arch), ptr(r.Kernel)
				rows[i].CPUs, rows[i].MemTotal, rows[i].MemAvailable = ptr(r.CPUs), ptr(r.MemTotal), ptr(r.MemAvailable)
				rows[i].Load = r.Load[:]
				rows[i].UptimeS = ptr(r.Uptime.Seconds())
				rows[i].AgentVersion, rows[i].AgentHash = ptr(r.AgentVersion), ptr(r.AgentHash)
				if !r.Clock.IsZero() {
					rows[i].Clock = ptr(r.Clock.UTC().Format(render.TimeFormat))
				}
			}
		}
		return statusOf(okN, len(res)), writeJSONLines(w, rows)
	}
	var b bytes.Buffer
	if okN > 0 {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tOS/ARCH\tKERNEL\tCPUS\tMEMORY (AVAIL)\tLOAD\tUPTIME\tAGENT")
		for _, r := range res {
			if r.Status != proto.StatusOK {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%d\t%s (%s)\t%.2f %.2f %.2f\t%s\t%s\n", r.Host, r.OS, r.Arch, r.Kernel, r.CPUs,
				bytesString(r.MemTotal), bytesString(r.MemAvailable), r.Load[0], r.Load[1], r.Load[2],
				uptimeString(r.Uptime), r.AgentVersion)
		}
		tw.Flush()
	}
	writeFailures(&b, fails, opt)
	_, err := w.Write(b.Bytes())
	return statusOf(okN, len(res)), err
}

// bytesString writes n bytes in binary units: "15.5 GiB".
func bytesString(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// uptimeString writes an uptime as "12d 3h", "3h 04m" or "4m".
func uptimeString(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %02dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}

// TimeOutliers returns the median offset of the hosts that answered and the hosts whose offset is
// further than OutlierThreshold plus half their round trip from it.
func TimeOutliers(res []client.TimeResult) (median time.Duration, outliers map[string]bool) {
	var offs []time.Duration
	for _, r := range res {
		if r.Status == proto.StatusOK {
			offs = append(offs, r.Offset)
		}
	}
	outliers = map[string]bool{}
	if len(offs) == 0 {
		return 0, outliers
	}
	slices.Sort(offs)
	median = offs[len(offs)/2]
	if len(offs)%2 == 0 {
		median = (offs[len(offs)/2-1] + offs[len(offs)/2]) / 2
	}
	for _, r := range res {
		if r.Status != proto.StatusOK {
			continue
		}
		dev := r.Offset - median
		if dev < 0 {
			dev = -dev
		}
		if dev > OutlierThreshold+r.RTT/2 {
			outliers[r.Host] = true
		}
	}
	return median, outliers
}

// WriteTime writes each host's clock offset, sorted from most behind to most ahead, with outliers
// marked, then a line with the median and the hosts that did not answer. It returns 0 when every
// host answered, else 255.
func WriteTime(w io.Writer, res []client.TimeResult, opt ReportOptions) (int, error) {
	median, outliers := TimeOutliers(res)
	_, fails := tally(res, func(r client.TimeResult) (string, proto.Status, string) { return r.Host, r.Status, r.Err })
	var ok []client.TimeResult
	for _, r := range res {
		if r.Status == proto.StatusOK {
			ok = append(ok, r)
		}
	}
	slices.SortStableFunc(ok, func(a, b client.TimeResult) int {
		if a.Offset != b.Offset {
			if a.Offset < b.Offset {
				return -1
			}
			return 1
		}
		return hostlist.Compare(a.Host, b.Host)
	})
	if opt.JSON {
		type row struct {
			Host     string       `json:"host"`
			Status   proto.Status `json:"status"`
			OffsetMS *float64     `json:"offset_ms"`
			RTTMS    *float64     `json:"rtt_ms"`
			Outlier  bool         `json:"outlier"`
			Error    *string      `json:"error"`
		}
		var rows []row
		for _, r := range ok {
			off, rtt := ms(r.Offset), ms(r.RTT)
			rows = append(rows, row{Host: r.Host, Status: r.Status, OffsetMS: &off, RTTMS: &rtt, Outlier: outliers[r.Host]})
		}
		for _, r := range res {
			if r.Status != proto.StatusOK {
				rows = append(rows, row{Host: r.Host, Status: r.Status, Error: hostErr(r.Host, r.Err)})
			}
		}
		return statusOf(len(ok), len(res)), writeJSONLines(w, rows)
	}
	var b bytes.Buffer
	if len(ok) > 0 {
		// Host names left-aligned, numbers right-aligned so their signs and units line up.
		hw, ow, rw := len("HOST"), len("OFFSET"), len("RTT")
		rows := make([][3]string, len(ok))
		for i, r := range ok {
			rows[i] = [3]string{r.Host, signedDuration(r.Offset), render.FormatDuration(r.RTT)}
			hw, ow, rw = max(hw, utf8.RuneCountInString(r.Host)), max(ow, len(rows[i][1])), max(rw, len(rows[i][2]))
		}
		fmt.Fprintf(&b, "%-*s  %*s  %*s\n", hw, "HOST", ow, "OFFSET", rw, "RTT")
		for i, r := range ok {
			line := fmt.Sprintf("%-*s  %*s  %*s", hw, rows[i][0], ow, rows[i][1], rw, rows[i][2])
			if outliers[r.Host] {
				line += "  " + render.Paint(opt.Color, render.SGRYellow+render.SGRBold, "← outlier")
			}
			b.WriteString(line + "\n")
		}
		var out []string
		for h := range outliers {
			out = append(out, h)
		}
		hostlist.Sort(out)
		fmt.Fprintf(&b, "%s · median offset %s from the daemon's clock", plural(len(ok), "host"), signedDuration(median))
		if len(out) > 0 {
			fmt.Fprintf(&b, " · %s more than %s from the median: %s", render.Paint(opt.Color, render.SGRYellow,
				plural(len(out), "outlier")), render.FormatDuration(OutlierThreshold), render.Paint(opt.Color, render.SGRBold, hostlist.Fold(out)))
		} else {
			fmt.Fprintf(&b, " · no outliers (all within %s of the median)", render.FormatDuration(OutlierThreshold))
		}
		b.WriteByte('\n')
	}
	writeFailures(&b, fails, opt)
	_, err := w.Write(b.Bytes())
	return statusOf(len(ok), len(res)), err
}

// signedDuration writes d with its sign: "+1.2ms", "-3.40s", "0".
func signedDuration(d time.Duration) string {
	switch {
	case d > 0:
		return "+" + render.FormatDuration(d)
	case d < 0:
		return render.FormatDuration(d)
	}
	return "0"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// WriteFiles writes the results of put or get (op): the hosts that succeeded, folded, with the
// size, then the failures grouped by error. It returns 0 when every host succeeded, else 255.
func WriteFiles(w io.Writer, op string, res []client.FileResult, opt ReportOptions) (int, error) {
	okN, fails := tally(res, func(r client.FileResult) (string, proto.Status, string) { return r.Host, r.Status, r.Err })
	if opt.JSON {
		type row struct {
			Host   string       `json:"host"`
			Status proto.Status `json:"status"`
			Bytes  int64        `json:"bytes"`
			Path   *string      `json:"path"`
			Error  *string      `json:"error"`
		}
		rows := make([]row, len(res))
		for i, r := range res {
			rows[i] = row{Host: r.Host, Status: r.Status, Bytes: r.Bytes, Error: hostErr(r.Host, r.Err)}
			if r.Path != "" {
				rows[i].Path = &r.Path
			}
		}
		return statusOf(okN, len(res)), writeJSONLines(w, rows)
	}
	var b bytes.Buffer
	// Group the successes by size and path (with the host name taken out, as get's paths hold it).
	type key struct {
		bytes int64
		path  string
	}
	groups := map[key][]string{}
	var order []key
	for _, r := range res {
		if r.Status != proto.StatusOK {
			continue
		}
		k := key{r.Bytes, strings.ReplaceAll(r.Path, r.Host, "<host>")}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r.Host)
	}
	for _, k := range order {
		hs := groups[k]
		hostlist.Sort(hs)
		fmt.Fprintf(&b, "%s %s (%d): %s %s → %s\n", render.Paint(opt.Color, render.SGRBold, "ok"), render.Paint(opt.Color, render.SGRBold, hostlist.Fold(hs)),
			len(hs), op, bytesString(k.bytes), k.path)
	}
	writeFailures(&b, fails, opt)
	_, err := w.Write(b.Bytes())
	return statusOf(okN, len(res)), err
}

// StatusJSON is the JSON object written for the daemon's status (one line). Its schema is
// documented in docs/json.md; fields are never renamed or removed.
type StatusJSON struct {
	PID        int              `json:"pid"`
	Version    string           `json:"version"`
	StartedAt  *string          `json:"started_at"`
	Clients    int              `json:"clients"`
	Socket     string           `json:"socket"`
	Goroutines *int             `json:"goroutines"`
	HeapLive   *uint64          `json:"heap_live_bytes"`
	HeapInUse  *uint64          `json:"heap_in_use_bytes"`
	FDs        *int             `json:"open_fds"`
	GCCycles   *uint64          `json:"gc_cycles"`
	Hosts      []HostStatusJSON `json:"hosts"`
}

// HostStatusJSON is one host session in StatusJSON.
type HostStatusJSON struct {
	Host         string   `json:"host"`
	State        string   `json:"state"`
	AgentVersion *string  `json:"agent_version"`
	AgentPID     *int     `json:"agent_pid"`
	RTTMS        *float64 `json:"rtt_ms"`
	LastSeen     *string  `json:"last_seen"`
	Running      int      `json:"running"`
	Error        *string  `json:"error"`
	Config       *string  `json:"config"`
}

// nonZero returns a pointer to v, or nil when v is the zero value (not reported).
func nonZero[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

// jsonTime formats t as render.TimeFormat in UTC, or nil when t is zero.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(render.TimeFormat)
	return &s
}

// statusJSON converts st to its JSON object.
func statusJSON(st *client.DaemonStatus) StatusJSON {
	out := StatusJSON{PID: st.PID, Version: st.Version, StartedAt: jsonTime(st.Started), Clients: st.Clients,
		Socket: st.Socket, Goroutines: nonZero(st.Goroutines), HeapLive: nonZero(st.HeapLive),
		HeapInUse: nonZero(st.HeapInUse), FDs: nonZero(st.FDs), GCCycles: nonZero(st.GCCycles),
		Hosts: make([]HostStatusJSON, len(st.Hosts))}
	for i, h := range st.Hosts {
		out.Hosts[i] = HostStatusJSON{Host: h.Host, State: h.State, AgentVersion: nonZero(h.AgentVersion),
			AgentPID: nonZero(h.AgentPID), LastSeen: jsonTime(h.LastSeen), Running: h.Running, Error: hostErr(h.Host, h.Err),
			Config: nonZero(h.Config)}
		if h.LastRTT > 0 {
			v := ms(h.LastRTT)
			out.Hosts[i].RTTMS = &v
		}
	}
	return out
}

// ResourcesString describes the daemon's goroutines, heap and open files for a summary line,
// as "412 goroutines · heap 8.1 MiB live (12.0 MiB in use) · 37 fds", leaving out what the
// daemon did not report; "" when it reported none.
func ResourcesString(st *client.DaemonStatus) string {
	var parts []string
	if st.Goroutines > 0 {
		parts = append(parts, plural(st.Goroutines, "goroutine"))
	}
	switch {
	case st.HeapLive > 0 && st.HeapInUse > 0:
		parts = append(parts, fmt.Sprintf("heap %s live (%s in use)", bytesString(int64(st.HeapLive)), bytesString(int64(st.HeapInUse))))
	case st.HeapInUse > 0:
		parts = append(parts, fmt.Sprintf("heap %s in use", bytesString(int64(st.HeapInUse))))
	}
	if st.FDs > 0 {
		parts = append(parts, plural(st.FDs, "fd"))
	}
	return strings.Join(parts, " · ")
}

// WriteStatus describes the daemon and its host sessions grouped by state. It returns 0.
func WriteStatus(w io.Writer, st *client.DaemonStatus, opt ReportOptions) (int, error) {
	if opt.JSON {
		return 0, writeJSONLines(w, []StatusJSON{statusJSON(st)})
	}
	var b bytes.Buffer
	up := "up " + uptimeString(time.Since(st.Started))
	if time.Since(st.Started) < time.Minute {
		up = "up " + time.Since(st.Started).Round(time.Second).String()
	}
	if st.Started.IsZero() {
		up = "up ?"
	}
	fmt.Fprintf(&b, "daemon: pid %d · version %s · %s · %s · socket %s", st.PID, st.Version, up,
		plural(st.Clients, "client"), st.Socket)
	if r := ResourcesString(st); r != "" {
		b.WriteString(" · " + r)
	}
	b.WriteString("\n")
	byState := map[string][]string{}
	var states []string
	running := 0
	for _, h := range st.Hosts {
		if _, ok := byState[h.State]; !ok {
			states = append(states, h.State)
		}
		byState[h.State] = append(byState[h.State], h.Host)
		running += h.Running
	}
	slices.Sort(states)
	if len(st.Hosts) == 0 {
		b.WriteString("hosts: no sessions yet\n")
	}
	for _, s := range states {
		hs := byState[s]
		hostlist.Sort(hs)
		fmt.Fprintf(&b, "%-12s %s (%d)\n", s, render.Paint(opt.Color, render.SGRBold, hostlist.Fold(hs)), len(hs))
	}
	if running > 0 {
		fmt.Fprintf(&b, "%s running\n", plural(running, "command"))
	}
	for _, h := range st.Hosts {
		if h.Err != "" {
			fmt.Fprintf(&b, "%s: %s\n", render.Paint(opt.Color, render.SGRRed, h.Host), render.ShowError(render.GroupError(h.Host, h.Err), []string{h.Host}))
		}
	}
	_, err := w.Write(b.Bytes())
	return 0, err
}

// WriteRecord shows a past run again: a header line, then its results as mode says.
func WriteRecord(w io.Writer, rec proto.RunRecord, mode Mode, opt ReportOptions) error {
	if mode == ModeJSON || mode == ModeJSONStream || opt.JSON {
		return render.WriteJSON(w, rec.Results)
	}
	who := ""
	if rec.Identity != "" {
		who = " · by " + rec.Identity
	}
	fmt.Fprintf(w, "%s %s · %s%s\n", render.Paint(opt.Color, render.SGRDim, "#"), render.Paint(opt.Color, render.SGRBold, rec.Command),
		rec.Started.Time().Local().Format("2006-01-02 15:04:05"), who)
	ropt := render.Options{Color: opt.Color}
	gopt := render.Options{Color: opt.Color, MaxLines: opt.MaxLines, MaxBytes: opt.MaxBytes, MoreHint: "shoal last > FILE writes every line kept"}
	if err := render.Gather(w, rec.Results, gopt); err != nil {
		return err
	}
	return render.WriteSummary(w, render.Summarize(rec.Results, rec.Ended.Time().Sub(rec.Started.Time())), ropt)
}
