package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/show"
)

// argKind says what a built-in's arguments are, for completion.
type argKind int

const (
	argNone argKind = iota
	argTargets
	argPaths
	argModes
	argBuiltins
)

// builtin is one console command that starts with the prefix character.
type builtin struct {
	name    string
	aliases []string
	usage   string
	help    string
	args    argKind
	run     func(c *console, ctx context.Context, args []string) int
}

// builtins returns the built-in commands in the order :help lists them.
func builtins() []builtin {
	return []builtin{
		{name: "help", aliases: []string{"h", "?"}, usage: "[NAME]", help: "list the built-ins, or describe one", args: argBuiltins, run: (*console).cmdHelp},
		{name: "target", aliases: []string{"t"}, usage: "[EXPR]", help: "set the targets to EXPR (web[01-20], @tag, a,b,c, !x, &y); show them without EXPR", args: argTargets, run: (*console).cmdTarget},
		{name: "add", usage: "EXPR", help: "add the hosts of EXPR to the targets", args: argTargets, run: (*console).cmdAdd},
		{name: "remove", aliases: []string{"rm"}, usage: "EXPR", help: "remove the hosts of EXPR from the targets", args: argTargets, run: (*console).cmdRemove},
		{name: "failed", help: "retarget to the hosts where the last command did not succeed", run: (*console).cmdFailed},
		{name: "ok", aliases: []string{"succeeded"}, help: "retarget to the hosts where the last command succeeded", run: (*console).cmdOK},
		{name: "timeout", usage: "[DURATION|off]", help: "set the per-host command timeout (10s, 2m; off for none)", run: (*console).cmdTimeout},
		{name: "fanout", usage: "[N]", help: "set how many hosts are connected to at once (0: the daemon's default)", run: (*console).cmdFanout},
		{name: "batch", usage: "[N|N%|off]", help: "run commands on at most N hosts (or N% of them) at once, a sliding window", run: (*console).cmdBatch},
		{name: "maxfail", usage: "[N|N%|off]", help: "start no more hosts once N (or N%) did not succeed; the rest are skipped", run: (*console).cmdMaxFail},
		{name: "canary", usage: "[N|off]", help: "run commands on the first N targets alone, then ask before going on", run: (*console).cmdCanary},
		{name: "cd", usage: "[DIR]", help: "start commands in DIR on every host (relative to the current one; home without DIR)", run: (*console).cmdCd},
		{name: "sudo", usage: "[on|off|USER]", help: "run commands through sudo (as root, or as USER), or not; the password is asked once, only if a host needs it", run: (*console).cmdSudo},
		{name: "output", aliases: []string{"o"}, usage: "[gather|stream|json]", help: "set how results are shown", args: argModes, run: (*console).cmdOutput},
		{name: "put", usage: "SRC DEST", help: "copy the local file SRC to DEST on every target (mode kept)", args: argPaths, run: (*console).cmdPut},
		{name: "get", usage: "SRC [DESTDIR]", help: "copy SRC from every target into DESTDIR/<host>/ (default .)", args: argPaths, run: (*console).cmdGet},
		{name: "ping", help: "check every target's agent and show round trips", run: (*console).cmdPing},
		{name: "info", help: "describe every target (OS, kernel, CPUs, memory, load, uptime, agent)", run: (*console).cmdInfo},
		{name: "time", help: "show every target's clock offset from this machine, sorted, outliers marked", run: (*console).cmdTime},
		{name: "diff", usage: "[HOST]", help: "show how the last command's output differed: a unified diff of each group against the largest (or HOST's)", run: (*console).cmdDiff},
		{name: "last", usage: "[N]", help: "show the results of the last N commands again (default 1)", run: (*console).cmdLast},
		{name: "status", help: "describe the daemon and its host sessions", run: (*console).cmdStatus},
		{name: "quit", aliases: []string{"q", "exit"}, help: "leave the console (Ctrl-D does too)", run: (*console).cmdQuit},
	}
}

// findBuiltin returns the built-in called name or one of its aliases.
func findBuiltin(name string) (builtin, bool) {
	for _, b := range builtins() {
		if b.name == name || slices.Contains(b.aliases, name) {
			return b, true
		}
	}
	return builtin{}, false
}

// builtin runs a line that started with the prefix character.
func (c *console) builtin(ctx context.Context, line string) int {
	args, err := splitArgs(line)
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	if len(args) == 0 {
		return c.cmdHelp(ctx, nil)
	}
	b, ok := findBuiltin(args[0])
	if !ok {
		c.errorf("no built-in %c%s (try %chelp)", prefix, args[0], prefix)
		return 1
	}
	return b.run(c, ctx, args[1:])
}

