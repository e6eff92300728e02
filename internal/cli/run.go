package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/console"
	"github.com/shoal-sh/shoal/internal/fsutil"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/render"
	"github.com/shoal-sh/shoal/internal/show"
)

// maxStdin bounds what `run --stdin` reads to give every host.
const maxStdin = 16 << 20

// cmdContext returns the command's context, or a background one.
func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// target is what every one-shot command starts from.
type target struct {
	cfg   *config.Config
	hosts []string
	sess  client.Session
	done  func()
}

// prepare loads the configuration, expands expr and reaches the daemon.
func (g *globals) prepare(ctx context.Context, rf *runFlags, expr string) (*target, error) {
	if err := g.check(rf); err != nil {
		return nil, err
	}
	cfg, err := g.configForRun()
	if err != nil {
		return nil, err
	}
	if err := g.withSSHOverrides(cfg, rf); err != nil {
		return nil, err
	}
	var sess client.Session
	done := func() {}
	var sets map[string][]string
	if usesHistory(expr) {
		// @failed and the like name hosts of the last run: ask the daemon's history first.
		if sess, done, err = g.sessionWith(ctx, rf.noDaemon); err != nil {
			return nil, err
		}
		if sets, err = historySets(ctx, sess); err != nil {
			done()
			return nil, err
		}
	}
	fail := func(err error) (*target, error) {
		done()
		return nil, err
	}
	hosts, err := cfg.TargetsWith(expr, g.stdin, sets)
	if err != nil {
		return fail(fmt.Errorf("reading targets: %w", err))
	}
	if hosts, err = rf.excluded(cfg, hosts); err != nil {
		return fail(err)
	}
	if len(hosts) == 0 {
		return fail(fmt.Errorf("reading targets: %q names no hosts", expr))
	}
	if sess == nil {
		if sess, done, err = g.sessionWith(ctx, rf.noDaemon); err != nil {
			return nil, err
		}
	}
	return &target{cfg: cfg, hosts: hosts, sess: sess, done: done}, nil
}

// reportOptions are how the tables of ping, info, time, put and get are written.
func (g *globals) reportOptions(rf *runFlags, cfg *config.Config) show.ReportOptions {
	m, _ := rf.mode(cfg)
	return show.ReportOptions{
		Color: render.ColorEnabled(g.stdout, os.Getenv),
		JSON:  m == show.ModeJSON || m == show.ModeJSONStream,
	}
}

// argsUsage is cobra's argument check with the command's usage line as its message, which tells
// a person what to type where "requires at least 2 arg(s), only received 1" does not.
func argsUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return fmt.Errorf("usage: %s", strings.TrimSuffix(cmd.UseLine(), " [flags]"))
		}
		return nil
	}
}

// flagsAfterTargets parses shoal's flags written between TARGETS and "--", and drops the "--".
// Without a "--", everything after TARGETS is the command, its own flags included.
func flagsAfterTargets(cmd *cobra.Command, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	if args[1] == "--" {
		return append(args[:1:1], args[2:]...), nil
	}
	if !strings.HasPrefix(args[1], "-") {
		return args, nil
	}
	dash := slices.Index(args[1:], "--") + 1
	if dash == 0 && cmd.Flags().Parse(args[1:]) == nil && len(cmd.Flags().Args()) == 0 {
		return args[:1], nil // only shoal's flags: shoal run @web --script ./fix.sh
	}
	if dash == 0 {
		return nil, fmt.Errorf("%q after TARGETS: end shoal's flags with -- before the command, as in: shoal %s %s -o json -- COMMAND", args[1], cmd.Name(), args[0])
	}
	fs := cmd.Flags()
	if err := fs.Parse(args[1:dash]); err != nil {
		return nil, fmt.Errorf("between TARGETS and --: %w", err)
	}
	if rest := fs.Args(); len(rest) > 0 {
		return nil, fmt.Errorf("between TARGETS and --: %q is not a flag", rest[0])
	}
	return append(args[:1:1], args[dash+1:]...), nil
}

