package console

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/render"
	"github.com/shoal-sh/shoal/internal/show"
)

// ParseCount reads "N" or "N%" (N ≥ 1; a percentage at most 100), as --batch and --max-fail
// and :batch and :maxfail take them, for the setting named name.
func ParseCount(name, s string) (n, pct int, err error) {
	num, isPct := strings.CutSuffix(s, "%")
	v, err := strconv.Atoi(num)
	switch {
	case err != nil || v < 1:
		return 0, 0, fmt.Errorf("reading %s %q: want a number ≥ 1 or a percentage such as 25%%", name, s)
	case isPct && v > 100:
		return 0, 0, fmt.Errorf("reading %s %q: a percentage is at most 100%%", name, s)
	case isPct:
		return 0, v, nil
	}
	return v, 0, nil
}

// countString writes a count as ParseCount reads it, or off.
func countString(n, pct int) string {
	switch {
	case n > 0:
		return strconv.Itoa(n)
	case pct > 0:
		return strconv.Itoa(pct) + "%"
	}
	return "off"
}

// setCount is :batch and :maxfail: show the setting, or set it from args[0] (off clears it).
func (c *console) setCount(name string, args []string, n, pct *int) int {
	if len(args) > 0 {
		switch args[0] {
		case "off", "none", "0":
			*n, *pct = 0, 0
		default:
			v, p, err := ParseCount(name, args[0])
			if err != nil {
				c.errorf("%v", err)
				return 1
			}
			*n, *pct = v, p
		}
	}
	fmt.Fprintf(c.notes(), "%s: %s\n", name, countString(*n, *pct))
	return 0
}

func (c *console) cmdBatch(_ context.Context, args []string) int {
	return c.setCount("batch", args, &c.pace.Batch, &c.pace.BatchPercent)
}

func (c *console) cmdMaxFail(_ context.Context, args []string) int {
	return c.setCount("maxfail", args, &c.pace.MaxFail, &c.pace.MaxFailPercent)
}

func (c *console) cmdCanary(_ context.Context, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "off", "none", "0":
			c.pace.Canary = 0
		default:
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				c.errorf("reading canary %q: want a number ≥ 1, or off", args[0])
				return 1
			}
			c.pace.Canary = n
		}
	}
	fmt.Fprintf(c.notes(), "canary: %s\n", countString(c.pace.Canary, 0))
	return 0
}

// rollout is the pace of the console's commands, or nil for none.
func (c *console) rollout() *proto.Rollout {
	if c.pace == (proto.Rollout{}) {
		return nil
	}
	ro := c.pace
	return &ro
}

// runCanary runs command on the first canaries of the targets, asks whether to go on and then
// runs it on the rest; it returns the results of both, in target order. A "no" (or an
// interrupt) leaves the rest skipped.
func (c *console) runCanary(ctx context.Context, command string, ro *proto.Rollout) (*show.Outcome, error) {
	n := min(ro.Canary, len(c.hosts))
	first := *ro
	first.Canary = 0
	out, err := show.Run(ctx, c.sess, c.request(c.hosts[:n], command, &first), c.view(), c.interrupts)
	if err != nil || out.Interrupted || n == len(c.hosts) {
		return out, err
	}
	rest := c.hosts[n:]
	failed := 0
	for _, r := range out.Results {
		if r.Status != proto.StatusOK {
			failed++
		}
	}
	q := fmt.Sprintf("canary: %d of %d ok. Go on with the other %d hosts? [y/N] ", n-failed, n, len(rest))
	answer, aerr := c.lr.Ask(q)
	if aerr != nil || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(answer)), "y") {
		for _, h := range rest {
			out.Results = append(out.Results, proto.HostResult{Host: h, Status: proto.StatusSkipped,
				Err: "not started: the console did not go on after the canary"})
		}
		fmt.Fprintf(c.notes(), "not going on: %d hosts skipped\n", len(rest))
		return out, nil
	}
	then := *ro
	then.Canary = 0
	more, err := show.Run(ctx, c.sess, c.request(rest, command, &then), c.view(), c.interrupts)
	if more != nil {
		more.Results = append(out.Results, more.Results...)
		for h, pid := range out.PIDs {
			more.PIDs[h] = pid
		}
		more.Elapsed += out.Elapsed
	}
	return more, err
}

// cmdDiff writes the last command's groups as diffs against the largest group, or args[0]'s.
func (c *console) cmdDiff(_ context.Context, args []string) int {
	if c.last == nil {
		c.errorf("no command has run yet")
		return 1
	}
	ref := ""
	if len(args) > 0 {
		ref = args[0]
	}
	groups := render.Groups(c.last)
	if len(groups) < 2 {
		fmt.Fprintln(c.notes(), "every host gave the same result: nothing to diff")
		return 0
	}
	if err := render.WriteDiffs(c.out, groups, ref, render.Options{Color: c.opt.Color}); err != nil {
		c.errorf("diff: %v", err)
		return 1
	}
	return 0
}
