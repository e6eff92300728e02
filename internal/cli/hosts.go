package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/spf13/cobra"
)

// newHostsCmd builds `shoal hosts`, which prints what a target expression expands to.
func newHostsCmd(g *globals) *cobra.Command {
	var (
		fold, count bool
		listTags    bool
		files       []string
		excludes    []string
	)
	cmd := &cobra.Command{
		Use:   "hosts [flags] EXPR...",
		Short: "Print the hosts a target expression names",
		Long: `Print the hosts a target expression names, one per line in natural order.

EXPR is pdsh/ClusterShell syntax: web[01-20].dc1, n[1-9/2], a,b,c, @tag, @all,
^FILE (a hosts file), - (names on stdin), and the operators ! (or a leading -),
& and ^ applied left to right. Several EXPR arguments are one expression,
joined with spaces (a space unites, as a comma does): shoal hosts 'h[1-3]' '!h2'
is h[1,3].
See docs/targets.md.`,
		Example: `  shoal hosts 'web[01-20].dc1!web13.dc1'
  shoal hosts --fold @web @db
  cat list | shoal hosts --count -
  shoal hosts -f hosts.txt -x @broken`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listTags {
				if len(args) > 0 || len(files) > 0 {
					return errors.New("--tags takes no target expression")
				}
				return g.printTags(cmd.Context())
			}
			if len(args) == 0 && len(files) == 0 {
				return errors.New("no target expression (give EXPR, -f FILE, or - to read names from stdin)")
			}
			cfg, err := config.Load(g.configFile)
			if err != nil {
				printConfigError(g.stderr, err)
				return exitError{code: 1}
			}
			var names []string
			seen := map[string]bool{}
			add := func(expr string) error {
				got, err := cfg.Targets(expr, g.stdin)
				if err != nil {
					return err
				}
				for _, n := range got {
					if !seen[n] {
						seen[n] = true
						names = append(names, n)
					}
				}
				return nil
			}
			// The arguments are one expression, as the console reads them: shoal hosts 'h[1-3]' '!h2'
			// is h[1,3].
			if len(args) > 0 {
				expr := strings.Join(args, " ")
				if err := add(expr); err != nil {
					return expressionError(g.stderr, expr, err)
				}
			}
			for _, f := range files {
				if err := add("^" + f); err != nil {
					return err
				}
			}
			for _, x := range excludes {
				drop, err := cfg.Targets(x, g.stdin)
				if err != nil {
					return expressionError(g.stderr, x, err)
				}
				for _, n := range drop {
					delete(seen, n)
				}
			}
			kept := names[:0]
			for _, n := range names {
				if seen[n] {
					kept = append(kept, n)
				}
			}
			hostlist.Sort(kept)
			return printHosts(g.stdout, kept, fold, count)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return completeTargets(g, toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&fold, "fold", false, "print the hosts folded into one expression (web[01-20])")
	fl.BoolVarP(&count, "count", "c", false, "print only the number of hosts")
	fl.BoolVar(&listTags, "tags", false, "list the tags: the configuration's, then each [[tag_source]]'s groups (@SOURCE:GROUP)")
	fl.StringArrayVarP(&files, "file", "f", nil, "add the hosts listed in `FILE` (one per line, # comments)")
	fl.StringArrayVarP(&excludes, "exclude", "x", nil, "leave out the hosts `EXPR` names")
	cmd.MarkFlagsMutuallyExclusive("fold", "count")
	return cmd
}

// printTags writes every tag, one per line: the configuration's, then what each tag source
// offers. A source that cannot be read is reported and makes the exit status 1.
func (g *globals) printTags(ctx context.Context) error {
	cfg, err := config.Load(g.configFile)
	if err != nil {
		printConfigError(g.stderr, err)
		return exitError{code: 1}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	var b strings.Builder
	for _, t := range cfg.TagNames() {
		fmt.Fprintf(&b, "@%s\n", t)
	}
	failed := false
	for _, sg := range cfg.SourceGroups(ctx) {
		if sg.Err != nil {
			fmt.Fprintf(g.stderr, "shoal: tag source %s: %v\n", sg.Source, sg.Err)
			failed = true
			continue
		}
		for _, t := range sg.Groups {
			fmt.Fprintf(&b, "@%s\n", t)
		}
	}
	if _, err := io.WriteString(g.stdout, b.String()); err != nil {
		return err
	}
	if failed {
		return exitError{code: 1}
	}
	return nil
}

// printHosts writes names one per line, or folded, or their count.
func printHosts(w io.Writer, names []string, fold, count bool) error {
	var b strings.Builder
	switch {
	case count:
		b.WriteString(strconv.Itoa(len(names)))
		b.WriteByte('\n')
	case fold:
		if len(names) > 0 {
			b.WriteString(hostlist.Fold(names))
			b.WriteByte('\n')
		}
	default:
		for _, n := range names {
			b.WriteString(n)
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// expressionError prints a malformed or too large expression with a caret under the faulty column
// and returns exit status 2. Other errors are returned as they are.
func expressionError(stderr io.Writer, expr string, err error) error {
	var (
		se  *hostlist.SyntaxError
		le  *hostlist.LimitError
		at  string
		col int
	)
	switch {
	case errors.As(err, &se):
		at, col = se.Expr, se.Col
	case errors.As(err, &le):
		at, col = le.Expr, le.Col
	default:
		return err
	}
	fmt.Fprintf(stderr, "shoal: %v\n", err)
	if at == expr && col >= 1 && col <= len(expr)+1 {
		fmt.Fprintf(stderr, "  %s\n  %s^\n", expr, strings.Repeat(" ", col-1))
	}
	return exitError{code: 2}
}

// completeTargets offers @tags and host names from the configuration that start with toComplete.
func completeTargets(g *globals, toComplete string) []string {
	cfg, err := config.Load(g.configFile)
	if err != nil {
		return nil
	}
	// Complete the last item of a comma list, keeping what comes before it.
	prefix, last := "", toComplete
	if i := strings.LastIndexAny(toComplete, ",!&^"); i >= 0 {
		prefix, last = toComplete[:i+1], toComplete[i+1:]
	}
	var out []string
	if strings.HasPrefix(last, "@") {
		tags := append([]string{"all"}, cfg.TagNames()...)
		for _, sg := range cfg.SourceGroups(context.Background()) {
			tags = append(tags, sg.Groups...)
		}
		for _, t := range tags {
			if strings.HasPrefix("@"+t, last) {
				out = append(out, prefix+"@"+t)
			}
		}
		return out
	}
	for _, n := range cfg.HostNames() {
		if strings.HasPrefix(n, last) {
			out = append(out, prefix+n)
		}
	}
	return out
}