// status turns an exit status into the command's error.
func status(code int) error {
	if code == 0 {
		return nil
	}
	return exitError{code}
}

func newRunCmd(g *globals, rf *runFlags) *cobra.Command {
	var ro rolloutFlags
	var outDir, errDir, diffRef string
	var diff bool
	var scriptFile string
	cmd := &cobra.Command{
		Use:   "run TARGETS [--] COMMAND...",
		Short: "Run a command on every target and exit with the worst status",
		Long: `Run COMMAND with bash -c on every host of TARGETS and show the results.

The exit status is 0 when every host ran the command and it exited 0; else the
highest exit code of the command on any host (128+N for a signal N); and 255
when any host could not run it at all (unreachable, refused, timed out, skipped by
--max-fail or a failed --canary).
Ctrl-C cancels the command on every host.

With --script FILE, the local FILE is sent to every host and run there instead, with
ARGS, by its #! line (or bash), in the command's directory; it is removed when it ends.
With --pty the command gets a terminal, and its stdout and stderr arrive merged as stdout.`,
		Example: `  shoal run 'web[01-20]' -- date
  shoal run @db -o stream -- tail -n 20 /var/log/syslog
  shoal run @all --json -- uptime | jq .
  shoal run @web --script ./fix.sh -- --dry-run`,
		Args: argsUsage(func(cmd *cobra.Command, args []string) error {
			if scriptFile != "" {
				return cobra.MinimumNArgs(1)(cmd, args) // shoal run --script FILE TARGETS
			}
			return cobra.MinimumNArgs(2)(cmd, args)
		}),
		ValidArgsFunction: targetArgs(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Flags stop at TARGETS (so the command's own flags are left alone), which keeps a "--".
			// Flags between TARGETS and a "--" are shoal's too: shoal run @web -o json -- uptime.
			args, err := flagsAfterTargets(cmd, args)
			if err != nil {
				return err
			}
			var script []byte
			if scriptFile != "" {
				if script, err = readScript(scriptFile); err != nil {
					return err
				}
			} else if len(args) < 2 {
				return errors.New("no command given; usage: shoal run TARGETS [--] COMMAND")
			}
			if rf.stdin && slices.Contains(strings.FieldsFunc(args[0], func(r rune) bool { return r == ',' || r == ' ' }), "-") {
				return errors.New("standard input cannot hold both the target names (-) and the command's input (--stdin)")
			}
			ctx := cmdContext(cmd)
			t, err := g.prepare(ctx, rf, args[0])
			if err != nil {
				return err
			}
			defer t.done()
			mode, err := rf.mode(t.cfg)
			if err != nil {
				return err
			}
			if t.hosts, err = ro.subset(t.hosts); err != nil {
				return err
			}
			pace, err := ro.rollout()
			if err != nil {
				return err
			}
			timeout, fanout := rf.settings(cmd, t.cfg)
			env, err := rf.environment(t.cfg)
			if err != nil {
				return err
			}
			req := client.RunRequest{
				Rollout:  pace,
				Hosts:    t.hosts,
				Command:  strings.Join(args[1:], " "),
				Timeout:  timeout,
				Fanout:   fanout,
				Dir:      rf.dir,
				Identity: identity(t.cfg),
				Env:      env.vars,
				Masked:   env.masked,
				Subst:    rf.subst,
				Login:    rf.login || t.cfg.Run.LoginShell,
				PTY:      rf.terminal(g.stdout),

				KillGrace: t.cfg.Run.KillGrace.Std(),
			}
			if script != nil {
				req.Script, req.ScriptName, req.Args = script, filepath.Base(scriptFile), args[1:]
				req.Command = strings.Join(append([]string{scriptFile}, args[1:]...), " ")
			}
			if t.cfg.Console.RequireIdentity && req.Identity == "" {
				return errors.New("the configuration requires an identity: set SHOAL_IDENTITY")
			}
			if on, user := rf.sudoSettings(t.cfg); on {
				su := &console.Sudo{User: user, Notes: g.stderr}
				if err := su.Prepare(ctx, t.sess, &req); err != nil {
					return err
				}
			}
			if rf.stdin {
				b, err := io.ReadAll(io.LimitReader(g.stdin, maxStdin+1))
				if err != nil {
					return fmt.Errorf("reading standard input: %w", err)
				}
				if len(b) > maxStdin {
					return fmt.Errorf("reading standard input: more than %d bytes", maxStdin)
				}
				req.Stdin = b
			}
			view := show.View{
				Out:          g.stdout,
				Mode:         mode,
				NoPrefix:     rf.noPrefix,
				Color:        render.ColorEnabled(g.stdout, os.Getenv),
				Summary:      true,
				SummaryTo:    g.stderr,
				SummaryColor: render.ColorEnabled(g.stderr, os.Getenv),
				OutDir:       outDir,
				ErrDir:       errDir,
				Diff:         diff || diffRef != "",
				DiffRef:      diffRef,
			}
			if view.Diff && mode != show.ModeGather && mode != show.ModeStream {
				return errors.New("--diff shows diffs in the text output modes (gather, stream), not in JSON")
			}
			if diffRef != "" && !slices.Contains(t.hosts, diffRef) {
				return fmt.Errorf("--diff-ref %s: not one of the targets", diffRef)
			}
			if err := view.MakeOutDirs(); err != nil {
				return err
			}
			if render.IsTerminal(g.stdout) {
				view.Progress, view.Width = true, render.TerminalWidth(g.stdout)
			}
			intr, stop := interrupts()
			defer stop()
			out, err := show.Run(ctx, t.sess, req, view, intr)
			if err != nil {
				if out == nil {
					return err
				}
				fmt.Fprintf(g.stderr, "shoal: %v\n", err)
			}
			return status(show.ExitStatus(out.Results))
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&scriptFile, "script", "", "send the local `FILE` to every host and run it there with the ARGS after --, instead of a command")
	cmd.Flags().BoolVarP(&rf.stdin, "stdin", "i", false, "give this command's standard input to the command on every host")
	ro.add(cmd.Flags())
	cmd.Flags().StringVar(&outDir, "outdir", "", "write each host's stdout to DIR/HOST and its result (JSON) to DIR/HOST.status, and stderr to DIR/HOST.err, as results arrive")
	cmd.Flags().StringVar(&errDir, "errdir", "", "write each host's stderr to DIR/HOST.err (instead of the --outdir)")
	cmd.Flags().BoolVar(&diff, "diff", false, "after the results, show each minority group's output as a unified diff against the largest group's")
	cmd.Flags().StringVar(&diffRef, "diff-ref", "", "with --diff: diff against the output of HOST instead of the largest group")
	return cmd
}

// maxScript bounds what --script sends to every host.
const maxScript = 16 << 20

// readScript reads a --script file.
func readScript(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("reading --script: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading --script %s: not a regular file", name)
	}
	if fi.Size() > maxScript {
		return nil, fmt.Errorf("reading --script %s: more than %d bytes", name, maxScript)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading --script: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("reading --script %s: the file is empty", name)
	}
	return b, nil
}

// interruptContext returns ctx cancelled by SIGINT.
func interruptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt)
}