func (c *console) cmdHelp(_ context.Context, args []string) int {
	if len(args) > 0 {
		b, ok := findBuiltin(strings.TrimPrefix(args[0], string(prefix)))
		if !ok {
			c.errorf("no built-in %c%s", prefix, args[0])
			return 1
		}
		fmt.Fprintf(c.out, "%c%s %s\n    %s\n", prefix, b.name, b.usage, b.help)
		if len(b.aliases) > 0 {
			fmt.Fprintf(c.out, "    also: %c%s\n", prefix, strings.Join(b.aliases, " "+string(prefix)))
		}
		return 0
	}
	fmt.Fprintln(c.out, "Any other line runs on every target with bash -c. Built-ins:")
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	for _, b := range builtins() {
		fmt.Fprintf(tw, "  %c%s %s\t%s\n", prefix, b.name, b.usage, b.help)
	}
	fmt.Fprintf(tw, "  !CMD\trun CMD on this machine\n")
	tw.Flush()
	fmt.Fprintln(c.out, "Ctrl-C cancels a running command on every host; Ctrl-D quits.")
	return 0
}

// expand turns a target expression into hosts.
func (c *console) expand(expr string) ([]string, error) {
	if c.opt.Expand != nil {
		return c.opt.Expand(expr)
	}
	return hostlist.Expand(expr, nil)
}

func (c *console) cmdTarget(_ context.Context, args []string) int {
	if len(args) == 0 {
		c.showTargets()
		return 0
	}
	hosts, err := c.expand(strings.Join(args, ","))
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	c.setTargets(hosts)
	return 0
}

func (c *console) cmdAdd(_ context.Context, args []string) int {
	if len(args) == 0 {
		c.errorf("usage: %cadd EXPR", prefix)
		return 1
	}
	hosts, err := c.expand(strings.Join(args, ","))
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	c.setTargets(append(slices.Clone(c.hosts), hosts...))
	return 0
}

func (c *console) cmdRemove(_ context.Context, args []string) int {
	if len(args) == 0 {
		c.errorf("usage: %cremove EXPR", prefix)
		return 1
	}
	hosts, err := c.expand(strings.Join(args, ","))
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	drop := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		drop[h] = true
	}
	var keep []string
	for _, h := range c.hosts {
		if !drop[h] {
			keep = append(keep, h)
		}
	}
	c.setTargets(keep)
	return 0
}

// retarget sets the targets to the hosts of the last command whose result pick accepts.
func (c *console) retarget(what string, pick func(proto.HostResult) bool) int {
	if c.last == nil {
		c.errorf("no command has run yet")
		return 1
	}
	var hosts []string
	for _, r := range c.last {
		if pick(r) {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		fmt.Fprintf(c.notes(), "no host %s in the last command; targets unchanged\n", what)
		return 0
	}
	c.setTargets(hosts)
	return 0
}

func (c *console) cmdFailed(context.Context, []string) int {
	return c.retarget("failed", func(r proto.HostResult) bool { return r.Status != proto.StatusOK })
}

func (c *console) cmdOK(context.Context, []string) int {
	return c.retarget("succeeded", func(r proto.HostResult) bool { return r.Status == proto.StatusOK })
}

// setTargets replaces the targets and says what they are now.
func (c *console) setTargets(hosts []string) {
	c.hosts = sortedCopy(hosts)
	c.showTargets()
}

func (c *console) showTargets() {
	if len(c.hosts) == 0 {
		fmt.Fprintln(c.notes(), "targets: none")
		return
	}
	fmt.Fprintf(c.notes(), "targets: %s (%d)\n", hostlist.Fold(c.hosts), len(c.hosts))
}

func (c *console) cmdTimeout(_ context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(c.notes(), "timeout: %s\n", durationOrOff(c.timeout))
		return 0
	}
	d, err := parseTimeout(args[0])
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	c.timeout = d
	fmt.Fprintf(c.notes(), "timeout: %s\n", durationOrOff(d))
	return 0
}

// parseTimeout reads a duration; "off", "none" and "0" mean none, and a bare number is seconds.
func parseTimeout(s string) (time.Duration, error) {
	switch s {
	case "off", "none", "0":
		return 0, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil && n > 0 {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("reading timeout %q: want a duration such as 30s or 2m, or off", s)
	}
	return d, nil
}

func durationOrOff(d time.Duration) string {
	if d <= 0 {
		return "off"
	}
	return d.String()
}

func (c *console) cmdCd(_ context.Context, args []string) int {
	switch {
	case len(args) > 1:
		c.errorf("usage: %ccd [DIR]", prefix)
		return 1
	case len(args) == 0 || args[0] == "~":
		c.dir = ""
	default:
		c.dir = path.Clean(client.RemotePath(c.dir, args[0]))
	}
	dir := c.dir
	if dir == "" {
		dir = "~ (home)"
	}
	fmt.Fprintf(c.notes(), "dir: %s\n", dir)
	return 0
}

func (c *console) cmdFanout(_ context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(c.notes(), "fanout: %s\n", fanoutString(c.fanout))
		return 0
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		c.errorf("reading fanout %q: want a number ≥ 0", args[0])
		return 1
	}
	c.fanout = n
	fmt.Fprintf(c.notes(), "fanout: %s\n", fanoutString(n))
	return 0
}

