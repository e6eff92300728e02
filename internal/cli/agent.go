package cli

import "github.com/spf13/cobra"

// newAgentCmd is a placeholder until its issue lands.
func newAgentCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "agent", Hidden: true}
}
