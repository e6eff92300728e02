package sshx

import (
	"os"
	"strings"
)

// NamesHost reports whether the ssh_config files a Dialer with ConfigFile file would read (file
// alone, else ~/.ssh/config and the system's) have a Host block naming alias literally, not by
// a wildcard pattern: whether a person who types alias means a host ssh knows by that name.
func NamesHost(file, alias string) bool {
	home, _ := os.UserHomeDir()
	cs, err := loadConfigs(file, home, systemConfig, nil)
	if err != nil {
		return false
	}
	for _, c := range cs.files {
		for _, h := range c.Hosts {
			for _, p := range h.Patterns {
				if s := p.String(); s == alias && !strings.ContainsAny(s, "*?!") {
					return true
				}
			}
		}
	}
	return false
}