func fanoutString(n int) string {
	if n == 0 {
		return "daemon default"
	}
	return strconv.Itoa(n)
}

func (c *console) cmdOutput(_ context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(c.notes(), "output: %s\n", c.mode)
		return 0
	}
	m, err := show.ParseMode(args[0])
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	c.mode = m
	fmt.Fprintf(c.notes(), "output: %s\n", m)
	return 0
}

func (c *console) cmdQuit(context.Context, []string) int {
	c.quit = true
	return 0
}

// notes is where the console's own remarks go: with the output, except in a piped console in a
// JSON mode, whose output is for programs.
func (c *console) notes() io.Writer {
	if !c.opt.Interactive && (c.mode == show.ModeJSON || c.mode == show.ModeJSONStream) {
		return c.errw
	}
	return c.out
}

// needTargets reports whether there are targets, complaining when there are none.
func (c *console) needTargets() bool {
	if len(c.hosts) == 0 {
		c.errorf("no targets: set some with %ctarget EXPR", prefix)
		return false
	}
	return true
}

// errInterrupted is returned by operations cut short by an interrupt.
var errInterrupted = errors.New("interrupted")

// withInterrupt returns a context cancelled by an interrupt, for the calls that are not a Run.
func (c *console) withInterrupt(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-c.interrupts:
			cancel(errInterrupted)
		case <-stop:
		}
	}()
	return ctx, func() {
		close(stop)
		<-done
		cancel(nil)
	}
}

// callErr reports an error from a daemon call and returns its status.
func (c *console) callErr(what string, ctx context.Context, err error) int {
	if errors.Is(context.Cause(ctx), errInterrupted) {
		c.errorf("%s: interrupted", what)
		c.interrupted = true
		return show.ExitInterrupted
	}
	c.errorf("%s: %v", what, err)
	return show.ExitNotRun
}

func (c *console) cmdPing(ctx context.Context, _ []string) int {
	if !c.needTargets() {
		return 1
	}
	ctx, done := c.withInterrupt(ctx)
	defer done()
	res, err := c.sess.Ping(ctx, c.hosts)
	if err != nil {
		return c.callErr("ping", ctx, err)
	}
	return c.report(show.WritePing(c.out, res, c.reportOptions()))
}

func (c *console) cmdInfo(ctx context.Context, _ []string) int {
	if !c.needTargets() {
		return 1
	}
	ctx, done := c.withInterrupt(ctx)
	defer done()
	res, err := c.sess.Info(ctx, c.hosts)
	if err != nil {
		return c.callErr("info", ctx, err)
	}
	return c.report(show.WriteInfo(c.out, res, c.reportOptions()))
}

func (c *console) cmdTime(ctx context.Context, _ []string) int {
	if !c.needTargets() {
		return 1
	}
	ctx, done := c.withInterrupt(ctx)
	defer done()
	res, err := c.sess.Time(ctx, c.hosts)
	if err != nil {
		return c.callErr("time", ctx, err)
	}
	return c.report(show.WriteTime(c.out, res, c.reportOptions()))
}

func (c *console) cmdPut(ctx context.Context, args []string) int {
	if len(args) != 2 {
		c.errorf("usage: %cput SRC DEST", prefix)
		return 1
	}
	if !c.needTargets() {
		return 1
	}
	src, err := filepath.Abs(expandHome(args[0]))
	if err != nil {
		c.errorf("put: %v", err)
		return 1
	}
	if fi, err := os.Stat(src); err != nil {
		c.errorf("put: %v", err)
		return 1
	} else if !fi.Mode().IsRegular() {
		c.errorf("put: %s is not a regular file", src)
		return 1
	}
	ctx, done := c.withInterrupt(ctx)
	defer done()
	res, err := c.sess.Put(ctx, c.hosts, client.PutRequest{LocalPath: src, Dest: client.RemotePath(c.dir, args[1])})
	if err != nil {
		return c.callErr("put", ctx, err)
	}
	return c.report(show.WriteFiles(c.out, "put", res, c.reportOptions()))
}

