package cli

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/console"
	"github.com/shoal-sh/shoal/internal/render"
	"github.com/shoal-sh/shoal/internal/show"
	"github.com/shoal-sh/shoal/internal/sshx"
)

// runFlags are the flags shared by the console and the one-shot commands.
type runFlags struct {
	fanout  int
	timeout time.Duration
	dir     string // --dir: where commands start on each host; empty = home

	exclude     []string // -x EXPR
	excludeTags []string // -X TAG
	loginUser   string   // -l USER
	sshOptions  []string // -o KEY=VALUE
	noPrefix    bool     // -N
	output      string
	json        bool
	noDaemon    bool     // --no-daemon: serve the engine in this process
	stdin       bool     // run: give our stdin to the command on every host
	banner      string   // --demo-banner: printed before the console's first prompt
	env         []string // --env NAME=VALUE, repeatable
	envFile     string   // --env-file: secret NAME=VALUE lines
	subst       bool     // --subst: expand %h and %i in the command
	sudo        bool     // --sudo
	sudoUser    string   // --sudo-user
	login       bool     // --login
	pty         bool     // --pty
}

// addConsoleCommands makes the root command open the console (`shoal`, `shoal TARGETS`), adds the
// flags the console and the one-shot commands share, and adds those commands: run, ping, info,
// time, put, get, last, demo and man.
func addConsoleCommands(root *cobra.Command, g *globals) {
	rf := &runFlags{}
	pf := root.PersistentFlags()
	pf.DurationVar(&rf.timeout, "timeout", 0, "stop a command that runs longer than this on a host (default from the config; 0 for none)")
	pf.StringVar(&rf.dir, "dir", "", "start commands in DIR on every host, and take relative put/get paths from it (absolute or relative to the remote home; default the home directory)")
	pf.VarP(outputValue{rf}, "output", "o", "output `MODE`: gather, stream or json (default from the config); or an ssh option for this run, as ssh -o takes it (StrictHostKeyChecking=no; repeatable)")
	pf.BoolVar(&rf.json, "json", false, "write JSON lines (the same as -o json; with -o stream, events as they happen)")
	pf.BoolVar(&rf.noDaemon, "no-daemon", false, "run the engine in this process instead of through the resident daemon")
	pf.StringArrayVar(&rf.env, "env", nil, "set NAME=VALUE in the environment of the command on every host (repeatable; no AcceptEnv needed)")
	pf.StringVar(&rf.envFile, "env-file", "", "set the NAME=VALUE lines of FILE in the command's environment; their values show as *** in the audit log")
	pf.BoolVar(&rf.sudo, "sudo", false, "run the command through sudo on every host (the password is asked once, only if a host needs it; $SHOAL_ASKPASS names a program that prints it)")
	pf.StringVar(&rf.sudoUser, "sudo-user", "", "with sudo, run as `USER` (default root; implies --sudo)")
	pf.BoolVar(&rf.pty, "pty", false, "give the command a pseudo-terminal on every host, of this terminal's size and $TERM (its stdout and stderr then arrive merged, as stdout)")
	pf.BoolVar(&rf.login, "login", false, "run commands with a login shell (bash -l -c), so the profiles set PATH as when logging in")
	pf.BoolVar(&rf.subst, "subst", false, "expand %h (the host's name), %i (its SHOAL_INDEX) and %% in the command on each host")
	root.Flags().StringVar(&rf.banner, "demo-banner", "", "text shown before the first prompt")
	root.Flags().MarkHidden("demo-banner")
	addHostFlags(root.Flags(), rf, true)
	root.Flags().StringVar(&g.demoDir, "demo-dir", "", "the demo's directory: each local host gets a home there, and names outside the configuration are refused")
	root.Flags().MarkHidden("demo-dir")

	root.Use = "shoal [TARGETS]"
	root.Long = `shoal runs shell commands on many machines at once.

With no subcommand it opens the console on TARGETS (a target expression such as
web[01-20], @tag, a,b,c or @all): type a command to run it on every target, or
:help for the built-ins. Try it with no SSH at all: shoal demo.`
	root.Args = cobra.ArbitraryArgs
	root.ValidArgsFunction = targetArgs(g, 1<<30)
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if g.version {
			writeVersion(g.stdout)
			return nil
		}
		if cmd.ArgsLenAtDash() != 0 { // `shoal -- NAME` targets NAME whatever it looks like
			if err := g.checkNotTypo(root, args); err != nil {
				return err
			}
		}
		return g.runConsole(cmd, rf, strings.Join(args, " "), rf.banner)
	}

	run, demo := newRunCmd(g, rf), newDemoCmd(g, rf)
	addHostFlags(run.Flags(), rf, true)
	demo.Flags().IntVarP(&rf.fanout, "fanout", "f", 0, "connect to at most this many hosts at once")
	root.AddCommand(run, demo, newLastCmd(g, rf), newManCmd(root))
	for _, c := range []*cobra.Command{newPingCmd(g, rf), newInfoCmd(g, rf), newTimeCmd(g, rf), newPutCmd(g, rf), newGetCmd(g, rf)} {
		addHostFlags(c.Flags(), rf, false)
		root.AddCommand(c)
	}
}