// newTableCmd builds ping, info and time: a call for every target, written as a table.
func newTableCmd(g *globals, rf *runFlags, use, short string, call func(ctx context.Context, t *target, w io.Writer, opt show.ReportOptions) (int, error)) *cobra.Command {
	return &cobra.Command{
		Use:               use + " TARGETS",
		Short:             short,
		Args:              argsUsage(cobra.MinimumNArgs(1)),
		ValidArgsFunction: targetArgs(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := interruptContext(cmdContext(cmd))
			defer cancel()
			// Several arguments are one expression, as in the console: shoal ping @web '!web07'.
			t, err := g.prepare(ctx, rf, strings.Join(args, " "))
			if err != nil {
				return err
			}
			defer t.done()
			code, err := call(ctx, t, g.stdout, g.reportOptions(rf, t.cfg))
			if err != nil {
				return err
			}
			return status(code)
		},
	}
}

func newPingCmd(g *globals, rf *runFlags) *cobra.Command {
	return newTableCmd(g, rf, "ping", "Check every target's agent and show round trips",
		func(ctx context.Context, t *target, w io.Writer, opt show.ReportOptions) (int, error) {
			res, err := t.sess.Ping(ctx, t.hosts)
			if err != nil {
				return 0, fmt.Errorf("pinging: %w", err)
			}
			return show.WritePing(w, res, opt)
		})
}

