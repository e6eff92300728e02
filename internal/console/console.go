// Package console is shoal's interactive shell: it reads lines, runs built-ins itself and sends every
// other line to the daemon as a command for the current targets.
package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/hostlist"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/render"
	"github.com/shoal-sh/shoal/internal/show"
)

// Options configure a console.
type Options struct {
	// Session reaches the daemon. The console does not close it.
	Session client.Session
	// Hosts are the first targets, already expanded; empty is allowed.
	Hosts []string
	// Expand turns a target expression into host names; nil means hostlist.Expand without tags.
	Expand func(expr string) ([]string, error)
	// HostNames and TagNames list what completion offers; either may be nil.
	HostNames func() []string
	TagNames  func() []string

	In  io.Reader
	Out io.Writer
	Err io.Writer
	// Interactive uses a line editor on the terminal (os.Stdin and os.Stdout); otherwise lines are
	// read from In one by one and the console exits at its end with the worst status.
	Interactive bool
	// HistoryFile keeps the interactive history across sessions; empty keeps it in memory.
	HistoryFile string
	// HistorySize is how many lines HistoryFile keeps; 0 keeps them all.
	HistorySize int

	// RequireIdentity asks who the person is before the first prompt, unless Identity is set.
	RequireIdentity bool
	Identity        string

	Timeout time.Duration // per command and host; 0 means none
	Fanout  int           // 0 means the daemon's default
	Dir     string        // where commands start on each host; empty means home
	GetDir  string        // where :get puts files when no DESTDIR is given; empty means "."
	// Env, Masked and Subst are the variables of every command, the ones among them that
	// are secret, and whether %h and %i are expanded (see client.RunRequest).
	Env    map[string]string
	Masked []string
	Subst  bool
	// Sudo runs commands through sudo from the start (:sudo on|off switches); SudoUser is
	// whom as, empty meaning root.
	Sudo     bool
	SudoUser string
	// Login runs commands with a login shell.
	Login bool
	// PTY gives every command a pseudo-terminal; nil gives none.
	PTY *proto.PTY
	// KillGrace is how long a stopped command has between SIGTERM and SIGKILL; 0: SIGKILL at once.
	KillGrace time.Duration
	Mode      show.Mode
	// NoPrefix writes stream mode's lines without the host column (clush -N).
	NoPrefix bool
	Color    bool
	// Banner is printed before the first prompt when interactive.
	Banner string
	// Shell runs `!cmd` lines locally; empty means /bin/sh.
	Shell string

	// interrupts replaces the process's SIGINT in tests.
	interrupts <-chan os.Signal
}

// prefix starts every built-in.
const prefix = ':'

// console is the state of one running console.
type console struct {
	opt  Options
	sess client.Session
	out  io.Writer
	errw io.Writer

	hosts    []string
	timeout  time.Duration
	fanout   int
	dir      string // remote working directory; empty means home
	mode     show.Mode
	identity string
	pace     proto.Rollout // :batch, :maxfail, :canary
	lr       lineReader    // where lines and answers come from
	sudoOn   bool          // commands go through sudo (:sudo on|off)
	sudo     *Sudo         // whom as, and the password once given

	// last holds the previous command's results, for retargeting.
	last  []proto.HostResult
	worst int
	quit  bool
	// interrupted reports whether the last line was cut short by an interrupt.
	interrupted bool
	interrupts  chan struct{}
}