func (c *console) cmdGet(ctx context.Context, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		c.errorf("usage: %cget SRC [DESTDIR]", prefix)
		return 1
	}
	if !c.needTargets() {
		return 1
	}
	dir := "."
	if c.opt.GetDir != "" {
		dir = c.opt.GetDir
	}
	if len(args) == 2 {
		dir = expandHome(args[1])
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		c.errorf("get: %v", err)
		return 1
	}
	ctx, done := c.withInterrupt(ctx)
	defer done()
	res, err := c.sess.Get(ctx, c.hosts, client.GetRequest{Src: client.RemotePath(c.dir, args[0]), DestDir: dir})
	if err != nil {
		return c.callErr("get", ctx, err)
	}
	return c.report(show.WriteFiles(c.out, "get", res, c.reportOptions()))
}

func (c *console) cmdLast(ctx context.Context, args []string) int {
	n := 1
	if len(args) > 0 {
		var err error
		if n, err = strconv.Atoi(args[0]); err != nil || n < 1 {
			c.errorf("usage: %clast [N]", prefix)
			return 1
		}
	}
	ctx, done := c.withInterrupt(ctx)
	defer done()
	recs, err := c.sess.Last(ctx, n)
	var partial *client.HistoryError
	if err != nil && !errors.As(err, &partial) {
		return c.callErr("last", ctx, err)
	}
	if partial != nil {
		defer c.errorf("last: %v", partial)
	}
	if len(recs) == 0 && partial != nil {
		return 1
	}
	if len(recs) == 0 {
		fmt.Fprintln(c.notes(), "no results yet")
		return 0
	}
	// Oldest first, so the newest ends next to the prompt.
	for i := len(recs) - 1; i >= 0; i-- {
		if err := show.WriteRecord(c.out, recs[i], c.mode, c.reportOptions()); err != nil {
			c.errorf("last: %v", err)
			return 1
		}
	}
	if partial != nil {
		return 1
	}
	return 0
}

func (c *console) cmdStatus(ctx context.Context, _ []string) int {
	ctx, done := c.withInterrupt(ctx)
	defer done()
	st, err := c.sess.Status(ctx)
	if err != nil {
		return c.callErr("status", ctx, err)
	}
	fmt.Fprintf(c.out, "targets: %s (%d) · timeout %s · fanout %s · output %s\n",
		hostlist.Fold(c.hosts), len(c.hosts), durationOrOff(c.timeout), fanoutString(c.fanout), c.mode)
	if c.dir != "" {
		fmt.Fprintf(c.out, "dir: %s\n", c.dir)
	}
	if c.identity != "" {
		fmt.Fprintf(c.out, "identity: %s\n", c.identity)
	}
	return c.report(show.WriteStatus(c.out, st, c.reportOptions()))
}

// reportOptions are the options for the tables of ping, info, time, put, get and status.
func (c *console) reportOptions() show.ReportOptions {
	o := show.ReportOptions{Color: c.opt.Color, JSON: c.mode == show.ModeJSON || c.mode == show.ModeJSONStream}
	if c.onTerminal() {
		o.MaxLines, o.MaxBytes = show.TerminalMaxLines, show.TerminalMaxBytes
	}
	return o
}

// report turns a table writer's outcome into an exit status.
func (c *console) report(status int, err error) int {
	if err != nil {
		c.errorf("%v", err)
		return 1
	}
	return status
}

// local runs cmd on this machine with the console's terminal.
func (c *console) local(ctx context.Context, cmd string) int {
	if cmd == "" {
		c.errorf("usage: !CMD")
		return 1
	}
	sh := c.opt.Shell
	if sh == "" {
		sh = "/bin/sh"
	}
	ex := exec.CommandContext(ctx, sh, "-c", cmd)
	ex.Stdin = os.Stdin
	if !c.opt.Interactive {
		ex.Stdin = nil
	}
	ex.Stdout, ex.Stderr = c.out, c.errw
	err := ex.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if code := ee.ExitCode(); code >= 0 {
			return code
		}
		return show.ExitInterrupted
	}
	c.errorf("running %q here: %v", cmd, err)
	return 127
}

// expandHome replaces a leading ~/ with the home directory.
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// splitArgs splits a built-in's line into words: white space separates them, and single quotes,
// double quotes and backslashes work as in a shell.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote != 0:
			if r == quote {
				quote = 0
			} else if r == '\\' && quote == '"' {
				escaped = true
			} else {
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

func (c *console) cmdSudo(_ context.Context, args []string) int {
	if len(args) > 1 {
		c.errorf("usage: :sudo [on|off|USER]")
		return 1
	}
	if len(args) == 1 {
		switch args[0] {
		case "on":
			c.sudoOn = true
		case "off":
			c.sudoOn = false
		default:
			if args[0] != c.sudo.User {
				c.sudo.Forget() // another user's password, maybe
				c.sudo.User = args[0]
			}
			c.sudoOn = true
		}
	}
	if c.sudoOn {
		fmt.Fprintf(c.notes(), "sudo: on, as %s\n", c.sudo.User)
	} else {
		fmt.Fprintln(c.notes(), "sudo: off")
	}
	return 0
}