func newInfoCmd(g *globals, rf *runFlags) *cobra.Command {
	return newTableCmd(g, rf, "info", "Describe every target: OS, kernel, CPUs, memory, load, uptime, agent",
		func(ctx context.Context, t *target, w io.Writer, opt show.ReportOptions) (int, error) {
			res, err := t.sess.Info(ctx, t.hosts)
			if err != nil {
				return 0, fmt.Errorf("asking for info: %w", err)
			}
			return show.WriteInfo(w, res, opt)
		})
}

func newTimeCmd(g *globals, rf *runFlags) *cobra.Command {
	cmd := newTableCmd(g, rf, "time", "Show every target's clock offset, sorted, outliers marked",
		func(ctx context.Context, t *target, w io.Writer, opt show.ReportOptions) (int, error) {
			res, err := t.sess.Time(ctx, t.hosts)
			if err != nil {
				return 0, fmt.Errorf("reading clocks: %w", err)
			}
			return show.WriteTime(w, res, opt)
		})
	cmd.Long = fmt.Sprintf(`Show each target's clock offset from the daemon's clock, corrected for the round
trip, sorted from most behind to most ahead. Hosts further than %s (plus half
their round trip) from the fleet's median are marked as outliers.`, render.FormatDuration(show.OutlierThreshold))
	return cmd
}

// lostDaemon turns a put or get whose daemon connection broke into an error result for
// every host, as a run reports it: the report (and --json) still has a line per host,
// and the exit status is 255. Other errors pass through.
func lostDaemon(hosts []string, res []client.FileResult, err error) ([]client.FileResult, error) {
	if err == nil || !errors.Is(err, client.ErrClosed) {
		return res, err
	}
	res = make([]client.FileResult, len(hosts))
	for i, h := range hosts {
		res[i] = client.FileResult{Host: h, Status: proto.StatusError, Err: err.Error()}
	}
	return res, nil
}

