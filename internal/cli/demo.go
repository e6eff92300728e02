package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/hostlist"
)

// maxDemoHosts bounds the demo fleet: each host is an agent process on this machine.
const maxDemoHosts = 256

// demoHosts returns the names of a demo fleet of n hosts: node1..node8, node01..node20, and so on.
func demoHosts(n int) []string {
	width := len(strconv.Itoa(n))
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("node%0*d", width, i+1)
	}
	return hosts
}

// demoConfig is the configuration of a demo fleet of n local hosts whose agents live under dir.
func demoConfig(n int, dir string) string {
	hosts := demoHosts(n)
	half := max(1, n/2)
	var odd, even []string
	for i, h := range hosts {
		if i%2 == 0 {
			odd = append(odd, h)
		} else {
			even = append(even, h)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# shoal demo: %d hosts on this machine, reached without SSH. Removed at exit.\n\n", n)
	fmt.Fprintf(&b, "[daemon]\nuse = false\n\n")
	fmt.Fprintf(&b, "[agent]\ninstall_dir = %q\n\n", filepath.Join(dir, "agents"))
	fmt.Fprintf(&b, "[tags]\n")
	fmt.Fprintf(&b, "web = %q\n", hostlist.Fold(hosts[:half]))
	if half < n {
		fmt.Fprintf(&b, "db = %q\n", hostlist.Fold(hosts[half:]))
	}
	fmt.Fprintf(&b, "odd = %q\n", hostlist.Fold(odd))
	if len(even) > 0 {
		fmt.Fprintf(&b, "even = %q\n", hostlist.Fold(even))
	}
	fmt.Fprintf(&b, "\n[[host]]\nname = %q\ntransport = \"local\"\n", hostlist.Fold(hosts))
	return b.String()
}

// demoOnly refuses hosts the demo's configuration does not name: the demo's hosts are local
// processes, and any other name would be looked up in DNS and reached over SSH.
func demoOnly(cfg *config.Config, hosts []string) error {
	known := cfg.HostNames()
	var unknown []string
	for _, h := range hosts {
		if !slices.Contains(known, h) {
			unknown = append(unknown, h)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%s: not a host of the demo, whose hosts are %s", hostlist.Fold(unknown), hostlist.Fold(known))
	}
	return nil
}

// demoGetDir is where the demo's :get puts files without a DESTDIR: in the demo's directory,
// like everything else the demo makes, not in the directory it was started from.
func demoGetDir(demoDir string) string {
	if demoDir == "" {
		return ""
	}
	return filepath.Join(demoDir, "got")
}

// demoBanner is what the demo console says before its first prompt.
func demoBanner(n int, dir string) string {
	hosts := demoHosts(n)
	return fmt.Sprintf(`shoal demo: %d local hosts %s (tags @web, @db, @odd, @even), no SSH.
Its files live in %s and go away when you leave.
Try:  date     uname -a     :time     :target @web     sleep 1000 (then Ctrl-C)     :help
Ctrl-D or :quit leaves.`, n, hostlist.Fold(hosts), dir)
}

func newDemoCmd(g *globals, rf *runFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "demo [N]",
		Short: "Open the console on a fleet of N local hosts (default 8), no SSH needed",
		Long: `Open the console on a fleet of N hosts that all live on this machine: each runs
its own shoal agent as a local process, so everything works as it would over
SSH, without any SSH. The fleet's configuration, state and history live in a
temporary directory, removed at exit; the demo never talks to your daemon.

With piped standard input it runs those lines and exits with the worst status:

  printf 'date\n:time\n' | shoal demo`,
		Args: argsUsage(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 8
			if len(args) == 1 {
				var err error
				if n, err = strconv.Atoi(args[0]); err != nil || n < 1 || n > maxDemoHosts {
					return fmt.Errorf("reading N %q: want a number from 1 to %d", args[0], maxDemoHosts)
				}
			}
			return g.runDemo(cmd, n)
		},
	}
}

// runDemo builds the demo fleet in a temporary directory and runs the console on it as a child
// process, whose XDG directories all point into that directory, then removes it.
func (g *globals) runDemo(cmd *cobra.Command, n int) (err error) {
	dir, err := os.MkdirTemp("", "shoal-demo-")
	if err != nil {
		return fmt.Errorf("making the demo directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("removing the demo directory: %w", rerr)
		}
	}()
	xdg := map[string]string{
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_STATE_HOME":  filepath.Join(dir, "state"),
		"XDG_CACHE_HOME":  filepath.Join(dir, "cache"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"XDG_RUNTIME_DIR": filepath.Join(dir, "run"),
	}
	for _, d := range xdg {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("making the demo directory: %w", err)
		}
	}
	cfgPath := filepath.Join(xdg["XDG_CONFIG_HOME"], "shoal", "config.toml")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		return fmt.Errorf("making the demo directory: %w", err)
	}
	if err := os.WriteFile(cfgPath, []byte(demoConfig(n, dir)), 0o600); err != nil {
		return fmt.Errorf("writing the demo configuration: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the shoal binary: %w", err)
	}
	args := []string{"--config", cfgPath, "--no-daemon", "--demo-dir", dir, "--demo-banner", demoBanner(n, dir)}
	// Pass on the flags the person gave (output mode, timeout, fan-out).
	cmd.Flags().Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "config", "no-daemon", "demo-banner", "demo-dir":
			return
		}
		args = append(args, "--"+f.Name+"="+f.Value.String())
	})
	args = append(args, "@all")

	child := exec.Command(exe, args...)
	child.Stdin, child.Stdout, child.Stderr = g.stdin, g.stdout, g.stderr
	child.Env = os.Environ()
	for k, v := range xdg {
		child.Env = append(child.Env, k+"="+v)
	}
	// Ctrl-C reaches the child (it shares our terminal) and means "cancel the command" there;
	// here it must not end the demo and leave the directory behind. SIGTERM and SIGHUP (the
	// terminal went away) are passed on, and the directory is removed once the child is gone.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := child.Start(); err != nil {
		return fmt.Errorf("starting the demo console: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- child.Wait() }()
	for {
		select {
		case s := <-sigs:
			if s != os.Interrupt {
				child.Process.Signal(s)
			}
		case err := <-waited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if code := ee.ExitCode(); code > 0 {
					return exitError{code}
				}
				return exitError{1}
			}
			if err != nil {
				return fmt.Errorf("running the demo console: %w", err)
			}
			return nil
		}
	}
}
