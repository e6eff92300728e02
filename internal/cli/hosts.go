package cli

import "github.com/spf13/cobra"

// newHostsCmd is a placeholder until its issue lands.
func newHostsCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "hosts", Hidden: true}
}