func newPutCmd(g *globals, rf *runFlags) *cobra.Command {
	var mode string
	var recursive bool
	cmd := &cobra.Command{
		Use:   "put TARGETS SRC DEST",
		Short: "Copy a local file (or with -r a directory tree) to every target (mode kept)",
		Long: `Copy the local file SRC to DEST on every target. DEST is absolute or relative to
the remote user's home (or to --dir), where commands start. The write is atomic (temporary file, then rename) and
keeps SRC's mode unless --mode is given.

With -r, SRC is a directory and DEST becomes a copy of it: directories, files and
symbolic links (copied as links), each with its mode and modification time, the
whole tree sent once to each host as one archive. Each file is replaced atomically;
files already in DEST that SRC lacks are left alone.`,
		Args:              argsUsage(cobra.ExactArgs(3)),
		ValidArgsFunction: targetArgs(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			fi, err := os.Stat(src)
			if err != nil {
				return fmt.Errorf("reading %s: %w", args[1], err)
			}
			switch {
			case recursive && !fi.IsDir():
				return fmt.Errorf("reading %s: put -r copies a directory", args[1])
			case !recursive && fi.IsDir():
				return fmt.Errorf("reading %s: a directory (copy it with put -r)", args[1])
			case !recursive && !fi.Mode().IsRegular():
				return fmt.Errorf("reading %s: not a regular file", args[1])
			case recursive && mode != "":
				return errors.New("put -r keeps each file's mode: --mode is for one file")
			}
			req := client.PutRequest{LocalPath: src, Dest: client.RemotePath(rf.dir, args[2])}
			if recursive {
				tree, err := packTree(src)
				if err != nil {
					return err
				}
				defer os.Remove(tree)
				req.LocalPath, req.Tree = tree, true
			}
			if mode != "" {
				m, err := strconv.ParseUint(mode, 8, 32)
				if err != nil || m > 0o7777 {
					return fmt.Errorf("reading --mode %q: want an octal mode such as 0644", mode)
				}
				req.Mode = os.FileMode(m)
			}
			ctx, cancel := interruptContext(cmdContext(cmd))
			defer cancel()
			t, err := g.prepare(ctx, rf, args[0])
			if err != nil {
				return err
			}
			defer t.done()
			res, err := t.sess.Put(ctx, t.hosts, req)
			if res, err = lostDaemon(t.hosts, res, err); err != nil {
				return fmt.Errorf("copying %s: %w", args[1], err)
			}
			code, err := show.WriteFiles(g.stdout, "put", res, g.reportOptions(rf, t.cfg))
			if err != nil {
				return err
			}
			return status(code)
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "", "file mode on the targets, in octal (default: SRC's mode)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy the directory SRC and everything in it")
	return cmd
}

// packTree writes the tree at src to a private temporary file (fsutil.Pack) and returns its path;
// the caller removes it.
func packTree(src string) (string, error) {
	f, err := os.CreateTemp("", ".shoal-tree-*.tar")
	if err != nil {
		return "", fmt.Errorf("packing %s: %w", src, err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = fsutil.Pack(bw, src)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("packing %s: %w", src, err)
	}
	return f.Name(), nil
}

func newGetCmd(g *globals, rf *runFlags) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:               "get TARGETS SRC DESTDIR",
		Short:             "Copy a file (or with -r a directory tree) from every target into DESTDIR/<host>/",
		Args:              argsUsage(cobra.ExactArgs(3)),
		ValidArgsFunction: targetArgs(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[2])
			if err != nil {
				return err
			}
			ctx, cancel := interruptContext(cmdContext(cmd))
			defer cancel()
			t, err := g.prepare(ctx, rf, args[0])
			if err != nil {
				return err
			}
			defer t.done()
			res, err := t.sess.Get(ctx, t.hosts, client.GetRequest{Src: client.RemotePath(rf.dir, args[1]), DestDir: dir, Tree: recursive})
			if res, err = lostDaemon(t.hosts, res, err); err != nil {
				return fmt.Errorf("copying %s: %w", args[1], err)
			}
			code, err := show.WriteFiles(g.stdout, "get", res, g.reportOptions(rf, t.cfg))
			if err != nil {
				return err
			}
			return status(code)
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "SRC is a directory: copy its tree (modes, times and symbolic links kept) into DESTDIR/<host>/")
	return cmd
}

func newLastCmd(g *globals, rf *runFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "last [N]",
		Short: "Show the results of your last N commands again (default 1)",
		Args:  argsUsage(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 1
			if len(args) == 1 {
				var err error
				if n, err = strconv.Atoi(args[0]); err != nil || n < 1 {
					return fmt.Errorf("reading N %q: want a number ≥ 1", args[0])
				}
			}
			cfg, err := g.configForRun()
			if err != nil {
				return err
			}
			ctx, cancel := interruptContext(cmdContext(cmd))
			defer cancel()
			sess, done, err := g.sessionWith(ctx, rf.noDaemon)
			if err != nil {
				return err
			}
			defer done()
			recs, err := sess.Last(ctx, n)
			var partial *client.HistoryError
			if err != nil && !errors.As(err, &partial) {
				return fmt.Errorf("reading the last results: %w", err)
			}
			if len(recs) == 0 {
				if partial != nil {
					return partial
				}
				fmt.Fprintln(g.stderr, "no results yet")
				return nil
			}
			mode, err := rf.mode(cfg)
			if err != nil {
				return err
			}
			opt := g.reportOptions(rf, cfg)
			for i := len(recs) - 1; i >= 0; i-- {
				if err := show.WriteRecord(g.stdout, recs[i], mode, opt); err != nil {
					return err
				}
			}
			if partial != nil {
				return partial
			}
			return nil
		},
	}
}