// Run reads lines and runs them until the input ends or the person quits. It returns the worst exit
// status of the commands run (see ExitStatus); interactive consoles return 0 after a quit.
func Run(ctx context.Context, opt Options) (int, error) {
	if opt.Session == nil {
		return 1, errors.New("starting console: no session")
	}
	if opt.Out == nil {
		opt.Out = io.Discard
	}
	if opt.Err == nil {
		opt.Err = opt.Out
	}
	if opt.In == nil {
		opt.In = strings.NewReader("")
	}
	c := &console{
		opt:        opt,
		sess:       opt.Session,
		out:        opt.Out,
		errw:       opt.Err,
		hosts:      sortedCopy(opt.Hosts),
		timeout:    opt.Timeout,
		fanout:     opt.Fanout,
		dir:        opt.Dir,
		mode:       opt.Mode,
		identity:   opt.Identity,
		interrupts: make(chan struct{}, 1),
		sudoOn:     opt.Sudo,
		sudo:       newSudo(opt.SudoUser, opt.Err),
	}

	// SIGINT never kills the console: it cancels the running command, if any.
	sigs := opt.interrupts
	if sigs == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt)
		defer signal.Stop(ch)
		sigs = ch
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-sigs:
				// Wait for the interrupt to be taken, so a quick second Ctrl-C is not lost.
				select {
				case c.interrupts <- struct{}{}:
				case <-stop:
					return
				}
			case <-stop:
				return
			}
		}
	}()
	defer wg.Wait()
	defer close(stop)

	var lr lineReader
	if opt.Interactive {
		lr = newEditor(c, opt.HistoryFile, opt.HistorySize)
	} else {
		sr := &scanReader{sc: bufio.NewScanner(opt.In), echo: c}
		if f, ok := opt.In.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
			sr.promptTo = opt.Err
		}
		lr = sr
	}
	c.lr = lr
	if err := c.askIdentity(lr); err != nil {
		return 1, err
	}
	if opt.Interactive && opt.Banner != "" {
		fmt.Fprintln(c.out, opt.Banner)
	}
	for !c.quit {
		if err := ctx.Err(); err != nil {
			return c.worst, nil
		}
		line, err := lr.ReadLine(c.prompt())
		switch {
		case errors.Is(err, errPromptInterrupt):
			continue
		case errors.Is(err, io.EOF):
			if opt.Interactive {
				fmt.Fprintln(c.out)
				return 0, nil
			}
			return c.worst, nil
		case err != nil:
			return 1, fmt.Errorf("reading a command: %w", err)
		}
		c.drainInterrupts()
		c.interrupted = false
		status := c.line(ctx, line)
		c.worst = max(c.worst, status)
		if !opt.Interactive && c.interrupted {
			return max(c.worst, show.ExitInterrupted), nil
		}
	}
	if opt.Interactive {
		return 0, nil
	}
	return c.worst, nil
}

// drainInterrupts forgets interrupts that came while no command ran.
func (c *console) drainInterrupts() {
	for {
		select {
		case <-c.interrupts:
		default:
			return
		}
	}
}

// askIdentity asks who is at the console when the configuration requires it.
func (c *console) askIdentity(lr lineReader) error {
	if !c.opt.RequireIdentity || c.identity != "" {
		return nil
	}
	if !c.opt.Interactive {
		return errors.New("the configuration requires an identity: set SHOAL_IDENTITY")
	}
	for range 5 {
		name, err := lr.Ask("Who are you? (name for the audit log) ")
		if err != nil {
			return fmt.Errorf("asking for an identity: %w", err)
		}
		if name = strings.TrimSpace(name); name != "" {
			c.identity = name
			return nil
		}
	}
	return errors.New("asking for an identity: no answer")
}

// prompt returns the prompt: the folded targets and their count.
func (c *console) prompt() string {
	folded := hostlist.Fold(c.hosts)
	if folded == "" {
		folded = "(no targets)"
	}
	if utf8.RuneCountInString(folded) > 48 {
		r := []rune(folded)
		folded = string(r[:47]) + "…"
	}
	where := ""
	if c.dir != "" {
		where = " " + c.dir
	}
	return "shoal " + render.Paint(c.opt.Color, render.SGRBold, folded) + fmt.Sprintf(" (%d)%s> ", len(c.hosts), where)
}