// checkNotTypo refuses `shoal verison`: a first word that is no subcommand, looks like a word
// (no brackets, dots, commas, @ or operators) and is no host the configuration or ssh_config
// names is far more likely a mistyped command than a host to open the console on, and
// taking it for a host would look it up in DNS and open a console that shows nothing.
func (g *globals) checkNotTypo(root *cobra.Command, args []string) error {
	if len(args) == 0 || !looksLikeWord(args[0]) {
		return nil
	}
	word := args[0]
	sshConfig := g.sshConfig
	if cfg, err := g.configForRun(); err == nil {
		if slices.Contains(cfg.HostNames(), word) {
			return nil
		}
		if sshConfig == "" {
			sshConfig = config.ExpandHome(cfg.SSH.Config)
		}
	}
	if sshx.NamesHost(sshConfig, word) {
		return nil
	}
	if root.SuggestionsMinimumDistance <= 0 {
		root.SuggestionsMinimumDistance = 2 // cobra's default, set only when it suggests itself
	}
	msg := fmt.Sprintf("unknown command %q", word)
	if sugg := root.SuggestionsFor(word); len(sugg) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(sugg, " or "))
	} else {
		msg += " (shoal help lists the commands)."
	}
	return fmt.Errorf("%s To target a host of that name: shoal -- %s", msg, strings.Join(args, " "))
}

// looksLikeWord reports whether s could be a mistyped command: letters, digits, - and _,
// starting with a letter.
func looksLikeWord(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '_'):
		default:
			return false
		}
	}
	return s != ""
}

// mode returns the output mode the flags and the configuration ask for.
func (rf *runFlags) mode(cfg *config.Config) (show.Mode, error) {
	name := rf.output
	if name == "" && cfg != nil {
		name = cfg.Console.Output
	}
	if name == "" {
		name = "gather"
	}
	m, err := show.ParseMode(name)
	if err != nil {
		return 0, err
	}
	if rf.json {
		if m == show.ModeStream {
			return show.ModeJSONStream, nil
		}
		return show.ModeJSON, nil
	}
	return m, nil
}

// settings returns the timeout and fan-out the flags and the configuration ask for.
func (rf *runFlags) settings(cmd *cobra.Command, cfg *config.Config) (timeout time.Duration, fanout int) {
	timeout, fanout = rf.timeout, rf.fanout
	if cfg != nil {
		if !cmd.Flags().Changed("timeout") {
			timeout = cfg.CommandTimeout.Std()
		}
		if !cmd.Flags().Changed("fanout") {
			fanout = cfg.Fanout
		}
	}
	return timeout, fanout
}

// identity returns who is at the keyboard when the configuration requires it: $SHOAL_IDENTITY, or
// empty for the console to ask.
func identity(cfg *config.Config) string {
	if cfg == nil || !cfg.Console.RequireIdentity {
		return ""
	}
	return strings.TrimSpace(os.Getenv("SHOAL_IDENTITY"))
}

