package daemon

import (
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/proto"
)

// The variables every command gets besides the ones asked for.
const (
	envHost  = "SHOAL_HOST"   // the host's name as targeted
	envRunID = "SHOAL_RUN_ID" // the run's id, as in the audit log and history
	envIndex = "SHOAL_INDEX"  // the host's place in the sorted target set, from 0
	envCount = "SHOAL_COUNT"  // the size of the target set
)

// placement is where each host of a run stands in the whole run: what SHOAL_INDEX,
// SHOAL_COUNT and SHOAL_RUN_ID say there.
type placement struct {
	subst bool // expand %h and %i in the command
	index map[string]int
	count int
	runID uint64
}

// placeRun returns the placement of hosts in a run with id runID: each host's place in the
// sorted set, or, for a run forwarded by another daemon, the places that daemon gave.
func placeRun(req *proto.RunRequest, hosts []string, runID uint64) *placement {
	p := &placement{subst: req.Subst, index: make(map[string]int, len(hosts)), count: len(hosts), runID: runID}
	if req.Count > 0 && len(req.Index) == len(req.Hosts) {
		for k, h := range req.Hosts {
			p.index[h] = req.Index[k]
		}
		p.count = req.Count
		if req.RunID != 0 {
			p.runID = req.RunID
		}
		return p
	}
	sorted := slices.Clone(hosts)
	hostlist.Sort(sorted)
	for i, h := range sorted {
		p.index[h] = i
	}
	return p
}

// forward fills the placement of hosts into a request for a gateway.
func (p *placement) forward(r *proto.RunRequest, hosts []string) {
	r.Index = make([]int, len(hosts))
	for k, h := range hosts {
		r.Index[k] = p.index[h]
	}
	r.Count, r.RunID = p.count, p.runID
}

// env returns the environment of host's command: the run's variables and SHOAL_HOST,
// SHOAL_RUN_ID, SHOAL_INDEX and SHOAL_COUNT, which win over any of the same name.
func (p *placement) env(base map[string]string, host string) map[string]string {
	env := make(map[string]string, len(base)+4)
	maps.Copy(env, base)
	env[envHost] = host
	env[envRunID] = strconv.FormatUint(p.runID, 10)
	env[envIndex] = strconv.Itoa(p.index[host])
	env[envCount] = strconv.Itoa(p.count)
	return env
}

// substitute expands %h (host), %i (its index) and %% (a percent sign) in cmd; any other %
// stays as it is.
func (p *placement) substitute(cmd, host string) string {
	if !strings.Contains(cmd, "%") {
		return cmd
	}
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] != '%' || i+1 == len(cmd) {
			b.WriteByte(cmd[i])
			continue
		}
		switch cmd[i+1] {
		case 'h':
			b.WriteString(host)
		case 'i':
			b.WriteString(strconv.Itoa(p.index[host]))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			continue
		}
		i++
	}
	return b.String()
}

// envAttr is the run's environment as the audit log shows it: NAME=VALUE, sorted, with the
// values of masked names as ***.
func envAttr(env map[string]string, masked []string) slog.Attr {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		if slices.Contains(masked, k) {
			v = "***"
		}
		out = append(out, k+"="+v)
	}
	return slog.Any("env", out)
}
