package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-sh/shoal/internal/certs"
	"github.com/spf13/cobra"
)

// newCertsCmd builds `shoal certs`: a small CA for the daemon's mutual-TLS listener.
func newCertsCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create a CA and certificates for the daemon's mutual-TLS listener",
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", "", "certificate directory (default $XDG_CONFIG_HOME/shoal/tls)")
	certDir := func() (string, error) {
		if dir != "" {
			return dir, nil
		}
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("finding the config directory: %w", err)
		}
		return filepath.Join(base, "shoal", "tls"), nil
	}
	var caName string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new certificate authority",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := certDir()
			if err != nil {
				return err
			}
			if err := certs.Init(d, caName, time.Now()); err != nil {
				return fmt.Errorf("certs init: %w", err)
			}
			fmt.Fprintf(g.stdout, "created CA %s\n", filepath.Join(d, certs.CACert))
			return nil
		},
	}
	initCmd.Flags().StringVar(&caName, "name", "", "the CA's common name")
	var hosts []string
	var valid time.Duration
	issueCmd := &cobra.Command{
		Use:   "issue NAME",
		Short: "Issue a certificate signed by the CA (a client identity; with --host, also a server)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := certDir()
			if err != nil {
				return err
			}
			c, k, err := certs.Issue(d, certs.IssueOptions{Name: args[0], Hosts: hosts, Valid: valid}, time.Now())
			if err != nil {
				return fmt.Errorf("certs issue: %w", err)
			}
			fmt.Fprintf(g.stdout, "created %s\ncreated %s\n", c, k)
			return nil
		},
	}
	issueCmd.Flags().StringSliceVar(&hosts, "host", nil, "DNS name or IP address the daemon is reached at (makes a server certificate)")
	issueCmd.Flags().DurationVar(&valid, "valid", 0, "validity (default two years)")
	cmd.AddCommand(initCmd, issueCmd)
	return cmd
}