// runConsole opens the console on the hosts of expr; banner is printed before the first prompt.
func (g *globals) runConsole(cmd *cobra.Command, rf *runFlags, expr, banner string) error {
	ctx := cmdContext(cmd)
	if err := g.check(rf); err != nil {
		return err
	}
	cfg, err := g.configForRun()
	if err != nil {
		return err
	}
	var hosts []string
	if expr != "" {
		if hosts, err = cfg.Targets(expr, g.stdin); err != nil {
			return fmt.Errorf("reading targets: %w", err)
		}
	}
	if hosts, err = rf.excluded(cfg, hosts); err != nil {
		return err
	}
	mode, err := rf.mode(cfg)
	if err != nil {
		return err
	}
	if err := g.withSSHOverrides(cfg, rf); err != nil {
		return err
	}
	sess, done, err := g.sessionWith(ctx, rf.noDaemon)
	if err != nil {
		return err
	}
	defer done()

	interactive := isTTY(g.stdin) && isTTY(g.stdout)
	timeout, fanout := rf.settings(cmd, cfg)
	env, err := rf.environment(cfg)
	if err != nil {
		return err
	}
	sudoOn, sudoUser := rf.sudoSettings(cfg)
	expand := func(e string) ([]string, error) { return cfg.Targets(e, nil) }
	if g.demoDir != "" {
		expand = func(e string) ([]string, error) {
			hosts, err := cfg.Targets(e, nil)
			if err != nil {
				return nil, err
			}
			return hosts, demoOnly(cfg, hosts)
		}
	}
	opt := console.Options{
		Session:         sess,
		Hosts:           hosts,
		Expand:          expand,
		HostNames:       cfg.HostNames,
		TagNames:        cfg.TagNames,
		In:              g.stdin,
		Out:             g.stdout,
		Err:             g.stderr,
		Interactive:     interactive,
		RequireIdentity: cfg.Console.RequireIdentity,
		Identity:        identity(cfg),
		Timeout:         timeout,
		Fanout:          fanout,
		Dir:             rf.dir,
		GetDir:          demoGetDir(g.demoDir),
		Env:             env.vars,
		Masked:          env.masked,
		Subst:           rf.subst,
		Sudo:            sudoOn,
		Login:           rf.login || cfg.Run.LoginShell,
		PTY:             rf.terminal(g.stdout),
		SudoUser:        sudoUser,
		KillGrace:       cfg.Run.KillGrace.Std(),
		Mode:            mode,
		NoPrefix:        rf.noPrefix,
		Color:           render.ColorEnabled(g.stdout, os.Getenv),
		Banner:          banner,
	}
	if interactive {
		opt.HistoryFile, opt.HistorySize = historyFile(), cfg.Console.HistorySize
	}
	status, err := console.Run(ctx, opt)
	if err != nil {
		return err
	}
	if status != 0 {
		return exitError{status}
	}
	return nil
}

// historyFile is where the console keeps its history: $XDG_STATE_HOME/shoal/history.
func historyFile() string {
	return filepath.Join(config.DefaultPaths().StateDir, "history")
}

// configForRun loads the configuration named by --config, or the default files.
func (g *globals) configForRun() (*config.Config, error) {
	return g.loadConfig()
}

// isTTY reports whether f (an *os.File, say) is a terminal.
func isTTY(f any) bool {
	fd, ok := f.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(fd.Fd()))
}

// interrupts returns a channel that receives on SIGINT, and a stop function; while it is active
// SIGINT does not kill the process.
func interrupts() (<-chan struct{}, func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	out := make(chan struct{}, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-sigs:
				// Wait for the interrupt to be taken, so a quick second Ctrl-C is not lost.
				select {
				case out <- struct{}{}:
				case <-stop:
					return
				}
			case <-stop:
				return
			}
		}
	}()
	return out, func() {
		signal.Stop(sigs)
		close(stop)
		<-done
	}
}
