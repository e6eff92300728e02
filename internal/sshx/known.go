package sshx

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// NamesHost reports whether the ssh_config files a Dialer with ConfigFile file would read (file
// alone, else ~/.ssh/config and the system's, and the files they Include) have a Host line naming
// alias literally, not by a wildcard pattern: whether a person who types alias means a host ssh
// knows by that name.
func NamesHost(file, alias string) bool {
	home, _ := os.UserHomeDir()
	if strings.EqualFold(file, "none") {
		return false
	}
	files := []string{file}
	user := true
	if file == "" {
		files = []string{filepath.Join(home, ".ssh", "config"), systemConfig}
	}
	var fc configFiles
	for i, f := range files {
		if namesHost(&fc, f, alias, home, user && (file != "" || i == 0), 0) {
			return true
		}
	}
	return false
}

// namesHost is NamesHost for one file and the files it includes.
func namesHost(fc *configFiles, path, alias, home string, user bool, depth int) bool {
	f, err := fc.read(path, false)
	if err != nil || depth > maxIncludeDepth {
		return false
	}
	for _, l := range f.lines {
		switch l.keyword {
		case "host":
			if slices.ContainsFunc(l.args, func(p string) bool { return p == alias && !strings.ContainsAny(p, "*?!") }) {
				return true
			}
		case "include":
			for _, a := range l.args {
				if !strings.HasPrefix(a, "/") && !strings.HasPrefix(a, "~") {
					if user {
						a = "~/.ssh/" + a
					} else {
						a = "/etc/ssh/" + a
					}
				}
				pat, err := tildeExpand(a, home)
				if err != nil {
					continue
				}
				matches, _ := filepath.Glob(pat)
				for _, m := range matches {
					if namesHost(fc, m, alias, home, user, depth+1) {
						return true
					}
				}
			}
		}
	}
	return false
}
