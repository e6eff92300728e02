// Package tagsource reads host groups kept outside shoal's configuration, where cluster and
// fleet users already keep them: commands in the style of ClusterShell's group sources (one
// lists the groups, one maps a group to its hosts), ClusterShell's groups.conf and groups.d
// YAML files, genders files, and Ansible inventories (`ansible-inventory --list` JSON).
//
// A group's hosts come back as a target expression (ranges such as node[01-20] are kept), which
// the caller expands with package hostlist like any tag.
package tagsource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kinds of source.
const (
	KindCommand      = "command"
	KindClusterShell = "clustershell"
	KindGenders      = "genders"
	KindAnsible      = "ansible"
)

// Kinds lists every kind of source, for validation and documentation.
var Kinds = []string{KindCommand, KindClusterShell, KindGenders, KindAnsible}

// Defaults for zero Spec fields.
const (
	DefaultTimeout = 10 * time.Second
	DefaultCache   = time.Minute
)

// ErrUnknownGroup is returned (wrapped) for a group a source does not offer.
var ErrUnknownGroup = errors.New("unknown group")

// Spec describes one source, as a [[tag_source]] entry of the configuration does.
type Spec struct {
	Name string // what @NAME:group names
	Kind string // one of Kinds
	// Path is the file the source reads: clustershell a groups.conf, a groups.d directory or
	// one .yaml file; genders a genders file; ansible an inventory (a --list JSON file is read
	// directly, anything else is given to ansible-inventory).
	Path string
	// List and Map are the shell commands of a command source: List prints the groups, Map
	// prints the hosts of the group it is given (%s, shell-quoted) as names or expressions
	// separated by spaces, commas or lines.
	List, Map string
	// Section chooses the ClusterShell group source (a YAML file's top-level key, a
	// groups.conf section); "" means groups.conf's default, else the only one, else "local".
	Section string
	// Timeout bounds each command; 0 means DefaultTimeout.
	Timeout time.Duration
	// Cache is how long a command's output is reused (CacheDir); 0 means DefaultCache, a
	// negative value not at all.
	Cache time.Duration
	// CacheDir keeps command outputs across processes; "" keeps none.
	CacheDir string
}

// Source offers named groups of hosts. Its methods are safe for concurrent use.
type Source struct {
	spec Spec

	mu     sync.Mutex // protects the following
	loaded bool
	groups map[string]string // group → expression, for the sources read whole
	err    error
}

// New returns the source spec describes. It reads nothing until asked.
func New(spec Spec) *Source {
	if spec.Timeout <= 0 {
		spec.Timeout = DefaultTimeout
	}
	if spec.Cache == 0 {
		spec.Cache = DefaultCache
	}
	return &Source{spec: spec}
}

// Name returns the source's name.
func (s *Source) Name() string { return s.spec.Name }

// Groups returns the names of the source's groups, sorted.
func (s *Source) Groups(ctx context.Context) ([]string, error) {
	if s.spec.Kind == KindCommand {
		out, err := s.run(ctx, s.spec.List)
		if err != nil {
			return nil, fmt.Errorf("listing the groups of tag source %s: %w", s.spec.Name, err)
		}
		g := strings.Fields(out)
		slices.Sort(g)
		return slices.Compact(g), nil
	}
	m, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	var g []string
	for k := range m {
		g = append(g, k)
	}
	slices.Sort(g)
	return g, nil
}

// Hosts returns the target expression of one group's hosts.
func (s *Source) Hosts(ctx context.Context, group string) (string, error) {
	if s.spec.Kind == KindCommand {
		if s.spec.Map == "" {
			return "", fmt.Errorf("tag source %s has no map command", s.spec.Name)
		}
		out, err := s.run(ctx, strings.ReplaceAll(s.spec.Map, "%s", shellQuote(group)))
		if err != nil {
			return "", fmt.Errorf("mapping @%s:%s: %w", s.spec.Name, group, err)
		}
		hosts := strings.FieldsFunc(out, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
		if len(hosts) == 0 {
			return "", fmt.Errorf("@%s:%s: %w (the map command printed no hosts)", s.spec.Name, group, ErrUnknownGroup)
		}
		return strings.Join(hosts, ","), nil
	}
	m, err := s.load(ctx)
	if err != nil {
		return "", err
	}
	x, ok := m[group]
	if !ok {
		return "", fmt.Errorf("@%s:%s: %w", s.spec.Name, group, ErrUnknownGroup)
	}
	return x, nil
}

// load reads a file source whole, once.
func (s *Source) load(ctx context.Context) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return s.groups, s.err
	}
	switch s.spec.Kind {
	case KindClusterShell:
		s.groups, s.err = s.readClusterShell(ctx)
	case KindGenders:
		var data []byte
		if data, s.err = os.ReadFile(s.spec.Path); s.err == nil {
			s.groups, s.err = ParseGenders(data)
		}
	case KindAnsible:
		s.groups, s.err = s.readAnsible(ctx)
	default:
		s.err = fmt.Errorf("unknown kind %q (want one of %s)", s.spec.Kind, strings.Join(Kinds, ", "))
	}
	if s.err != nil {
		s.err = fmt.Errorf("reading tag source %s: %w", s.spec.Name, s.err)
	}
	s.loaded = true
	return s.groups, s.err
}

// run runs a shell command with the source's timeout, reusing its output from the cache while
// it is fresh, and returns what it printed.
func (s *Source) run(ctx context.Context, command string) (string, error) {
	var cache string
	if s.spec.CacheDir != "" && s.spec.Cache > 0 {
		sum := sha256.Sum256([]byte(command))
		cache = filepath.Join(s.spec.CacheDir, fmt.Sprintf("%s-%x", safeName(s.spec.Name), sum[:8]))
		if st, err := os.Stat(cache); err == nil && time.Since(st.ModTime()) < s.spec.Cache {
			if b, err := os.ReadFile(cache); err == nil {
				return string(b), nil
			}
		}
	}
	out, err := runShell(ctx, command, s.spec.Timeout)
	if err != nil {
		return "", err
	}
	if cache != "" {
		// A cache: losing it costs one more run. Written whole, then renamed into place.
		if os.MkdirAll(s.spec.CacheDir, 0o700) == nil {
			tmp := cache + ".tmp" + fmt.Sprint(os.Getpid())
			if os.WriteFile(tmp, []byte(out), 0o600) == nil {
				os.Rename(tmp, cache)
			}
		}
	}
	return out, nil
}

// maxOutput bounds what a source's command may print.
const maxOutput = 16 << 20

// runShell runs command with sh -c in a process group of its own, killed whole at the timeout.
func runShell(ctx context.Context, command string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stdout, stderr limited
	stdout.max, stderr.max = maxOutput, 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return "", fmt.Errorf("running %q: no answer within %v", command, timeout)
	}
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("running %q: %w: %s", command, err, msg)
		}
		return "", fmt.Errorf("running %q: %w", command, err)
	}
	if stdout.over {
		return "", fmt.Errorf("running %q: it printed more than %d bytes", command, maxOutput)
	}
	return stdout.String(), nil
}

// limited is a buffer that keeps at most max bytes and notes whether more came.
type limited struct {
	bytes.Buffer
	max  int
	over bool
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - l.Len(); len(p) > room {
		l.over = true
		p = p[:max(room, 0)]
	}
	l.Buffer.Write(p)
	return len(p), nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// safeName keeps the letters, digits, '-' and '_' of a source name, for a file name.
func safeName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, name)
}
