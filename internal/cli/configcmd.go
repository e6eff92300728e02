package cli

import "github.com/spf13/cobra"

// newConfigCmd is a placeholder until its issue lands.
func newConfigCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "configcmd", Hidden: true}
}
