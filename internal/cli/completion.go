package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// targetArgs completes the first n arguments as target expressions with the host names and tags
// of the configuration (see completeTargets); later arguments get the shell's file completion.
func targetArgs(g *globals, n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) >= n {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return completeTargets(g, toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

// newManCmd writes a man page for every command of root.
func newManCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write man pages for shoal and its commands into DIR",
		Long: `Write man pages for shoal and its commands into DIR.

The pages are dated SOURCE_DATE_EPOCH (seconds since 1970) when it is set, as reproducible
builds expect, and today otherwise.`,
		Hidden: true,
		Args:   argsUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			date, err := manDate(os.Getenv("SOURCE_DATE_EPOCH"), time.Now())
			if err != nil {
				return err
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("writing man pages: %w", err)
			}
			return writeManPages(root, args[0], date)
		},
	}
}

// manDate returns the date man pages carry: epoch (SOURCE_DATE_EPOCH, see
// reproducible-builds.org/specs/source-date-epoch) when set, else now.
func manDate(epoch string, now time.Time) (time.Time, error) {
	if epoch == "" {
		return now, nil
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// writeManPages writes DIR/shoal.1, DIR/shoal-run.1 and so on, one per visible command.
func writeManPages(cmd *cobra.Command, dir string, date time.Time) error {
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := writeManPages(c, dir, date); err != nil {
			return err
		}
	}
	name := strings.ReplaceAll(cmd.CommandPath(), " ", "-")
	path := filepath.Join(dir, name+".1")
	if err := os.WriteFile(path, manPage(cmd, date), 0o644); err != nil {
		return fmt.Errorf("writing man page: %w", err)
	}
	return nil
}

// manPage renders one command as a roff man page.
func manPage(cmd *cobra.Command, date time.Time) []byte {
	var b bytes.Buffer
	name := strings.ReplaceAll(cmd.CommandPath(), " ", "-")
	fmt.Fprintf(&b, ".TH %q 1 %q %q \"shoal manual\"\n", strings.ToUpper(name), date.Format("2006-01-02"), "shoal "+Version)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roff(name), roff(cmd.Short))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n", roff(cmd.UseLine()))
	desc := cmd.Long
	if desc == "" {
		desc = cmd.Short
	}
	b.WriteString(".SH DESCRIPTION\n")
	for i, para := range strings.Split(strings.TrimSpace(desc), "\n\n") {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		b.WriteString(roff(strings.Join(strings.Fields(para), " ")) + "\n")
	}
	writeFlags := func(title string, fs *pflag.FlagSet) {
		var items []string
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Hidden {
				return
			}
			var item strings.Builder
			item.WriteString(".TP\n\\fB")
			if f.Shorthand != "" {
				item.WriteString("\\-" + f.Shorthand + ", ")
			}
			item.WriteString("\\-\\-" + roff(f.Name) + "\\fR")
			if t := f.Value.Type(); t != "bool" {
				item.WriteString(" \\fI" + t + "\\fR")
			}
			item.WriteString("\n" + roff(f.Usage))
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "[]" {
				item.WriteString(" (default " + roff(f.DefValue) + ")")
			}
			item.WriteString("\n")
			items = append(items, item.String())
		})
		if len(items) > 0 {
			b.WriteString(".SH " + title + "\n")
			b.WriteString(strings.Join(items, ""))
		}
	}
	writeFlags("OPTIONS", cmd.NonInheritedFlags())
	writeFlags("OPTIONS INHERITED FROM PARENT COMMANDS", cmd.InheritedFlags())
	if cmd.Example != "" {
		b.WriteString(".SH EXAMPLES\n.nf\n" + roff(cmd.Example) + "\n.fi\n")
	}
	var see []string
	if cmd.HasParent() {
		see = append(see, strings.ReplaceAll(cmd.Parent().CommandPath(), " ", "-")+"(1)")
	}
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			see = append(see, strings.ReplaceAll(c.CommandPath(), " ", "-")+"(1)")
		}
	}
	if len(see) > 0 {
		b.WriteString(".SH SEE ALSO\n" + roff(strings.Join(see, ", ")) + "\n")
	}
	return b.Bytes()
}

// roff escapes text for a man page: backslashes, hyphens, and a leading dot or quote.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
