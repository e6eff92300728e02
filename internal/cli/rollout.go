package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/console"
	"github.com/shoal-sh/shoal/internal/proto"
)

// rolloutFlags are run's flags that pace a run and pick a subset of its targets.
type rolloutFlags struct {
	batch, maxFail string // N or N%
	waves, shuffle bool
	wait           time.Duration
	canary         int
	pick, first    int
	seed           int64
}

func (rf *rolloutFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&rf.batch, "batch", "", "run the command on at most N hosts at once, or N% of them (a sliding window; see --waves)")
	fs.BoolVar(&rf.waves, "waves", false, "with --batch: strict waves, each starting when the one before has finished")
	fs.DurationVar(&rf.wait, "batch-wait", 0, "with --batch: pause this long between waves (or before a freed place is taken)")
	fs.StringVar(&rf.maxFail, "max-fail", "", "start no more hosts once N hosts (or N% of them) did not succeed; the rest are skipped")
	fs.IntVar(&rf.canary, "canary", 0, "run on N hosts first, and go on only if all of them succeed")
	fs.BoolVar(&rf.shuffle, "shuffle", false, "start the hosts in a random order instead of the sorted target order")
	fs.IntVar(&rf.pick, "pick", 0, "run on N hosts picked at random from the targets (see --seed)")
	fs.IntVar(&rf.first, "first", 0, "run on the first N hosts of the targets, in sorted order")
	fs.Int64Var(&rf.seed, "seed", 0, "the seed of --pick and --shuffle, for a repeatable choice (default: a random one)")
}

// parseCount reads --NAME's "N" or "N%" (see console.ParseCount); "" is neither.
func parseCount(name, s string) (n, pct int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	return console.ParseCount("--"+name, s)
}

// rollout returns the pace the flags ask for, or nil when they ask for none.
func (rf *rolloutFlags) rollout() (*proto.Rollout, error) {
	ro := &proto.Rollout{Waves: rf.waves, Wait: int64(rf.wait), Canary: rf.canary, Shuffle: rf.shuffle, Seed: rf.seed}
	var err error
	if ro.Batch, ro.BatchPercent, err = parseCount("batch", rf.batch); err != nil {
		return nil, err
	}
	if ro.MaxFail, ro.MaxFailPercent, err = parseCount("max-fail", rf.maxFail); err != nil {
		return nil, err
	}
	switch {
	case rf.canary < 0:
		return nil, fmt.Errorf("reading --canary %d: want a number ≥ 0", rf.canary)
	case rf.wait < 0:
		return nil, fmt.Errorf("reading --batch-wait %v: want a duration ≥ 0", rf.wait)
	case (rf.waves || rf.wait > 0) && rf.batch == "":
		return nil, fmt.Errorf("--waves and --batch-wait pace batches: give --batch too")
	}
	if *ro == (proto.Rollout{Seed: rf.seed}) {
		return nil, nil
	}
	return ro, nil
}

// subset returns the hosts --pick or --first choose from hosts (sorted target order), in that order.
func (rf *rolloutFlags) subset(hosts []string) ([]string, error) {
	switch {
	case rf.pick < 0 || rf.first < 0:
		return nil, fmt.Errorf("--pick and --first want a number ≥ 1")
	case rf.pick > 0 && rf.first > 0:
		return nil, fmt.Errorf("--pick and --first cannot be given together")
	case rf.first > 0:
		return hosts[:min(rf.first, len(hosts))], nil
	case rf.pick > 0:
		return pick(hosts, rf.pick, rf.seed), nil
	}
	return hosts, nil
}

// pick returns n hosts of hosts chosen at random (from seed, when not 0), in the order of hosts.
func pick(hosts []string, n int, seed int64) []string {
	if n >= len(hosts) {
		return hosts
	}
	s := uint64(seed)
	if s == 0 {
		s = rand.Uint64()
	}
	r := rand.New(rand.NewPCG(s, s>>32|s<<32))
	idx := r.Perm(len(hosts))[:n]
	slices.Sort(idx)
	chosen := make([]string, n)
	for k, i := range idx {
		chosen[k] = hosts[i]
	}
	return chosen
}

// The names of the sets of hosts of the caller's last run, for target expressions: @failed
// (every host that did not succeed, as the console's :failed), @ok, @skipped, @unreachable,
// and @last (every host of the run).
var historyNames = []string{"failed", "ok", "skipped", "unreachable", "last"}

// usesHistory reports whether expr may name one of the sets of the last run.
func usesHistory(expr string) bool {
	for _, n := range historyNames {
		for rest := expr; ; {
			i := strings.Index(rest, "@"+n)
			if i < 0 {
				break
			}
			rest = rest[i+1+len(n):]
			if rest == "" || strings.IndexByte(",&!^ \t)", rest[0]) >= 0 {
				return true
			}
		}
	}
	return false
}

// historySets returns the hosts of each of historyNames in the caller's last run.
func historySets(ctx context.Context, sess client.Session) (map[string][]string, error) {
	recs, err := sess.Last(ctx, 1)
	if err != nil && len(recs) == 0 {
		return nil, fmt.Errorf("reading the last run for @failed, @ok, @skipped, @unreachable or @last: %w", err)
	}
	if len(recs) == 0 {
		return nil, errors.New("@failed, @ok, @skipped, @unreachable and @last name hosts of your last run, and you have none yet")
	}
	sets := make(map[string][]string, len(historyNames))
	for _, n := range historyNames {
		sets[n] = []string{}
	}
	for _, r := range recs[0].Results {
		sets["last"] = append(sets["last"], r.Host)
		switch r.Status {
		case proto.StatusOK:
			sets["ok"] = append(sets["ok"], r.Host)
		case proto.StatusSkipped:
			sets["skipped"] = append(sets["skipped"], r.Host)
		case proto.StatusUnreachable:
			sets["unreachable"] = append(sets["unreachable"], r.Host)
		}
		if r.Status != proto.StatusOK {
			sets["failed"] = append(sets["failed"], r.Host)
		}
	}
	return sets, nil
}
