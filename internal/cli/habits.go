package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/shoal-sh/shoal/internal/config"
	"github.com/shoal-sh/shoal/internal/fsutil"
)

// addHostFlags adds the flags of the commands that reach hosts, spelled as clush and pdsh
// spell them: -f/--fanout, -x and -X to leave hosts out, -l to log in as another user, and
// (for commands that stream output) -N. They are not persistent flags, since `shoal hosts`
// has a -f of its own.
func addHostFlags(fs *pflag.FlagSet, rf *runFlags, stream bool) {
	fs.IntVarP(&rf.fanout, "fanout", "f", 0, "connect to at most this many hosts at once (default from the config)")
	fs.StringArrayVarP(&rf.exclude, "exclude", "x", nil, "leave out the hosts of EXPR (repeatable, as clush -x)")
	fs.StringArrayVarP(&rf.excludeTags, "exclude-tag", "X", nil, "leave out the hosts of tag TAG (repeatable, as clush -X)")
	fs.StringVarP(&rf.loginUser, "user", "l", "", "log in as USER on every host, as ssh -l")
	if stream {
		fs.BoolVarP(&rf.noPrefix, "no-prefix", "N", false, "in stream mode, write output lines without the host column (as clush -N)")
	}
}

// outputValue is -o/--output: an output mode (gather, stream, json), or an ssh option such as
// StrictHostKeyChecking=no, as clush -o and ssh -o take them. No mode holds '=' or a space, and
// every ssh option does, so the two never mix.
type outputValue struct{ rf *runFlags }

func (v outputValue) String() string { return v.rf.output }
func (v outputValue) Type() string   { return "string" }
func (v outputValue) Set(s string) error {
	if strings.ContainsAny(s, "= \t") {
		v.rf.sshOptions = append(v.rf.sshOptions, s)
		return nil
	}
	v.rf.output = s
	return nil
}

// check refuses numbers and durations no command can use, naming the flag.
func (g *globals) check(rf *runFlags) error {
	switch {
	case rf.fanout < 0:
		return fmt.Errorf("reading --fanout %d: want a number of hosts, 1 or more (0: the configuration's)", rf.fanout)
	case rf.timeout < 0:
		return fmt.Errorf("reading --timeout %s: want a duration such as 30s or 2m (0: none)", rf.timeout)
	case g.connectTimeout < 0:
		return fmt.Errorf("reading --connect-timeout %s: want a duration such as 5s (0: the configuration's)", g.connectTimeout)
	}
	return nil
}

// sshOverrides reports whether the flags change how hosts are reached for this run: -l, or
// ssh options.
func (rf *runFlags) sshOverrides() bool { return rf.loginUser != "" || len(rf.sshOptions) > 0 }

// excluded returns hosts without those of the -x expressions and -X tags.
func (rf *runFlags) excluded(cfg *config.Config, hosts []string) ([]string, error) {
	var drop []string
	for _, x := range rf.exclude {
		got, err := cfg.Targets(x, nil)
		if err != nil {
			return nil, fmt.Errorf("reading -x %q: %w", x, err)
		}
		drop = append(drop, got...)
	}
	for _, tag := range rf.excludeTags {
		tag = strings.TrimPrefix(tag, "@")
		got, err := cfg.Targets("@"+tag, nil)
		if err != nil {
			return nil, fmt.Errorf("reading -X %q: %w", tag, err)
		}
		drop = append(drop, got...)
	}
	if len(drop) == 0 {
		return hosts, nil
	}
	return slices.DeleteFunc(slices.Clone(hosts), func(h string) bool { return slices.Contains(drop, h) }), nil
}

// withSSHOverrides applies -l and the ssh options of -o for this process. The options become the
// first lines of an ssh_config of their own, ahead of the file that would have been read (which
// it includes), so they win as ssh -o's do; the file is named by a hash of what it holds and kept
// in the state directory, so the daemon, which learns this process's -F and -l in its hello,
// keeps one set of host sessions for each set of options.
func (g *globals) withSSHOverrides(cfg *config.Config, rf *runFlags) error {
	if !rf.sshOverrides() {
		return nil
	}
	if g.daemonAddr != "" || cfg.Client.Daemon != "" {
		return errors.New("-l and ssh options (-o KEY=VALUE) apply to this machine's SSH connections: they do not go with a remote daemon (--daemon, [client] daemon)")
	}
	g.loginUser = rf.loginUser
	if len(rf.sshOptions) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("# ssh options given to shoal with -o\n")
	for _, o := range rf.sshOptions {
		if strings.ContainsAny(o, "\n\r") {
			return fmt.Errorf("reading -o %q: an ssh option is one line", o)
		}
		b.WriteString(o + "\n")
	}
	orig := g.sshConfig
	if orig == "" {
		orig = config.ExpandHome(cfg.SSH.Config)
	}
	switch {
	case strings.EqualFold(orig, "none"):
	case orig != "":
		abs, err := filepath.Abs(orig)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "Include %q\n", abs)
	default:
		home, _ := os.UserHomeDir()
		fmt.Fprintf(&b, "Include %q\nInclude %q\n", filepath.Join(home, ".ssh", "config"), "/etc/ssh/ssh_config")
	}
	sum := sha256.Sum256([]byte(b.String()))
	path := filepath.Join(config.DefaultPaths().StateDir, "ssh-options", hex.EncodeToString(sum[:8])+".conf")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing the ssh options: %w", err)
	}
	if err := fsutil.ReplaceFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("writing the ssh options: %w", err)
	}
	g.sshConfig = path
	return nil
}
