// Package cli holds shoal's command tree: one cobra command per role and one-shot action.
package cli

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/config"

	"github.com/spf13/cobra"
)

// Version is the program version: set at build time with -ldflags "-X ...cli.Version=v1.2.3"
// (scripts/build stamps `git describe`), else the module version `go install ...@v1.2.3` recorded,
// else "dev".
var Version = "dev"

// -X sets only variables with a constant initializer, so the build information is read here.
func init() {
	if Version == "dev" {
		Version = moduleVersion(Version, debug.ReadBuildInfo)
	}
}

// Commit is the commit the binary was built from, set at build time like Version; empty means
// what the Go toolchain recorded, if anything.
var Commit = ""

// moduleVersion returns the main module's version from the build information read returns
// (`go install github.com/shoal-sh/shoal/cmd/shoal@v1.2.3` records v1.2.3), or fallback when
// there is none, as in a build from a checkout.
func moduleVersion(fallback string, read func() (*debug.BuildInfo, bool)) string {
	if bi, ok := read(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return fallback
}

// globals holds the flags and I/O shared by every subcommand.
type globals struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	configFile string // --config
	sshConfig  string // -F/--ssh-config

	connectTimeout time.Duration // --connect-timeout: overrides [ssh] connect_timeout
	daemonAddr     string        // --daemon tls://HOST:PORT: overrides [client] daemon
	version        bool          // --version
	loginUser      string        // -l: the user every host is logged in as, for this run
	demoDir        string        // --demo-dir: this is the demo's console, whose files live there
}

// loadConfig loads the configuration and applies the flags that override it.
func (g *globals) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(g.configFile)
	if err != nil {
		return nil, err
	}
	if g.connectTimeout > 0 {
		cfg.SSH.ConnectTimeout = config.Duration(g.connectTimeout)
	}
	return cfg, nil
}

// exitError carries a process exit status out of a command without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs the shoal command line with args and returns the process exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	if code, ok := agent.AskpassMain(stdout); ok {
		return code // sudo runs the agent's executable as its askpass helper
	}
	if len(args) > 0 && args[0] == "agent" {
		// The agent starts once per host connection: skip building the whole command tree.
		return agent.Main(args[1:], stdin, stdout, stderr, Version)
	}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "shoal: %v\n", err)
	return 1
}

// newRoot builds the command tree; it holds no package-level state so tests can run it.
func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "shoal",
		Short:         "Run shell commands on many machines at once",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "configuration file (default $XDG_CONFIG_HOME/shoal/config.toml)")
	pf.StringVarP(&g.sshConfig, "ssh-config", "F", "", "ssh_config file to use instead of ~/.ssh/config")
	pf.StringVar(&g.daemonAddr, "daemon", "", "use the remote daemon at tls://HOST:PORT over mutual TLS (default [client] daemon, else the local one)")
	// --version says what `shoal version` says (cobra's own flag would print the version alone).
	root.Flags().BoolVar(&g.version, "version", false, "print the version, commit, Go version, and whether the agent is embedded")
	pf.DurationVar(&g.connectTimeout, "connect-timeout", 0, "give up on a host whose SSH connection takes longer (default from the config, 10s)")

	root.AddCommand(
		newAgentCmd(g),
		newHostsCmd(g),
		newConfigCmd(g),
		newCertsCmd(g),
		newDaemonCmd(g),
		newVersionCmd(g),
	)
	addConsoleCommands(root, g)
	return root
}