// line runs one line and returns its exit status.
func (c *console) line(ctx context.Context, line string) int {
	line = strings.TrimSpace(line)
	switch {
	case line == "" || strings.HasPrefix(line, "#"):
		return 0
	case line[0] == prefix:
		return c.builtin(ctx, line[1:])
	case line[0] == '!':
		return c.local(ctx, strings.TrimSpace(line[1:]))
	}
	return c.run(ctx, line)
}

// run sends command to every target and shows the results.
func (c *console) run(ctx context.Context, command string) int {
	if len(c.hosts) == 0 {
		c.errorf("no targets: set some with :target EXPR")
		return 1
	}
	if c.sudoOn {
		// Asks for the password the first time a host needs one; request carries it.
		probe := c.request(c.hosts, command, nil)
		if err := c.sudo.Prepare(ctx, c.sess, &probe); err != nil {
			c.errorf("%v", err)
			return show.ExitNotRun
		}
	}
	var out *show.Outcome
	var err error
	if ro := c.rollout(); ro != nil && ro.Canary > 0 && c.opt.Interactive {
		out, err = c.runCanary(ctx, command, ro)
	} else {
		out, err = show.Run(ctx, c.sess, c.request(c.hosts, command, ro), c.view(), c.interrupts)
	}
	if err != nil {
		c.errorf("%v", err)
		if out == nil {
			return show.ExitNotRun
		}
	}
	c.last = out.Results
	c.interrupted = out.Interrupted
	if out.Interrupted && (c.mode == show.ModeJSON || c.mode == show.ModeJSONStream) {
		// The text modes note the interrupt in the summary; keep JSON output clean.
		fmt.Fprintf(c.errw, "interrupted: %d not finished: %s\n", len(out.Unfinished), hostlist.Fold(out.Unfinished))
	}
	return show.ExitStatus(out.Results)
}

// request is a run of command on hosts with the console's settings, paced by ro.
func (c *console) request(hosts []string, command string, ro *proto.Rollout) client.RunRequest {
	r := client.RunRequest{
		Hosts:     hosts,
		Command:   command,
		Timeout:   c.timeout,
		Identity:  c.identity,
		Fanout:    c.fanout,
		Dir:       c.dir,
		Env:       c.opt.Env,
		Masked:    c.opt.Masked,
		Subst:     c.opt.Subst,
		KillGrace: c.opt.KillGrace,
		Rollout:   ro,
		Login:     c.opt.Login,
		PTY:       c.opt.PTY,
	}
	if c.sudoOn {
		r.SudoUser, r.SudoPassword = c.sudo.User, c.sudo.password
	}
	return r
}

// view is how the console shows results now.
func (c *console) view() show.View {
	v := show.View{Out: c.out, Mode: c.mode, Color: c.opt.Color, Summary: true, NoPrefix: c.opt.NoPrefix}
	if c.onTerminal() {
		v.Progress = true
		v.Width = render.TerminalWidth(c.out)
		v.MaxLines, v.MaxBytes = show.TerminalMaxLines, show.TerminalMaxBytes
	}
	return v
}

// onTerminal reports whether a person at a terminal reads the console's output.
func (c *console) onTerminal() bool {
	return c.opt.Interactive && render.IsTerminal(c.out)
}

// errorf prints an error message for the person at the console.
func (c *console) errorf(format string, args ...any) {
	fmt.Fprintln(c.errw, render.Paint(c.opt.Color, render.SGRRed, "shoal: "+fmt.Sprintf(format, args...)))
}

// sortedCopy returns hosts de-duplicated in natural order.
func sortedCopy(hosts []string) []string {
	out := append([]string(nil), hosts...)
	hostlist.Sort(out)
	j := 0
	for i, h := range out {
		if i > 0 && h == out[j-1] {
			continue
		}
		out[j] = h
		j++
	}
	return out[:j]
}

// newSudo returns the console's sudo state for user (empty: root).
func newSudo(user string, notes io.Writer) *Sudo {
	if user == "" {
		user = "root"
	}
	return &Sudo{User: user, Retry: true, Notes: notes}
}
