package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/spf13/cobra"
)

// newConfigCmd builds `shoal config` with its check, example and paths subcommands.
func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration, or print an example",
		Args:  cobra.NoArgs, // runnable, so a mistyped subcommand is an error rather than help
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate the configuration and print the effective result",
		Long: `Validate the configuration and print the effective result as TOML.

Without FILE it reads what shoal reads: --config, or the system file and the XDG files
laid over each other. Errors are printed as FILE:LINE: KEY: MESSAGE and exit with status 1.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := g.configFile
			if len(args) == 1 {
				path = args[0]
			}
			cfg, err := config.Load(path)
			if err != nil {
				printConfigError(g.stderr, err)
				return exitError{code: 1}
			}
			return printConfig(g.stdout, cfg)
		},
	}
	example := &cobra.Command{
		Use:   "example",
		Short: "Print a commented configuration file that sets every key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(g.stdout, config.Example())
			return err
		},
	}
	paths := &cobra.Command{
		Use:   "paths",
		Short: "Print the files shoal reads and the directories it uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p := config.DefaultPaths()
			var b strings.Builder
			files := config.ConfigFiles()
			if g.configFile != "" {
				files = []string{g.configFile}
			}
			for _, f := range files {
				fmt.Fprintf(&b, "config  %s\n", f)
			}
			fmt.Fprintf(&b, "state   %s\ncache   %s\nruntime %s\n", p.StateDir, p.CacheDir, p.RuntimeDir)
			_, err := io.WriteString(g.stdout, b.String())
			return err
		},
	}
	sshCmd := &cobra.Command{
		Use:   "ssh HOST...",
		Short: "Print how the built-in SSH client reaches hosts, in ssh -G's format",
		Long: `Print the ssh_config options the built-in SSH client uses for each HOST, resolved as
OpenSSH's ssh -G resolves them (-F, else [ssh] ssh_config, else ~/.ssh/config and
/etc/ssh/ssh_config) and printed in its format: one lowercase "key value" line each. An option
the built-in client cannot honour is reported on stderr with its file and line.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			d := g.sshDialer(cfg, func(msg string) { fmt.Fprintf(g.stderr, "shoal: warning: %s\n", msg) })
			failed := false
			for _, host := range args {
				h, err := d.Resolve(host, sshx.Override{})
				if err != nil {
					fmt.Fprintf(g.stderr, "shoal: %s: %v\n", host, err)
					failed = true
					continue
				}
				if _, err := io.WriteString(g.stdout, h.Dump()); err != nil {
					return err
				}
				if h.Unsupported != nil {
					fmt.Fprintf(g.stderr, "shoal: %s: %v\n", host, h.Unsupported)
				}
			}
			if failed {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.AddCommand(check, example, paths, sshCmd)
	return cmd
}

// printConfigError prints each configuration error on its own line.
func printConfigError(w io.Writer, err error) {
	var es config.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintf(w, "%v\n", e)
		}
		return
	}
	fmt.Fprintf(w, "shoal: %v\n", err)
}

// printConfig writes the effective configuration as TOML, headed by the files it came from.
func printConfig(w io.Writer, cfg *config.Config) error {
	var b strings.Builder
	b.WriteString("# effective shoal configuration\n")
	files := cfg.Files()
	if len(files) == 0 {
		b.WriteString("# no configuration file found: these are the defaults\n")
	}
	for _, f := range files {
		fmt.Fprintf(&b, "# read %s\n", f)
	}
	b.WriteByte('\n')
	out, err := toml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("printing the configuration: %w", err)
	}
	b.Write(out)
	_, err = io.WriteString(w, b.String())
	return err
}
